"""``torch.autograd.functional``: vjp, jvp, jacobian, hessian, vhp and hvp.

All are built on ``autograd.grad`` (reverse mode): a Jacobian is one vector-Jacobian product
per output element, a jvp is the derivative of a vjp with respect to its vector (the
"double-vjp" trick), a Hessian is the Jacobian of the gradient.
"""
from __future__ import annotations

from .. import _backend as B
from .. import _dispatch as D
from .._tensor import Tensor, _make
from .functional_api import grad as _grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"]


def _as_tuple(x, what: str, fn: str) -> tuple[bool, tuple]:
    if isinstance(x, Tensor):
        return False, (x,)
    if isinstance(x, (tuple, list)):
        for i, t in enumerate(x):
            if not isinstance(t, Tensor):
                raise TypeError(f"The {what} given to {fn} must be either a Tensor or a tuple of "
                                f"Tensors but the value at index {i} has type {type(t).__name__}.")
        return True, tuple(x)
    raise TypeError(f"The {what} given to {fn} must be either a Tensor or a tuple of Tensors but "
                    f"the given {what} has type {type(x).__name__}.")


def _prep(inputs, create_graph: bool) -> tuple:
    # Fresh leaves (or graph-connected aliases under create_graph) so that the caller's
    # tensors get no .grad and the function's graph starts here.
    out = []
    for t in inputs:
        if create_graph and t._requires_grad:
            out.append(t.view_as(t))
        else:
            out.append(t.detach().requires_grad_(t.is_floating_point()))
    return tuple(out)


def _post(ts, create_graph: bool, is_tuple: bool):
    ts = tuple(t if create_graph or t is None else t.detach() for t in ts)
    return ts if is_tuple else ts[0]


def _grads(outputs, inputs, grad_outputs, create_graph, strict, fn):
    outs = [o for o in outputs if o._requires_grad]
    gos = [g for o, g in zip(outputs, grad_outputs) if o._requires_grad]
    if not outs:
        if strict:
            raise RuntimeError(f"{fn}: the output of the user-provided function does not require "
                               "gradients, but strict=True asks for a graph.")
        return tuple(None for _ in inputs)
    gs = _grad(outs, inputs, gos, retain_graph=True, create_graph=create_graph,
               allow_unused=True)
    if strict:
        for i, g in enumerate(gs):
            if g is None:
                raise RuntimeError(f"{fn}: the output of the user-provided function is "
                                   f"independent of input {i}. This is not allowed in strict "
                                   "mode.")
    return gs


def _zeros_for(gs, like):
    from .. import zeros_like

    return tuple(zeros_like(t) if g is None else g for g, t in zip(gs, like))


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), v^T J)``: vector-Jacobian product of ``func`` at ``inputs``."""
    in_tuple, ins = _as_tuple(inputs, "inputs", "vjp")
    prev = D.grad_enabled
    D.grad_enabled = True
    try:
        ins = _prep(ins, create_graph)
        out_tuple, outs = _as_tuple(func(*ins), "outputs of the user-provided function", "vjp")
        if v is None:
            if len(outs) != 1 or outs[0].numel() != 1:
                raise RuntimeError("The vector v can only be None if the user-provided function "
                                   "returns a single Tensor with a single element.")
            from .. import ones_like

            vs = (ones_like(outs[0]),)
        else:
            _, vs = _as_tuple(v, "v", "vjp")
            _check_shapes(vs, outs, "v", "outputs")
        gs = _grads(outs, ins, vs, create_graph, strict, "vjp")
        res = _zeros_for(gs, ins)
    finally:
        D.grad_enabled = prev
    return _post(outs, create_graph, out_tuple), _post(res, create_graph, in_tuple)


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), J v)``: Jacobian-vector product, via the derivative of a vjp."""
    from .. import zeros_like

    in_tuple, ins = _as_tuple(inputs, "inputs", "jvp")
    prev = D.grad_enabled
    D.grad_enabled = True
    try:
        ins = _prep(ins, create_graph)
        if v is None:
            if len(ins) != 1 or ins[0].numel() != 1:
                raise RuntimeError("The vector v can only be None if the input to the "
                                   "user-provided function is a single Tensor with a single "
                                   "element.")
            from .. import ones_like

            vs = (ones_like(ins[0]),)
        else:
            _, vs = _as_tuple(v, "v", "jvp")
            _check_shapes(vs, ins, "v", "inputs")
        out_tuple, outs = _as_tuple(func(*ins), "outputs of the user-provided function", "jvp")
        us = tuple(zeros_like(o).requires_grad_() for o in outs)
        gs = _grads(outs, ins, us, True, strict, "jvp")
        pairs = [(g, vv) for g, vv in zip(gs, vs) if g is not None and g._requires_grad]
        if pairs:
            res = _grad([g for g, _ in pairs], us, [vv for _, vv in pairs],
                        create_graph=create_graph, allow_unused=True)
            res = _zeros_for(res, outs)
        else:
            res = tuple(zeros_like(o) for o in outs)
    finally:
        D.grad_enabled = prev
    return _post(outs, create_graph, out_tuple), _post(res, create_graph, out_tuple)


def _check_shapes(vs, ts, vname, tname):
    if len(vs) != len(ts):
        raise RuntimeError(f"The given {vname} should contain a single Tensor per {tname[:-1]}; "
                           f"got {len(vs)} for {len(ts)} {tname}.")
    for i, (a, b) in enumerate(zip(vs, ts)):
        if tuple(a.shape) != tuple(b.shape):
            raise RuntimeError(f"Entry {i} in {vname} has shape {list(a.shape)} but the "
                               f"corresponding {tname[:-1]} has shape {list(b.shape)}; they "
                               "must match.")


def jacobian(func, inputs, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``, shaped ``output.shape + input.shape``.

    With several inputs (outputs) the result is a tuple over inputs (outputs), nested as torch
    does: ``J[i][j]`` is output ``i`` with respect to input ``j``.
    """
    from .. import stack, zeros

    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError('Expected strategy to be either "forward-mode" or "reverse-mode".')
    in_tuple, ins = _as_tuple(inputs, "inputs", "jacobian")
    prev = D.grad_enabled
    D.grad_enabled = True
    try:
        ins = _prep(ins, create_graph)
        out_tuple, outs = _as_tuple(func(*ins), "outputs of the user-provided function",
                                    "jacobian")
        jac = []
        for o in outs:
            n = o.numel()
            rows = [[] for _ in ins]
            xp = B.xp_of(o._data)
            for k in range(n):
                if o._requires_grad:
                    seed = xp.zeros(n, dtype=o._data.dtype)
                    seed[k] = 1  # one row of the Jacobian per output element
                    gs = _grads((o,), ins, (_make(seed.reshape(o._data.shape)),), create_graph,
                                strict, "jacobian")
                else:
                    if strict:
                        raise RuntimeError("jacobian: output does not require grad (strict)")
                    gs = tuple(None for _ in ins)
                for j, (g, t) in enumerate(zip(gs, ins)):
                    rows[j].append(zeros(t.shape, dtype=t.dtype, device=t.device)
                                   if g is None else g)
            per_in = []
            for j, t in enumerate(ins):
                if n:
                    m = stack(rows[j], 0).reshape(tuple(o.shape) + tuple(t.shape))
                else:
                    m = zeros(tuple(o.shape) + tuple(t.shape), dtype=t.dtype, device=t.device)
                per_in.append(m if create_graph else m.detach())
            jac.append(tuple(per_in) if in_tuple else per_in[0])
    finally:
        D.grad_enabled = prev
    return tuple(jac) if out_tuple else jac[0]


def hessian(func, inputs, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode"):
    """The Hessian of a scalar ``func``: the Jacobian of its gradient."""
    in_tuple, ins = _as_tuple(inputs, "inputs", "hessian")

    def gradient(*xs):
        out = func(*xs)
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError("The function given to hessian should return a single Tensor "
                               "with a single element.")
        gs = _grads((out.reshape(()),), xs, (None,), True, strict, "hessian")
        return _zeros_for(gs, xs)

    res = jacobian(gradient, ins, create_graph=create_graph, strict=strict)
    if not in_tuple:
        return res[0][0]
    return res


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), v^T H)`` for a scalar ``func``."""
    in_tuple, ins = _as_tuple(inputs, "inputs", "vhp")
    prev = D.grad_enabled
    D.grad_enabled = True
    try:
        ins = _prep(ins, create_graph)
        out = func(*ins)
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError("The function given to vhp should return a single Tensor with a "
                               "single element.")
        _, vs = _as_tuple(v, "v", "vhp") if v is not None else (False, None)
        if vs is None:
            if len(ins) != 1 or ins[0].numel() != 1:
                raise RuntimeError("The vector v can only be None if the input to the "
                                   "user-provided function is a single Tensor with a single "
                                   "element.")
            from .. import ones_like

            vs = (ones_like(ins[0]),)
        _check_shapes(vs, ins, "v", "inputs")
        gs = _grads((out,), ins, (None,), True, strict, "vhp")
        pairs = [(g, vv, j) for j, (g, vv) in enumerate(zip(gs, vs))
                 if g is not None and g._requires_grad]
        if pairs:
            res = _grad([g for g, _, _ in pairs], ins, [vv for _, vv, _ in pairs],
                        create_graph=create_graph, allow_unused=True)
            res = _zeros_for(res, ins)
        else:
            res = _zeros_for((None,) * len(ins), ins)
    finally:
        D.grad_enabled = prev
    return _post((out,), create_graph, False), _post(res, create_graph, in_tuple)


def hvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), H v)`` for a scalar ``func`` (equal to vhp: the Hessian is symmetric)."""
    return vhp(func, inputs, v, create_graph=create_graph, strict=strict)
