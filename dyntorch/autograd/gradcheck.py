"""``gradcheck`` and ``gradgradcheck``: analytic gradients against central differences.

The numerical Jacobian perturbs each input element by ``±eps`` and differences the outputs;
the analytical one asks autograd for one vector-Jacobian product per output element. Both are
laid out as torch does: ``J[input][in_elem, out_elem]``.
"""
from __future__ import annotations

import numpy as np

from .. import _backend as B
from .. import _dispatch as D
from .._tensor import Tensor, _make

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(RuntimeError):
    """Raised by :func:`gradcheck` when a check fails and ``raise_exception`` is True."""


def _tuple(x) -> tuple:
    if isinstance(x, Tensor):
        return (x,)
    return tuple(x)


def _outputs(fn, inputs) -> tuple:
    out = fn(*inputs)
    if isinstance(out, Tensor):
        return (out,)
    if isinstance(out, (tuple, list)):
        return tuple(out)
    raise TypeError(f"gradcheck: fn must return a Tensor or a tuple of Tensors, got "
                    f"{type(out).__name__}")


def _fmt(a: np.ndarray) -> str:
    from .. import tensor

    return repr(tensor(a, dtype=B.from_np(a.dtype)))


def _diff_inputs(inputs) -> list:
    idx = []
    for i, t in enumerate(inputs):
        if isinstance(t, Tensor) and t._requires_grad:
            if t._data.dtype != np.float64:
                raise ValueError(
                    f"gradcheck: Input #{i} requires gradient and is not a double precision "
                    f"floating point (it is {t.dtype}). Finite differences in lower precision "
                    "are too noisy to check against; pass float64 inputs, e.g. "
                    "`x.double().requires_grad_()`.")
            idx.append(i)
    if not idx:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but "
                         "none of them have requires_grad=True.")
    return idx


def _numerical(fn, inputs, idx, eps) -> list:
    """``num[k][j]``: Jacobian of output ``k`` w.r.t. input ``idx[j]``, (n_in, n_out)."""
    base = [B.to_numpy(o._data) if isinstance(o, Tensor) else None
            for o in _outputs(fn, inputs)]
    num = [[None] * len(idx) for _ in base]
    for j, i in enumerate(idx):
        t = inputs[i]
        orig = t._data
        xp = B.xp_of(orig)
        work = xp.array(orig, copy=True)  # contiguous scratch we may write into
        flat = work.reshape(-1)
        t._data = work
        try:
            n = flat.size
            cols = [np.zeros((n, b.size if b is not None else 0)) for b in base]
            for e in range(n):
                v = flat[e].item()
                # astype copies now: an output may be a view of the input being perturbed
                flat[e] = v - eps
                lo = [B.to_numpy(o._data).astype(np.float64) if isinstance(o, Tensor) else None
                      for o in _outputs(fn, inputs)]
                flat[e] = v + eps
                hi = [B.to_numpy(o._data).astype(np.float64) if isinstance(o, Tensor) else None
                      for o in _outputs(fn, inputs)]
                flat[e] = v
                for k, b in enumerate(base):
                    if b is None or hi[k] is None:
                        continue
                    d = (hi[k] - lo[k]) / (2 * eps)
                    cols[k][e] = d.reshape(-1)
        finally:
            t._data = orig
        for k in range(len(base)):
            num[k][j] = cols[k]
    return num


def _analytical(outputs, inputs, idx) -> tuple[list, list]:
    """Analytical Jacobians, plus a list of (kind, message) problems found."""
    from .functional_api import grad as agrad

    diff_in = [inputs[i] for i in idx]
    jac = [[None] * len(idx) for _ in outputs]
    problems = []
    for k, o in enumerate(outputs):
        if not (isinstance(o, Tensor) and o._requires_grad):
            continue
        od = o._data
        xp = B.xp_of(od)
        n_out = od.size
        for j, t in enumerate(diff_in):
            jac[k][j] = np.zeros((t._data.size, n_out))
        for m in range(n_out):
            seed = xp.zeros(od.size, dtype=od.dtype)
            seed[m] = 1
            gs = agrad((o,), diff_in, grad_outputs=(_make(seed.reshape(od.shape)),),
                       retain_graph=True, allow_unused=True)
            for j, (t, g) in enumerate(zip(diff_in, gs)):
                if g is None:
                    continue
                if g._data.shape != t._data.shape:
                    problems.append(f"Gradient has shape mismatch: grad for input {idx[j]} has "
                                    f"shape {list(g.shape)}, the input {list(t.shape)}")
                    continue
                if g._data.dtype != t._data.dtype:
                    problems.append(f"Gradient has dtype mismatch: grad for input {idx[j]} is "
                                    f"{g.dtype}, the input {t.dtype}")
                jac[k][j][:, m] = B.to_numpy(g._data).astype(np.float64).reshape(-1)
    return jac, problems


def _fail(msg: str, raise_exception: bool) -> bool:
    if raise_exception:
        raise GradcheckError(msg)
    return False


def gradcheck(func, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, nondet_tol: float = 0.0,
              check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
              check_batched_grad: bool = False, check_batched_forward_grad: bool = False,
              check_forward_ad: bool = False, check_backward_ad: bool = True,
              fast_mode: bool = False, masked: bool | None = None) -> bool:
    """Check analytical gradients of ``func`` against finite differences.

    Parameters
    ----------
    func : callable
        Takes ``inputs`` and returns a Tensor or a tuple of Tensors.
    inputs : Tensor or tuple
        Arguments of ``func``; those with ``requires_grad=True`` are checked and must be
        float64.
    eps, atol, rtol : float
        Perturbation size and the ``allclose`` tolerances
        (``|analytical - numerical| <= atol + rtol * |numerical|``).
    raise_exception : bool
        Raise :class:`GradcheckError` naming the output and input on failure (else return
        False).
    nondet_tol : float
        How far two backward passes on the same input may differ.

    Returns
    -------
    bool
        True when every Jacobian matches.
    """
    inputs = _tuple(inputs)
    idx = _diff_inputs(inputs)
    outputs = _outputs(func, inputs)
    diff_out = [isinstance(o, Tensor) and o._requires_grad for o in outputs]
    prev = D.grad_enabled
    D.grad_enabled = True
    try:
        num = _numerical(func, inputs, idx, eps)
        if not any(diff_out):
            for k, row in enumerate(num):
                for j, nj in enumerate(row):
                    if nj is not None and nj.size and not np.allclose(nj, 0, atol=atol):
                        return _fail("Numerical gradient for function expected to be zero "
                                     f"(output {k} does not require grad) but is not for "
                                     f"input {idx[j]}", raise_exception)
            return True
        ana, problems = _analytical(outputs, inputs, idx)
        if problems:
            return _fail(problems[0], raise_exception)
        for k, row in enumerate(ana):
            if not diff_out[k]:
                continue
            for j, a in enumerate(row):
                n = num[k][j]
                if not np.allclose(a, n, rtol=rtol, atol=atol):
                    return _fail(
                        f"Jacobian mismatch for output {k} with respect to input {idx[j]},\n"
                        f"numerical:{_fmt(n)}\nanalytical:{_fmt(a)}\n", raise_exception)
        again, _ = _analytical(outputs, inputs, idx)
        for k, row in enumerate(again):
            for j, a in enumerate(row):
                if a is not None and np.abs(a - ana[k][j]).max(initial=0.0) > nondet_tol:
                    return _fail(
                        "Backward is not reentrant, i.e., running backward with same input and "
                        "grad_output multiple times gives different values, although "
                        "analytical gradient matches numerical gradient. The tolerance for "
                        f"nondeterminism was {nondet_tol}.", raise_exception)
    finally:
        D.grad_enabled = prev
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, gen_non_contig_grad_outputs: bool = False,
                  raise_exception: bool = True, nondet_tol: float = 0.0,
                  check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
                  check_batched_grad: bool = False, check_fwd_over_rev: bool = False,
                  check_rev_over_rev: bool = True, fast_mode: bool = False,
                  masked: bool = False) -> bool:
    """Check second derivatives: gradcheck of ``grad(func(inputs), inputs, grad_outputs)``.

    ``grad_outputs`` default to random float64 tensors (requiring grad), so the check also
    covers the derivative with respect to the incoming gradient.
    """
    from .. import randn
    from .functional_api import grad as agrad

    inputs = _tuple(inputs)
    idx = _diff_inputs(inputs)
    outs = _outputs(func, inputs)
    diff_outs = [o for o in outs if isinstance(o, Tensor) and o._requires_grad]
    if grad_outputs is None:
        grad_outputs = tuple(
            randn(o.shape, dtype=o.dtype, device=o.device).requires_grad_()
            for o in diff_outs)
    else:
        grad_outputs = _tuple(grad_outputs)
    n_in = len(inputs)

    def second(*args):
        ins, gos = args[:n_in], args[n_in:]
        o = [x for x in _outputs(func, ins) if isinstance(x, Tensor) and x._requires_grad]
        gs = agrad(o, [ins[i] for i in idx], gos, create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(second, inputs + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, nondet_tol=nondet_tol)
