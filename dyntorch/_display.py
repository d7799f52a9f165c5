"""How objects of the lower floors show themselves in a notebook, filled in from above.

A ``BackwardStepper`` (``dyntorch.debug``) displays as an interactive debugger, but ``debug``
must not import ``viz``, which draws it. So the stepper asks this registry, and the reader that
can draw it (``dyntorch.viz``) registers a view factory for its type when it is imported.

The registry names its display plug-ins (:data:`PLUGINS`) the way packages name entry points:
they are imported on the first *rich* display only (a notebook asking for a mime bundle), never
by ``import dyntorch`` and never by the floors below.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["PLUGINS", "mimebundle", "register", "view"]

#: Modules that register display factories, imported on the first rich display.
PLUGINS: list[str] = ["dyntorch.viz"]

_factories: dict[type, Callable[..., Any]] = {}
_loaded = False


def register(cls: type, factory: Callable[..., Any]) -> Callable[[], None]:
    """Display instances of ``cls`` (and subclasses) as ``factory(obj, **kw)``.

    ``factory`` returns a displayable object (one with ``_repr_mimebundle_``, e.g. a widget).
    Returns a function that removes the registration.
    """
    _factories[cls] = factory

    def remove() -> None:
        if _factories.get(cls) is factory:
            del _factories[cls]

    return remove


def _find(cls: type) -> Callable[..., Any] | None:
    for k in cls.__mro__:
        f = _factories.get(k)
        if f is not None:
            return f
    return None


def _load_plugins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in PLUGINS:
        try:
            importlib.import_module(name)
        except ImportError:  # a plug-in with missing extras: its objects display as text
            pass


def view(obj: Any, **kw: Any) -> Any:
    """The rich view of ``obj`` (e.g. a stepper's debugger widget), built by its factory.

    Raises ``LookupError`` when nothing can draw ``obj`` here.
    """
    f = _find(type(obj))
    if f is None:
        _load_plugins()
        f = _find(type(obj))
    if f is None:
        raise LookupError(f"no notebook view is registered for {type(obj).__name__}; "
                          "install the notebook extras (pip install 'dyntorch[notebook]')")
    return f(obj, **kw)


def mimebundle(obj: Any, include=None, exclude=None) -> dict | tuple | None:
    """The mime bundle of ``obj``'s rich view, or None when it has none (show it as text)."""
    try:
        v = view(obj)
    except Exception:  # noqa: BLE001 - a display must never raise into the notebook
        return None
    rep = getattr(v, "_repr_mimebundle_", None)
    return None if rep is None else rep(include=include, exclude=exclude)
