"""``functional_call``: run a module with some parameters/buffers swapped for given tensors."""
from __future__ import annotations

import contextlib

__all__ = ["functional_call"]


@contextlib.contextmanager
def _swapped(module, values: dict, strict: bool):
    saved = []
    try:
        for name, value in values.items():
            path, _, attr = name.rpartition(".")
            owner = module.get_submodule(path)
            if attr in owner._parameters:
                table = owner._parameters
            elif attr in owner._buffers:
                table = owner._buffers
            elif strict:
                raise RuntimeError(f"functional_call(): '{name}' is not a parameter or buffer "
                                   f"of {type(module).__name__}")
            else:
                continue
            saved.append((table, attr, table[attr]))
            table[attr] = value
        yield
    finally:
        for table, attr, old in reversed(saved):
            table[attr] = old


def functional_call(module, parameter_and_buffer_dicts, args=None, kwargs=None, *,
                    tie_weights: bool = True, strict: bool = False):
    """Call ``module(*args, **kwargs)`` using the given tensors in place of its parameters and
    buffers (by qualified name), without changing the module."""
    dicts = parameter_and_buffer_dicts
    if isinstance(dicts, (list, tuple)):
        merged: dict = {}
        for d in dicts:
            merged.update(d)
        dicts = merged
    if tie_weights:  # a tied parameter replaced under one name is replaced under all
        by_id = {}
        for n, p in module.named_parameters(remove_duplicate=False):
            by_id.setdefault(id(p), []).append(n)
        extra = {}
        for names in by_id.values():
            given = [n for n in names if n in dicts]
            if given:
                for n in names:
                    if n not in dicts:
                        extra[n] = dicts[given[0]]
        dicts = {**dicts, **extra}
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    with _swapped(module, dicts, strict):
        return module(*args, **(kwargs or {}))
