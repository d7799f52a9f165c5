"""Autograd: graph nodes, the step engine, grad mode, custom Functions, checks."""
from .functional_api import backward, grad
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .node import AccumulateGrad, Node

__all__ = ["backward", "grad", "no_grad", "enable_grad", "set_grad_enabled", "inference_mode",
           "is_grad_enabled", "Node", "AccumulateGrad"]
