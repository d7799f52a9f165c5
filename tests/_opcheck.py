"""Shared helpers for the op tests: run the same code on dyntorch and on torch, compare.

``fn(m, *xs)`` is written once against the torch API; ``m`` is the module (``dyntorch`` or
``torch``) and ``xs`` the inputs built from the same NumPy arrays. Float arrays become float64
tensors that require grad; integer and bool arrays become plain tensors; anything else is passed
through. Values and gradients (for a random upstream gradient) must agree.
"""
from __future__ import annotations

import numpy as np

import dyntorch


def np_of(x) -> np.ndarray:
    """A NumPy copy of a dyntorch or torch tensor (or a number)."""
    if hasattr(x, "detach"):
        x = x.detach()
        if hasattr(x, "cpu"):
            x = x.cpu()
        return np.array(x.numpy())
    return np.asarray(x)


def make(lib, a, device="cpu", grad=True):
    """A tensor of ``lib`` from ``a``; float arrays require grad when ``grad``."""
    if not isinstance(a, np.ndarray):
        return a
    if lib is dyntorch:
        t = dyntorch.tensor(a.copy(), device=device)
    else:
        t = lib.from_numpy(a.copy())
    if grad and a.dtype.kind == "f":
        t.requires_grad_(True)
    return t


def _flat(out):
    if isinstance(out, (tuple, list)):
        res = []
        for o in out:
            res.extend(_flat(o))
        return res
    return [out]


def run(lib, fn, arrays, device="cpu", grad=True):
    xs = [make(lib, a, device, grad) for a in arrays]
    return xs, fn(lib, *xs)


def assert_close(a, b, rtol=1e-7, atol=1e-9, what=""):
    a, b = np_of(a), np_of(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != torch {b.shape}"
    if a.dtype.kind in "biu" or b.dtype.kind in "biu":
        np.testing.assert_array_equal(a, b, err_msg=what)
    else:
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


def check(torch, fn, *arrays, device="cpu", grad=True, rtol=1e-7, atol=1e-9, seed=1,
          check_dtype=True):
    """Compare values and input gradients of ``fn`` between dyntorch and torch."""
    dxs, dout = run(dyntorch, fn, arrays, device, grad)
    txs, tout = run(torch, fn, arrays, "cpu", grad)
    douts, touts = _flat(dout), _flat(tout)
    assert len(douts) == len(touts), f"{len(douts)} outputs vs torch's {len(touts)}"
    for i, (d, t) in enumerate(zip(douts, touts)):
        if check_dtype and hasattr(t, "dtype"):
            assert str(d.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], \
                f"output {i}: dtype {d.dtype} != torch {t.dtype}"
        assert_close(d, t, rtol, atol, f"output {i}")
    if not grad:
        return dout
    rng = np.random.default_rng(seed)
    pairs = [(d, t) for d, t in zip(douts, touts)
             if hasattr(t, "requires_grad") and t.requires_grad]
    dins = [x for x in dxs if isinstance(x, dyntorch.Tensor) and x.requires_grad]
    tins = [x for x in txs if hasattr(x, "requires_grad") and x.requires_grad]
    assert len(pairs) == len([d for d in douts if isinstance(d, dyntorch.Tensor)
                              and d.requires_grad]), "requires_grad of outputs differs"
    if not pairs or not tins:
        return dout
    ws = [rng.standard_normal(np_of(t).shape) for _, t in pairs]
    tg = torch.autograd.grad([t for _, t in pairs], tins,
                             [torch.from_numpy(w.astype(np_of(t).dtype))
                              for w, (_, t) in zip(ws, pairs)], allow_unused=True)
    dg = dyntorch.autograd.grad([d for d, _ in pairs], dins,
                                [dyntorch.tensor(w.astype(np_of(t).dtype), device=device)
                                 for w, (_, t) in zip(ws, pairs)], allow_unused=True)
    for k, (a, b, x) in enumerate(zip(dg, tg, tins)):
        a = np.zeros(x.shape) if a is None else np_of(a)
        b = np.zeros(x.shape) if b is None else np_of(b)
        assert_close(a, b, rtol, atol, f"grad of input {k}")
    return dout


def check_double(torch, fn, *arrays, device="cpu", rtol=1e-6, atol=1e-8, seed=2):
    """Second-order check: grad of <grad(fn), v> w.r.t. the inputs, against torch."""
    res = []
    for lib, dev in ((dyntorch, device), (torch, "cpu")):
        r = np.random.default_rng(seed)  # the same draws for both libraries

        def const(v, lib=lib, dev=dev):
            return lib.tensor(v) if lib is torch else dyntorch.tensor(v, device=dev)

        xs = [make(lib, a, dev) for a in arrays]
        ins = [x for x in xs if getattr(x, "requires_grad", False)]
        out = fn(lib, *xs)
        g1 = lib.autograd.grad([out], ins, [const(r.standard_normal(tuple(out.shape)))],
                               create_graph=True)
        s = sum((g * const(r.standard_normal(tuple(g.shape)))).sum() for g in g1)
        g2 = lib.autograd.grad([s], ins, allow_unused=True)
        res.append(([np_of(g) for g in g1],
                    [None if g is None else np_of(g) for g in g2]))
    (d1, d2), (t1, t2) = res
    for a, b in zip(d1, t1):
        assert_close(a, b, rtol, atol, "first-order grad")
    for a, b in zip(d2, t2):
        a = np.zeros_like(b) if a is None and b is not None else a
        b = np.zeros_like(a) if b is None and a is not None else b
        if a is not None:
            assert_close(a, b, rtol, atol, "second-order grad")


def finite_diff(fn, *arrays, eps=1e-6, rtol=1e-5, atol=1e-7, seed=3):
    """Check dyntorch's gradient of ``fn(dyntorch, *xs)`` against central differences."""
    rng = np.random.default_rng(seed)
    xs = [make(dyntorch, a) for a in arrays]
    out = fn(dyntorch, *xs)
    w = rng.standard_normal(tuple(out.shape))
    ins = [i for i, a in enumerate(arrays) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    grads = dyntorch.autograd.grad([out], [xs[i] for i in ins], [dyntorch.tensor(w)],
                                   allow_unused=True)

    def f(vals):
        with dyntorch.no_grad():
            ys = [dyntorch.tensor(v) if isinstance(v, np.ndarray) and v.dtype.kind == "f"
                  else make(dyntorch, v, grad=False) for v in vals]
            return float((np_of(fn(dyntorch, *ys)) * w).sum())

    for gi, i in zip(grads, ins):
        base = [a.copy() if isinstance(a, np.ndarray) else a for a in arrays]
        num = np.zeros(arrays[i].shape)
        for j in np.ndindex(arrays[i].shape):
            hi = [b.copy() if isinstance(b, np.ndarray) else b for b in base]
            lo = [b.copy() if isinstance(b, np.ndarray) else b for b in base]
            hi[i][j] += eps
            lo[i][j] -= eps
            num[j] = (f(hi) - f(lo)) / (2 * eps)
        got = np.zeros(arrays[i].shape) if gi is None else np_of(gi)
        np.testing.assert_allclose(got, num, rtol=rtol, atol=atol,
                                   err_msg=f"finite differences, input {i}")
