"""The optimizer base class: parameter groups, per-parameter state and its torch-layout dict.

Updates run on the raw arrays of the parameters (``p._data``) with the device's array module,
in place and with ``out=`` ufuncs, so a step records no graph and allocates at most one scratch
array per parameter. Subclasses implement :meth:`Optimizer._update_group`.
"""
from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from .. import _backend as B
from .._hooks import RemovableHandle
from .._tensor import Tensor, _make, bump_version
from ..autograd.grad_mode import enable_grad


class _Required:
    """Marker for an option without a default (``torch.optim.optimizer.required``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


bump = bump_version


def _zeros_like(p: Tensor) -> Tensor:
    return _make(B.xp_of(p._data).zeros_like(p._data))


def _step_tensor(value: float = 0.0) -> Tensor:
    # torch keeps the step count as a float32 0-dim CPU tensor; we do too, so that saved
    # optimizer states have torch's layout.
    import numpy as np

    return _make(np.array(value, dtype=np.float32))


def _advance(st: dict, p: Tensor, *buffers: str) -> float:
    """Count one step in ``p``'s state and return the count. On the first step the state
    gets ``step`` and zero ``buffers`` first, in that order (torch's names and layout)."""
    if not st:
        st["step"] = _step_tensor()
        for name in buffers:
            st[name] = _zeros_like(p)
    t = st["step"]
    t._data += 1
    return float(t._data)


def _check_adam_args(lr: float, eps: float, betas, weight_decay: float) -> None:
    """torch's argument checks shared by the Adam family."""
    if lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if eps < 0.0:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if weight_decay < 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


class Optimizer:
    """Base class of all optimizers (see ``torch.optim.Optimizer``).

    Parameters
    ----------
    params : iterable of Tensor or of dict
        The parameters to optimize, or parameter groups (dicts with a ``"params"`` entry and
        per-group options).
    defaults : dict
        Default values of the options, used by groups that do not set them.
    """

    def __init__(self, params: Iterable, defaults: dict[str, Any]):
        self.defaults = defaults
        self.state: defaultdict[Tensor, dict] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        self._pre_hooks: dict[int, Callable] = {}
        self._post_hooks: dict[int, Callable] = {}
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {type(params).__name__}")
        groups = list(params)
        if len(groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (e.g. a different ``lr``)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        else:
            params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if p.grad_fn is not None:
                raise ValueError("can't optimize a non-leaf Tensor (it was computed by an op); "
                                 "optimize the leaf it came from, or .detach().requires_grad_()")
        group = dict(param_group)
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params):
            raise ValueError("a parameter group contains the same parameter more than once")
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)
        self._init_group_state(group)

    def _init_group_state(self, group: dict[str, Any]) -> None:
        """Eager state creation (Adagrad); lazy by default."""

    # ------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters (to ``None`` by default, as torch does)."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p._grad
                if g is None:
                    continue
                if set_to_none:
                    p._grad = None
                else:
                    if g.grad_fn is not None:
                        g.detach_()
                    g._data.fill(0)
                    bump(g)

    def step(self, closure: Callable[[], Any] | None = None):
        """One optimization step; ``closure`` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for h in list(self._pre_hooks.values()):
            h(self, (), {})
        for group in self.param_groups:
            self._update_group(group)
        self._opt_called = True  # lets a scheduler warn when it is stepped first
        for h in list(self._post_hooks.values()):
            h(self, (), {})
        return loss

    def _update_group(self, group: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def register_step_pre_hook(self, hook: Callable):
        """Call ``hook(optimizer, args, kwargs)`` before each step; returns a removable handle."""
        h = RemovableHandle(self._pre_hooks)
        self._pre_hooks[h.id] = hook
        return h

    def register_step_post_hook(self, hook: Callable):
        """Call ``hook(optimizer, args, kwargs)`` after each step; returns a removable handle."""
        h = RemovableHandle(self._post_hooks)
        self._post_hooks[h.id] = hook
        return h

    # ------------------------------------------------------------------ state dict
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state in torch's layout.

        ``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``, where
        parameters are numbered in the order of the groups. Tensors are references, not copies.
        """
        index: dict[int, int] = {}
        groups = []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed = {k: v for k, v in g.items() if k != "params"}
            packed["params"] = ids
            groups.append(packed)
        state = {index[id(p)]: s for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state produced by :meth:`state_dict` (ours or torch's, same layout)."""
        state_dict = copy.deepcopy(state_dict)
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, but "
                             f"this optimizer has {len(self.param_groups)}")
        for i, (mine, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(mine["params"]) != len(saved["params"]):
                raise ValueError(f"loaded state dict contains a parameter group {i} of "
                                 f"{len(saved['params'])} parameters that doesn't match the "
                                 f"size of this optimizer's group ({len(mine['params'])})")
        id_map = {}
        for mine, saved in zip(self.param_groups, saved_groups):
            for idx, p in zip(saved["params"], mine["params"]):
                id_map[idx] = p
        self.state = defaultdict(dict)
        for k, v in state_dict["state"].items():
            key = int(k) if isinstance(k, str) and k.isdigit() else k
            p = id_map.get(key)
            if p is None:
                continue
            self.state[p] = {name: _cast_state(name, val, p) for name, val in v.items()}
        new_groups = []
        for mine, saved in zip(self.param_groups, saved_groups):
            g = dict(saved)
            g["params"] = mine["params"]
            if "betas" in g and isinstance(g["betas"], list):
                g["betas"] = tuple(g["betas"])
            new_groups.append(g)
        self.param_groups = new_groups

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._pre_hooks, self._post_hooks = {}, {}

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)


def _cast_state(name: str, value, p: Tensor):
    """State tensors follow the parameter's device, and its dtype when floating (not 'step')."""
    if not isinstance(value, Tensor):
        # torch states may hold a numpy array after a foreign load; wrap it
        return value
    data = value._data
    dev = B.device_of(p._data)
    if name != "step" and B.is_float_np(data.dtype) and data.dtype != p._data.dtype:
        data = data.astype(p._data.dtype)
    if name != "step" and B.device_of(data) != dev:
        data = B.move(data, dev)
    if data is value._data:
        return value
    return _make(data)


