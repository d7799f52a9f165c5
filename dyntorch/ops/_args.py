"""Argument forms torch accepts beside the plain one, in one place for every public wrapper."""
from __future__ import annotations


def var_or_kw(op: str, args: tuple, name: str, value) -> tuple:
    """The size-like arguments of ``f(2, 3)``, ``f((2, 3))`` and ``f(name=(2, 3))`` alike.

    torch takes ``x.reshape(2, 3)`` and ``x.reshape(shape=(2, 3))``; Python cannot name a
    ``*args`` parameter by keyword, so the wrapper takes ``*args`` and a keyword ``name``.
    """
    if value is None:
        return args
    if args:
        raise TypeError(f"{op}() got multiple values for argument '{name}': give it either "
                        f"by position or as {name}=..., not both")
    return (value,)
