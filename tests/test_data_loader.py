"""Datasets, samplers, collate and the DataLoader (single and multi-process)."""
from __future__ import annotations

import collections
import os

import numpy as np
import pytest

import dyntorch
from dyntorch.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    get_worker_info,
    random_split,
)

torch = pytest.importorskip("torch")
Point = collections.namedtuple("Point", "x y")


def _arr(t):
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t)


def _same(a, b):
    """Our batch structure equals torch's, value by value."""
    if isinstance(b, torch.Tensor):
        assert isinstance(a, dyntorch.Tensor), type(a)
        assert str(a.dtype).split(".")[1] == str(b.dtype).split(".")[1]
        np.testing.assert_array_equal(_arr(a), b.numpy())
    elif isinstance(b, dict):
        assert type(a) is type(b) and a.keys() == b.keys()
        for k in b:
            _same(a[k], b[k])
    elif isinstance(b, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), (type(a), type(b))
        for x, y in zip(a, b):
            _same(x, y)
    else:
        assert a == b


class Mixed:
    """Samples of every collate kind; one class for dyntorch and one for torch."""

    def __init__(self, lib, n=10):
        self.lib, self.n = lib, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"t": self.lib.arange(3, dtype=self.lib.float32) + i, "np": np.full((2,), i,
                np.int32), "f": float(i) / 2, "i": i, "b": i % 2 == 0, "s": f"s{i}",
                "tup": (i, self.lib.tensor([i, -i])), "nt": Point(i, float(i)),
                "lst": [i, i + 1]}


@pytest.mark.parametrize("drop_last", [False, True])
def test_collate_matches_torch(drop_last):
    ours = list(DataLoader(Mixed(dyntorch), batch_size=4, drop_last=drop_last))
    theirs = list(torch.utils.data.DataLoader(Mixed(torch), batch_size=4, drop_last=drop_last))
    assert len(ours) == len(theirs) == (2 if drop_last else 3)
    for a, b in zip(ours, theirs):
        _same(a, b)


def test_default_collate_errors():
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [1]])
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([dyntorch.zeros(2), dyntorch.zeros(3)])
    with pytest.raises(TypeError, match="found object"):
        default_collate([object(), object()])


def test_len_and_batch_size_none():
    ds = TensorDataset(dyntorch.arange(10), dyntorch.arange(10) * 2)
    assert len(DataLoader(ds, batch_size=3)) == 4
    assert len(DataLoader(ds, batch_size=3, drop_last=True)) == 3
    items = list(DataLoader(ds, batch_size=None))
    assert len(items) == 10 and items[3][1].item() == 6 and items[3][0].dim() == 0


def test_shuffle_is_deterministic_with_generator_and_covers_all():
    ds = TensorDataset(dyntorch.arange(20))

    def order(seed):
        g = dyntorch.Generator().manual_seed(seed)
        return [int(x) for b in DataLoader(ds, batch_size=6, shuffle=True, generator=g)
                for x in b[0].tolist()]

    a, b, c = order(1), order(1), order(2)
    assert a == b and a != c and sorted(a) == list(range(20))
    # two epochs of one loader give different orders
    g = dyntorch.Generator().manual_seed(1)
    dl = DataLoader(ds, batch_size=20, shuffle=True, generator=g)
    e1, e2 = next(iter(dl))[0].tolist(), next(iter(dl))[0].tolist()
    assert e1 != e2
    # the global seed makes shuffling reproducible without a generator
    dyntorch.manual_seed(3)
    x = next(iter(DataLoader(ds, batch_size=20, shuffle=True)))[0].tolist()
    dyntorch.manual_seed(3)
    y = next(iter(DataLoader(ds, batch_size=20, shuffle=True)))[0].tolist()
    assert x == y


def test_samplers():
    ds = list(range(10))
    assert list(SequentialSampler(ds)) == ds
    g = dyntorch.Generator().manual_seed(0)
    r = list(RandomSampler(ds, generator=g))
    assert sorted(r) == ds
    r = list(RandomSampler(ds, num_samples=25, generator=g))
    assert len(r) == 25 and sorted(r[:10]) == ds and sorted(r[10:20]) == ds
    r = list(RandomSampler(ds, replacement=True, num_samples=50, generator=g))
    assert len(r) == 50 and set(r) <= set(ds)
    s = list(SubsetRandomSampler([3, 5, 7], generator=g))
    assert sorted(s) == [3, 5, 7]
    w = list(WeightedRandomSampler([0, 0, 1.0, 0], 20, generator=g))
    assert w == [2] * 20
    w = list(WeightedRandomSampler([1, 1, 1, 0], 3, replacement=False, generator=g))
    assert sorted(w) == [0, 1, 2]
    assert list(BatchSampler(range(7), 3, False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(BatchSampler(range(7), 3, True)) == 2
    dl = DataLoader(ds, batch_sampler=[[1, 2], [5]])
    assert [b.tolist() for b in dl] == [[1, 2], [5]]
    dl = DataLoader(ds, sampler=[9, 8, 7], batch_size=2)
    assert [b.tolist() for b in dl] == [[9, 8], [7]]


def test_loader_argument_errors():
    ds = list(range(4))
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, sampler=[0], shuffle=True)
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, batch_sampler=[[0]], batch_size=2)
    with pytest.raises(ValueError, match="persistent_workers"):
        DataLoader(ds, persistent_workers=True)


def test_datasets_and_random_split():
    a = TensorDataset(dyntorch.arange(4))
    b = TensorDataset(dyntorch.arange(10, 13))
    c = a + b
    assert isinstance(c, ConcatDataset) and len(c) == 7
    assert c[5][0].item() == 11 and c[-1][0].item() == 12
    with pytest.raises(IndexError):
        c[7]
    s = Subset(c, [6, 0])
    assert [x[0].item() for x in s] == [12, 0]
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(dyntorch.zeros(3), dyntorch.zeros(4))
    ds = list(range(10))
    for lengths in ([0.5, 0.3, 0.2], [0.34, 0.33, 0.33], [3, 7]):
        ours = random_split(ds, lengths, generator=dyntorch.Generator().manual_seed(0))
        theirs = torch.utils.data.random_split(ds, lengths,
                                               generator=torch.Generator().manual_seed(0))
        assert [len(x) for x in ours] == [len(x) for x in theirs]
        assert sorted(i for x in ours for i in x) == ds
    s1 = random_split(ds, [5, 5], generator=dyntorch.Generator().manual_seed(4))
    s2 = random_split(ds, [5, 5], generator=dyntorch.Generator().manual_seed(4))
    assert list(s1[0]) == list(s2[0])
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(ds, [3, 3])


class Squares(Dataset):
    def __len__(self):
        return 23

    def __getitem__(self, i):
        return dyntorch.tensor([float(i * i)]), i


class Failing(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 5:
            raise ValueError(f"bad sample {i}")
        return i


def test_workers_give_same_batches_as_main_process():
    for shuffle in (False, True):
        ref = list(DataLoader(Squares(), batch_size=4, shuffle=shuffle,
                              generator=dyntorch.Generator().manual_seed(7)))
        got = list(DataLoader(Squares(), batch_size=4, shuffle=shuffle, num_workers=2,
                              generator=dyntorch.Generator().manual_seed(7)))
        assert len(ref) == len(got) == 6
        for (x1, i1), (x2, i2) in zip(ref, got):
            assert i1.tolist() == i2.tolist()
            np.testing.assert_array_equal(x1.numpy(), x2.numpy())


def test_worker_exception_is_reraised_with_traceback():
    dl = DataLoader(Failing(), batch_size=2, num_workers=2)
    it = iter(dl)
    assert next(it).tolist() == [0, 1]
    assert next(it).tolist() == [2, 3]
    with pytest.raises(ValueError) as e:
        next(it)
    msg = str(e.value)
    assert "DataLoader worker process" in msg and "bad sample 5" in msg
    assert "Traceback" in msg and "__getitem__" in msg


class WorkerIds(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = get_worker_info()
        return (os.getpid(), info.id, info.num_workers, info.seed,
                float(dyntorch.rand(1).item()), float(np.random.rand()))


def test_worker_info_seeding_and_init_fn():
    calls = []
    dl = DataLoader(WorkerIds(), batch_size=None, num_workers=2,
                    worker_init_fn=lambda wid: calls.append(wid),
                    generator=dyntorch.Generator().manual_seed(0))
    rows = list(dl)
    assert get_worker_info() is None
    pids = {r[0] for r in rows}
    assert len(pids) == 2 and os.getpid() not in pids
    assert {r[1] for r in rows} == {0, 1} and all(r[2] == 2 for r in rows)
    seeds = {r[1]: r[3] for r in rows}
    assert seeds[1] == seeds[0] + 1
    assert len({r[4] for r in rows}) == 8 and len({r[5] for r in rows}) == 8
    rows2 = list(DataLoader(WorkerIds(), batch_size=None, num_workers=2,
                            generator=dyntorch.Generator().manual_seed(0)))
    assert [r[3:] for r in rows] == [r[3:] for r in rows2]


class Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        lo, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(lo, self.n, step))


def test_iterable_dataset_split_between_workers():
    single = [b.tolist() for b in DataLoader(Stream(10), batch_size=3)]
    assert single == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    multi = [b.tolist() for b in DataLoader(Stream(10), batch_size=2, num_workers=2)]
    assert sorted(x for b in multi for x in b) == list(range(10))
    assert multi[0] == [0, 2] and multi[1] == [1, 3]
    with pytest.raises(ValueError, match="shuffle"):
        DataLoader(Stream(3), shuffle=True)


def test_persistent_workers_two_epochs():
    dl = DataLoader(Squares(), batch_size=5, num_workers=2, persistent_workers=True)
    e1 = [i.tolist() for _, i in dl]
    pids = [p.pid for p in dl._iterator._workers]
    e2 = [i.tolist() for _, i in dl]
    assert e1 == e2 == [list(range(k, min(k + 5, 23))) for k in range(0, 23, 5)]
    assert [p.pid for p in dl._iterator._workers] == pids
    dl._iterator._shutdown()
    it = DataLoader(Stream(6), batch_size=2, num_workers=2, persistent_workers=True)
    assert [b.tolist() for b in it] == [b.tolist() for b in it]
    it._iterator._shutdown()


def test_worker_killed_is_reported():
    class Suicide(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            os._exit(3)

    with pytest.raises(RuntimeError, match="exited unexpectedly"):
        list(DataLoader(Suicide(), batch_size=1, num_workers=1))


class FailingStream(IterableDataset):
    def __iter__(self):
        yield 1
        raise KeyError("stream broke")


def test_iterable_worker_exception_and_len():
    with pytest.raises(KeyError, match="stream broke") as e:
        list(DataLoader(FailingStream(), batch_size=2, num_workers=1))
    assert "Original Traceback" in str(e.value)

    class Sized(IterableDataset):
        def __iter__(self):
            return iter(range(7))

        def __len__(self):
            return 7

    assert len(DataLoader(Sized(), batch_size=3)) == 3
    assert len(DataLoader(Sized(), batch_size=3, drop_last=True)) == 2
    assert [b.tolist() for b in DataLoader(Sized(), batch_size=3, drop_last=True)] == \
        [[0, 1, 2], [3, 4, 5]]


def test_worker_init_fn_error_and_drop_last_with_workers():
    def bad_init(wid):
        raise RuntimeError(f"init failed in {wid}")

    with pytest.raises(RuntimeError, match="init failed"):
        list(DataLoader(Squares(), batch_size=4, num_workers=1, worker_init_fn=bad_init))
    got = [i.tolist() for _, i in DataLoader(Squares(), batch_size=5, num_workers=2,
                                             drop_last=True)]
    assert got == [list(range(k, k + 5)) for k in range(0, 20, 5)]


def test_getitems_is_used_for_batches():
    class Batched(Dataset):
        calls = 0

        def __len__(self):
            return 6

        def __getitem__(self, i):
            raise AssertionError("per-item access not expected")

        def __getitems__(self, idx):
            Batched.calls += 1
            return [float(i) for i in idx]

    out = [b.tolist() for b in DataLoader(Batched(), batch_size=4)]
    assert out == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0]] and Batched.calls == 2


def test_tensor_dataset_fast_path_equals_per_item_collate():
    rng = np.random.default_rng(0)
    ds = TensorDataset(dyntorch.tensor(rng.standard_normal((30, 3, 2)).astype(np.float32)),
                       dyntorch.tensor(rng.integers(0, 5, 30)))
    sub = random_split(ds, [20, 10], generator=dyntorch.Generator().manual_seed(1))[0]
    for d in (ds, sub, Subset(sub, [3, 1, 4, 1, 5])):
        fast = list(DataLoader(d, batch_size=4, shuffle=True,
                               generator=dyntorch.Generator().manual_seed(2)))
        slow = list(DataLoader(d, batch_size=4, shuffle=True, collate_fn=lambda b:
                               default_collate(b), generator=dyntorch.Generator().manual_seed(2)))
        assert len(fast) == len(slow)
        for a, b in zip(fast, slow):
            assert type(a) is type(b) is list
            for x, y in zip(a, b):
                assert x.dtype == y.dtype and x.shape == y.shape
                np.testing.assert_array_equal(x.numpy(), y.numpy())
