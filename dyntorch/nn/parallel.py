"""``nn.DataParallel`` / ``nn.parallel``: on one device the wrapper just calls the module.

Kept so that code written for several GPUs runs unchanged; the state_dict keys carry the
``module.`` prefix exactly as torch's do.
"""
from __future__ import annotations

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


class DistributedDataParallel(DataParallel):
    """Single-process stand-in: forwards to ``module`` (no gradient all-reduce)."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group=None, **kwargs):
        super().__init__(module, device_ids, output_device, dim)

    def no_sync(self):
        import contextlib

        return contextlib.nullcontext()
