"""Grad mode: ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``inference_mode``."""
from __future__ import annotations

import functools

from .. import _dispatch as D


def is_grad_enabled() -> bool:
    return D.grad_enabled


class _GradMode:
    """A context manager that is also a decorator."""

    _value = True

    def __init__(self):
        self._prev = []

    def __enter__(self):
        self._prev.append(D.grad_enabled)
        D.grad_enabled = self._value

    def __exit__(self, *exc):
        D.grad_enabled = self._prev.pop()
        return False

    def __call__(self, fn):
        if isinstance(fn, type):
            raise TypeError(f"{type(self).__name__} cannot decorate a class")

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__._clone(self):
                return fn(*args, **kwargs)

        return wrapper

    def _clone(self):
        return self.__class__()


class no_grad(_GradMode):
    """Disable gradient recording inside the block (context manager or decorator)."""

    _value = False


class enable_grad(_GradMode):
    """Enable gradient recording inside the block (context manager or decorator)."""

    _value = True


class set_grad_enabled(_GradMode):
    """Set gradient recording on or off; works as a function, context manager or decorator."""

    def __init__(self, mode: bool):
        super().__init__()
        self._value = bool(mode)
        self._prev.append(D.grad_enabled)
        D.grad_enabled = self._value

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        D.grad_enabled = self._prev.pop()
        return False

    def __call__(self, fn):
        # Used as a decorator, the mode applies only inside the function (as in torch): undo
        # the switch __init__ made at decoration time.
        if self._prev:
            D.grad_enabled = self._prev.pop()
        return super().__call__(fn)

    def _clone(self):
        m = _GradMode()
        m._value = self._value
        return m


class inference_mode(_GradMode):
    """Like ``no_grad`` (dyntorch has no separate inference tensors)."""

    def __init__(self, mode: bool = True):
        super().__init__()
        self._value = not mode

    def _clone(self):
        return inference_mode(not self._value)
