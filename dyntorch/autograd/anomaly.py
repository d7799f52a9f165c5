"""Anomaly mode: stop backward at the first node that produces NaN or Inf.

It watches the engine through ``engine.observers`` (one callable per yielded Step), so with
anomaly mode off backward pays nothing. The error names the node, which of its outputs went
bad, and the user's forward line and module scope that created the node.
"""
from __future__ import annotations

from .. import _backend as B
from .. import _dispatch as D
from .._source import where as source_where
from . import engine

__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
           "is_anomaly_check_nan_enabled"]

_state = {"enabled": False, "check_nan": True}
_saved_record: list = []


def is_anomaly_enabled() -> bool:
    return _state["enabled"]


def is_anomaly_check_nan_enabled() -> bool:
    return _state["enabled"] and _state["check_nan"]


def where(node) -> str:
    """Human description of where ``node`` came from: source line and module scope."""
    parts = []
    src = node.source
    if src is not None:
        text = node.source_text
        parts.append(source_where(src) + (f": `{text}`" if text else ""))
    if node.scope:
        parts.append(f"in module '{node.scope}'")
    return ", ".join(parts)


def _bad(arr) -> bool:
    if arr.dtype.kind != "f":
        return False
    xp = B.xp_of(arr)
    return not bool(xp.isfinite(arr).all())


def _observe(step) -> None:
    if not _state["check_nan"]:
        return
    node = step.node
    for i, g in enumerate(step.grad_inputs):  # public Step API: Tensors or None
        if g is not None and _bad(g._data):
            xp_arr = g._data
            kind = "nan" if bool(B.xp_of(xp_arr).isnan(xp_arr).any()) else "inf"
            msg = f"Function '{node.name()}' returned {kind} values in its {i}th output."
            loc = where(node)
            if loc:
                msg += f"\nThe forward call that created this node was at {loc}."
            else:
                msg += ("\nIts forward source line is unknown (source recording was off when "
                        "the node was created).")
            raise RuntimeError(msg)


def _on_error(node, err: BaseException) -> None:
    """Called by the engine when ``node``'s backward raised: name the node and its forward."""
    if not hasattr(err, "add_note"):
        return
    if any("Error detected in" in n for n in getattr(err, "__notes__", ())):
        return  # already annotated (an autograd.Function does it itself)
    loc = where(node)
    err.add_note(f"Error detected in {node.name()}"
                 + (f"; its forward call was at {loc}" if loc else ""))


_observe.on_error = _on_error


def _set(mode: bool, check_nan: bool) -> None:
    was = _state["enabled"]
    _state["enabled"] = bool(mode)
    _state["check_nan"] = bool(check_nan)
    if mode and not was:
        engine.observers.append(_observe)
        # Nodes must know their source line for the error to point at it.
        _saved_record.append(D.record_source)
        D.record_source = True
    elif was and not mode:
        if _observe in engine.observers:
            engine.observers.remove(_observe)
        if _saved_record:
            D.record_source = _saved_record.pop()


class set_detect_anomaly:
    """Turn anomaly detection on or off; a function call, or a context manager that restores.

    Parameters
    ----------
    mode : bool
        On or off.
    check_nan : bool
        Raise when a backward node returns NaN or Inf.
    """

    def __init__(self, mode: bool, check_nan: bool = True):
        self._prev = (_state["enabled"], _state["check_nan"])
        _set(mode, check_nan)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set(*self._prev)
        return False


class detect_anomaly:
    """Context manager (or decorator): backward raises at the first node returning NaN/Inf.

    The error names the node (e.g. ``LogBackward0``), the index of the bad gradient and the
    forward source line and module scope of the node.
    """

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan
        self._prev = []

    def __enter__(self):
        self._prev.append((_state["enabled"], _state["check_nan"]))
        _set(True, self.check_nan)
        return self

    def __exit__(self, *exc):
        _set(*self._prev.pop())
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        return wrapper
