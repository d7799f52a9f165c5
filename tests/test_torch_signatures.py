"""Every public name dyntorch shares with torch accepts torch's parameter names.

torch's own signatures are read, not copied: the stubs ``torch/_C/_VariableFunctions.pyi``,
``torch/_C/_nn.pyi`` and the ``TensorBase`` class of ``torch/_C/__init__.pyi`` (parsed with
``ast``, every ``@overload``), ``inspect.signature`` for what torch writes in Python
(``torch.functional``, ``torch.nn.functional``, ``torch.Tensor``'s Python methods), and the
first docstring line for builtins with no stub (``torch.linalg``, ``torch.special``). The
Python-written modules ``nn.init``, ``autograd``, ``nn.utils``, ``cuda`` and ``amp`` are
compared through ``inspect.signature`` on both sides.

A name passes when dyntorch's signature binds a call written with torch's keyword names for at
least one of torch's keyword overloads (every parameter torch accepts by keyword, with its
default left out and then given explicitly), and, where torch also has a ``*args`` form
(``zeros(2, 3)``, ``x.permute(1, 0)``), that positional form too. Where both give the default
as a literal, the defaults must agree. A handful of torch's machinery arguments that dyntorch
leaves to Python's own "unexpected keyword" refusal are listed in ``MACHINERY``.
"""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import dyntorch  # noqa: E402
import dyntorch.nn.functional as DF  # noqa: E402

_STUBS = Path(torch.__file__).parent / "_C"

# torch arguments with no dyntorch meaning: memory layouts, named tensors, pinned host
# memory. Leaving them out of a signature makes Python refuse them by name, which is the
# clear error the project asks for.
MACHINERY = frozenset({"layout", "pin_memory", "memory_format", "names", "out"})

_MISSING = object()
_UNKNOWN = object()  # a default the stub writes as ``...`` or an expression


class Sig:
    """One torch overload: ordered ``(name, kind, default)`` triples."""

    def __init__(self, params, origin: str):
        self.params = params
        self.origin = origin

    def __repr__(self) -> str:
        return self.origin


def _literal(node):
    if node is None:
        return _MISSING
    try:
        v = ast.literal_eval(node)
    except ValueError:
        return _UNKNOWN
    return _UNKNOWN if v is Ellipsis else v


def _sig_from_ast(fn: ast.FunctionDef, skip_self: bool, origin: str) -> Sig:
    a = fn.args
    P = inspect.Parameter
    out = []
    pos = a.posonlyargs + a.args
    defaults = [None] * (len(pos) - len(a.defaults)) + list(a.defaults)
    for i, (arg, d) in enumerate(zip(pos, defaults)):
        if skip_self and i == 0:
            continue
        kind = P.POSITIONAL_ONLY if i < len(a.posonlyargs) else P.POSITIONAL_OR_KEYWORD
        out.append((arg.arg, kind, _literal(d)))
    if a.vararg is not None:
        out.append((a.vararg.arg, P.VAR_POSITIONAL, _MISSING))
    for arg, d in zip(a.kwonlyargs, a.kw_defaults):
        out.append((arg.arg, P.KEYWORD_ONLY, _literal(d)))
    if a.kwarg is not None:
        out.append((a.kwarg.arg, P.VAR_KEYWORD, _MISSING))
    return Sig(out, origin)


def _sig_from_inspect(fn, skip_self: bool, origin: str) -> Sig | None:
    try:
        s = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    out = []
    for i, p in enumerate(s.parameters.values()):
        if skip_self and i == 0:
            continue
        d = _MISSING if p.default is p.empty else p.default
        if d is not _MISSING and not isinstance(d, (int, float, str, bool, tuple, type(None))):
            d = _UNKNOWN
        out.append((p.name, p.kind, d))
    return Sig(out, origin)


def _sig_from_doc(fn, origin: str) -> Sig | None:
    """``linalg.norm(A, ord=None, dim=None, *, out=None) -> Tensor`` from a builtin's doc."""
    doc = (getattr(fn, "__doc__", None) or "").strip()
    if not doc:
        return None
    line = doc.splitlines()[0]
    start, end = line.find("("), line.rfind(")")
    if start < 0 or end < start:
        return None
    try:
        tree = ast.parse(f"def f{line[start:end + 1]}: pass")
    except SyntaxError:
        return None
    return _sig_from_ast(tree.body[0], False, origin)


def _stub_defs(path: Path, cls: str | None = None) -> dict:
    tree = ast.parse(path.read_text())
    body = tree.body
    if cls is not None:
        body = next(n for n in body if isinstance(n, ast.ClassDef) and n.name == cls).body
    out: dict = {}
    for node in body:
        if isinstance(node, ast.FunctionDef):
            out.setdefault(node.name, []).append(
                _sig_from_ast(node, cls is not None, f"{path.name}:{node.lineno}"))
    return out


_P = inspect.Parameter
# Where a stub's names differ from what torch itself accepts (each checked against torch in
# test_stub_corrections_match_torch below), the names torch really takes.
CORRECTIONS = {
    # the stub says `mode`; torch takes requires_grad=
    ("Tensor", "requires_grad_"): [Sig([("requires_grad", _P.POSITIONAL_OR_KEYWORD, True)],
                                       "requires_grad_(requires_grad=True)")],
    # `from` is a Python keyword, so the stub writes from_; torch takes **{"from": ...}
    ("Tensor", "uniform_"): [Sig([("from", _P.KEYWORD_ONLY, 0), ("to", _P.KEYWORD_ONLY, 1)],
                                 "uniform_(from=0, to=1)")],
    # the stub says `self`; torch takes input=
    ("torch", "numel"): [Sig([("input", _P.POSITIONAL_OR_KEYWORD, _MISSING)], "numel(input)")],
    # the stubs name `num`, but torch takes no keywords here
    ("torch", "set_num_threads"): [Sig([("num", _P.POSITIONAL_ONLY, _MISSING)],
                                       "set_num_threads(num, /)")],
    ("torch", "set_num_interop_threads"): [Sig([("num", _P.POSITIONAL_ONLY, _MISSING)],
                                               "set_num_interop_threads(num, /)")],
}

_VF = _stub_defs(_STUBS / "_VariableFunctions.pyi")
_NN = _stub_defs(_STUBS / "_nn.pyi")
_TB = _stub_defs(_STUBS / "__init__.pyi", "TensorBase")


def _torch_overloads(space: str, name: str) -> list:
    if (space, name) in CORRECTIONS:
        return CORRECTIONS[space, name]
    if space == "Tensor":
        fn = torch.Tensor.__dict__.get(name)
        if inspect.isfunction(fn):  # torch writes this method in Python: that is the truth
            s = _sig_from_inspect(fn, True, f"torch.Tensor.{name}")
            return [s] if s else []
        return _TB.get(name, [])
    mod = {"torch": torch, "F": torch.nn.functional, "linalg": torch.linalg,
           "special": torch.special}[space]
    fn = getattr(mod, name)
    if inspect.isfunction(fn):
        s = _sig_from_inspect(inspect.unwrap(fn), False, f"{mod.__name__}.{name}")
        return [s] if s else []
    if space in ("torch", "F") and (name in _VF or name in _NN):
        return _VF.get(name, []) + _NN.get(name, [])
    s = _sig_from_doc(fn, f"{mod.__name__}.{name}.__doc__")
    return [s] if s else []


def _dy_signature(fn):
    if isinstance(fn, dyntorch._dispatch.OpDef):
        # An op object forwards keywords to its forward as attributes, not as inputs, so
        # only positions reach the inputs: say so, and torch's keyword calls fail here.
        params = list(inspect.signature(fn.forward).parameters.values())[1:]
        return inspect.Signature([p.replace(kind=p.POSITIONAL_ONLY, default=p.empty)
                                  for p in params])
    return inspect.signature(fn)


def _check(dy_fn, overloads, skip_self: bool) -> str | None:
    """None when ``dy_fn`` takes torch's names; else why not."""
    try:
        sig = _dy_signature(dy_fn)
    except (TypeError, ValueError):
        return None  # a builtin or a class with no readable signature: nothing to compare
    if skip_self:
        ps = list(sig.parameters.values())
        if ps and ps[0].kind not in (ps[0].VAR_POSITIONAL, ps[0].VAR_KEYWORD):
            sig = sig.replace(parameters=ps[1:])
        elif not ps:
            return "takes no self"
    P = inspect.Parameter
    kw_forms = [o for o in overloads if not any(k is P.VAR_POSITIONAL for _, k, _ in o.params)]
    var_forms = [o for o in overloads if o not in kw_forms]
    problems = []

    def try_form(o, by_keyword: bool) -> str | None:
        pos, req, full = [], {}, {}
        for name, kind, default in o.params:
            if name in MACHINERY or kind is P.VAR_KEYWORD:
                continue
            if kind is P.VAR_POSITIONAL:
                pos += [1, 2]
                continue
            if kind is P.POSITIONAL_ONLY or (not by_keyword and default is _MISSING
                                             and kind is P.POSITIONAL_OR_KEYWORD):
                if default is _MISSING:
                    pos.append(object())
                continue
            if default is _MISSING:
                req[name] = object()
            else:
                full[name] = default
        for call in (req, {**req, **full}):
            try:
                sig.bind(*pos, **call)
            except TypeError as e:
                return f"{o}: {e} (torch takes {[n for n, *_ in o.params]})"
        for name, default in full.items():
            p = sig.parameters.get(name)
            if p is None or p.default is p.empty or default is _UNKNOWN:
                continue
            mine = p.default
            if {mine, default} <= {None, ()}:  # both say "not given" (stride=(), dims=())
                continue
            if isinstance(mine, (int, float, str, bool, tuple, type(None))) and (
                    mine != default or type(mine) is not type(default)) and not (
                    {type(mine), type(default)} <= {int, float} and mine == default):
                return f"{o}: default {name}={mine!r}, torch has {name}={default!r}"
        return None

    if kw_forms:
        errs = [try_form(o, True) for o in kw_forms]
        if all(errs):
            problems.append(errs[0] if len(errs) == 1 else "; ".join(e for e in errs))
    if var_forms:
        errs = [try_form(o, True) for o in var_forms]
        if all(errs):
            problems.append(errs[0])
    return " | ".join(problems) or None


def _public(mod) -> dict:
    names = getattr(mod, "__all__", None) or [n for n in dir(mod) if not n.startswith("_")]
    return {n: getattr(mod, n) for n in names if callable(getattr(mod, n, None))
            and not isinstance(getattr(mod, n), type)}


def _shared() -> list:
    """(space, name, dyntorch callable, is_method) for every name dyntorch shares with torch."""
    out = []
    spaces = [("torch", dyntorch, torch), ("F", DF, torch.nn.functional)]
    for extra in ("linalg", "special"):
        try:
            spaces.append((extra, getattr(dyntorch, extra), getattr(torch, extra)))
        except AttributeError:
            pass
    for space, dmod, tmod in spaces:
        for name, fn in sorted(_public(dmod).items()):
            tfn = getattr(tmod, name, None)
            if tfn is None or isinstance(tfn, type) or not callable(tfn):
                continue
            if getattr(fn, "__module__", "") and not str(
                    getattr(fn, "__module__", "dyntorch")).startswith("dyntorch") and not \
                    isinstance(fn, dyntorch._dispatch.OpDef):
                continue  # e.g. a typing helper re-exported by accident
            out.append((space, name, fn, False))
    for name in sorted(dir(dyntorch.Tensor)):
        if name.startswith("_"):
            continue
        fn = dyntorch.Tensor.__dict__.get(name)
        if not (inspect.isfunction(fn)) or not hasattr(torch.Tensor, name):
            continue
        if not callable(getattr(torch.Tensor, name)):
            continue
        out.append(("Tensor", name, fn, True))
    return out


SHARED = _shared()


def _forwarding(fn) -> bool:
    try:
        kinds = [p.kind for p in inspect.signature(fn).parameters.values()]
    except (TypeError, ValueError):
        return False
    P = inspect.Parameter
    return kinds[-2:] == [P.VAR_POSITIONAL, P.VAR_KEYWORD] and len(kinds) <= 3


def _resolve(space: str, name: str, fn):
    """In-place twins (``x.pow_``, ``F.elu_``) forward ``*args, **kwargs`` to their
    out-of-place op, so that op's signature is what a caller's keywords meet."""
    if name.endswith("_") and _forwarding(fn):
        twin = (dyntorch.Tensor.__dict__.get(name[:-1]) if space == "Tensor"
                else getattr(DF, name[:-1], None))
        if twin is not None:
            return twin
    return fn


def _python_modules() -> list:
    """(dyntorch module, torch module) pairs whose torch side is written in Python."""
    import dyntorch.amp
    import dyntorch.autograd
    import dyntorch.cuda
    import dyntorch.nn.init
    import dyntorch.nn.utils

    return [(dyntorch.nn.init, torch.nn.init), (dyntorch.autograd, torch.autograd),
            (dyntorch.nn.utils, torch.nn.utils), (dyntorch.cuda, torch.cuda),
            (dyntorch.amp, torch.amp)]


def _python_shared() -> list:
    out = []
    for dmod, tmod in _python_modules():
        for name, fn in sorted(_public(dmod).items()):
            tfn = getattr(tmod, name, None)
            if tfn is None or isinstance(tfn, type) or not callable(tfn):
                continue
            tfn = inspect.unwrap(tfn)
            if inspect.isfunction(tfn):
                out.append((f"{tmod.__name__}.{name}", fn,
                            _sig_from_inspect(tfn, False, f"{tmod.__name__}.{name}")))
    return out


def _failures() -> dict:
    fails = {}
    for where, fn, sig in _python_shared():
        why = _check(fn, [sig], False) if sig is not None else None
        if why:
            fails[where] = why
    for space, name, fn, is_method in SHARED:
        fn = _resolve(space, name, fn)
        overloads = [o for o in _torch_overloads(space, name) if o is not None]
        if not overloads:
            continue
        why = _check(fn, overloads, is_method)
        if why:
            fails[f"{space}.{name}"] = why
    return fails


def test_many_names_are_compared():
    # the walk itself must find the shared surface, or the real test passes vacuously
    spaces = {s for s, *_ in SHARED}
    assert {"torch", "F", "Tensor", "special", "linalg"} <= spaces
    assert len(SHARED) > 400
    assert len(_python_shared()) > 20  # nn.init, autograd, nn.utils, cuda, amp


def test_checker_catches_a_wrong_name():
    o = Sig([("input", inspect.Parameter.POSITIONAL_OR_KEYWORD, _MISSING),
             ("dims", inspect.Parameter.POSITIONAL_OR_KEYWORD, _MISSING)], "flip")

    def bad(input, *dims):
        return input

    def good(input, dims):
        return input

    assert _check(bad, [o], False)
    assert _check(good, [o], False) is None


def test_checker_catches_a_wrong_default():
    o = Sig([("input", inspect.Parameter.POSITIONAL_OR_KEYWORD, _MISSING),
             ("dim", inspect.Parameter.POSITIONAL_OR_KEYWORD, 0)], "cumsum-like")

    def bad(input, dim=1):
        return input

    assert "default" in _check(bad, [o], False)


def test_checker_wants_the_star_args_form_too():
    P = inspect.Parameter
    kw = Sig([("shape", P.POSITIONAL_OR_KEYWORD, _MISSING)], "reshape(shape)")
    var = Sig([("shape", P.VAR_POSITIONAL, _MISSING)], "reshape(*shape)")

    def only_kw(self, shape):
        return self

    def both(self, *shape, **kw):
        return self

    def both_named(self, *args, shape=None):
        return self

    assert _check(only_kw, [kw, var], True)
    assert _check(both_named, [kw, var], True) is None
    assert _check(both, [kw, var], True) is None


def test_every_shared_name_takes_torchs_keywords():
    fails = _failures()
    report = "\n".join(f"{k}: {v}" for k, v in sorted(fails.items()))
    assert not fails, f"{len(fails)} of {len(SHARED)} shared names refuse torch's names:\n{report}"


def test_stub_corrections_match_torch():
    x = torch.zeros(2, 3)
    x.clone().requires_grad_(requires_grad=True)
    with pytest.raises(TypeError):
        x.clone().requires_grad_(mode=True)
    r = x.clone().uniform_(**{"from": 2.0, "to": 3.0})
    assert bool((r >= 2).all())
    with pytest.raises(TypeError):
        x.clone().uniform_(from_=2.0)
    assert torch.numel(input=x) == 6
    with pytest.raises(TypeError):
        torch.numel(self=x)
    n = torch.get_num_threads()
    with pytest.raises(TypeError):
        torch.set_num_threads(num=n)


def test_dyntorch_takes_the_corrected_forms():
    import dyntorch as dt

    x = dt.zeros(2, 3)
    r = x.clone().uniform_(**{"from": 2.0, "to": 3.0})
    assert bool((r >= 2).all()) and bool((r < 3).all())
    assert x.clone().requires_grad_(requires_grad=True).requires_grad
    assert dt.numel(input=x) == 6


def test_in_place_twins_take_torchs_keywords():
    import dyntorch as dt
    import dyntorch.nn.functional as F

    x = dt.tensor([[1.0, -2.0, 3.0]])
    assert x.clone().pow_(exponent=2).tolist() == [[1.0, 4.0, 9.0]]
    assert x.clone().clamp_(min=0.0).tolist() == [[1.0, 0.0, 3.0]]
    assert x.clone().squeeze_(dim=0).shape == (3,)
    assert x.clone().transpose_(dim0=0, dim1=1).shape == (3, 1)
    assert x.clone().swapaxes_(axis0=0, axis1=1).shape == (3, 1)
    assert F.elu_(x.clone(), alpha=1.0)[0, 1].item() < 0
