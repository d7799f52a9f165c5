"""``dyntorch.cuda``: is a CUDA device (through CuPy) available, and how many."""
from __future__ import annotations

from . import _backend as B


def is_available() -> bool:
    """True only when CuPy is installed and at least one CUDA device answers."""
    return B.cuda_available()


def device_count() -> int:
    return B._CUDA_COUNT


def synchronize(device=None) -> None:
    """Wait for all queued GPU work (a no-op without CUDA)."""
    B.synchronize()


def current_device() -> int:
    B.require_cuda("cuda.current_device()")
    return B._cp.cuda.Device().id


def set_device(device) -> None:
    B.require_cuda("cuda.set_device()")
    B._cp.cuda.Device(B.to_device(device).index or 0).use()


def manual_seed(seed: int) -> None:
    B.default_generator.manual_seed(seed)


manual_seed_all = manual_seed


def empty_cache() -> None:
    if B._cp is not None and B._CUDA_COUNT:
        B._cp.get_default_memory_pool().free_all_blocks()


def get_device_name(device=None) -> str:
    B.require_cuda("cuda.get_device_name()")
    idx = B.to_device(device or "cuda").index or 0
    return B._cp.cuda.runtime.getDeviceProperties(idx)["name"].decode()


def __getattr__(name):
    # torch.cuda.amp.autocast / GradScaler: the device-neutral ones from dyntorch.amp
    if name == "amp":
        from types import SimpleNamespace

        from . import amp as _amp

        ns = SimpleNamespace(autocast=lambda enabled=True, dtype=None, cache_enabled=None:
                             _amp.autocast("cuda", dtype, enabled, cache_enabled),
                             GradScaler=lambda init_scale=2.0 ** 16, growth_factor=2.0,
                             backoff_factor=0.5, growth_interval=2000, enabled=True:
                             _amp.GradScaler("cuda", init_scale, growth_factor, backoff_factor,
                                             growth_interval, enabled))
        globals()["amp"] = ns
        return ns
    raise AttributeError(f"module 'dyntorch.cuda' has no attribute '{name}'")
