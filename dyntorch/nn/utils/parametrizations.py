"""``torch.nn.utils.parametrizations``: weight_norm as a parametrization."""
from __future__ import annotations

from ..._tensor import Tensor
from ..module import Module
from . import parametrize
from .weight_norm import _norm_except

__all__ = ["weight_norm"]


class _WeightNorm(Module):
    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        d = None if self.dim == -1 else self.dim
        return weight_v * (weight_g / _norm_except(weight_v, d))

    def right_inverse(self, weight: Tensor):
        d = None if self.dim == -1 else self.dim
        return _norm_except(weight, d), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """``module.<name> = g * v / ||v||`` with originals ``original0`` (g) and ``original1``
    (v) under ``module.parametrizations.<name>``."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module
