"""The one door every op passes through.

``apply(op, *args, **attrs)`` unwraps tensors, runs the op's forward with the device's array
module and, when grad is on and an input requires grad, records an :class:`OpNode` with the
saved inputs, ``seq``, module ``scope`` and the user's source line. Observers (tracer, live
view, anomaly checks) register with :func:`add_hook`; with none registered the door costs a
truthiness test.
"""
from __future__ import annotations

import inspect
import os
import sys
from time import perf_counter as _perf

import numpy as np

from . import _backend as B
from ._tensor import MUTATIONS, Tensor, _make
from .autograd.node import OpNode, accumulator, next_seq

ndarray = np.ndarray
_ARRAYS = frozenset(B.ARRAY_TYPES)  # array classes of every module (to_device changes module)
_getframe = sys._getframe

# Global switches, read as module globals on the hot path.
grad_enabled = True
record_source = True
profile = False  # when on, each recorded node gets its forward time in microseconds
scope = ""  # qualified name of the nn.Module whose forward is running ('' outside any)
_hooks: list = []  # forward observers: fn(op, args, attrs, result)


def add_hook(fn):
    """Register ``fn(op, args, attrs, result)`` to run after every op; returns a remover."""
    _hooks.append(fn)

    def remove():
        if fn in _hooks:
            _hooks.remove(fn)

    return remove


# ----------------------------------------------------------------------------- source lines
_PKG = os.path.dirname(os.path.abspath(__file__)) + os.sep
# Code objects already classified, by id: hashing a code object hashes its names and
# constants on every lookup (~0.1 us), an id is one int. The ids stay valid because
# ``_classified`` holds every classified code object alive, so no id is ever reused.
_internal_ids: set = set()
_external_ids: set = set()
_classified: list = []
_last_code = [None]  # the user code seen last by the door (held, so its identity is safe)


def capture_source(depth: int = 3):
    """(code, lasti) of the first frame outside the dyntorch package, or None.

    ``depth`` is where that frame usually is, counted from this function (apply <- operator
    method <- user code is 3; the door's ``_record`` passes 4). The one source capture of
    the door: both of its lanes record through ``_record``, which calls this. Jumping there
    materialises one frame object, and the user's frame is reused by every op it runs, so
    this is far cheaper than walking frame by frame.
    The line is resolved from ``lasti`` only when someone reads it (:func:`line_of`).
    """
    try:
        f = _getframe(depth)
    except ValueError:
        return None
    while f is not None:
        c = f.f_code
        if c is _last_code[0]:  # the same user code as last time: no set lookup
            return (c, f.f_lasti)
        i = id(c)
        if i in _external_ids:
            _last_code[0] = c
            return (c, f.f_lasti)
        if i in _internal_ids:
            f = f.f_back
            continue
        _classified.append(c)
        if c.co_filename.startswith(_PKG) and "/tests/" not in c.co_filename:
            _internal_ids.add(i)
            f = f.f_back
        else:
            _external_ids.add(i)
            _last_code[0] = c
            return (c, f.f_lasti)
    return None


def line_of(code, lasti: int) -> int | None:
    """The source line of the bytecode offset ``lasti`` in ``code``."""
    for start, end, line in code.co_lines():
        if start <= lasti < end:
            return line
    return code.co_firstlineno


# ----------------------------------------------------------------------------- ops
class OpDef:
    """One op: its forward and its derivative, registered under one name.

    ``forward(xp, *arrays, **attrs)`` computes on arrays of the device's module. The
    derivative ``d(ns, g, *inputs, [out], **attrs)`` returns one gradient per positional input.
    ``ns`` is an array namespace on the plain path and a tensor namespace under
    ``create_graph=True``, so one formula serves both. A parameter whose name starts with
    ``_`` is not used, so that input is not kept alive for backward nor version-checked.

    ``aux=("name", ...)`` declares the forward's trailing outputs auxiliary: secondary values
    the forward computes anyway (GELU's CDF, the log-probabilities of cross-entropy, a norm's
    mean and inverse std). The node keeps those the derivative names (as keyword parameters
    of those names) and nothing version-checks them: they never reach the user, so a
    derivative that reads them instead of ``out`` lets the user change the result in place,
    as torch does. The door still returns every output (readers see a multi-output op).

    A derivative with a ``needs`` parameter gets a sequence, one entry per input, truthy
    where that input gets a gradient: it may skip the others' (``x * mask``, ``x / s`` with a
    constant ``s``).

    ``read_for[i] = j`` says input ``i`` is read only to make input ``j``'s gradient (None:
    always): ``a * b`` reads ``a`` only for ``b``'s gradient, so in ``t * 0.5`` or ``t * mask``
    (a number, or a tensor that needs no gradient) nothing reads ``t`` and it may change in
    place before backward, as in torch. Read through :meth:`used`.
    """

    __slots__ = ("name", "forward", "derivative", "backward_name", "uses", "uses_out", "promote",
                 "view", "multi", "wants_needs", "doc", "special", "lane_off", "aux",
                 "aux_take", "read_for")

    def __init__(self, name, forward, *, promote=False, view=False, multi=False,
                 backward_name=None, aux=(), read_for=None):
        self.name = name
        self.forward = forward
        self.derivative = None
        self.backward_name = backward_name or (
            "".join(p.capitalize() for p in name.split("_")) + "Backward0")
        self.uses = ()
        self.read_for = read_for
        self.uses_out = False
        self.promote = promote
        self.view = view
        self.aux = tuple(aux)
        self.aux_take = ()  # (name, output index) of each auxiliary output the derivative reads
        multi = multi or bool(aux)
        self.multi = multi
        self.wants_needs = False
        self.doc = forward.__doc__
        self.special = view or multi
        self.lane_off = view or multi  # views and multi-output ops take the door's full path

    def def_derivative(self, fn):
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][2:]
        names = [p.name for p in params]
        self.uses_out = "out" in names
        if self.uses_out:
            names.remove("out")
        first = -len(self.aux)  # auxiliary outputs are the forward's last ones
        self.aux_take = tuple((n, first + k) for k, n in enumerate(self.aux) if n in names)
        names = [n for n in names if n not in self.aux]
        self.special = self.view or self.multi or self.uses_out
        self.uses = tuple(not n.startswith("_") for n in names)
        self.wants_needs = "needs" in inspect.signature(fn).parameters
        self.derivative = fn
        return fn

    def variant(self, backward_name: str) -> OpDef:
        """The same op (name, forward, derivative) under another torch backward name.

        torch names e.g. the all-elements and the over-dims sums apart (SumBackward0 / 1), or
        ``1 - t`` (RsubBackward1) from ``t - 1`` (SubBackward0). The variant is not registered:
        the registry keeps one entry per name, whose forward is the same, so readers that
        replay a graph by op name (jit, onnx) see one op.
        """
        v = OpDef(self.name, self.forward, promote=self.promote, view=self.view,
                  multi=self.multi, backward_name=backward_name, aux=self.aux,
                  read_for=self.read_for)
        v.def_derivative(self.derivative)
        return v

    def used(self, edges) -> tuple:
        """Which inputs the derivative reads, given the node's ``edges`` (``next``, None where
        an input gets no gradient): ``uses``, less those ``read_for`` an input without one."""
        uses = self.uses
        if self.read_for is None:
            return uses
        return tuple(u and (j is None or edges[j] is not None)
                     for u, j in zip(uses, self.read_for))

    def __call__(self, *args, **attrs):
        return apply(self, *args, **attrs)

    def __repr__(self) -> str:
        return f"<op {self.name}>"


REGISTRY: dict = {}


def op(name=None, **kw):
    """Decorator: register ``forward`` as an op; then ``@that.derivative`` adds its derivative."""

    def wrap(fn):
        d = OpDef(name or fn.__name__.strip("_"), fn, **kw)
        REGISTRY[d.name] = d
        d.derivative = None
        return d

    if callable(name):
        fn, name = name, None
        return wrap(fn)
    return wrap



def _saved_error(node: OpNode, i: int, t, saved: int) -> RuntimeError:
    d = t._data
    return RuntimeError(
        "one of the variables needed for gradient computation has been modified by an inplace "
        f"operation: [{B.from_np(d.dtype)} {list(d.shape)}], which is output {i} of "
        f"{node.name()}, is at version {t._version}; expected version {saved} instead. "
        "Hint: the in-place change happened after the forward op that saved it; use an "
        "out-of-place op (e.g. `x = x + y` instead of `x += y`) or `.clone()` before it."
    )


# ----------------------------------------------------------------------------- promotion
def _promote(args):
    if len(args) == 2:
        a, b = args
        if a.__class__ is Tensor:
            if b.__class__ is Tensor:
                if a._data.dtype is b._data.dtype:
                    return args
            elif b.__class__ is float and a._data.dtype.kind == "f":
                return args
        elif a.__class__ is float and b.__class__ is Tensor and b._data.dtype.kind == "f":
            return args
    first = None
    same = True
    scalar = None
    for a in args:
        if isinstance(a, Tensor):
            d = a._data.dtype
            if first is None:
                first = d
            elif d is not first and d != first:
                same = False
        elif a is not None and not isinstance(a, (tuple, list, str)):
            scalar = a
    if same and (scalar is None or (first is not None and first.kind == "f")):
        if scalar is None or type(scalar) is not bool or first is None or first.kind != "b":
            return args
    rt = B.result_type(*[a for a in args if a is not None
                         and not isinstance(a, (tuple, list, str))])
    target = rt.np
    return tuple(a.to(rt) if isinstance(a, Tensor) and a._data.dtype != target else a
                 for a in args)


# ----------------------------------------------------------------------------- errors
def describe(a) -> str:
    if isinstance(a, Tensor):
        d = a._data
        return f"Tensor{list(d.shape)} {B.from_np(d.dtype).name} on {B.device_of(d)}"
    return repr(a)


def _broadcast_message(op, args) -> str | None:
    shapes = [a._data.shape for a in args if isinstance(a, Tensor)]
    if len(shapes) < 2:
        return None
    a, b = shapes[0], shapes[1]
    for k in range(1, max(len(a), len(b)) + 1):
        x = a[-k] if k <= len(a) else 1
        y = b[-k] if k <= len(b) else 1
        if x != y and x != 1 and y != 1:
            return (f"{op.name}(): The size of tensor a ({x}) must match the size of tensor b "
                    f"({y}) at non-singleton dimension {max(len(a), len(b)) - k}; shapes are "
                    f"{list(a)} and {list(b)}. Reshape or unsqueeze one of them so that they "
                    "broadcast.")
    return None


def _annotate(op, args, attrs, err):
    msg = str(err)
    if "broadcast" in msg:
        bm = _broadcast_message(op, args)
        if bm:
            return RuntimeError(bm)
    if isinstance(err, (RuntimeError, IndexError, TypeError, ValueError)) and \
            msg.startswith(op.name + "()"):
        return err
    ins = ", ".join(describe(a) for a in args)
    extra = f" with {attrs}" if attrs else ""
    cls = IndexError if isinstance(err, IndexError) else (
        TypeError if isinstance(err, TypeError) else RuntimeError)
    return cls(f"{op.name}(): {msg} (inputs: {ins}{extra})")


def _scalars_to_device(args):
    """``args`` with 0-dim CPU tensors moved to the one other device, or None if the devices
    still differ (as in torch, a 0-dim CPU tensor behaves like a number)."""
    devs = {B.device_of(a._data) for a in args
            if isinstance(a, Tensor) and not (a._data.ndim == 0 and a._data.__class__ is ndarray)}
    if len(devs) != 1:
        return None
    (dev,) = devs
    return tuple(a.to(dev) if isinstance(a, Tensor) and a._data.ndim == 0 and
                 a._data.__class__ is ndarray else a for a in args)


def _device_error(op, args):
    devs = [str(a.device) for a in args if isinstance(a, Tensor)]
    return RuntimeError(
        f"{op.name}(): Expected all tensors to be on the same device, but found at least two "
        f"devices, {' and '.join(dict.fromkeys(devs))}. Move them with `.to(device)` first.")


# ----------------------------------------------------------------------------- the door
def apply(op, *args, **attrs):
    """Run ``op`` on ``args`` and record its graph node when gradients are needed."""
    # The fast lane: one or two plain CPU tensors of one dtype, none changed in place (version
    # 0), no observer. Most calls of a program look like this; everything else takes the full path.
    n = len(args)
    if n == 2:
        a, b = args
        da = db = None
        if not op.lane_off and not _hooks and not profile:
            ca, cb = a.__class__, b.__class__
            if ca is Tensor and (a._version_box is None or not a._version_box[0]):
                if cb is Tensor:
                    if b._version_box is None or not b._version_box[0]:
                        da, db = a._data, b._data
                        # bfloat16 takes the full path, which computes in float32 and rounds once
                        if da.__class__ is not ndarray or db.__class__ is not ndarray or (
                                da.dtype is not db.dtype and op.promote) or (
                                da.dtype is _BF16 or db.dtype is _BF16):
                            da = None
                        rg = a._requires_grad or b._requires_grad
                elif cb is float or cb is int:
                    # a Python number beside a float tensor (``t * 0.5``, ``t + 1``) keeps the
                    # tensor's dtype, as on the full path: bench_core's `a * 0.5` took 2.7 us
                    # there against 1.5 us for tensor-tensor
                    da, db, rg = a._data, b, a._requires_grad
                    if da.__class__ is not ndarray or da.dtype.kind != "f":  # bfloat16's is "V"
                        da = None
                    elif op.promote and b:  # the forward gets it as a 0-d array (scalar_array)
                        db = scalar_array(b, da.dtype)
            elif cb is Tensor and (ca is float or ca is int) and (
                    b._version_box is None or not b._version_box[0]):
                da, db, rg = a, b._data, b._requires_grad  # ``1.0 - t``
                if db.__class__ is not ndarray or db.dtype.kind != "f":
                    da = None
                elif op.promote and a:
                    da = scalar_array(a, db.dtype)
            if da is not None:
                try:
                    out = op.forward(np, da, db, **attrs) if attrs else op.forward(np, da, db)
                except Exception as e:  # name the op, the shapes, dtypes and devices
                    raise _annotate(op, args, attrs, e) from e
                if out.__class__ is not ndarray:
                    out = np.asarray(out)  # NumPy gives scalars for 0-d results
                if rg and grad_enabled and op.derivative is not None:
                    # derivatives see the number itself (they give it no gradient)
                    return _record(op, args, [da if ca is Tensor else a,
                                              db if cb is Tensor else b], out, attrs, False, None)
                return _make(out)
    elif n == 1:
        a = args[0]
        if a.__class__ is Tensor and not op.lane_off and (
                a._version_box is None or not a._version_box[0]):
            da = a._data
            if da.__class__ is ndarray and not _hooks and not profile and da.dtype is not _BF16:
                try:
                    out = op.forward(np, da, **attrs) if attrs else op.forward(np, da)
                except Exception as e:
                    raise _annotate(op, args, attrs, e) from e
                if out.__class__ is not ndarray:
                    out = np.asarray(out)
                if a._requires_grad and grad_enabled and op.derivative is not None:
                    return _record(op, args, [da], out, attrs, False, None)
                return _make(out)
    return _apply_full(op, args, attrs)


# A Python number beside a small array costs NumPy 2 about 0.3-0.5 us more per ufunc call than
# a 0-d array of the array's dtype (NEP 50 resolves the weak scalar on every call), and the
# result is the same: NumPy casts the number to the array's dtype first either way. So the
# fast lane hands arithmetic ops (``op.promote``) a cached read-only 0-d array. bench_core.py
# chain (`y * 0.5` twice, `y + 1.0`): 2.43 -> 2.21 us per such op, old and new interleaved in
# one process.
_scalars: dict = {}  # NumPy dtype -> {number: read-only 0-d array of that dtype}


def scalar_array(v, dtype):
    try:
        return _scalars[dtype][v]
    except KeyError:
        return _new_scalar_array(v, dtype)


def _new_scalar_array(v, dtype):
    # not cached (the number itself is used): zeros, since a dict cannot tell 0.0 from -0.0
    # (the lane never asks for them); NaN, which never equals a key; integers beyond 2**53
    # and numbers the dtype cannot hold, where NumPy's own conversion rules decide
    if v != v or (v.__class__ is int and not -2 ** 53 < v < 2 ** 53):
        return v
    try:
        with np.errstate(all="ignore"):
            arr = np.asarray(v, dtype=dtype)
    except (OverflowError, ValueError):
        return v
    if not np.isfinite(arr) and v - v == 0:  # finite number, not representable: overflow
        return v
    arr.flags.writeable = False  # shared by every call
    table = _scalars.setdefault(dtype, {})
    if len(table) >= 512:  # a program looping over many numbers: keep the table small
        table.clear()
    table[v] = arr
    return arr


def _apply_full(op, args, attrs):
    if op.promote:
        args = _promote(args)
    arrays = []
    push = arrays.append
    rg = False
    cls = None
    changed = False
    for a in args:
        if isinstance(a, Tensor):
            d = a._data
            if a._version_box is not None and a._version_box[0]:
                changed = True
            if cls is None:
                cls = d.__class__
                first = d
            elif d.__class__ is not cls or (cls is not ndarray and d.device != first.device):
                moved = _scalars_to_device(args)  # torch lets 0-dim CPU tensors join in
                if moved is None:
                    raise _device_error(op, args)
                return apply(op, *moved, **attrs)
            push(d)
            if a._requires_grad:
                rg = True
        else:
            push(a)
    xp = np if cls is ndarray or cls is None else B.xp_of(first)
    if profile:
        t0 = _perf()
    try:
        if _BF16 is not None and cls is ndarray and _has_bf16(arrays):
            out = _forward_bf16(op, xp, arrays, attrs)
        else:
            out = op.forward(xp, *arrays, **attrs)
    except Exception as e:  # name the op, the shapes, dtypes and devices
        raise _annotate(op, args, attrs, e) from e
    outs = None
    if op.multi:
        outs = tuple(o if o.__class__ in _ARRAYS else xp.asarray(o) for o in out)
        out = outs[0]
    elif out.__class__ is not ndarray and out.__class__ not in _ARRAYS:
        out = xp.asarray(out)  # NumPy gives scalars for 0-d results; keep arrays
    if rg and grad_enabled and op.derivative is not None:
        res = _record(op, args, arrays, out, attrs, changed, outs)
        if profile:
            B.synchronize()  # GPU work is asynchronous: time what ran, not what was queued
            (res[0] if op.multi else res).grad_fn.time_us = (_perf() - t0) * 1e6
    else:
        res = _make(out)
        if op.view:
            _view_of(res, args[0])
        if op.multi:
            res = (res,) + tuple(_make(o) for o in outs[1:])
    if _hooks:
        for h in tuple(_hooks):
            h(op, args, attrs, res)
    return res


# ----------------------------------------------------------------------------- bfloat16
# torch's CPU kernels compute bfloat16 in float32 and round each result once; NumPy (through
# ml_dtypes) would accumulate sums and products in bfloat16. So an op with a bfloat16 input
# runs on float32 copies and its float32 outputs are rounded back, when no input was a wider
# float. The fast lanes above leave bfloat16 to this path (one identity test each).
_BF16 = None  # bfloat16's NumPy dtype, once loaded (no array can have it before)


def _set_bf16(np_dtype) -> None:
    global _BF16
    _BF16 = np_dtype


B.on_bfloat16(_set_bf16)
_F32 = np.dtype(np.float32)


def _has_bf16(arrays) -> bool:
    for a in arrays:
        if a.__class__ is ndarray and a.dtype is _BF16:
            return True
    return False


def _up(arrays):
    return [a.astype(_F32) if a.__class__ is ndarray and a.dtype is _BF16 else a
            for a in arrays]


def _forward_bf16(op, xp, arrays, attrs):
    wide = any(a.__class__ is ndarray and a.dtype.kind == "f" and a.dtype is not _BF16
               for a in arrays)
    out = op.forward(xp, *_up(arrays), **attrs)
    asked = attrs.get("dtype") if attrs else None  # a cast, or sum(dtype=...): that dtype
    if asked is not None:
        target = asked.np if isinstance(asked, B.dtype) else np.dtype(asked)
    elif wide:
        return out
    else:
        target = _BF16

    def down(o):
        o = xp.asarray(o)
        return o.astype(target) if o.dtype == _F32 and target != _F32 else o

    return tuple(down(o) for o in out) if op.multi else down(out)


def _record(op, args, arrays, out, attrs, changed, outs):
    """The op's output with its new graph node (``outs``: every output of a multi op)."""
    nxt = []
    for a in args:
        if isinstance(a, Tensor) and a._requires_grad:
            fn = a.grad_fn
            if fn is not None:
                nxt.append((fn, a._out_nr))
            else:
                fn = a._acc
                nxt.append((fn if fn is not None else accumulator(a), 0))
        else:
            nxt.append(None)
    node = _new_node(OpNode)
    node.op = op
    node.attrs = attrs
    node.seq = next_seq()
    node.scope = scope
    # the user's frame: usually three up from here (operator method, the door, here). The
    # same user code as the op before: taken here without calling capture_source, which
    # does the general walk (bench_core.py chain forward: one call less per op, ~0.1 us)
    if record_source:
        try:
            f = _getframe(3)
        except ValueError:  # a shallower stack (an op called at a script's top level)
            f = None
        node._src = (f.f_code, f.f_lasti) if f is not None and f.f_code is _last_code[0] \
            else capture_source(4)
    else:
        node._src = None
    node.out_meta = (out.shape, out.dtype, None if out.__class__ is ndarray else B.device_of(out))
    node.next = nxt
    node.inputs = args
    node.arrays = arrays
    node.epoch = MUTATIONS[0]
    if changed:
        node.vers = _versions(args, op.used(nxt))
    res = _new_tensor(Tensor)  # _make(out, node), inlined
    res._data = out
    res._requires_grad = True
    res.grad_fn = node
    res._version_box = None
    if not op.special:
        node.out = node.out_box = None
    else:
        if op.uses_out:
            node.out = outs if op.multi else out
            res._version_box = node.out_box = [0]
        else:
            node.out = node.out_box = None
        if op.view:
            _view_of(res, args[0])
        if op.multi:
            if op.aux_take:
                node.aux = tuple(outs[k] for _, k in op.aux_take)
            res = (res,) + tuple(_make(o) for o in outs[1:])
    return res


def _view_of(res, base):
    if base._version_box is None:
        base._version_box = [0]
    res._version_box = base._version_box
    res._base = base if base._base is None else base._base


_new_node = _new_tensor = object.__new__


def _versions(args, uses):
    """Versions of saved inputs already changed in place (None when all are at 0)."""
    vers = None
    for i, a in enumerate(args):
        if isinstance(a, Tensor) and a._version_box is not None and a._version_box[0] and uses[i]:
            if vers is None:
                vers = {}
            vers[i] = a._version_box[0]
    return vers


# ----------------------------------------------------------------------------- backward of a node
_ns_cache: dict = {}
_np_ns = None  # array_ns(numpy), once made


def array_ns(xp):
    global _np_ns
    ns = _ns_cache.get(xp)
    if ns is None:
        from .ops._ns import ArrayNS

        ns = _ns_cache[xp] = ArrayNS(xp)
        if xp is np:
            _np_ns = ns
    return ns


def tensor_ns():
    from .ops._ns import TENSOR_NS

    return TENSOR_NS


def _check_saved(node: OpNode):
    op = node.op
    if node.freed:
        raise RuntimeError(
            "Trying to backward through the graph a second time (or directly access saved "
            f"tensors after they have already been freed), at {node.name()}. Saved "
            "intermediate values of the graph are freed when you call .backward() or "
            "autograd.grad(). Specify retain_graph=True if you need to backward through the "
            "graph a second time or if you need to access saved tensors after calling "
            "backward.")
    vers = node.vers
    uses = op.used(node.next)
    for i, a in enumerate(node.inputs):
        if uses[i] and isinstance(a, Tensor):
            cur = a._version_box[0] if a._version_box is not None else 0
            saved = vers.get(i, 0) if vers is not None else 0
            if cur != saved:
                raise _saved_error(node, i, a, saved)
    if node.out_box is not None and node.out_box[0]:
        raise RuntimeError(
            "one of the variables needed for gradient computation has been modified by an "
            f"inplace operation: the output of {node.name()} is at version {node.out_box[0]}; "
            "expected version 0 instead. Hint: clone the result before changing it in place.")


def derive(node: OpNode, g, create_graph: bool = False):
    """The op's derivative at ``g``: one raw result per input, before :func:`fit_grad`."""
    op = node.op
    if node.epoch != MUTATIONS[0]:  # something changed in place since (or node freed): check
        _check_saved(node)
    if create_graph:
        ns = tensor_ns()
        args = node.inputs
        if op.uses_out:
            out = node.out
            if op.multi:
                o = _make(out[0], node)
                o._version_box = node.out_box
                args = args + ((o,) + tuple(_make(x) for x in out[1:]),)
            else:
                o = _make(out, node)
                o._version_box = node.out_box
                args = args + (o,)
    elif g.__class__ is ndarray and g.dtype is not _BF16:  # NumPy, not bfloat16: most calls
        ns = _np_ns or array_ns(np)
        args = node.arrays
        if op.uses_out:
            args = args + [node.out]
    else:
        ns = array_ns(B.xp_of(g))
        args = node.arrays
        if op.uses_out:
            args = args + [node.out]
        if g.__class__ is ndarray and g.dtype is _BF16 and _BF16 is not None:
            # as the forward: float32 arithmetic; run_node rounds each result to its input
            g = g.astype(_F32)
            args = _up(args[:-1]) + ([_up(node.out) if op.multi else _up([node.out])[0]]) \
                if op.uses_out else _up(args)
    attrs = node.attrs
    if op.aux_take:  # auxiliary outputs, by name: arrays, or constant tensors under create_graph
        attrs = dict(attrs)
        for (name, _), a in zip(op.aux_take, node.aux):
            if create_graph:
                a = _make(a)
            elif a.__class__ is ndarray and a.dtype is _BF16 and _BF16 is not None:
                a = a.astype(_F32)
            attrs[name] = a
    if op.wants_needs:  # ``needs[i]`` is truthy where input i gets a gradient: the edges
        res = op.derivative(ns, g, *args, needs=node.next, **attrs)  # (no tuple per call)
    elif attrs:
        res = op.derivative(ns, g, *args, **attrs)
    else:
        res = op.derivative(ns, g, *args)
    return (res,) if len(node.next) == 1 else res


def fit_grad(r, ad):
    """Gradient array ``r`` made to fit input array ``ad``: broadcasting undone, same array
    type and dtype (on the plain path; cheap to call only when something differs)."""
    xp = np if ad.__class__ is ndarray else B.xp_of(ad)
    if r.__class__ is not ad.__class__:
        r = xp.asarray(r)
    if r.shape != ad.shape:
        r = array_ns(xp).sum_to(r, ad.shape)
    if r.dtype != ad.dtype:
        r = r.astype(ad.dtype)
    return r


def run_node(node: OpNode, g, create_graph: bool):
    """Gradients for each input of ``node`` given the gradient ``g`` of its output."""
    fixed = list(derive(node, g, create_graph))
    nxt = node.next
    arrays = node.arrays
    for i in range(len(nxt)):
        r = fixed[i]
        if r is None:
            continue
        if nxt[i] is None:  # a gradient for an input that needs none: report none
            fixed[i] = None
            continue
        ad = arrays[i]
        if create_graph:
            if not isinstance(r, Tensor):
                r = Tensor._wrap_like(r, ad)
            if r._data.shape != ad.shape:
                r = tensor_ns().sum_to(r, ad.shape)
            if r._data.dtype != ad.dtype:
                r = r.to(B.from_np(ad.dtype))
            fixed[i] = r
        elif r.__class__ is not ad.__class__ or r.shape != ad.shape or r.dtype is not ad.dtype:
            fixed[i] = fit_grad(r, ad)
    return fixed


free_node = OpNode._free
OpNode._apply = run_node
