"""Autograd: graph nodes, the step engine, grad mode, custom Functions, checks."""
from . import functional, graph, hooks  # noqa: F401  (hooks attaches Tensor.register_post_accumulate_grad_hook)
from .anomaly import (
    detect_anomaly,
    is_anomaly_check_nan_enabled,
    is_anomaly_enabled,
    set_detect_anomaly,
)
from .function import (
    Function,
    FunctionCtx,
    InplaceFunction,
    NestedIOFunction,
    once_differentiable,
)
from .functional_api import backward, grad
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .node import AccumulateGrad, Node

__all__ = ["backward", "grad", "no_grad", "enable_grad", "set_grad_enabled", "inference_mode",
           "is_grad_enabled", "Node", "AccumulateGrad", "Function", "FunctionCtx",
           "InplaceFunction", "NestedIOFunction", "once_differentiable", "gradcheck",
           "gradgradcheck", "GradcheckError", "detect_anomaly", "set_detect_anomaly",
           "is_anomaly_enabled", "is_anomaly_check_nan_enabled", "graph", "functional"]


class _VariableMeta(type):
    def __instancecheck__(cls, other) -> bool:
        from .._tensor import Tensor

        return isinstance(other, Tensor)


class Variable(metaclass=_VariableMeta):
    """Legacy ``torch.autograd.Variable``: ``Variable(t, requires_grad=True)`` gives a leaf.

    Every Tensor is a Variable (``isinstance(t, Variable)`` is True).
    """

    def __new__(cls, data, requires_grad: bool = False, volatile: bool = False):
        t = data.detach()
        if requires_grad:
            t.requires_grad_()
        return t


__all__.append("Variable")
