"""``nn.DataParallel`` and ``nn.parallel.DistributedDataParallel``.

``DataParallel`` runs the module on one device (kept so that code written for several GPUs
runs unchanged). ``DistributedDataParallel`` is data parallelism over the ranks of
``dyntorch.distributed``: each rank runs the model on its own batch, and the gradients are
averaged across the ranks during ``backward()``, so every rank takes the same optimizer step.
State-dict keys carry the ``module.`` prefix exactly as torch's do.
"""
from __future__ import annotations

import contextlib

from ..autograd.grad_mode import no_grad
from .module import Module

__all__ = ["DataParallel", "DistributedDataParallel"]


class DataParallel(Module):
    """Runs ``module`` on one device (replication over several GPUs is not implemented)."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0):
        super().__init__()
        self.module = module
        self.device_ids = list(device_ids) if device_ids is not None else []
        self.output_device = output_device
        self.dim = dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


class _Bucket:
    """Gradients of a few parameters copied into one flat tensor, reduced in one collective."""

    def __init__(self, params: list, flat):
        self.params = params
        self.flat = flat
        self.offsets = {}
        off = 0
        for p in params:
            self.offsets[id(p)] = (off, p.numel())
            off += p.numel()
        self.ready: set[int] = set()
        self.work = None

    def views(self):
        for p in self.params:
            off, n = self.offsets[id(p)]
            yield p, self.flat[off:off + n]


class DistributedDataParallel(Module):
    """Averages gradients over the ranks of ``dyntorch.distributed`` during ``backward()``.

    At construction, rank 0's parameters and buffers are broadcast to every rank. Parameters
    are grouped, last first (the order backward reaches them), into flat buckets of at most
    ``bucket_cap_mb``; a hook run after each parameter's gradient is accumulated copies it into
    its bucket, and a full bucket is all-reduced (averaged) at once, in bucket order on every
    rank; when the last bucket is in, the averages are written back to each ``.grad``.

    Parameters
    ----------
    module : Module
        The model; the same architecture on every rank.
    broadcast_buffers : bool
        Broadcast rank 0's buffers (BatchNorm statistics ...) at every forward.
    bucket_cap_mb : float
        The size of a bucket, in megabytes.
    find_unused_parameters : bool
        Not supported: every parameter that requires grad must take part in the loss.
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group=None,
                 bucket_cap_mb: float | None = None, find_unused_parameters: bool = False,
                 check_reduction: bool = False, gradient_as_bucket_view: bool = False,
                 static_graph: bool = False, **unsupported):
        super().__init__()
        from .. import distributed as dist

        if unsupported:
            raise TypeError(f"DistributedDataParallel() does not support "
                            f"{', '.join(sorted(unsupported))}")
        if find_unused_parameters:
            raise NotImplementedError(
                "DistributedDataParallel(find_unused_parameters=True) is not supported: let "
                "every parameter that requires grad take part in the loss, or freeze it "
                "(requires_grad_(False)) before wrapping the module")
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel needs the default process group: call "
                               "dyntorch.distributed.init_process_group() first (and start the "
                               "script with mpiexec -n <ranks>)")
        self.module = module
        self.device_ids = device_ids
        self.output_device = output_device
        self.dim = dim
        self.broadcast_buffers = broadcast_buffers
        self.process_group = process_group
        self.bucket_cap_mb = 25.0 if bucket_cap_mb is None else float(bucket_cap_mb)
        self.require_backward_grad_sync = True
        self.world_size = dist.get_world_size(process_group)
        with no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t, src=0, group=process_group)
        self._buckets = self._make_buckets()
        self._bucket_of = {id(p): b for b in self._buckets for p in b.params}
        self._next_launch = 0
        self._handles = [p.register_post_accumulate_grad_hook(self._grad_ready)
                         for b in self._buckets for p in b.params]

    def _make_buckets(self) -> list[_Bucket]:
        from .. import zeros

        cap = self.bucket_cap_mb * 1024 * 1024
        buckets, cur, size, key = [], [], 0, None
        params = [p for p in self.module.parameters() if p.requires_grad]
        for p in reversed(params):  # backward reaches the last layers first
            k = (p.dtype, p.device)
            nbytes = p.numel() * p.element_size()
            if cur and (k != key or size + nbytes > cap):
                buckets.append(cur)
                cur, size = [], 0
            cur.append(p)
            size += nbytes
            key = k
        if cur:
            buckets.append(cur)
        return [_Bucket(ps, zeros(sum(p.numel() for p in ps), dtype=ps[0].dtype,
                                  device=ps[0].device)) for ps in buckets]

    # ---------------------------------------------------------------- during backward
    def _grad_ready(self, p) -> None:
        if not self.require_backward_grad_sync:
            return
        from .. import distributed as dist

        b = self._bucket_of[id(p)]
        off, n = b.offsets[id(p)]
        with no_grad():
            b.flat[off:off + n].copy_(p.grad.reshape(-1))
        b.ready.add(id(p))
        # launch in bucket order, the same on every rank, so the collectives match up
        while self._next_launch < len(self._buckets):
            nb = self._buckets[self._next_launch]
            if len(nb.ready) < len(nb.params):
                return
            nb.work = dist.all_reduce(nb.flat, op=dist.ReduceOp.AVG,
                                            group=self.process_group, async_op=True)
            self._next_launch += 1
        self._write_back()

    def _write_back(self) -> None:
        with no_grad():
            for b in self._buckets:
                b.work.wait()
                for p, v in b.views():
                    p.grad.copy_(v.view(p.grad.shape))
                b.ready.clear()
                b.work = None
        self._next_launch = 0

    def reduction_pending(self) -> list[str]:
        """Names of the parameters whose gradients were not averaged in the last backward
        (because they, or a parameter sharing their bucket, got no gradient); empty when the
        last backward finished its reduction."""
        started = any(b.ready for b in self._buckets)
        if not started:
            return []
        names = {id(p): n for n, p in self.module.named_parameters()}
        return [names.get(id(p), "?") for b in self._buckets for p in b.params
                if id(p) not in b.ready]

    def _check_previous_reduction(self) -> None:
        missing = self.reduction_pending()
        if missing:
            raise RuntimeError(
                "Expected to have finished reduction in the prior iteration before starting a "
                "new one: these parameters got no gradient, so the others could not be "
                f"averaged across ranks: {', '.join(missing)}. Make every parameter take part "
                "in the loss, or freeze it (requires_grad_(False)) before wrapping the module "
                "(find_unused_parameters=True is not supported).")

    # ---------------------------------------------------------------- the module
    def sync_buffers(self) -> None:
        """Copy rank 0's buffers (BatchNorm statistics ...) to every rank, as each forward
        does when ``broadcast_buffers``."""
        from .. import distributed as dist

        with no_grad():
            for buf in self.module.buffers():
                dist.broadcast(buf, src=0, group=self.process_group)

    def forward(self, *inputs, **kwargs):
        self._check_previous_reduction()
        if self.broadcast_buffers and self.require_backward_grad_sync:
            self.sync_buffers()
        return self.module(*inputs, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Inside, backward accumulates gradients locally; the first backward after it
        averages the accumulated gradients."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    def remove_hooks(self) -> None:
        """Stop averaging gradients (the module goes back to plain single-process training)."""
        for h in self._handles:
            h.remove()
        self._handles = []
