"""``torch.nn.modules.module`` import path: the Module lives in ``dyntorch/nn/module.py``."""
from ..module import (  # noqa: F401
    Module,
    RemovableHandle,
    register_module_forward_hook,
    register_module_forward_pre_hook,
)
