"""Losses. cross_entropy (log_softmax + nll fused), nll_loss, binary cross-entropies are fused
ops with analytic derivatives; the regression losses are short composites of other ops.

Every index-target loss is written in one form: per element, loss = -sum_c q_c * logp_c
for a constant ``q`` (target weight, label smoothing, ignore mask folded in), so that
d loss / d logits = p * sum(q) - q.
"""
from __future__ import annotations

from .. import _backend as B
from .._dispatch import op
from .._tensor import Tensor, _make
from .activation import _sum_keep, log_softmax_array, log_softmax_ns

_REDUCTIONS = ("none", "mean", "sum")


def _raw(a):
    return a._data if isinstance(a, Tensor) else a


def _index_parts(xp, t, w, c, ignore_index, dtype):
    """(valid mask, safe targets, per-element target weights) for class-index targets."""
    valid = t != ignore_index
    tt = xp.where(valid, t, 0)
    if w is not None:
        wt = w[tt] * valid
    else:
        wt = valid.astype(dtype)
    return valid, tt, wt


def _q_index(xp, x, t, w, ignore_index, label_smoothing):
    """The constant q (shape of x, class axis 1) of a class-index target."""
    c = x.shape[1]
    wshape = (c,) + (1,) * (x.ndim - 2)
    valid, tt, wt = _index_parts(xp, t, w, c, ignore_index, x.dtype)
    onehot = xp.arange(c).reshape(wshape) == xp.expand_dims(tt, 1)
    q = onehot * xp.expand_dims(wt * (1.0 - label_smoothing), 1)
    if label_smoothing:
        sm = (w.reshape(wshape) if w is not None else 1.0) * (label_smoothing / c)
        q = q + sm * xp.expand_dims(valid, 1)
    return q.astype(x.dtype, copy=False), wt


def _reduce_arr(loss, reduction, denom):
    if reduction == "none":
        return loss
    s = loss.sum()
    return s if reduction == "sum" else s / denom


def _grad_scale(ns, g, reduction, denom):
    """The upstream gradient broadcastable against (N, C, ...) arrays."""
    if reduction == "none":
        return ns.expand_dims(g, 1)
    return g if reduction == "sum" else g / denom


def _const(ns, a):
    return a if ns.xp is not None else _make(a)


# ----------------------------------------------------------------------------- cross entropy
@op(name="cross_entropy", aux=("probs",), backward_name="CrossEntropyLossBackward0")
def _cross_entropy(xp, x, t, w, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """(loss, softmax(x)). The loss needs log-probabilities only at the targets (and their
    weighted class sum under label smoothing), logp = x - logsumexp(x), so no full-size
    log-softmax is built; the probabilities are the auxiliary output backward reads, so it
    needs no exp of its own (ab.py's cross_entropy case: one full-size exp pass less)."""
    c = x.shape[1]
    m = x.max(axis=1, keepdims=True)
    p = xp.subtract(x, m)  # a new array: exp and normalise it in place
    with _quiet(xp):  # rows of -inf give NaN as in torch, without NumPy's warning
        xp.exp(p, out=p)
        s = _sum_keep(xp, p, 1)
        p /= s
        lse = (m + xp.log(s))[:, 0]
    valid, tt, wt = _index_parts(xp, t, w, c, ignore_index, x.dtype)
    picked = xp.take_along_axis(x, xp.expand_dims(tt, 1), axis=1)[:, 0] - lse
    loss = -picked * wt
    if label_smoothing:
        if w is not None:
            wx = xp.tensordot(w, x, axes=([0], [1])) if x.ndim > 2 else x @ w
            total = w.sum()
        else:
            wx, total = x.sum(axis=1), c
        smooth = -(wx - total * lse) * valid  # -sum_c w_c logp_c
        loss = (1.0 - label_smoothing) * loss + (label_smoothing / c) * smooth
    return _reduce_arr(loss.astype(x.dtype, copy=False), reduction, wt.sum()), p


class _quiet:
    __slots__ = ("xp", "old")

    def __init__(self, xp):
        self.xp = xp

    def __enter__(self):
        if self.xp.__name__ == "numpy":
            self.old = self.xp.seterr(invalid="ignore", over="ignore", divide="ignore")

    def __exit__(self, *a):
        if self.xp.__name__ == "numpy":
            self.xp.seterr(**self.old)


@_cross_entropy.def_derivative
def _(ns, g, _x, t, w, probs, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    x = _x  # only read under create_graph (the saved probabilities serve otherwise)
    pa = _raw(probs)
    xp = B.xp_of(pa)
    if ns.xp is not None:
        return _ce_grad_sparse(xp, g, pa, t, w, ignore_index, reduction, label_smoothing), \
            None, None
    q, wt = _q_index(xp, pa, _raw(t), _raw(w), ignore_index, label_smoothing)
    qs = q.sum(axis=1, keepdims=True)
    p = ns.exp(log_softmax_ns(ns, x, 1))
    scale = _grad_scale(ns, g, reduction, wt.sum())
    return scale * (p * _const(ns, qs) - _const(ns, q)), None, None


def _ce_grad_sparse(xp, g, p, t, w, ignore_index, reduction, ls):
    """The same gradient as p * sum(q) - q without building the dense q: scale the softmax
    per row, then subtract at each target (large vocabularies need no N x C one-hot)."""
    x = p
    c = x.shape[1]
    valid, tt, wt = _index_parts(xp, t, w, c, ignore_index, x.dtype)
    s = g if reduction == "none" else (g if reduction == "sum" else g / wt.sum())
    s = xp.broadcast_to(xp.asarray(s, dtype=x.dtype), wt.shape)
    wsum = w.sum() if w is not None else float(c)
    qs = (1.0 - ls) * wt + (ls / c) * wsum * valid if ls else wt
    gx = xp.multiply(p, xp.expand_dims((qs * s).astype(x.dtype, copy=False), 1))
    if ls:
        wshape = (c,) + (1,) * (x.ndim - 2)
        wb = w.reshape(wshape) if w is not None else 1.0
        gx -= (ls / c) * wb * xp.expand_dims(valid * s, 1)
    gx[_target_index(xp, tt)] -= ((1.0 - ls) * wt * s).astype(gx.dtype, copy=False)
    return gx


def _target_index(xp, tt):
    """Index tuple picking element [n, tt[n, d...], d...] of an (N, C, d...) array; each
    position appears once, so in-place updates through it are exact (NumPy and CuPy)."""
    grids = []
    for ax, n in enumerate(tt.shape):
        shape = [1] * tt.ndim
        shape[ax] = n
        grids.append(xp.arange(n).reshape(shape))
    return (grids[0], tt) + tuple(grids[1:])


@op(name="cross_entropy_probs", backward_name="CrossEntropyLossBackward0")
def _cross_entropy_probs(xp, x, t, w, reduction="mean", label_smoothing=0.0):
    c = x.shape[1]
    q = t * (1.0 - label_smoothing) + label_smoothing / c if label_smoothing else t
    if w is not None:
        q = q * w.reshape((c,) + (1,) * (x.ndim - 2))
    loss = -(q * log_softmax_array(xp, x, 1)).sum(axis=1)
    return _reduce_arr(loss, reduction, x.size // c)


@_cross_entropy_probs.def_derivative
def _(ns, g, x, t, w, reduction="mean", label_smoothing=0.0, needs=(True, True, True)):
    c = x.shape[1]
    wb = ns.reshape(w, (c,) + (1,) * (x.ndim - 2)) if w is not None else None
    q = t * (1.0 - label_smoothing) + label_smoothing / c if label_smoothing else t
    if wb is not None:
        q = q * wb
    logp = log_softmax_ns(ns, x, 1)
    n = 1
    for s in x.shape:
        n *= s
    scale = _grad_scale(ns, g, reduction, n // c)
    gx = scale * (ns.exp(logp) * ns.sum(q, 1, True) - q) if needs[0] else None
    gt = None
    if needs[1]:
        gt = -scale * logp * (1.0 - label_smoothing)
        if wb is not None:
            gt = gt * wb
    return gx, gt, None


# ----------------------------------------------------------------------------- nll
@op(name="nll_loss", backward_name="NllLossBackward0")
def _nll_loss(xp, x, t, w, ignore_index=-100, reduction="mean"):
    _, tt, wt = _index_parts(xp, t, w, x.shape[1], ignore_index, x.dtype)
    picked = xp.take_along_axis(x, xp.expand_dims(tt, 1), axis=1)[:, 0]
    return _reduce_arr(-picked * wt, reduction, wt.sum())


@_nll_loss.def_derivative
def _(ns, g, x, t, w, ignore_index=-100, reduction="mean"):
    # Only x's shape and device are read: the gradient is -weight at each target, else 0.
    xa = _raw(x)
    xp = B.xp_of(xa)
    if ns.xp is not None:
        _, tt, wt = _index_parts(xp, t, w, xa.shape[1], ignore_index, xa.dtype)
        s = g if reduction != "mean" else g / wt.sum()
        gx = xp.zeros(xa.shape, dtype=xa.dtype)
        gx[_target_index(xp, tt)] = (-wt * s).astype(xa.dtype, copy=False)
        return gx, None, None
    q, wt = _q_index(xp, xa, _raw(t), _raw(w), ignore_index, 0.0)
    return -_grad_scale(ns, g, reduction, wt.sum()) * _const(ns, q), None, None


# ----------------------------------------------------------------------------- binary
@op(name="binary_cross_entropy", backward_name="BinaryCrossEntropyBackward0")
def _bce(xp, x, t):
    if xp.__name__ == "numpy":  # log(0) = -inf is expected here (clamped to -100 like torch)
        with xp.errstate(divide="ignore"):
            return -(t * xp.maximum(xp.log(x), -100.0) +
                     (1 - t) * xp.maximum(xp.log1p(-x), -100.0))
    return -(t * xp.maximum(xp.log(x), -100.0) + (1 - t) * xp.maximum(xp.log1p(-x), -100.0))


@_bce.def_derivative
def _(ns, g, x, t, needs):
    gx = g * (x - t) / ns.maximum((1 - x) * x, 1e-12 + 0.0 * x) if needs[0] else None
    gt = None
    if needs[1]:
        gt = g * (ns.maximum(ns.log1p(-x), -100.0 + 0.0 * x) -
                  ns.maximum(ns.log(x), -100.0 + 0.0 * x))
    return gx, gt


@op(name="binary_cross_entropy_with_logits",
    backward_name="BinaryCrossEntropyWithLogitsBackward0")
def _bce_logits(xp, x, t, pw):
    sp_neg = xp.maximum(-x, 0) + xp.log1p(xp.exp(-xp.abs(x)))  # softplus(-x) = -log sigmoid(x)
    if pw is None:
        return (1 - t) * x + sp_neg
    return (1 - t) * x + (1 + (pw - 1) * t) * sp_neg


@_bce_logits.def_derivative
def _(ns, g, x, t, pw, needs):
    sig = 0.5 + 0.5 * ns.tanh(0.5 * x)
    gx = gt = gpw = None
    if pw is None:
        if needs[0]:
            gx = g * (sig - t)
        if needs[1]:
            gt = -g * x
        return gx, gt, None
    if needs[0]:
        gx = g * (sig * (1 + (pw - 1) * t) - pw * t)
    sp_neg = ns.maximum(-x, 0.0 * x) + ns.log1p(ns.exp(-ns.abs(x)))
    if needs[1]:
        gt = g * (pw * sp_neg - (x + sp_neg))  # softplus(x) = x + softplus(-x)
    if needs[2]:
        gpw = g * t * sp_neg
    return gx, gt, gpw


# ----------------------------------------------------------------------------- ctc
def _lse(xp, *terms):
    """Elementwise log(sum(exp(terms))) that tolerates all -inf."""
    m = terms[0]
    for t in terms[1:]:
        m = xp.maximum(m, t)
    safe = xp.where(xp.isfinite(m), m, 0.0)
    acc = sum(xp.exp(t - safe) for t in terms)
    with _quiet(xp):
        return xp.log(acc) + safe


def _quiet(xp):
    import contextlib

    return xp.errstate(divide="ignore", invalid="ignore") if xp.__name__ == "numpy" \
        else contextlib.nullcontext()


def _ctc_labels(xp, tg, blank):
    """Extended label rows (blank, l1, blank, l2, ..., blank) and the skip-allowed mask."""
    n, lmax = tg.shape
    ext = xp.full((n, 2 * lmax + 1), blank, dtype=xp.int64)
    ext[:, 1::2] = tg
    skip = xp.zeros(ext.shape, dtype=bool)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    return ext, skip


@op(name="ctc_loss", multi=True, backward_name="CtcLossBackward0")
def _ctc(xp, lp, tg, in_len, tg_len, blank=0):
    """(per-sample negative log-likelihood, log-alpha). ``lp`` is (T, N, C)."""
    t_max, n, _ = lp.shape
    ext, skip = _ctc_labels(xp, tg, blank)
    s_max = ext.shape[1]
    rows = xp.arange(n)[:, None]
    neg = -xp.inf
    alpha = xp.full((t_max, n, s_max), neg, dtype=lp.dtype)
    emit0 = lp[0][rows, ext]
    alpha[0, :, 0] = emit0[:, 0]
    if s_max > 1:
        alpha[0, :, 1] = xp.where(tg_len > 0, emit0[:, 1], neg)
    s_ok = xp.arange(s_max)[None, :] < (2 * tg_len + 1)[:, None]
    for t in range(1, t_max):
        a = alpha[t - 1]
        a1 = xp.concatenate([xp.full((n, 1), neg, lp.dtype), a[:, :-1]], axis=1)
        a2 = xp.concatenate([xp.full((n, 2), neg, lp.dtype), a[:, :-2]], axis=1)
        a2 = xp.where(skip, a2, neg)
        new = _lse(xp, a, a1, a2) + lp[t][rows, ext]
        new = xp.where(s_ok, new, neg)
        alpha[t] = xp.where((t < in_len)[:, None], new, neg)
    last = alpha[in_len - 1, xp.arange(n)]  # (N, S)
    end = 2 * tg_len
    a_end = xp.take_along_axis(last, end[:, None], axis=1)[:, 0]
    a_prev = xp.take_along_axis(last, xp.maximum(end - 1, 0)[:, None], axis=1)[:, 0]
    a_prev = xp.where(tg_len > 0, a_prev, neg)
    return -_lse(xp, a_end, a_prev), alpha


@_ctc.def_derivative
def _(ns, g, lp, tg, in_len, tg_len, out, blank=0):
    if ns.xp is None:
        raise RuntimeError("ctc_loss: double backward (create_graph=True) is not supported, "
                           "as in torch")
    xp = ns.xp
    nll, alpha = out
    t_max, n, c = lp.shape
    ext, skip = _ctc_labels(xp, tg, blank)
    s_max = ext.shape[1]
    rows = xp.arange(n)[:, None]
    neg = -xp.inf
    s_idx = xp.arange(s_max)[None, :]
    end = 2 * tg_len
    # skip into s+2 is allowed when it was allowed out of s into s+2 forward
    skip_next = xp.concatenate([skip[:, 2:], xp.zeros((n, 2), dtype=bool)], axis=1)
    beta = xp.full((t_max, n, s_max), neg, dtype=lp.dtype)
    cur = xp.full((n, s_max), neg, dtype=lp.dtype)
    for t in range(t_max - 1, -1, -1):
        emit = lp[t][rows, ext]
        init = xp.where((s_idx == end[:, None]) | ((s_idx == end[:, None] - 1) &
                                                    (tg_len[:, None] > 0)), emit, neg)
        b1 = xp.concatenate([cur[:, 1:], xp.full((n, 1), neg, lp.dtype)], axis=1)
        b2 = xp.concatenate([cur[:, 2:], xp.full((n, 2), neg, lp.dtype)], axis=1)
        b2 = xp.where(skip_next, b2, neg)
        rec = _lse(xp, cur, b1, b2) + emit
        rec = xp.where(s_idx <= end[:, None], rec, neg)
        cur = xp.where((t == in_len - 1)[:, None], init,
                       xp.where((t < in_len - 1)[:, None], rec, neg))
        beta[t] = cur
    ab = alpha + beta  # log of (paths through s at t) * y_t(l'_s)
    m = ab.max(axis=2, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0.0)
    lin = xp.zeros((t_max, n, c), dtype=lp.dtype)
    from ._ns import _add_at

    ti = xp.arange(t_max)[:, None, None]
    ni = xp.arange(n)[None, :, None]
    _add_at(xp, lin, (ti, ni, xp.broadcast_to(ext[None], ab.shape)), xp.exp(ab - m))
    with _quiet(xp):
        post = lin * xp.exp(m + nll[None, :, None] - lp)  # posterior of label c at t
    valid_t = (xp.arange(t_max)[:, None] < in_len[None, :])[:, :, None]
    # torch's convention: the gradient as if lp were log_softmax outputs (exp(lp) - posterior)
    grad = xp.where(valid_t & xp.isfinite(nll)[None, :, None], xp.exp(lp) - post, 0.0)
    return grad * g[None, :, None], None, None, None


# ----------------------------------------------------------------------------- public
def _reduction(size_average, reduce, reduction: str) -> str:
    if size_average is not None or reduce is not None:  # torch's deprecated arguments
        sa = True if size_average is None else size_average
        rd = True if reduce is None else reduce
        return "none" if not rd else ("mean" if sa else "sum")
    if reduction not in _REDUCTIONS and reduction != "batchmean":
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean()


def _class_first(input: Tensor, target: Tensor, name: str):
    """Validate (N, C, d...) vs (N, d...) shapes; unbatched (C,) becomes (1, C)."""
    unbatched = input.ndim == 1
    if unbatched:
        input = input.reshape(1, input.shape[0])
        if target.ndim == 1 and target.shape[0] != 1:
            raise ValueError(f"{name}(): For 1D input, 1D target must have size 1, but got "
                             f"target size: {target.shape[0]} (input shape "
                             f"{list(input.shape[1:])}); pass one class index per sample")
        # torch takes a () or (1,) target for one unbatched sample; both give a 0-d loss
        target = target.reshape(1)
    return input, target, unbatched


def _check_targets(name, input, target, ignore_index):
    t = target._data
    if t.dtype.kind not in "iu":
        raise RuntimeError(
            f"{name}(): expected target of integer class indices (Long), got {target.dtype}; "
            "use .long(), or pass class probabilities with the same shape as the input")
    want = (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != want:
        _bad_target_shape(name, input, target, want)
    c = input.shape[1]
    xp = B.xp_of(t)
    bad = ((t < 0) | (t >= c)) & (t != ignore_index)
    if bool(xp.any(bad)):
        v = int(t[bad].reshape(-1)[0])
        raise IndexError(f"{name}(): Target {v} is out of bounds for {c} classes.")


def _bad_target_shape(name, input, target, want):
    # torch's order and types: a batch-size mismatch is a ValueError; after it, a (N, 1)
    # target on (N, C) input (the common slip) is "multi-target not supported", and any
    # other mismatch a RuntimeError.
    tshape, ishape = list(target.shape), list(input.shape)
    msg = (f"{name}(): Expected target size {list(want)}, got {tshape} (input is {ishape}: "
           "(N, C, d1, ...) with targets (N, d1, ...))")
    if (target.shape[0] if target.ndim else 0) != want[0]:
        raise ValueError(f"{msg}; the batch sizes differ ({want[0]} vs "
                         f"{target.shape[0] if target.ndim else 'none'})")
    if input.ndim == 2 and target.ndim > 1:
        hint = (f"squeeze the target to shape {list(want)} with target.squeeze(1)"
                if target.ndim == 2 and target.shape[1] == 1 else
                f"give one class index per sample, shape {list(want)}")
        raise RuntimeError(
            f"{name}(): 0D or 1D target tensor expected, multi-target not supported: got a "
            f"target of shape {tshape} for input of shape {ishape} (N, C); {hint}")
    raise RuntimeError(msg)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of logits ``input`` (N, C, d...) against class indices (N, d...) or
    class probabilities (same shape as input); fused log_softmax + nll."""
    reduction = _reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy(): label_smoothing must be in [0, 1], got "
                         f"{label_smoothing}")
    for name, t in (("input", input), ("target", target)):
        if not isinstance(t, Tensor):
            kind = type(t).__name__
            if type(t).__module__ == "numpy":
                kind = "numpy." + kind
            raise TypeError(f"cross_entropy(): argument '{name}' must be Tensor, not {kind}; "
                            "wrap it with dyntorch.as_tensor(...)")
    if input.ndim == 0:
        raise ValueError("cross_entropy(): input must have at least 1 dimension (C,)")
    if input._data.dtype.kind != "f" and not B.is_float_np(input._data.dtype):
        raise RuntimeError(
            f"cross_entropy(): expected floating point input (logits), got {input.dtype}. "
            "Convert it with .float().")
    probs = (target._data.dtype.kind == "f" or B.is_float_np(target._data.dtype))
    if probs and target.ndim != input.ndim:
        raise RuntimeError(
            f"cross_entropy(): expected target dtype to be int64 (class indices of shape "
            f"{[input.shape[0]] + list(input.shape[2:])}), got a {target.dtype} target of shape "
            f"{list(target.shape)}; use target.long(). (A float target must hold class "
            f"probabilities with the input's shape {list(input.shape)}.)")
    unbatched = input.ndim == 1
    if unbatched and probs:
        input, target = input.reshape(1, input.shape[0]), target.reshape(1, -1)
    elif unbatched:
        input, target, _ = _class_first(input, target, "cross_entropy")
    if weight is not None and (weight.ndim != 1 or weight.shape[0] != input.shape[1]):
        raise RuntimeError(f"cross_entropy(): weight tensor should be defined either for all "
                           f"{input.shape[1]} classes or no classes but got weight tensor of "
                           f"shape: {list(weight.shape)}")
    if probs:
        if tuple(target.shape) != tuple(input.shape):
            raise RuntimeError(f"cross_entropy(): class-probability target must have the "
                               f"input's shape {list(input.shape)}, got {list(target.shape)}")
        out = _cross_entropy_probs(input, target, weight, reduction=reduction,
                                   label_smoothing=label_smoothing)
    else:
        _check_targets("cross_entropy", input, target, ignore_index)
        out = _cross_entropy(input, target, weight, ignore_index=ignore_index,
                             reduction=reduction, label_smoothing=label_smoothing)[0]
    if unbatched and reduction == "none":
        out = out.reshape(out.shape[1:])
    return out


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities ``input`` (N, C, d...) at ``target``."""
    reduction = _reduction(size_average, reduce, reduction)
    input, target, unbatched = _class_first(input, target, "nll_loss")
    if weight is not None and (weight.ndim != 1 or weight.shape[0] != input.shape[1]):
        raise RuntimeError(f"nll_loss(): weight tensor should be defined either for all "
                           f"{input.shape[1]} classes or no classes but got weight tensor of "
                           f"shape: {list(weight.shape)}")
    _check_targets("nll_loss", input, target, ignore_index)
    out = _nll_loss(input, target, weight, ignore_index=ignore_index, reduction=reduction)
    if unbatched and reduction == "none":
        out = out.reshape(out.shape[1:])
    return out


def _same_shape(name, input, target):
    if tuple(input.shape) != tuple(target.shape):
        import warnings

        warnings.warn(f"{name}: Using a target size ({list(target.shape)}) that is different "
                      f"to the input size ({list(input.shape)}). This will likely lead to "
                      "incorrect results due to broadcasting. Please ensure they have the same "
                      "size.", stacklevel=3)


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight=None) -> Tensor:
    """Mean squared error."""
    reduction = _reduction(size_average, reduce, reduction)
    _same_shape("mse_loss", input, target)
    d = input - target
    loss = d * d
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean", weight=None) -> Tensor:
    """Mean absolute error."""
    reduction = _reduction(size_average, reduce, reduction)
    _same_shape("l1_loss", input, target)
    loss = (input - target).abs()
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """Squared below ``beta`` (0.5 d^2 / beta), absolute above (|d| - 0.5 beta)."""
    reduction = _reduction(size_average, reduce, reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    _same_shape("smooth_l1_loss", input, target)
    d = input - target
    ad = d.abs()
    if beta == 0:
        return _reduce(ad, reduction)
    from .elementwise import where

    small = (ad >= beta).logical_not()  # NaN on the squared side: a NaN gradient, as torch
    dq = where(small, d, 0.0)  # the squared side sees only its own entries: an inf d would
    loss = where(small, dq * dq * (0.5 / beta), ad - 0.5 * beta)  # give it 0 * inf = NaN
    return _reduce(loss, reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight=None) -> Tensor:
    """0.5 d^2 below ``delta``, delta (|d| - 0.5 delta) above."""
    reduction = _reduction(None, None, reduction)
    _same_shape("huber_loss", input, target)
    from .elementwise import where

    d = input - target
    ad = d.abs()
    small = (ad >= delta).logical_not()
    dq = where(small, d, 0.0)  # as smooth_l1_loss: no 0 * inf from the other side
    loss = where(small, dq * dq * 0.5, (ad - 0.5 * delta) * delta)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _float_operands(name, input, target):
    # An integer or bool 0/1 target would otherwise be promoted silently; torch refuses it
    # ("result type Float can't be cast to the desired output type Long").
    if input._data.dtype.kind != "f" and not B.is_float_np(input._data.dtype):
        raise RuntimeError(f"{name}(): expected a floating point input, got {input.dtype.name} "
                           f"of shape {list(input.shape)}; convert it with input.float()")
    if target._data.dtype.kind != "f" and not B.is_float_np(target._data.dtype):
        raise RuntimeError(f"{name}(): expected a floating point target like the input "
                           f"({input.dtype.name}), got {target.dtype.name} of shape "
                           f"{list(target.shape)}; convert the 0/1 labels with target.float() "
                           "(or target.to(input.dtype))")


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of probabilities ``input`` (log clamped at -100 like torch)."""
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({list(target.shape)}) that is different to the "
                         f"input size ({list(input.shape)}) is deprecated. Please ensure they "
                         "have the same size.")
    _float_operands("binary_cross_entropy", input, target)
    xd = input._data
    if xd.size and (bool(B.xp_of(xd).any(xd < 0)) or bool(B.xp_of(xd).any(xd > 1))):
        raise RuntimeError("binary_cross_entropy(): all elements of input should be between 0 "
                           "and 1; apply sigmoid first or use binary_cross_entropy_with_logits")
    loss = _bce(input, target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """sigmoid + binary cross-entropy in one stable op; ``pos_weight`` weighs positives."""
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({list(target.shape)}) must be the same as input size "
                         f"({list(input.shape)})")
    _float_operands("binary_cross_entropy_with_logits", input, target)
    loss = _bce_logits(input, target, pos_weight)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """KL divergence with ``input`` as log-probabilities (target log-probs if log_target)."""
    reduction = _reduction(size_average, reduce, reduction)
    from .elementwise import where

    if log_target:
        loss = target.exp() * (target - input)
    else:
        pos = target > 0
        safe = where(pos, target, 1.0)
        loss = where(pos, target * (safe.log() - input), 0.0 * input)
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)


def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths, target_lengths,
             blank: int = 0, reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    """Connectionist temporal classification loss of ``log_probs`` (T, N, C) (or (T, C))
    against ``targets`` (N, S) padded or 1-D concatenated, with per-sample lengths."""
    import numpy as _np

    reduction = _reduction(None, None, reduction)
    unbatched = log_probs.ndim == 2
    if unbatched:
        log_probs = log_probs.reshape(log_probs.shape[0], 1, log_probs.shape[1])
    lpd = log_probs._data
    t_max, n, c = lpd.shape
    il = _np.asarray(B.to_numpy(input_lengths._data) if isinstance(input_lengths, Tensor)
                     else input_lengths, dtype=_np.int64).reshape(-1)
    tl = _np.asarray(B.to_numpy(target_lengths._data) if isinstance(target_lengths, Tensor)
                     else target_lengths, dtype=_np.int64).reshape(-1)
    tgt = B.to_numpy(targets._data).astype(_np.int64)
    if unbatched and tgt.ndim == 1 and tl.size == 1 and tgt.size == tl[0]:
        tgt = tgt.reshape(1, -1)
    if il.size != n or tl.size != n:
        raise RuntimeError(f"ctc_loss(): expected {n} input and target lengths, got {il.size} "
                           f"and {tl.size}")
    if (il > t_max).any() or (il < 1).any():
        raise RuntimeError(f"ctc_loss(): input lengths must be in [1, {t_max}], got {il}")
    lmax = int(tl.max()) if tl.size else 0
    padded = _np.full((n, max(lmax, 1)), blank, dtype=_np.int64)
    if tgt.ndim == 1:  # concatenated targets
        off = _np.concatenate([[0], _np.cumsum(tl)])
        for i in range(n):
            padded[i, :tl[i]] = tgt[off[i]:off[i + 1]]
    else:
        for i in range(n):
            padded[i, :tl[i]] = tgt[i, :tl[i]]
    padded = padded[:, :lmax] if lmax else padded[:, :0]
    dev = B.device_of(lpd)
    as_dev = lambda a: _make(B.move(a, dev))  # noqa: E731
    nll = _ctc(log_probs, as_dev(padded), as_dev(il), as_dev(tl), blank=blank)[0]
    if zero_infinity:
        from .elementwise import where

        nll = where(nll.isinf(), 0.0, nll)
    if reduction == "none":
        return nll.reshape(()) if unbatched else nll
    if reduction == "sum":
        return nll.sum()
    denom = as_dev(_np.maximum(tl, 1).astype(lpd.dtype))
    return (nll / denom).mean()


PUBLIC: dict = {}
