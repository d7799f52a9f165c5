"""``weight_norm`` / ``spectral_norm`` (the hook-based forms of torch.nn.utils)."""
from __future__ import annotations

from ... import _backend as B
from ..._tensor import Tensor, _make
from ...autograd.grad_mode import no_grad
from ..parameter import Parameter

__all__ = ["weight_norm", "remove_weight_norm", "spectral_norm", "remove_spectral_norm"]


def _norm_except(v: Tensor, dim: int | None) -> Tensor:
    """||v|| over every dim but ``dim`` (kept as size-1 dims); all dims when None."""
    if dim is None:
        return (v * v).sum().sqrt()
    dims = tuple(d for d in range(v.ndim) if d != dim)
    return (v * v).sum(dim=dims, keepdim=True).sqrt()


class _WeightNorm:
    def __init__(self, name: str, dim: int | None):
        self.name = name
        self.dim = dim

    def compute_weight(self, module) -> Tensor:
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return v * (g / _norm_except(v, self.dim))

    def __call__(self, module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module, name: str = "weight", dim: int | None = 0):
    """Reparametrise ``module.<name>`` as g * v / ||v|` (norm over all dims but ``dim``)."""
    if dim is not None and dim < 0:
        dim += getattr(module, name).ndim
    fn = _WeightNorm(name, dim)
    w = getattr(module, name)
    del module._parameters[name]
    with no_grad():
        g = _norm_except(w.detach(), dim)
    module.register_parameter(name + "_g", Parameter(_make(g._data.copy())))
    module.register_parameter(name + "_v", Parameter(_make(w._data.copy())))
    setattr(module, name, fn.compute_weight(module))
    handle = module.register_forward_pre_hook(fn)
    module.__dict__.setdefault("_dt_weight_norm", {})[name] = (fn, handle)
    return module


def remove_weight_norm(module, name: str = "weight"):
    """Undo :func:`weight_norm`: a plain parameter with the current weight."""
    fn, handle = module.__dict__.get("_dt_weight_norm", {}).pop(name, (None, None))
    if fn is None:
        raise ValueError(f"weight_norm of '{name}' not found in {module}")
    with no_grad():
        w = fn.compute_weight(module)
    handle.remove()
    delattr(module, name)
    del module._parameters[name + "_g"]
    del module._parameters[name + "_v"]
    module.register_parameter(name, Parameter(_make(w._data.copy())))
    return module


class _SpectralNorm:
    def __init__(self, name: str, n_power_iterations: int, dim: int, eps: float):
        self.name = name
        self.n = n_power_iterations
        self.dim = dim
        self.eps = eps

    def _matrix(self, w: Tensor) -> Tensor:
        if self.dim != 0:
            perm = [self.dim] + [d for d in range(w.ndim) if d != self.dim]
            w = w.permute(*perm)
        return w.reshape(w.shape[0], -1)

    def compute_weight(self, module, do_power_iteration: bool) -> Tensor:
        w = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        mat = self._matrix(w)
        if do_power_iteration:
            m = mat._data
            xp = B.xp_of(m)
            ud, vd = u._data, v._data
            for _ in range(self.n):
                vd[...] = _normalize(xp, m.T @ ud, self.eps)
                ud[...] = _normalize(xp, m @ vd, self.eps)
        # copies: a later call updates u and v in place while this graph may still need them
        sigma = (_make(u._data.copy()) * (mat @ _make(v._data.copy()))).sum()
        return w / sigma

    def __call__(self, module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module, module.training))


def _normalize(xp, a, eps):
    return a / max(float(xp.sqrt((a * a).sum())), eps)


def spectral_norm(module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None):
    """Divide ``module.<name>`` by its largest singular value (power iteration each call in
    training mode)."""
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    fn = _SpectralNorm(name, n_power_iterations, dim, eps)
    w = getattr(module, name)
    del module._parameters[name]
    module.register_parameter(name + "_orig", Parameter(_make(w._data)))
    mat = fn._matrix(w.detach())._data
    xp = B.xp_of(mat)
    from ...ops.creation import _rng

    r = _rng(None, w.device)
    u = _normalize(xp, r.standard_normal(mat.shape[0]).astype(mat.dtype), eps)
    v = _normalize(xp, r.standard_normal(mat.shape[1]).astype(mat.dtype), eps)
    module.register_buffer(name + "_u", _make(u))
    module.register_buffer(name + "_v", _make(v))
    setattr(module, name, fn.compute_weight(module, True))
    handle = module.register_forward_pre_hook(fn)
    module.__dict__.setdefault("_dt_spectral_norm", {})[name] = (fn, handle)
    return module


def remove_spectral_norm(module, name: str = "weight"):
    fn, handle = module.__dict__.get("_dt_spectral_norm", {}).pop(name, (None, None))
    if fn is None:
        raise ValueError(f"spectral_norm of '{name}' not found in {module}")
    with no_grad():
        w = fn.compute_weight(module, False)
    handle.remove()
    delattr(module, name)
    del module._parameters[name + "_orig"]
    del module._buffers[name + "_u"]
    del module._buffers[name + "_v"]
    module.register_parameter(name, Parameter(_make(w._data.copy())))
    return module
