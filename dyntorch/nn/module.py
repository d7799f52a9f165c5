"""``nn.Module``: the base of every layer and model (torch.nn.Module's API).

Besides torch's behaviour, calling a module sets the dispatch ``scope`` to the module's
qualified name (``blocks.0.attn``) while its forward runs, so every graph node records which
module made it. The name is resolved once per (parent, parent scope) and cached on the module;
``SCOPE_TYPES`` maps each scope seen so far to its module's class name, for the viewer.
"""
from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict, namedtuple

import numpy as np

from .. import _backend as B
from .. import _dispatch as D
from .._hooks import RemovableHandle
from .._tensor import Tensor, _make, bump_version
from ..autograd.node import Node
from .parameter import Buffer, Parameter

__all__ = ["Module", "SCOPE_TYPES", "RemovableHandle", "register_module_forward_hook",
           "register_module_forward_pre_hook", "scope_in"]

#: scope (qualified module name) -> class name of the module that ran under it.
SCOPE_TYPES: dict = {}
#: scope -> weak reference to the module that ran under it last (viewers name parameters).
SCOPE_MODULES: dict = {}

_running = None  # the module whose forward is running now (None outside any)


def scope_in(model, scope: str, names: dict | None = None) -> str:
    """A node's module ``scope`` in ``model``'s names (those of ``model.named_modules()``
    and of its parameters).

    Scopes name modules from the outermost module that ran: when a child of ``model`` ran
    as the outermost one (the Trainer calls its ``net``), its children's scopes ("0") are
    "net.0" in ``model``'s names. The module is the one that ran under that scope last
    (``SCOPE_MODULES``); where ``model`` holds two modules of its type that the scope could
    name (a student's "0" and a teacher's "0", both called directly), that need not be the
    node's, so the scope is returned as it is. So are scopes of modules outside ``model``
    and "" (no module). ``names`` is the caller's cache (filled on first use).
    """
    if not scope:
        return scope
    ref = SCOPE_MODULES.get(scope)
    m = ref() if ref is not None else None
    if m is None:
        return scope
    if names is None:
        names = {}
    if id(m) not in names:  # a module added since: walk once more; outside model: None
        for n, mod in model.named_modules():
            names.setdefault(id(mod), n)
        names.setdefault(id(m), None)
    name = names[id(m)]
    if name is None or name == scope:
        return scope
    ambiguous = names.get(("ambiguous", scope))
    if ambiguous is None:
        tail, kind = "." + scope, type(m)
        ambiguous = names[("ambiguous", scope)] = sum(
            1 for n, mod in model.named_modules()
            if (n == scope or n.endswith(tail)) and type(mod) is kind) > 1
    return scope if ambiguous else name


_global_forward_hooks: dict = OrderedDict()
_global_forward_hooks_with_kwargs: set = set()
_global_forward_hooks_always_called: set = set()
_global_forward_pre_hooks: dict = OrderedDict()


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def register_module_forward_hook(hook, *, with_kwargs: bool = False,
                                 always_call: bool = False) -> RemovableHandle:
    """A forward hook that runs after every module's forward, before the module's own hooks.

    Parameters
    ----------
    hook : callable
        ``hook(module, args, output)``, or ``hook(module, args, kwargs, output)`` with
        ``with_kwargs``; a value it returns replaces the output.
    with_kwargs : bool
        Pass the forward's keyword arguments too.
    always_call : bool
        Run the hook also when forward raises (with ``output=None``), then re-raise.

    Returns
    -------
    RemovableHandle
    """
    h = RemovableHandle(_global_forward_hooks, _SetAsTable(_global_forward_hooks_with_kwargs),
                        _SetAsTable(_global_forward_hooks_always_called))
    _global_forward_hooks[h.id] = hook
    if with_kwargs:
        _global_forward_hooks_with_kwargs.add(h.id)
    if always_call:
        _global_forward_hooks_always_called.add(h.id)
    return h


def register_module_forward_pre_hook(hook) -> RemovableHandle:
    """A forward pre-hook that runs before every module's forward."""
    h = RemovableHandle(_global_forward_pre_hooks)
    _global_forward_pre_hooks[h.id] = hook
    return h


def _addindent(s: str, n: int) -> str:
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    return lines[0] + "\n" + "\n".join(" " * n + ln for ln in lines[1:])


_set = object.__setattr__


# ----------------------------------------------------------------------------- backward hooks
class BackwardHookNode(Node):
    """Identity node around a module's inputs or outputs that calls its backward hooks.

    Made like torch's ``BackwardHookFunctionBackward``: one node with one output per wrapped
    tensor, so the hook sees the gradients of exactly the module's inputs and outputs.
    """

    __slots__ = ("fn", "n", "_shapes")

    def name(self) -> str:
        return "BackwardHookFunctionBackward"

    @property
    def num_outputs(self) -> int:
        return self.n

    def output_meta(self):
        return self._shapes

    def _apply(self, gs, create_graph):
        gs = [gs] if self.n == 1 else list(gs)
        r = self.fn(gs, create_graph)
        return gs if r is None else r


def _hook_node(tensors, fn):
    """Wrap ``tensors`` (all requiring grad) through one BackwardHookNode; returns new ones."""
    from ..autograd.node import accumulator, next_seq

    node = BackwardHookNode.__new__(BackwardHookNode)
    node.fn = fn
    node.n = len(tensors)
    node.scope = D.scope
    node._src = None
    node._pre_hooks = node._hooks = node._meta = None
    node._shapes = tuple((t._data.shape, t._data.dtype, B.device_of(t._data)) for t in tensors)
    node.next = [(t.grad_fn, t._out_nr) if t.grad_fn is not None else (accumulator(t), 0)
                 for t in tensors]
    node.seq = next_seq()  # after the edges' AccumulateGrads: seq stays topological
    out = []
    for i, t in enumerate(tensors):
        o = _make(t._data, node)
        o._out_nr = i
        if t._version_box is None:
            t._version_box = [0]
        o._version_box = t._version_box
        out.append(o)
    return out


def _as_tensors(gs, create_graph):
    return tuple(None if g is None else (g if create_graph or isinstance(g, Tensor)
                                         else _make(g)) for g in gs)


def _from_tensors(gs, create_graph):
    return [None if g is None else (g if create_graph else
                                    (g._data if isinstance(g, Tensor) else g)) for g in gs]


class _BackwardHookState:
    """Links the output node (which sees grad_output) to the input node (grad_input)."""

    __slots__ = ("module", "grad_output", "n_in", "in_pos", "n_args", "zero_in")

    def run_hooks(self, grad_input, create_graph):
        m = self.module
        gi = tuple(grad_input)
        go = self.grad_output if self.grad_output is not None else ()
        for hook in list(m._backward_hooks.values()):
            r = hook(m, gi, go)
            if r is not None:
                r = tuple(r) if isinstance(r, (tuple, list)) else (r,)
                if len(r) != len(gi):
                    raise RuntimeError(
                        f"backward hook of {m._get_name()} returned {len(r)} gradients but the "
                        f"module has {len(gi)} tensor inputs; return one per input (or None)")
                gi = r
        return gi

    def on_outputs(self, gs, create_graph):
        m = self.module
        go = _as_tensors(gs, create_graph)
        for hook in list(m._backward_pre_hooks.values()):
            r = hook(m, go)
            if r is not None:
                go = tuple(r) if isinstance(r, (tuple, list)) else (r,)
        self.grad_output = go
        if self.n_in == 0 and m._backward_hooks:  # no input needs grad: hook sees None inputs
            self.run_hooks((None,) * self.n_args, create_graph)
        return _from_tensors(go, create_graph)

    def on_inputs(self, gs, create_graph):
        full = [None] * self.n_args
        for pos, shape, dtype, xp in self.zero_in:  # tensors needing no grad get zeros (torch)
            full[pos] = _make(xp.zeros(shape, dtype=dtype))
        ts = _as_tensors(gs, create_graph)
        for k, pos in enumerate(self.in_pos):
            full[pos] = ts[k]
        full = self.run_hooks(full, create_graph)
        return _from_tensors([full[p] for p in self.in_pos], create_graph)


# ----------------------------------------------------------------------------- Module
class Module:
    """Base class for all neural network modules (``torch.nn.Module``).

    Subclasses set parameters, buffers and sub-modules as attributes in ``__init__`` (after
    ``super().__init__()``) and define ``forward``.
    """

    training: bool
    _version: int = 1
    dump_patches: bool = False
    call_super_init: bool = False

    def __init__(self, *args, **kwargs) -> None:
        if args or kwargs:
            raise TypeError(
                f"{type(self).__name__}.__init__() got unexpected arguments {args} {kwargs}; "
                "Module.__init__ takes none")
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = {}
        d["_buffers"] = {}
        d["_non_persistent_buffers_set"] = set()
        d["_modules"] = {}
        d["_forward_hooks"] = OrderedDict()
        d["_forward_hooks_with_kwargs"] = set()
        d["_forward_hooks_always_called"] = set()
        d["_forward_pre_hooks"] = OrderedDict()
        d["_forward_pre_hooks_with_kwargs"] = set()
        d["_backward_hooks"] = OrderedDict()
        d["_backward_pre_hooks"] = OrderedDict()
        d["_state_dict_hooks"] = OrderedDict()
        d["_load_state_dict_pre_hooks"] = OrderedDict()
        d["_load_state_dict_post_hooks"] = OrderedDict()
        d["_state_dict_pre_hooks"] = OrderedDict()
        d["_dt_scope_cache"] = None  # cached (parent, parent scope, own scope)
        d["_dt_hooked"] = False  # set once any hook is registered: the slow call path

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function; '
            "define forward(self, ...) in the subclass")

    # ------------------------------------------------------------------ scope
    def _dt_resolve_scope(self, parent, pscope: str) -> str:
        if parent is None:
            name = ""
        else:
            key = None
            for k, m in parent._modules.items():
                if m is self:
                    key = k
                    break
            if key is None:  # deeper descendant called from an ancestor's forward
                for k, m in parent.named_modules(remove_duplicate=False):
                    if m is self and k:
                        key = k
                        break
            if key is None:  # not registered (made on the fly): part of the parent's work
                name = pscope
            else:
                name = key if not pscope else pscope + "." + key
        # The parent is held weakly: a shared child must not keep an old model alive.
        _set(self, "_dt_scope_cache", (None if parent is None else parent._dt_ref(), pscope, name))
        SCOPE_TYPES[name] = type(self).__name__
        SCOPE_MODULES[name] = self._dt_ref()
        return name

    def _dt_ref(self):
        r = self.__dict__.get("_dt_weak")
        if r is None:
            r = weakref.ref(self)
            _set(self, "_dt_weak", r)
        return r

    @property
    def _dt_scope_type(self) -> str:
        return type(self).__name__

    # ------------------------------------------------------------------ call
    def __call__(self, *args, **kwargs):
        global _running
        parent = _running
        pscope = D.scope
        c = self.__dict__.get("_dt_scope_cache")
        if c is not None and c[1] is pscope and (
                c[0] is None if parent is None else c[0] is not None and c[0]() is parent):
            name = c[2]
            SCOPE_MODULES[name] = self.__dict__["_dt_weak"]  # the module run under it last
        else:
            name = self._dt_resolve_scope(parent, pscope)
        D.scope = name
        _running = self
        try:
            if self._dt_hooked or _global_forward_hooks or _global_forward_pre_hooks:
                return self._call_with_hooks(args, kwargs)
            return self.forward(*args, **kwargs)
        except (AttributeError, TypeError) as e:
            te = _not_tensor_error(self, args, e)
            if te is None:
                raise
            raise te from None
        finally:
            D.scope = pscope
            _running = parent

    _call_impl = __call__
    _wrapped_call_impl = __call__

    def _slow_forward(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def compile(self, *args, **kwargs) -> None:
        """``torch.compile`` in place: eager dyntorch runs as is (kept for API parity)."""
        return None

    def _call_with_hooks(self, args, kwargs):
        for hid, hook in itertools.chain(list(_global_forward_pre_hooks.items()),
                                         list(self._forward_pre_hooks.items())):
            if hid in self._forward_pre_hooks_with_kwargs:
                r = hook(self, args, kwargs)
                if r is not None:
                    if not (isinstance(r, tuple) and len(r) == 2):
                        raise RuntimeError(
                            "forward pre-hook with kwargs must return None or a tuple of "
                            f"(new_args, new_kwargs), but got {r!r}.")
                    args, kwargs = r
            else:
                r = hook(self, args)
                if r is not None:
                    args = r if isinstance(r, tuple) else (r,)
        state = None
        if (self._backward_hooks or self._backward_pre_hooks) and D.grad_enabled:
            state = _BackwardHookState()
            state.module = self
            state.grad_output = None
            state.n_args = len(args)
            pos = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a._requires_grad]
            state.in_pos = pos
            state.n_in = len(pos)
            state.zero_in = [(i, a._data.shape, a._data.dtype, B.xp_of(a._data))
                             for i, a in enumerate(args)
                             if isinstance(a, Tensor) and not a._requires_grad] if pos else ()
            if pos:
                wrapped = _hook_node([args[i] for i in pos], state.on_inputs)
                args = list(args)
                for i, w in zip(pos, wrapped):
                    args[i] = w
                args = tuple(args)
        result = None
        try:
            result = self.forward(*args, **kwargs)
        except Exception:
            for hid, hook in itertools.chain(list(_global_forward_hooks.items()),
                                             list(self._forward_hooks.items())):
                if hid in self._forward_hooks_always_called or \
                        hid in _global_forward_hooks_always_called:
                    if hid in self._forward_hooks_with_kwargs or \
                            hid in _global_forward_hooks_with_kwargs:
                        hook(self, args, kwargs, result)
                    else:
                        hook(self, args, result)
            raise
        for hid, hook in itertools.chain(list(_global_forward_hooks.items()),
                                         list(self._forward_hooks.items())):
            if hid in self._forward_hooks_with_kwargs or hid in _global_forward_hooks_with_kwargs:
                r = hook(self, args, kwargs, result)
            else:
                r = hook(self, args, result)
            if r is not None:
                result = r
        if state is not None:
            single = isinstance(result, Tensor)
            outs = (result,) if single else (tuple(result) if isinstance(result, (tuple, list))
                                              else ())
            opos = [i for i, o in enumerate(outs) if isinstance(o, Tensor) and o._requires_grad]
            if opos:
                wrapped = _hook_node([outs[i] for i in opos], state.on_outputs)
                outs = list(outs)
                for i, w in zip(opos, wrapped):
                    outs[i] = w
                result = outs[0] if single else type(result)(outs) if isinstance(
                    result, list) else tuple(outs)
        return result

    # ------------------------------------------------------------------ attributes
    def __getattr__(self, name: str):
        d = self.__dict__
        if "_parameters" in d:
            p = d["_parameters"]
            if name in p:
                return p[name]
            b = d["_buffers"]
            if name in b:
                return b[name]
            m = d["_modules"]
            if name in m:
                return m[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError(
                    "cannot assign parameters before Module.__init__() call; call "
                    "super().__init__() first")
            _remove_from(d, name, params)
            self.register_parameter(name, value)
            return
        if params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                    "(torch.nn.Parameter or None expected)")
            self.register_parameter(name, value)
            return
        if isinstance(value, Module):
            if params is None:
                raise AttributeError(
                    "cannot assign module before Module.__init__() call; call "
                    "super().__init__() first")
            _remove_from(d, name, d["_modules"])
            d["_modules"][name] = value
            return
        modules = d.get("_modules")
        if modules is not None and name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as child module '{name}' "
                    "(torch.nn.Module or None expected)")
            modules[name] = value
            return
        if isinstance(value, Buffer):
            if params is None:
                raise AttributeError("cannot assign buffer before Module.__init__() call")
            _remove_from(d, name, d["_buffers"])
            self.register_buffer(name, _make(value._data), value.persistent)
            return
        buffers = d.get("_buffers")
        if buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                    "(torch.Tensor or None expected)")
            buffers[name] = value
            return
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            t = d.get(table)
            if t is not None and name in t:
                del t[name]
                d["_non_persistent_buffers_set"].discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        keys = list(super().__dir__())
        keys += list(self._parameters) + list(self._modules) + list(self._buffers)
        return sorted({k for k in keys if not k[0].isdigit()})

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        for k, v in (("_forward_hooks_with_kwargs", set()), ("_forward_hooks_always_called",
                     set()), ("_forward_pre_hooks_with_kwargs", set()),
                     ("_backward_pre_hooks", OrderedDict()), ("_dt_scope_cache", None),
                     ("_state_dict_pre_hooks", OrderedDict()),
                     ("_dt_hooked", True)):
            self.__dict__.setdefault(k, v)

    def __getstate__(self) -> dict:
        s = self.__dict__.copy()
        s["_dt_scope_cache"] = None
        s.pop("_dt_weak", None)
        return s

    # ------------------------------------------------------------------ registration
    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a buffer (state that is not a parameter, e.g. running mean)."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name(name, "buffer")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer "
                            f"'{name}' (torch Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (``None`` registers an absent one, e.g. ``bias=False``)."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        _check_name(name, "parameter")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter "
                            f"'{name}' (torch.nn.Parameter or None required)")
        if param is not None and param.grad_fn is not None:
            raise ValueError(
                f"Cannot assign non-leaf Tensor to parameter '{name}'. Model parameters must "
                "be created explicitly. To express '{name}' as a function of another Tensor, "
                "compute the value in the forward() method.")
        self._parameters[name] = param

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module, reachable as attribute ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if not isinstance(name, str):
            raise TypeError(f"module name should be a string. Got {type(name).__name__}")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        if "." in name:
            raise KeyError(f'module name can\'t contain ".", got: {name}')
        if name == "":
            raise KeyError('module name can\'t be empty string ""')
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target: str) -> Module:
        """The sub-module at dotted path ``target`` ('' is this module)."""
        if target == "":
            return self
        mod = self
        for item in target.split("."):
            if not hasattr(mod, item):
                raise AttributeError(mod._get_name() + " has no attribute `" + item + "`")
            mod = getattr(mod, item)
            if not isinstance(mod, Module):
                raise AttributeError("`" + item + "` is not an nn.Module")
        return mod

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at dotted path ``target``."""
        path, _, name = target.rpartition(".")
        mod = self.get_submodule(path)
        if not hasattr(mod, name):
            raise AttributeError(mod._get_name() + " has no attribute `" + name + "`")
        p = getattr(mod, name)
        if not isinstance(p, Parameter):
            raise AttributeError("`" + name + "` is not an nn.Parameter")
        return p

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at dotted path ``target``."""
        path, _, name = target.rpartition(".")
        mod = self.get_submodule(path)
        if name not in mod._buffers:
            raise AttributeError(mod._get_name() + " has no buffer `" + name + "`")
        return mod._buffers[name]

    def set_submodule(self, target: str, module: Module) -> None:
        path, _, name = target.rpartition(".")
        setattr(self.get_submodule(path), name, module)

    # ------------------------------------------------------------------ iteration
    def _named_members(self, get, prefix="", recurse=True, remove_duplicate=True):
        memo = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for mp, m in mods:
            for k, v in get(m):
                if v is None or (remove_duplicate and id(v) in memo):
                    continue
                if remove_duplicate:
                    memo.add(id(v))
                yield (mp + ("." if mp else "") + k, v)

    def parameters(self, recurse: bool = True):
        """Iterator over parameters (each tied parameter once)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True):
        """Iterator over (qualified name, parameter)."""
        yield from self._named_members(lambda m: m._parameters.items(), prefix, recurse,
                                       remove_duplicate)

    def buffers(self, recurse: bool = True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True):
        yield from self._named_members(lambda m: m._buffers.items(), prefix, recurse,
                                       remove_duplicate)

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_children(self):
        memo = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in memo:
                memo.add(id(m))
                yield name, m

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True):
        """Iterator over (qualified name, module), this module first (name ``prefix``)."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from m.named_modules(memo, sub, remove_duplicate)

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> Module:
        """Set training mode (affects Dropout, BatchNorm ...) on this module and children."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for m in self.children():
            m.train(mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode (``train(False)``)."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters (to None by default)."""
        for p in self.parameters():
            if p._grad is None:
                continue
            if set_to_none:
                p._grad = None
            else:
                g = p._grad
                if g.grad_fn is not None:
                    g = g.detach()
                    p._grad = g
                g._data[...] = 0

    def share_memory(self) -> Module:
        """Move parameters, buffers and existing gradients to inter-process shared memory."""
        return self._apply(lambda t: t.share_memory_())

    # ------------------------------------------------------------------ conversion
    def _apply(self, fn, recurse: bool = True) -> Module:
        """Apply ``fn`` to every parameter, gradient and buffer, keeping Parameter objects."""
        if recurse:
            for m in self.children():
                m._apply(fn)
        for p in self._parameters.values():
            if p is None:
                continue
            new = fn(p)
            if new._data is not p._data:
                p._data = new._data
                bump_version(p, create=False)
            if p._grad is not None:
                g = fn(p._grad)
                p._grad = g if g._data is p._grad._data else _make(g._data)
        for k, b in self._buffers.items():
            if b is not None:
                self._buffers[k] = fn(b)
        return self

    def apply(self, fn) -> Module:
        """Call ``fn(module)`` on every sub-module (children first) and on this module."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def to(self, *args, **kwargs) -> Module:
        """Move and/or cast parameters and buffers (dtype applies to floating point ones)."""
        from ..ops.creation import _parse_to

        dev, dt, _ = _parse_to(args, dict(kwargs))
        if dt is not None and not dt.is_floating_point:
            raise TypeError(f"nn.Module.to only accepts floating point dtypes, but got desired "
                            f"dtype={dt}")

        def convert(t):
            r = t
            if dev is not None:
                r = _to_device(r, dev)
            if dt is not None and B.is_float_np(r._data.dtype) and r._data.dtype != dt.np:
                r = _make(r._data.astype(dt.np))
            return r

        return self._apply(convert)

    def cuda(self, device=None) -> Module:
        return self.to(B.device("cuda", device) if isinstance(device, int) or device is None
                       else device)

    def cpu(self) -> Module:
        return self.to("cpu")

    def type(self, dst_type) -> Module:
        return self._apply(lambda t: _make(t._data.astype(B.to_dtype(dst_type).np)))

    def float(self) -> Module:
        return self._apply(lambda t: _cast_float(t, np.float32))

    def double(self) -> Module:
        return self._apply(lambda t: _cast_float(t, np.float64))

    def half(self) -> Module:
        return self._apply(lambda t: _cast_float(t, np.float16))

    def bfloat16(self) -> Module:
        """Floating-point parameters and buffers to bfloat16 (CPU; stored through ml_dtypes)."""
        return self._apply(lambda t: _cast_float(t, B.bfloat16.np))

    def to_empty(self, *, device=None, recurse: bool = True) -> Module:
        """Move to ``device`` with uninitialised (here: zero) storage of the same shapes."""
        dev = B.to_device(device)

        def fresh(t):
            return _make(B.xp_for(dev).zeros(t._data.shape, dtype=t._data.dtype))

        return self._apply(fresh, recurse)

    # ------------------------------------------------------------------ state dict
    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()
        if type(self).get_extra_state is not Module.get_extra_state:
            destination[prefix + "_extra_state"] = self.get_extra_state()

    def get_extra_state(self):
        """Extra (non-tensor) state to save in ``state_dict`` under ``_extra_state``."""
        raise RuntimeError("Reached a code path in Module.get_extra_state() that should never "
                           "be called; override get_extra_state() to return extra state")

    def set_extra_state(self, state) -> None:
        """Restore what :meth:`get_extra_state` returned."""
        raise RuntimeError("Reached a code path in Module.set_extra_state() that should never "
                           "be called; override set_extra_state() to restore extra state")

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        """An ordered dict of every parameter and persistent buffer, by qualified name."""
        if args:  # torch's deprecated positional form (destination, prefix, keep_vars)
            destination = args[0]
            if len(args) > 1:
                prefix = args[1]
            if len(args) > 2:
                keep_vars = args[2]
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()
        for hook in self.__dict__.get("_state_dict_pre_hooks", {}).values():
            hook(self, prefix, keep_vars)
        meta = getattr(destination, "_metadata", None)
        if meta is not None:
            meta[prefix[:-1]] = {"version": self._version}
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(destination=destination, prefix=prefix + name + ".",
                             keep_vars=keep_vars)
        for hook in self._state_dict_hooks.values():
            r = hook(self, destination, prefix, {})
            if r is not None:
                destination = r
        return destination

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        for hook in self._load_state_dict_pre_hooks.values():
            hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                 error_msgs)
        local = {k: v for k, v in self._parameters.items() if v is not None}
        local.update((k, v) for k, v in self._buffers.items()
                     if v is not None and k not in self._non_persistent_buffers_set)
        assign = bool(local_metadata.get("assign_to_params_buffers", False))
        for name, param in local.items():
            key = prefix + name
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                continue
            src = state_dict[key]
            try:
                arr = _array_of(src, param)
            except Exception as e:  # noqa: BLE001 - reported like torch does
                error_msgs.append(f'While copying the parameter named "{key}", an exception '
                                  f"occurred : {e}.")
                continue
            if tuple(arr.shape) != tuple(param._data.shape):
                error_msgs.append(
                    f"size mismatch for {key}: copying a param with shape "
                    f"{_fmt_size(arr.shape)} from checkpoint, the shape in current model is "
                    f"{_fmt_size(param._data.shape)}.")
                continue
            if assign:
                if isinstance(param, Parameter):
                    new = Parameter(_make(arr.astype(param._data.dtype, copy=False)),
                                    param._requires_grad)
                    self._parameters[name] = new
                else:
                    self._buffers[name] = _make(arr)
                continue
            param._data[...] = arr
            bump_version(param, create=False)
        extra_key = prefix + "_extra_state"
        has_extra = type(self).set_extra_state is not Module.set_extra_state
        if has_extra:
            if extra_key in state_dict:
                self.set_extra_state(state_dict[extra_key])
            elif strict:
                missing_keys.append(extra_key)
        if strict:
            for key in state_dict:
                if key.startswith(prefix):
                    rest = key[len(prefix):]
                    head = rest.split(".", 1)[0]
                    if head not in self._modules and rest not in local and not (
                            has_extra and key == extra_key):
                        unexpected_keys.append(key)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy parameters and buffers from ``state_dict`` (values may be tensors or arrays).

        Returns ``_IncompatibleKeys(missing_keys, unexpected_keys)``; with ``strict`` any
        missing or unexpected key raises, as does a size mismatch always.
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        missing: list = []
        unexpected: list = []
        errors: list = []
        metadata = getattr(state_dict, "_metadata", None)
        sd = OrderedDict(state_dict)

        def load(module, prefix=""):
            meta = {} if metadata is None else dict(metadata.get(prefix[:-1], {}))
            if assign:
                meta["assign_to_params_buffers"] = True
            module._load_from_state_dict(sd, prefix, meta, True, missing, unexpected, errors)
            for name, child in module._modules.items():
                if child is not None:
                    load(child, prefix + name + ".")
            for hook in module._load_state_dict_post_hooks.values():
                hook(module, _IncompatibleKeys(missing, unexpected))

        load(self)
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in unexpected)))
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in missing)))
        if errors:
            raise RuntimeError("Error(s) in loading state_dict for {}:\n\t{}".format(
                type(self).__name__, "\n\t".join(errors)))
        return _IncompatibleKeys(missing, unexpected)

    def register_state_dict_post_hook(self, hook) -> RemovableHandle:
        h = RemovableHandle(self._state_dict_hooks)
        self._state_dict_hooks[h.id] = hook
        return h

    _register_state_dict_hook = register_state_dict_post_hook

    def register_load_state_dict_post_hook(self, hook) -> RemovableHandle:
        h = RemovableHandle(self._load_state_dict_post_hooks)
        self._load_state_dict_post_hooks[h.id] = hook
        return h

    def register_load_state_dict_pre_hook(self, hook) -> RemovableHandle:
        """``hook(module, state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs)`` runs before this module loads its entries."""
        return self._register_load_state_dict_pre_hook(hook, with_module=True)

    def register_state_dict_pre_hook(self, hook) -> RemovableHandle:
        """``hook(module, prefix, keep_vars)`` runs before ``state_dict`` collects."""
        h = RemovableHandle(self._state_dict_pre_hooks)
        self._state_dict_pre_hooks[h.id] = hook
        return h

    def _register_load_state_dict_pre_hook(self, hook, with_module: bool = False):
        h = RemovableHandle(self._load_state_dict_pre_hooks)
        if with_module:
            def wrapped(*a, hook=hook):
                return hook(self, *a)
            self._load_state_dict_pre_hooks[h.id] = wrapped
        else:
            self._load_state_dict_pre_hooks[h.id] = hook
        return h

    # ------------------------------------------------------------------ hooks
    def register_forward_pre_hook(self, hook, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """``hook(module, args)`` (or ``(module, args, kwargs)``) runs before forward."""
        h = RemovableHandle(self._forward_pre_hooks,
                            _SetAsTable(self._forward_pre_hooks_with_kwargs))
        _put(self._forward_pre_hooks, h.id, hook, prepend)
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs.add(h.id)
        _set(self, "_dt_hooked", True)
        return h

    def register_forward_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        """``hook(module, args, output)`` runs after forward; may return a new output."""
        h = RemovableHandle(self._forward_hooks, _SetAsTable(self._forward_hooks_with_kwargs),
                            _SetAsTable(self._forward_hooks_always_called))
        _put(self._forward_hooks, h.id, hook, prepend)
        if with_kwargs:
            self._forward_hooks_with_kwargs.add(h.id)
        if always_call:
            self._forward_hooks_always_called.add(h.id)
        _set(self, "_dt_hooked", True)
        return h

    def register_full_backward_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_input, grad_output)`` runs when the gradients w.r.t. the
        module's inputs are computed; may return new grad_input."""
        h = RemovableHandle(self._backward_hooks)
        _put(self._backward_hooks, h.id, hook, prepend)
        _set(self, "_dt_hooked", True)
        return h

    register_backward_hook = register_full_backward_hook

    def register_full_backward_pre_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_output)`` runs when the gradients w.r.t. the module's outputs
        are computed; may return new grad_output."""
        h = RemovableHandle(self._backward_pre_hooks)
        _put(self._backward_pre_hooks, h.id, hook, prepend)
        _set(self, "_dt_hooked", True)
        return h

    # ------------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        """Extra information in this module's repr (override in subclasses)."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = []
        for key, m in self._modules.items():
            mod_str = _addindent(repr(m), 2)
            child_lines.append("(" + key + "): " + mod_str)
        lines = extra_lines + child_lines
        main = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                main += extra_lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"


class _SetAsTable:
    """Lets a RemovableHandle also drop its id from a set."""

    __slots__ = ("s",)

    def __init__(self, s: set):
        self.s = s

    def pop(self, key, default=None):
        self.s.discard(key)
        return default


def _put(table: OrderedDict, key, hook, prepend: bool) -> None:
    table[key] = hook
    if prepend:
        table.move_to_end(key, last=False)


def _remove_from(d: dict, name: str, keep) -> None:
    for table in ("_parameters", "_buffers", "_modules"):
        t = d.get(table)
        if t is not None and t is not keep and name in t:
            del t[name]
    if name in d:
        del d[name]
    s = d.get("_non_persistent_buffers_set")
    if s is not None and keep is not d.get("_buffers"):
        s.discard(name)


def _check_name(name, what: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{what} name should be a string. Got {type(name).__name__}")
    if "." in name:
        raise KeyError(f'{what} name can\'t contain "."')
    if name == "":
        raise KeyError(f'{what} name can\'t be empty string ""')


def _fmt_size(shape) -> str:
    return "torch.Size([" + ", ".join(str(s) for s in shape) + "])"


def _array_of(src, like: Tensor):
    """The array of a state-dict value (a Tensor, a NumPy array or anything array-like)."""
    xp = B.xp_of(like._data)
    if isinstance(src, Tensor):
        a = src._data
        if a.__class__ is not like._data.__class__:
            a = B.move(a, B.device_of(like._data))
        return a
    a = np.asarray(src)
    return xp.asarray(a) if xp is not np else a


def _to_device(t: Tensor, dev) -> Tensor:
    if B.device_of(t._data) == dev:
        return t
    return _make(B.move(t._data, dev))


def _cast_float(t: Tensor, npdt) -> Tensor:
    if (t._data.dtype.kind == "f" or B.is_float_np(t._data.dtype)) and t._data.dtype != npdt:
        return _make(t._data.astype(npdt))
    return t


def _not_tensor_error(module, args, err: Exception):
    """torch's TypeError when a layer is given a NumPy array or a list instead of a Tensor
    (inside, the op fails on ``._data`` or names the argument); None for other errors."""
    if "must be Tensor" in str(err):  # the op named the argument already: say which layer
        return TypeError(f"{type(module).__name__}: {err}")
    if "_data" not in str(err):
        return None
    for i, a in enumerate(args):
        if not isinstance(a, Tensor) and (isinstance(a, (list, tuple)) or
                                          type(a).__module__ == "numpy"):
            if isinstance(a, tuple) and a and all(isinstance(x, Tensor) for x in a):
                continue  # a tuple of tensors (LSTM state) is a legitimate argument
            kind = f"{type(a).__module__}.{type(a).__name__}" if type(
                a).__module__ == "numpy" else type(a).__name__
            return TypeError(
                f"{type(module).__name__}: argument {i} (position {i + 1}) of forward() must be "
                f"a Tensor, not {kind}; convert it first with dyntorch.from_numpy(x) or "
                "dyntorch.tensor(x)")
    return None
