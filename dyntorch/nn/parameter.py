"""``nn.Parameter``: a Tensor that a Module registers as one of its learnable parameters."""
from __future__ import annotations

import numpy as np

from .. import _backend as B
from .._tensor import Tensor, _init


class Parameter(Tensor):
    """A tensor that is a module parameter (``torch.nn.Parameter``).

    Assigning a ``Parameter`` to a :class:`Module` attribute registers it, so it shows up in
    ``parameters()`` and ``state_dict()``. The parameter shares memory with ``data``.

    Parameters
    ----------
    data : Tensor, optional
        The values (an empty float tensor when omitted).
    requires_grad : bool
        Whether the parameter requires gradient (default True).
    """

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True):
        t = object.__new__(cls)
        if data is None:
            _init(t, np.empty((0,), dtype=B.get_default_dtype().np))
        else:
            if not isinstance(data, Tensor):
                raise TypeError(f"Parameter(): expected a Tensor as data, got "
                                f"{type(data).__name__}; wrap it with dyntorch.tensor() first")
            _init(t, data._data)
            # Share the version counter so in-place changes through either name are seen.
            if data._version_box is None:
                data._version_box = [0]
            t._version_box = data._version_box
        if requires_grad and (t._data.dtype.kind != "f" and not B.is_float_np(t._data.dtype)):
            raise RuntimeError(
                f"Only Tensors of floating point dtype can require gradients, got "
                f"{B.from_np(t._data.dtype)}; pass requires_grad=False or convert with .float()")
        t._requires_grad = bool(requires_grad)
        return t

    def __init__(self, data=None, requires_grad: bool = True):
        pass

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        # a user's attributes travel; private slots (the AccumulateGrad of this parameter's
        # graph, its gradient, hooks) do not, as torch's: they made a used model unpicklable
        extra = {k: v for k, v in (getattr(self, "__dict__", None) or {}).items()
                 if not k.startswith("_")}
        return (_rebuild_parameter, (B.to_numpy(self._data), str(self.device), self._requires_grad,
                                     extra))

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        t = Parameter(Tensor.__deepcopy__(self.detach(), {}), self._requires_grad)
        # as torch's Parameter: the copy starts with no gradient, and its private slots (the
        # AccumulateGrad behind ``_acc`` among them) are not copied, since they belong to this
        # parameter's graph and would send the copy's gradients to the original
        extra = {k: v for k, v in getattr(self, "__dict__", {}).items() if not k.startswith("_")}
        if extra:
            import copy

            t.__dict__.update(copy.deepcopy(extra, memo))
        memo[id(self)] = t
        return t


def _rebuild_parameter(arr, dev, rg, extra=None):
    from .._tensor import _make

    p = Parameter(_make(B.move(arr, B.to_device(dev))), rg)
    if extra:
        p.__dict__.update(extra)
    return p


class Buffer(Tensor):
    """Marker for a buffer assigned as a module attribute (``torch.nn.Buffer``)."""

    def __new__(cls, data: Tensor, *, persistent: bool = True):
        t = object.__new__(cls)
        _init(t, data._data)
        t.persistent = persistent
        return t

    def __init__(self, data=None, *, persistent: bool = True):
        pass


class UninitializedParameter(Parameter):
    """A parameter whose shape is not known yet (lazy modules); ``materialize`` gives it one."""

    def __new__(cls, requires_grad: bool = True, device=None, dtype=None):
        t = Parameter.__new__(cls, None, requires_grad)
        t._dt_factory = (device, dtype)
        return t

    def __init__(self, requires_grad: bool = True, device=None, dtype=None):
        pass

    def materialize(self, shape, device=None, dtype=None) -> None:
        """Allocate storage of ``shape`` and turn into an ordinary Parameter in place."""
        dev0, dt0 = self.__dict__.pop("_dt_factory", (None, None))
        dev = B.to_device(device if device is not None else dev0)
        dt = B.to_dtype(dtype if dtype is not None else dt0) if (dtype or dt0) is not None \
            else B.get_default_dtype()
        self._data = B.xp_for(dev).empty(tuple(shape), dtype=dt.np)
        self.__class__ = Parameter

    def __repr__(self) -> str:
        return "<UninitializedParameter>"


def is_lazy(p) -> bool:
    return isinstance(p, UninitializedParameter)
