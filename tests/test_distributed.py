"""dyntorch.distributed across processes: starts ``mpiexec -n 2`` on the distributed part of
the suite (tests/test_distributed_ranks.py) and on scripts whose ranks fail, and checks the
single-process parts (DistributedSampler against torch's, errors) here.

mpiexec comes with the ``mpich`` wheel (``pip install 'dyntorch[distributed]'``, part of the
dev extra that ``make test`` installs); without it these tests fail rather than skip.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

import dyntorch
from dyntorch.utils.data.distributed import DistributedSampler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def mpiexec():
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    path = here if os.path.exists(here) else shutil.which("mpiexec")
    if path is None:
        pytest.fail("mpiexec not found: pip install 'dyntorch[distributed]' (mpi4py and mpich) "
                    "— `make test` installs it with the dev extra")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.fail("mpi4py is missing: pip install 'dyntorch[distributed]'")
    return path


def _run_n(mpiexec, n, args, tmp_path, timeout):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               DYNTORCH_DIST_RANKS="1", DYNTORCH_DIST_TMP=str(tmp_path))
    t0 = time.monotonic()
    p = subprocess.run([mpiexec, "-n", str(n), sys.executable, *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=timeout)
    return p, time.monotonic() - t0


def _run(mpiexec, args, tmp_path, timeout):
    return _run_n(mpiexec, 2, args, tmp_path, timeout)


@pytest.mark.distributed
def test_distributed_suite_on_two_ranks(mpiexec, tmp_path):
    p, _ = _run(mpiexec, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                          "tests/test_distributed_ranks.py"], tmp_path, timeout=150)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-6000:]
    # both ranks ran every test; none skipped
    finals = [line for line in out.splitlines() if " passed" in line and " in " in line]
    assert len(finals) == 2, out[-3000:]
    assert all("skipped" not in f and "failed" not in f for f in finals), finals


def _script(tmp_path, body: str) -> str:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(body))
    return str(path)


@pytest.mark.distributed
def test_a_failing_rank_ends_both_within_seconds(mpiexec, tmp_path):
    script = _script(tmp_path, """
        import numpy as np
        import dyntorch
        from dyntorch import nn, optim
        from dyntorch.train import Trainer, TrainModule
        from dyntorch.utils.data import DataLoader, TensorDataset
        import dyntorch.distributed as dist

        class M(TrainModule):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(3, 1)
            def training_step(self, batch, i):
                if dist.get_rank() == 1 and self.trainer.global_step == 2:
                    raise ValueError("rank one broke on purpose")
                x, y = batch
                return nn.functional.mse_loss(self.lin(x), y)
            def configure_optimizers(self):
                return optim.SGD(self.parameters(), lr=0.1)

        ds = TensorDataset(dyntorch.randn(64, 3), dyntorch.randn(64, 1))
        Trainer(strategy="ddp", devices=2, max_epochs=50, enable_progress_bar=False,
                logger=False, enable_checkpointing=False).fit(M(), DataLoader(ds, batch_size=4))
        print("NOT REACHED")
    """)
    p, secs = _run(mpiexec, [script], tmp_path, timeout=60)
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert "NOT REACHED" not in out
    assert "ValueError: rank one broke on purpose" in out
    # rank 0, waiting in the gradient all-reduce, names the rank that failed
    assert "DistPeerError: rank 1 failed: ValueError: rank one broke on purpose" in out, out
    assert secs < 20, f"took {secs:.1f} s"


@pytest.mark.distributed
def test_a_collective_times_out_with_a_clear_error(mpiexec, tmp_path):
    script = _script(tmp_path, """
        import time
        import dyntorch
        import dyntorch.distributed as dist

        dist.init_process_group("mpi", timeout=1.5)
        if dist.get_rank() == 0:
            dist.all_reduce(dyntorch.ones(3))
        else:
            time.sleep(60)  # never joins
        print("NOT REACHED")
    """)
    p, secs = _run(mpiexec, [script], tmp_path, timeout=60)
    out = p.stdout + p.stderr
    assert p.returncode != 0 and "NOT REACHED" not in out
    assert "DistTimeoutError: all_reduce on rank 0 timed out after 1.5 s" in out, out
    assert secs < 20, f"took {secs:.1f} s"


@pytest.mark.distributed
@pytest.mark.cuda
def test_nccl_one_rank_collectives_and_ddp_on_cupy(mpiexec, tmp_path):
    """On a GPU: NCCL all_reduce/broadcast/all_gather and DDP on CuPy tensors, one rank."""
    script = _script(tmp_path, """
        import numpy as np
        import dyntorch
        import dyntorch.distributed as dist
        from dyntorch import nn
        from dyntorch.nn.parallel import DistributedDataParallel as DDP

        dist.init_process_group("nccl")
        t = dyntorch.arange(6, dtype=dyntorch.float32, device="cuda")
        dist.all_reduce(t, op=dist.ReduceOp.AVG)
        dist.broadcast(t, src=0)
        outs = [dyntorch.zeros(6, device="cuda")]
        dist.all_gather(outs, t)
        assert outs[0].cpu().tolist() == list(range(6)), outs
        m = DDP(nn.Linear(4, 2).to("cuda"))
        m(dyntorch.ones(3, 4, device="cuda")).sum().backward()
        assert m.module.weight.grad.device.type == "cuda"
        np.testing.assert_allclose(m.module.weight.grad.cpu().numpy(), 3.0)
        print("NCCL OK")
    """)
    p, _ = _run_n(mpiexec, 1, [script], tmp_path, timeout=120)
    assert p.returncode == 0 and "NCCL OK" in p.stdout, p.stdout + p.stderr


# --------------------------------------------------------------------------- one process
@pytest.mark.parametrize("n", [1, 5, 8, 11])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_matches_torch_without_shuffle(torch, n, replicas, drop_last):
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = TorchSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs), (n, replicas, rank)
        assert len(ours) == len(theirs) == len(list(ours))


@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_shuffle_follows_torchs_rules(drop_last):
    """The shuffled order is dyntorch's generator's, so compare the rules: the ranks' shares
    interleave one permutation (padded from its start, or cut), that depends on seed+epoch."""
    n, replicas = 10, 3
    shares = [list(DistributedSampler(range(n), replicas, r, seed=5, drop_last=drop_last))
              for r in range(replicas)]
    merged = [shares[k % replicas][k // replicas] for k in range(sum(map(len, shares)))]
    if drop_last:
        assert len(merged) == 9 and len(set(merged)) == 9
    else:
        assert len(merged) == 12 and sorted(set(merged)) == list(range(n))
        assert merged[10:] == merged[:2]  # padded with the start of the permutation
    again = list(DistributedSampler(range(n), replicas, 0, seed=5, drop_last=drop_last))
    assert again == shares[0]
    s = DistributedSampler(range(n), replicas, 0, seed=5, drop_last=drop_last)
    s.set_epoch(1)
    assert list(s) != shares[0]


def test_sampler_bad_rank_and_no_group():
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(range(4))


def test_errors_without_a_process_group():
    dist = dyntorch.distributed
    assert dist.is_available() and not dist.is_initialized()
    with pytest.raises(RuntimeError, match="has not been initialized"):
        dist.get_rank()
    with pytest.raises(RuntimeError, match="has not been initialized"):
        dist.all_reduce(dyntorch.ones(2))
    with pytest.raises(ValueError, match="backend='gloo'.*use 'mpi'"):
        dist.init_process_group("gloo")
    with pytest.raises(ValueError, match="init_method"):
        dist.init_process_group("mpi", init_method="tcp://localhost:1234")
    with pytest.raises(RuntimeError, match="init_process_group"):
        dyntorch.nn.parallel.DistributedDataParallel(dyntorch.nn.Linear(2, 2))
    with pytest.raises(NotImplementedError, match="find_unused_parameters"):
        dyntorch.nn.parallel.DistributedDataParallel(dyntorch.nn.Linear(2, 2),
                                                     find_unused_parameters=True)
    assert dist.ReduceOp.SUM is dist.ReduceOp["SUM"]
