"""dyntorch.multiprocessing: shared tensors seen across fork and spawn children (Hogwild)."""
import multiprocessing as std_mp
import pickle

import numpy as np
import pytest

import dyntorch as torch
import dyntorch.multiprocessing as mp
import dyntorch.nn as nn


def _add_ones(t):
    t.add_(1.0)


def _sgd_steps(model, steps):
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(steps):
        opt.zero_grad()
        loss = model(torch.ones(1, 3)).sum()
        loss.backward()
        opt.step()


def _fill_rank(rank, t):
    t[rank] = rank + 10.0


def _raise(rank):
    if rank == 1:
        raise ValueError("boom in rank 1")


def _send_back(q_in, q_out):
    t = q_in.get()
    t.mul_(3.0)
    q_out.put(t)


def test_share_memory_keeps_values_and_marks_shared():
    t = torch.arange(6.0).reshape(2, 3)
    assert not t.is_shared()
    before = t.numpy().copy()
    assert t.share_memory_() is t
    assert t.is_shared() and t[0].is_shared()  # views of shared memory are shared too
    np.testing.assert_array_equal(t.numpy(), before)
    t.share_memory_()  # a second call keeps the same memory
    t.add_(1)
    np.testing.assert_array_equal(t.numpy(), before + 1)


def test_child_writes_are_seen_by_parent():
    t = torch.zeros(4).share_memory_()
    p = std_mp.get_context("fork").Process(target=_add_ones, args=(t,))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    np.testing.assert_array_equal(t.numpy(), np.ones(4, dtype=np.float32))


def test_unshared_tensor_is_copied_not_shared():
    t = torch.zeros(3)
    p = std_mp.get_context("fork").Process(target=_add_ones, args=(t,))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    np.testing.assert_array_equal(t.numpy(), np.zeros(3, dtype=np.float32))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_hogwild_children_optimizer_steps_update_the_parent_model(method):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    model.share_memory()
    assert all(p.is_shared() for p in model.parameters())
    w0 = model.weight.detach().numpy().copy()
    b0 = model.bias.detach().numpy().copy()
    ctx = mp.get_context(method)
    procs = [ctx.Process(target=_sgd_steps, args=(model, 2)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    # d(sum(W x + b))/dW = 1 for x = ones, /db = 1: each of the 4 steps subtracts lr = 0.5
    np.testing.assert_allclose(model.weight.detach().numpy(), w0 - 2.0, rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.bias.detach().numpy(), b0 - 2.0, rtol=0, atol=1e-6)
    assert isinstance(model.weight, nn.Parameter) and model.weight.requires_grad


def test_spawn_runs_fn_with_rank_and_raises_child_errors():
    t = torch.zeros(2).share_memory_()
    assert mp.spawn(_fill_rank, args=(t,), nprocs=2) is None
    np.testing.assert_array_equal(t.numpy(), np.array([10, 11], dtype=np.float32))
    with pytest.raises(mp.ProcessRaisedException, match="boom in rank 1"):
        mp.spawn(_raise, nprocs=2, start_method="fork")


def test_queue_passes_shared_tensor_by_handle():
    ctx = mp.get_context("fork")
    q_in, q_out = ctx.Queue(), ctx.Queue()
    t = torch.ones(2, 2).share_memory_()
    p = ctx.Process(target=_send_back, args=(q_in, q_out))
    p.start()
    q_in.put(t)
    back = q_out.get(timeout=60)
    p.join(60)
    np.testing.assert_array_equal(t.numpy(), np.full((2, 2), 3.0, dtype=np.float32))
    back.add_(1)  # the returned tensor maps the same memory too
    np.testing.assert_array_equal(t.numpy(), np.full((2, 2), 4.0, dtype=np.float32))


def test_plain_pickle_of_shared_tensor_is_a_copy():
    t = torch.ones(3).share_memory_()
    u = pickle.loads(pickle.dumps(t))
    u.add_(1)
    np.testing.assert_array_equal(t.numpy(), np.ones(3, dtype=np.float32))


def test_non_leaf_requiring_grad_is_refused_and_cuda_errors_clearly():
    from multiprocessing.reduction import ForkingPickler

    x = torch.ones(2, requires_grad=True)
    z = x * 3  # a non-leaf in shared memory cannot cross processes
    z.share_memory_()
    with pytest.raises(RuntimeError, match="non-leaf tensor which requires_grad"):
        ForkingPickler.dumps(z)
    assert mp.get_sharing_strategy() == "file_system"
    with pytest.raises(ValueError, match="file_descriptor"):
        mp.set_sharing_strategy("file_descriptor")


@pytest.mark.cuda
def test_cuda_tensor_share_memory_is_refused():
    with pytest.raises(RuntimeError, match="CPU tensors only"):
        torch.ones(2, device="cuda").share_memory_()
