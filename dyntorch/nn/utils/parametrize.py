"""``torch.nn.utils.parametrize``: express a tensor attribute as a function of others.

After ``register_parametrization(m, "weight", P())``, ``m.weight`` is computed as
``P()(original)`` on every access (``original`` lives in ``m.parametrizations.weight``), so
gradients flow to the originals. As in torch, the module's class is swapped for a subclass
that carries the property.
"""
from __future__ import annotations

import contextlib

from ..._tensor import Tensor, _make
from ...autograd.grad_mode import no_grad
from ..module import Module
from ..modules.container import ModuleDict, ModuleList
from ..parameter import Parameter

__all__ = ["register_parametrization", "remove_parametrizations", "is_parametrized", "cached",
           "ParametrizationList", "type_before_parametrizations"]

_cache_enabled = 0
_cache: dict = {}


@contextlib.contextmanager
def cached():
    """Compute each parametrized tensor once inside the block (and reuse it)."""
    global _cache_enabled
    _cache_enabled += 1
    try:
        yield
    finally:
        _cache_enabled -= 1
        if not _cache_enabled:
            _cache.clear()


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor plus its original(s)."""

    def __init__(self, modules, original: Tensor, unsafe: bool = False) -> None:
        super().__init__(modules)
        self.unsafe = unsafe
        new = original
        with no_grad():
            for m in reversed(list(self)):
                if hasattr(m, "right_inverse"):
                    new = m.right_inverse(new)
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            _register_original(self, "original", new, original)
        else:
            for i, t in enumerate(new):
                _register_original(self, f"original{i}", t, original)

    def right_inverse(self, value: Tensor) -> None:
        with no_grad():
            for m in reversed(list(self)):
                if hasattr(m, "right_inverse"):
                    value = m.right_inverse(value)
            if self.is_tensor:
                self.original._data[...] = value._data
            else:
                for i, t in enumerate(value):
                    getattr(self, f"original{i}")._data[...] = t._data

    def forward(self) -> Tensor:
        if self.is_tensor:
            x = self[0](self.original)
        else:
            x = self[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for m in list(self)[1:]:
            x = m(x)
        return x


def _register_original(plist, name, value, original):
    if isinstance(original, Parameter):
        plist.register_parameter(name, Parameter(_make(value._data.copy()),
                                                 original.requires_grad))
    else:
        plist.register_buffer(name, _make(value._data.copy()))


def _make_property(name: str):
    def get(self):
        if _cache_enabled:
            key = (id(self), name)
            if key not in _cache:
                _cache[key] = self.parametrizations[name]()
            return _cache[key]
        return self.parametrizations[name]()

    def set_(self, value):
        self.parametrizations[name].right_inverse(value)

    return property(get, set_)


def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *,
                             unsafe: bool = False) -> Module:
    """Make ``module.<tensor_name>`` equal ``parametrization(original)``."""
    if is_parametrized(module, tensor_name):
        module.parametrizations[tensor_name].append(parametrization)
        return module
    original = getattr(module, tensor_name)
    if not isinstance(original, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name "
                         f"'{tensor_name}'")
    if not is_parametrized(module):
        cls = module.__class__
        new_cls = type("Parametrized" + cls.__name__, (cls,), {"_dt_orig_class": cls})
        module.__class__ = new_cls
        module.parametrizations = ModuleDict()
    module._parameters.pop(tensor_name, None)
    module._buffers.pop(tensor_name, None)
    module.parametrizations[tensor_name] = ParametrizationList([parametrization], original,
                                                               unsafe)
    setattr(module.__class__, tensor_name, _make_property(tensor_name))
    return module


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    p = module.__dict__.get("_modules", {}).get("parametrizations")
    if not isinstance(p, ModuleDict):
        return False
    return len(p) > 0 if tensor_name is None else tensor_name in p


def type_before_parametrizations(module: Module) -> type:
    return getattr(module.__class__, "_dt_orig_class", module.__class__)


def remove_parametrizations(module: Module, tensor_name: str,
                            leave_parametrized: bool = True) -> Module:
    """Remove the parametrization of ``tensor_name``; keep its current value (or the
    original) as a plain parameter."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    with no_grad():
        value = plist() if leave_parametrized or not plist.is_tensor else plist.original
    requires = any(p.requires_grad for p in plist.parameters())
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    module.register_parameter(tensor_name, Parameter(_make(value._data.copy()), requires))
    if not len(module.parametrizations):
        del module._modules["parametrizations"]
        module.__class__ = type_before_parametrizations(module)
    return module
