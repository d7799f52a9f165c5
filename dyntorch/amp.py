"""``dyntorch.amp``: ``autocast`` and ``GradScaler`` so mixed-precision loops run unchanged.

dyntorch computes every op in its inputs' dtype, so ``autocast`` changes nothing (results are
full precision; it says so once). ``GradScaler`` does the real bookkeeping - scale the loss,
unscale the gradients, skip steps with inf/nan gradients, grow or back off the scale - so a
loop that uses it behaves as in torch and its state dict round-trips.
"""
from __future__ import annotations

import functools
import math
import warnings

from . import _backend as B

_warned = [False]


class autocast:
    """Context manager / decorator accepted for compatibility; ops keep their dtypes."""

    def __init__(self, device_type: str = "cuda", dtype=None, enabled: bool = True,
                 cache_enabled=None) -> None:
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        self.device_type, self.fast_dtype, self.enabled = device_type, dtype, bool(enabled)

    def __enter__(self):
        if self.enabled and not _warned[0]:
            _warned[0] = True
            warnings.warn("dyntorch.autocast: dyntorch has no mixed-precision kernels; ops run "
                          "in their inputs' dtype (full precision results).", UserWarning,
                          stacklevel=2)
        return self

    def __exit__(self, *exc) -> bool:
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)

        return wrapped


class GradScaler:
    """Loss scaling with dynamic scale, as ``torch.amp.GradScaler``.

    Parameters
    ----------
    device : str
        ``"cuda"`` (disabled with a warning when CUDA is not available, like torch) or
        ``"cpu"``.
    init_scale, growth_factor, backoff_factor, growth_interval, enabled
        As in torch.
    """

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> None:
        if enabled and str(device).startswith("cuda") and not B.cuda_available():
            warnings.warn("dyntorch.amp.GradScaler is enabled, but CUDA is not available. "
                          "Disabling.", UserWarning, stacklevel=2)
            enabled = False
        if growth_factor <= 1.0:
            raise ValueError("The growth factor must be > 1.0.")
        if backoff_factor >= 1.0:
            raise ValueError("The backoff factor must be < 1.0.")
        self._enabled = enabled
        self._scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        self._per_opt: dict[int, dict] = {}

    def is_enabled(self) -> bool:
        return self._enabled

    def get_scale(self) -> float:
        return self._scale if self._enabled else 1.0

    def scale(self, outputs):
        """``outputs`` (a tensor or nested list/tuple of them) times the current scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        return outputs * self._scale

    def unscale_(self, optimizer) -> None:
        """Divide the gradients of ``optimizer``'s parameters by the scale (once per step)."""
        if not self._enabled:
            return
        st = self._per_opt.setdefault(id(optimizer), {"unscaled": False, "found_inf": False})
        if st["unscaled"]:
            raise RuntimeError("unscale_() has already been called on this optimizer since the "
                               "last update().")
        from .autograd import no_grad

        inv = 1.0 / self._scale
        found = False
        with no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    p.grad.mul_(inv)
                    if not found and not math.isfinite(float(p.grad.abs().sum())):
                        found = True
        st.update(unscaled=True, found_inf=found)

    def step(self, optimizer, *args, **kwargs):
        """Unscale if needed, then ``optimizer.step()`` unless a gradient is inf/nan."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        st = self._per_opt.get(id(optimizer))
        if st is None or not st["unscaled"]:
            self.unscale_(optimizer)
            st = self._per_opt[id(optimizer)]
        if st["found_inf"]:
            return None
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale=None) -> None:
        """Back off the scale after an inf/nan step, grow it after ``growth_interval`` clean
        ones."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale)
        elif any(st["found_inf"] for st in self._per_opt.values()):
            self._scale *= self._backoff_factor
            self._growth_tracker = 0
        else:
            self._growth_tracker += 1
            if self._growth_tracker == self._growth_interval:
                self._scale *= self._growth_factor
                self._growth_tracker = 0
        self._per_opt.clear()

    def state_dict(self) -> dict:
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval, "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict: dict) -> None:
        if not self._enabled:
            return
        if not state_dict:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])


def is_autocast_available(device_type: str) -> bool:
    return device_type in ("cpu", "cuda")
