"""The part of the suite that runs inside ``mpiexec -n 2`` ranks (started by
tests/test_distributed.py, which sets DYNTORCH_DIST_RANKS); skipped in a plain pytest run.

Every rank runs every test in the same order, so the collectives match up across ranks.
"""
from __future__ import annotations

import datetime
import os

import numpy as np
import pytest

import dyntorch
from dyntorch import nn, optim

pytestmark = [
    pytest.mark.distributed,
    pytest.mark.skipif("DYNTORCH_DIST_RANKS" not in os.environ,
                       reason="runs inside mpiexec ranks, started by tests/test_distributed.py"),
]

dist = dyntorch.distributed


@pytest.fixture(scope="module", autouse=True)
def world():
    # a short timeout: if one rank fails a test, the other does not wait 30 minutes
    dist.init_process_group("mpi", timeout=datetime.timedelta(seconds=20))
    assert dist.is_initialized() and dist.get_world_size() == 2
    yield
    dist.destroy_process_group()


def _all_ranks(shape, dtype, seed=0):
    """Every rank's input, computable on every rank: rank r's is row r."""
    rng = np.random.default_rng(seed)
    n = dist.get_world_size()
    if np.dtype(dtype).kind == "f":
        return (rng.standard_normal((n, *shape)) * 3).astype(dtype)
    return rng.integers(-5, 6, size=(n, *shape)).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("op,ref", [("SUM", np.sum), ("PRODUCT", np.prod), ("MIN", np.min),
                                    ("MAX", np.max)])
def test_all_reduce_against_numpy(dtype, op, ref):
    data = _all_ranks((3, 4), dtype, seed=len(op))
    t = dyntorch.tensor(data[dist.get_rank()].copy())
    same = t
    assert dist.all_reduce(t, op=getattr(dist.ReduceOp, op)) is None
    assert t is same  # in place
    np.testing.assert_allclose(t.numpy(), ref(data, axis=0).astype(dtype), rtol=1e-6)


def test_all_reduce_avg_and_async():
    data = _all_ranks((5,), "float64", seed=3)
    t = dyntorch.tensor(data[dist.get_rank()].copy())
    work = dist.all_reduce(t, op=dist.ReduceOp.AVG, async_op=True)
    assert work.wait() is True
    np.testing.assert_allclose(t.numpy(), data.mean(axis=0), rtol=1e-12)


def test_all_reduce_non_contiguous_half_and_bool():
    data = _all_ranks((4, 6), "float64", seed=4)
    base = dyntorch.tensor(data[dist.get_rank()].copy())
    view = base[:, ::2]  # a strided view: the result must land in the base tensor
    dist.all_reduce(view)
    np.testing.assert_allclose(base.numpy()[:, ::2], data.sum(axis=0)[:, ::2])
    np.testing.assert_allclose(base.numpy()[:, 1::2], data[dist.get_rank()][:, 1::2])
    h = dyntorch.tensor(data[dist.get_rank()][0].astype(np.float16))
    dist.all_reduce(h)
    np.testing.assert_allclose(h.numpy(), data[:, 0].astype(np.float16).sum(0), rtol=1e-2)
    b = dyntorch.tensor(np.array([dist.get_rank() == 0, False, True]))
    dist.all_reduce(b, op=dist.ReduceOp.MAX)
    assert b.tolist() == [True, False, True]


def test_broadcast_all_gather_reduce_scatter():
    r, n = dist.get_rank(), dist.get_world_size()
    data = _all_ranks((2, 3), "float32", seed=5)
    t = dyntorch.tensor(data[r].copy())
    dist.broadcast(t, src=1)
    np.testing.assert_array_equal(t.numpy(), data[1])
    outs = [dyntorch.zeros(2, 3) for _ in range(n)]
    dist.all_gather(outs, dyntorch.tensor(data[r].copy()))
    for k in range(n):
        np.testing.assert_array_equal(outs[k].numpy(), data[k])
    parts = _all_ranks((n, 4), "float64", seed=6)  # parts[rank][k]: what rank sends to k
    out = dyntorch.zeros(4, dtype=dyntorch.float64)
    dist.reduce_scatter(out, [dyntorch.tensor(parts[r][k].copy()) for k in range(n)])
    np.testing.assert_allclose(out.numpy(), parts[:, r].sum(axis=0))
    dist.barrier()


def test_mismatched_shapes_name_both():
    r = dist.get_rank()
    with pytest.raises(dist.DistBackendError, match=r"rank 0 called all_reduce with shape \[2, 3\]"
                                                    r".*rank 1 called all_reduce with shape "
                                                    r"\[3, 3\]"):
        dist.all_reduce(dyntorch.zeros(2 + r, 3))
    with pytest.raises(dist.DistBackendError, match="rank 0 called broadcast.*rank 1 called "
                                                    "all_reduce"):
        if r == 0:
            dist.broadcast(dyntorch.zeros(3))
        else:
            dist.all_reduce(dyntorch.zeros(3))
    dist.barrier()  # still usable afterwards


def test_object_collectives():
    r = dist.get_rank()
    out = [None, None]
    dist.all_gather_object(out, {"rank": r, "text": "x" * (10 + 100 * r)})
    assert out == [{"rank": 0, "text": "x" * 10}, {"rank": 1, "text": "x" * 110}]
    objs = [r, f"from {r}"] if r == 1 else [None, None]
    dist.broadcast_object_list(objs, src=1)
    assert objs == [1, "from 1"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="world_size=2 tensors, got 1"):
        dist.all_gather([dyntorch.zeros(2)], dyntorch.zeros(2))
    with pytest.raises(ValueError, match="src must be a rank"):
        dist.broadcast(dyntorch.zeros(2), src=2)
    with pytest.raises(ValueError, match="op=.*not supported"):
        dist.all_reduce(dyntorch.zeros(2), op="band")
    with pytest.raises(RuntimeError, match="twice"):
        dist.init_process_group("mpi")


# --------------------------------------------------------------------------- DDP
def _mlp(seed):
    dyntorch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(),
                         nn.Linear(16, 3)).double()


def _batch(n, seed=0):
    rng = np.random.default_rng(seed)
    return (dyntorch.tensor(rng.standard_normal((n, 6))),
            dyntorch.tensor(rng.standard_normal((n, 3))))


@pytest.mark.parametrize("bucket_cap_mb", [25, 0.001])
def test_ddp_matches_one_process_on_the_full_batch(bucket_cap_mb):
    from dyntorch.nn.parallel import DistributedDataParallel as DDP

    r, n = dist.get_rank(), dist.get_world_size()
    x, y = _batch(8 * n)
    ref = _mlp(0)  # rank 0's initial weights: DDP broadcasts them
    ddp = DDP(_mlp(r), bucket_cap_mb=bucket_cap_mb)  # each rank starts different
    assert list(ddp.state_dict())[0] == "module.0.weight"
    o_ref = optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    o_ddp = optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    mine = slice(8 * r, 8 * (r + 1))
    for _ in range(6):
        o_ref.zero_grad()
        nn.functional.mse_loss(ref(x), y).backward()
        o_ref.step()
        o_ddp.zero_grad()
        nn.functional.mse_loss(ddp(x[mine]), y[mine]).backward()
        o_ddp.step()
    for (name, a), b in zip(ref.named_parameters(), ddp.module.parameters()):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), atol=1e-6, rtol=0,
                                   err_msg=name)
    ddp.remove_hooks()


def test_ddp_no_sync_accumulates_then_averages():
    from dyntorch.nn.parallel import DistributedDataParallel as DDP

    r = dist.get_rank()
    x, y = _batch(16, seed=1)
    ref = _mlp(0)
    ddp = DDP(_mlp(0))
    quarters = [slice(4 * k, 4 * (k + 1)) for k in range(4)]
    mine = quarters[2 * r:2 * r + 2]
    with ddp.no_sync():
        nn.functional.mse_loss(ddp(x[mine[0]]), y[mine[0]]).backward()
    local = [p.grad.numpy().copy() for p in ddp.parameters()]
    nn.functional.mse_loss(ddp(x[mine[1]]), y[mine[1]]).backward()
    for q in quarters:
        nn.functional.mse_loss(ref(x[q]), y[q]).backward()
    for a, b, loc in zip(ref.parameters(), ddp.parameters(), local):
        # the sum over this rank's two quarters, averaged over ranks = sum over 4 quarters / 2
        np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy() / 2, atol=1e-12)
        assert not np.allclose(loc, b.grad.numpy())
    ddp.remove_hooks()


def test_ddp_unused_parameter_is_an_error():
    from dyntorch.nn.parallel import DistributedDataParallel as DDP

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(3, 1)
            self.unused = nn.Linear(3, 1)

        def forward(self, x):
            return self.used(x)

    ddp = DDP(Two())
    ddp(dyntorch.ones(2, 3)).sum().backward()
    assert ddp.reduction_pending() == ["unused.weight", "unused.bias"] or \
        set(ddp.reduction_pending()) >= {"unused.weight", "unused.bias"}
    with pytest.raises(RuntimeError, match="unused.weight"):
        ddp(dyntorch.ones(2, 3))
    ddp.remove_hooks()


def test_ddp_buffers_follow_rank_zero():
    from dyntorch.nn.parallel import DistributedDataParallel as DDP

    dyntorch.manual_seed(dist.get_rank())
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    with dyntorch.no_grad():
        m[1].running_mean.fill_(float(dist.get_rank() + 7))
    ddp = DDP(m)
    assert m[1].running_mean.tolist() == [7.0] * 4
    gathered = [dyntorch.zeros(4, 3) for _ in range(2)]
    dist.all_gather(gathered, m[0].weight.detach().clone())
    np.testing.assert_array_equal(gathered[0].numpy(), gathered[1].numpy())
    ddp.remove_hooks()


# --------------------------------------------------------------------------- sampler
def test_sampler_defaults_from_the_world_and_covers_the_data():
    from dyntorch.utils.data.distributed import DistributedSampler

    s = DistributedSampler(range(11), shuffle=True, seed=3)
    assert (s.num_replicas, s.rank) == (2, dist.get_rank())
    s.set_epoch(2)
    mine = dyntorch.tensor(list(s))
    both = [dyntorch.zeros(6, dtype=dyntorch.int64) for _ in range(2)]
    dist.all_gather(both, mine)
    seen = sorted(both[0].tolist() + both[1].tolist())
    assert len(seen) == 12 and set(seen) == set(range(11))  # one index repeated as padding


# --------------------------------------------------------------------------- Trainer
def _reg_data(n, seed):
    from dyntorch.utils.data import TensorDataset

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6))
    y = x @ rng.standard_normal((6, 3)) + 0.1 * rng.standard_normal((n, 3))
    return TensorDataset(dyntorch.tensor(x), dyntorch.tensor(y))


class _Reg(dyntorch.train.TrainModule):
    def __init__(self, dropout=0.0):
        super().__init__()
        self.net = _mlp(0)
        if dropout:
            self.net.insert(2, nn.Dropout(dropout))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        return optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


def _fit(root, ddp: bool, epochs: int, batch: int, ckpt=None, shuffle=False, dropout=0.0,
         **kw):
    from dyntorch.train import Trainer
    from dyntorch.utils.data import DataLoader

    m = _Reg(dropout)
    dyntorch.manual_seed(1000 + dist.get_rank())  # each rank its own dropout masks
    if ddp:
        kw.update(strategy="ddp", devices=2)
    tr = Trainer(max_epochs=epochs, default_root_dir=root, enable_progress_bar=False,
                 log_every_n_steps=1, **kw)
    tr.fit(m, DataLoader(_reg_data(32, 0), batch_size=batch, shuffle=shuffle),
           DataLoader(_reg_data(16, 1), batch_size=4), ckpt_path=ckpt)
    return tr, m


def _params(m):
    return [p.detach().numpy().copy() for p in m.parameters()]


def test_trainer_ddp_matches_one_process_and_resumes(tmp_path_factory):
    base = os.environ["DYNTORCH_DIST_TMP"]  # the same directory on both ranks
    r = dist.get_rank()
    # two ranks with batches of 4 (rank r reads indices r, r+2, ...) = one process with 8
    tr, m = _fit(os.path.join(base, "ddp"), True, 3, 4)
    assert (tr.world_size, tr.global_rank, tr.is_global_zero) == (2, r, r == 0)
    single = tmp_path_factory.mktemp(f"single{r}")
    tr1, m1 = _fit(str(single), False, 3, 8)
    for a, b in zip(_params(m), _params(m1)):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    # metrics are those of the whole epoch, on every rank
    assert abs(float(tr.callback_metrics["val_loss"]) -
               float(tr1.callback_metrics["val_loss"])) < 1e-6
    assert abs(float(tr.callback_metrics["train_loss_epoch"]) -
               float(tr1.callback_metrics["train_loss_epoch"])) < 1e-6
    # only rank 0 wrote: one metrics.csv, checkpoints in the shared directory
    assert os.path.exists(os.path.join(base, "ddp", "metrics.csv"))
    assert tr.logger is None if r else tr.logger is not None
    # resume: 2 epochs, then 2 more from the last checkpoint == 4 epochs straight (shuffled,
    # with dropout: each rank resumes its own random state)
    full_tr, full = _fit(os.path.join(base, "full"), True, 4, 4, shuffle=True, dropout=0.3)
    _fit(os.path.join(base, "part"), True, 2, 4, shuffle=True, dropout=0.3)
    last = os.path.join(base, "part", "checkpoints")
    ck = sorted(os.listdir(last))
    assert ck, "rank 0 wrote no checkpoint"
    resumed_tr, resumed = _fit(os.path.join(base, "part"), True, 4, 4, shuffle=True,
                               ckpt=os.path.join(last, ck[-1]), dropout=0.3)
    assert resumed_tr.current_epoch == 4 and resumed_tr.global_step == full_tr.global_step
    assert full_tr.train_dataloader.sampler.epoch == 3  # a new shuffle each epoch
    for a, b in zip(_params(full), _params(resumed)):
        np.testing.assert_allclose(a, b, atol=1e-12, rtol=0)
    gathered = [dyntorch.zeros(3, dtype=dyntorch.float64) for _ in range(2)]
    dist.all_gather(gathered, resumed.net[-1].bias.detach().clone())
    np.testing.assert_array_equal(gathered[0].numpy(), gathered[1].numpy())


def test_trainer_ddp_accumulation_and_validate(tmp_path_factory):
    from dyntorch.utils.data import DataLoader

    base = os.environ["DYNTORCH_DIST_TMP"]
    r = dist.get_rank()
    # accumulating 2 batches: backward under no_sync, then one all-reduce per step
    tr, m = _fit(os.path.join(base, "acc"), True, 2, 4, accumulate_grad_batches=2)
    tr1, m1 = _fit(str(tmp_path_factory.mktemp(f"acc{r}")), False, 2, 8,
                   accumulate_grad_batches=2)
    assert tr.global_step == tr1.global_step == 4
    for a, b in zip(_params(m), _params(m1)):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    # validate() shards the loader and combines the ranks' metrics
    res = tr.validate(m, DataLoader(_reg_data(16, 1), batch_size=4), verbose=False)
    res1 = tr1.validate(m1, DataLoader(_reg_data(16, 1), batch_size=4), verbose=False)
    assert abs(res[0]["val_loss"] - res1[0]["val_loss"]) < 1e-9


def test_ddp_under_the_backward_stepper():
    """Stepping through backward on each rank averages the gradients as backward() does."""
    from dyntorch.debug.stepper import BackwardStepper
    from dyntorch.nn.parallel import DistributedDataParallel as DDP

    ddp = DDP(_mlp(0))
    x, y = _batch(6, seed=10 + dist.get_rank())
    st = BackwardStepper(nn.functional.mse_loss(ddp(x), y))
    st.step(3)
    st.run()
    stepped = [p.grad.numpy().copy() for p in ddp.parameters()]
    ddp.zero_grad()
    nn.functional.mse_loss(ddp(x), y).backward()
    for a, b in zip(stepped, ddp.parameters()):
        np.testing.assert_array_equal(a, b.grad.numpy())
    other = [dyntorch.zeros(3, dtype=dyntorch.float64) for _ in range(2)]
    dist.all_gather(other, ddp.module[-1].bias.grad.clone())
    np.testing.assert_array_equal(other[0].numpy(), other[1].numpy())  # averaged
    ddp.remove_hooks()


def test_trainer_ddp_keeps_batchnorm_buffers_in_step():
    from dyntorch.train import Trainer
    from dyntorch.utils.data import DataLoader

    class WithBN(_Reg):
        def __init__(self):
            super().__init__()
            self.net.insert(1, nn.BatchNorm1d(16).double())
            self.seen = []

        def training_step(self, batch, batch_idx):
            # what the step starts from: rank 0's statistics on every rank
            self.seen.append(self.net[1].running_mean.clone())
            return super().training_step(batch, batch_idx)

    m = WithBN()
    tr = Trainer(strategy="ddp", devices=2, max_epochs=1, enable_progress_bar=False,
                 logger=False, enable_checkpointing=False)
    tr.fit(m, DataLoader(_reg_data(32, 0), batch_size=4))
    assert len(m.seen) == 4
    for k, s in enumerate(m.seen):
        both = [dyntorch.zeros(16, dtype=dyntorch.float64) for _ in range(2)]
        dist.all_gather(both, s)
        np.testing.assert_array_equal(both[0].numpy(), both[1].numpy(), err_msg=f"step {k}")
    assert float(m.seen[-1].abs().sum()) > 0  # the statistics did move
