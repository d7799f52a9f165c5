"""Normalisation layers as fused ops with analytic derivatives: layer_norm, group_norm,
batch_norm (and the shared ``normalize over axes`` formula).

Each op returns (y, mean, rstd) (batch_norm also the biased variance); the statistics are
the door's auxiliary outputs (``aux``), which the node keeps unchecked by version. The
derivatives read the input and those statistics, never y, so y may be changed in place after
the op (``ReLU(inplace=True)``, ``out += identity``) exactly as torch allows. Under
``create_graph`` the statistics are recomputed with ``ns`` so that higher-order gradients are
exact.
"""
from __future__ import annotations

from .._dispatch import op
from .._tensor import Tensor, bump_version


def _stats(xp, x, axes, eps):
    mean = x.mean(axis=axes, keepdims=True)
    xc = x - mean
    var = (xc * xc).mean(axis=axes, keepdims=True)
    rstd = 1.0 / xp.sqrt(var + eps)
    return xc, mean, var, rstd


def _stats_ns(ns, x, axes, eps):
    mean = ns.mean(x, axes, True)
    xc = x - mean
    var = ns.mean(xc * xc, axes, True)
    return mean, 1.0 / ns.sqrt(var + eps)


def _norm_backward(ns, gxh, xhat, rstd, axes):
    """d/dx of xhat = (x - mean(x)) * rstd over ``axes``, given d/dxhat."""
    return rstd * (gxh - ns.mean(gxh, axes, True) - xhat * ns.mean(gxh * xhat, axes, True))


# ----------------------------------------------------------------------------- layer norm
def _row_dot(xp, a, b):
    """Per-row dot product of two (M, N) arrays, one pass and no (M, N) temporary."""
    if a.dtype.char not in "fd" or a.dtype != b.dtype:  # half floats: NumPy's float32 sums
        return (a * b).mean(axis=1) * a.shape[1]
    vecdot = getattr(xp, "vecdot", None)
    return vecdot(a, b) if vecdot is not None else xp.einsum("ij,ij->i", a, b)


def _row_mean(xp, a):
    """Per-row mean of an (M, N) array as a matrix-vector product (BLAS; ~3x np.mean's
    speed on short rows, whose pairwise sums pay a per-row setup)."""
    n = a.shape[1]
    if a.dtype.char not in "fd":
        return a.mean(axis=1)
    return (a @ xp.ones(n, dtype=a.dtype)) / n


def _row_stats(xp, x2, eps):
    """(mean, x2 - mean, rstd) per row of an (M, N) array; the centred array is new, so
    callers may update it in place. Forward and backward share it so they agree exactly."""
    mean = _row_mean(xp, x2)
    xc = x2 - mean[:, None]
    var = _row_dot(xp, xc, xc)
    var /= x2.shape[1]
    var += eps
    return mean, xc, 1.0 / xp.sqrt(var)


def _ln_size(x, ndim):
    n = 1
    for s in x.shape[x.ndim - ndim:]:
        n *= s
    return n


@op(name="layer_norm", backward_name="NativeLayerNormBackward0",
    aux=("save_mean", "save_invstd"))
def _layer_norm(xp, x, w, b, ndim=1, eps=1e-5):
    n = _ln_size(x, ndim)
    stat_shape = x.shape[:x.ndim - ndim] + (1,) * ndim
    if not x.size:
        axes = tuple(range(x.ndim - ndim, x.ndim))
        xc, mean, _, rstd = _stats(xp, x, axes, eps)
        return xc * rstd, mean, rstd
    # the normalised dims are trailing, so the work is per row of an (M, n) matrix; every
    # full-size array below is allocated here, so it is updated in place
    x2 = x.reshape(-1, n)
    mean, y, rstd = _row_stats(xp, x2, eps)
    y *= rstd[:, None]
    if w is not None:
        y *= w.reshape(n)
    if b is not None:
        y += b.reshape(n)
    return y.reshape(x.shape), mean.reshape(stat_shape), rstd.reshape(stat_shape)


def _xhat(xp, x2, mean, r):
    """(x2 - mean) * r for an (M, N) array and (M, 1) statistics, on one new array."""
    xhat = xp.subtract(x2, mean)
    xhat *= r
    return xhat


def _ln_backward_arrays(xp, g, x, w, mean, rstd, ndim, needs):
    """The plain-path (no graph) layer_norm gradients: the formula of the ``ns`` derivative
    below, computed per row with in-place updates of arrays allocated here, from the
    forward's saved statistics."""
    n = _ln_size(x, ndim)
    x2, g2 = x.reshape(-1, n), g.reshape(-1, n)
    r = rstd.reshape(-1, 1)
    xhat = _xhat(xp, x2, mean.reshape(-1, 1), r)
    gw = xp.einsum("ij,ij->j", g2, xhat).reshape(w.shape) if needs[1] and w is not None \
        else None
    gb = None
    if needs[2]:  # column sums by BLAS: 9 us against 18 us on bench_nn_core's (256, 512)
        gb = (xp.ones(g2.shape[0], dtype=g2.dtype) @ g2 if g2.dtype.char in "fd"
              else g2.sum(axis=0)).reshape(x.shape[x.ndim - ndim:])
    gx = None
    if needs[0]:
        gxh = g2 * w.reshape(n) if w is not None else g2
        m1 = _row_mean(xp, gxh)
        m2 = _row_dot(xp, gxh, xhat)
        m2 /= n
        xhat *= m2[:, None]  # xhat is not needed any more: it becomes the correction term
        xhat += m1[:, None]
        gx = xp.subtract(gxh, xhat, out=xhat)
        gx *= r
        gx = gx.reshape(x.shape)
    return gx, gw, gb


@_layer_norm.def_derivative
def _(ns, g, x, w, _b, save_mean, save_invstd, ndim=1, eps=1e-5, needs=(True, True, True)):
    axes = tuple(range(x.ndim - ndim, x.ndim))
    if ns.xp is not None and x.size:
        return _ln_backward_arrays(ns.xp, g, x, w, save_mean, save_invstd, ndim, needs)
    mean, rstd = _stats_ns(ns, x, axes, eps)
    xhat = (x - mean) * rstd
    lead = tuple(range(x.ndim - ndim))
    gw = ns.sum(g * xhat, lead) if needs[1] and w is not None else None
    gb = ns.sum(g, lead) if needs[2] else None
    gx = None
    if needs[0]:
        gxh = g * w if w is not None else g
        gx = _norm_backward(ns, gxh, xhat, rstd, axes)
    return gx, gw, gb


# ----------------------------------------------------------------------------- group norm
@op(name="group_norm", backward_name="NativeGroupNormBackward0",
    aux=("save_mean", "save_invstd"))
def _group_norm(xp, x, w, b, groups=1, eps=1e-5):
    n, c = x.shape[0], x.shape[1]
    if x.size:
        return _gn_arrays(xp, x, w, b, groups, eps)
    xr = x.reshape(n, groups, -1)
    xc, mean, _, rstd = _stats(xp, xr, (2,), eps)
    y = (xc * rstd).reshape(x.shape)
    cshape = (c,) + (1,) * (x.ndim - 2)
    if w is not None:
        y *= w.reshape(cshape)
    if b is not None:
        y += b.reshape(cshape)
    return y, mean, rstd


def _gn_arrays(xp, x, w, b, groups, eps):
    """group_norm forward: statistics per (sample, group) row of an (N*G, C/G*S) view, then
    one per-channel scale (rstd folded with the weight) and shift, in place."""
    n, c = x.shape[0], x.shape[1]
    xr = x.reshape(n * groups, -1)
    mean, y, rstd = _row_stats(xp, xr, eps)
    y3 = y.reshape(n, c, -1)
    scale = xp.repeat(rstd.reshape(n, groups), c // groups, axis=1)  # (N, C)
    if w is not None:
        scale = scale * w.reshape(c)
    y3 *= scale[:, :, None]
    if b is not None:
        y3 += b.reshape(c)[:, None]
    return y3.reshape(x.shape), mean.reshape(n, groups, 1), rstd.reshape(n, groups, 1)


def _gn_backward_arrays(xp, g, x, w, mean, rstd, groups, needs):
    """Plain-path group_norm gradients: the ``ns`` formula below on row and channel views,
    with in-place updates of the arrays allocated here, from the forward's statistics."""
    n, c = x.shape[0], x.shape[1]
    rows = n * groups
    xhat = _xhat(xp, x.reshape(rows, -1), mean.reshape(rows, 1), rstd.reshape(rows, 1))
    ln = xhat.shape[1]
    g3, xhat3 = g.reshape(n, c, -1), xhat.reshape(n, c, -1)
    gw = _chan_dot(xp, g3, xhat3).reshape(w.shape) if needs[1] and w is not None else None
    gb = _chan_sum(xp, g3) if needs[2] else None
    gx = None
    if needs[0]:
        gxh = (g3 * w.reshape(c)[:, None]).reshape(rows, ln) if w is not None \
            else g.reshape(rows, ln)
        m1 = _row_mean(xp, gxh)
        m2 = _row_dot(xp, gxh, xhat)
        m2 /= ln
        xhat *= m2[:, None]  # xhat is not needed any more: it becomes the correction term
        xhat += m1[:, None]
        gx = xp.subtract(gxh, xhat, out=xhat)
        gx *= rstd.reshape(rows, 1)
        gx = gx.reshape(x.shape)
    return gx, gw, gb


@_group_norm.def_derivative
def _(ns, g, x, w, _b, save_mean, save_invstd, groups=1, eps=1e-5,
      needs=(True, True, True)):
    n, c = x.shape[0], x.shape[1]
    cshape = (c,) + (1,) * (x.ndim - 2)
    if ns.xp is not None and x.size and g.dtype == x.dtype:
        return _gn_backward_arrays(ns.xp, g, x, w, save_mean, save_invstd, groups, needs)
    xr = ns.reshape(x, (n, groups, -1))
    mean, rstd = _stats_ns(ns, xr, (2,), eps)
    xhat_r = (xr - mean) * rstd
    xhat = ns.reshape(xhat_r, x.shape)
    other = (0,) + tuple(range(2, x.ndim))
    gw = ns.sum(g * xhat, other) if needs[1] and w is not None else None
    gb = ns.sum(g, other) if needs[2] else None
    gx = None
    if needs[0]:
        gxh = g * ns.reshape(w, cshape) if w is not None else g
        gx = ns.reshape(_norm_backward(ns, ns.reshape(gxh, (n, groups, -1)), xhat_r, rstd,
                                       (2,)), x.shape)
    return gx, gw, gb


# ----------------------------------------------------------------------------- batch norm
@op(name="batch_norm", backward_name="NativeBatchNormBackward0",
    aux=("save_mean", "save_var", "save_invstd"))
def _batch_norm(xp, x, w, b, mean=None, var=None, eps=1e-5):
    """Training mode when ``mean``/``var`` are None (batch statistics), else eval mode."""
    axes = (0,) + tuple(range(2, x.ndim))
    cshape = (x.shape[1],) + (1,) * (x.ndim - 2)
    if mean is None:
        if x.size:
            return _bn_train_arrays(xp, x, w, b, eps)
        xc, m, v, rstd = _stats(xp, x, axes, eps)
    else:
        m = mean.reshape(cshape).copy()  # running stats change in place later
        v = var.reshape(cshape).copy()
        rstd = 1.0 / xp.sqrt(v + eps)
        xc = x - m
    y = xc  # a new array: scale and shift it in place
    y *= rstd
    if w is not None:
        y *= w.reshape(cshape)
    if b is not None:
        y += b.reshape(cshape)
    return y, m, v, rstd


def _chan_sum(xp, a3):
    """Per-channel sums of an (N, C, S) array: S-long rows by BLAS, then over N."""
    if a3.shape[2] > 1 and a3.dtype.char in "fd":
        return (a3 @ xp.ones(a3.shape[2], dtype=a3.dtype)).sum(axis=0)
    return a3.sum(axis=(0, 2))


def _chan_dot(xp, a3, b3):
    """Per-channel sums of a3 * b3 without the full-size product where it can."""
    vecdot = getattr(xp, "vecdot", None)
    if vecdot is not None and a3.shape[2] > 1 and a3.dtype == b3.dtype and \
            a3.dtype.char in "fd":
        return vecdot(a3, b3).sum(axis=0)
    return (a3 * b3).sum(axis=(0, 2))


def _chan_stats(xp, x3, eps):
    """(mean, x3 - mean, biased var, rstd) per channel of an (N, C, S) array; the centred
    array is new. Forward and backward share it so they agree exactly."""
    count = x3.shape[0] * x3.shape[2]
    m = _chan_sum(xp, x3) / count
    xc = x3 - m[:, None]
    v = _chan_dot(xp, xc, xc) / count
    return m, xc, v, 1.0 / xp.sqrt(v + eps)


def _bn_train_arrays(xp, x, w, b, eps):
    """Training-mode batch_norm forward on an (N, C, S) view: per-channel BLAS statistics
    and one output array updated in place (the scale folds rstd and weight together)."""
    n, c = x.shape[0], x.shape[1]
    x3 = x.reshape(n, c, -1)
    stat_shape = (1, c) + (1,) * (x.ndim - 2)
    m, y, v, rstd = _chan_stats(xp, x3, eps)
    y *= (rstd * w.reshape(c) if w is not None else rstd)[:, None]
    if b is not None:
        y += b.reshape(c)[:, None]
    return (y.reshape(x.shape), m.reshape(stat_shape), v.reshape(stat_shape),
            rstd.reshape(stat_shape))


def _bn_backward_arrays(xp, g, x, w, mean, rstd, train, needs):
    """Plain-path batch_norm gradients: the ``ns`` formula below per channel on (N, C, S)
    views. With gxh = g * w, mean(gxh) and mean(gxh * xhat) are w times the bias and weight
    gradients over the count, so gx = rstd * w * (g - gb / count - xhat * gw / count).
    ``mean`` and ``rstd`` are the forward's (batch statistics in training mode, a copy of the
    running ones in eval mode)."""
    n, c = x.shape[0], x.shape[1]
    x3, g3 = x.reshape(n, c, -1), g.reshape(n, c, -1)
    count = n * x3.shape[2]
    r = rstd.reshape(c)
    xhat = xp.subtract(x3, mean.reshape(c)[:, None])
    xhat *= r[:, None]
    need_stats = needs[0] and train
    gw = _chan_dot(xp, g3, xhat) if needs[1] and w is not None or need_stats else None
    gb = _chan_sum(xp, g3) if needs[2] or need_stats else None
    gx = None
    if needs[0]:
        scale = r * w.reshape(c) if w is not None else r
        if train:
            xhat *= (gw / count)[:, None]  # xhat is not needed any more: reuse its memory
            xhat += (gb / count)[:, None]
            gx = xp.subtract(g3, xhat, out=xhat)
            gx *= scale[:, None]
        else:
            gx = g3 * scale[:, None]
        gx = gx.reshape(x.shape)
    return (gx, gw.reshape(w.shape) if needs[1] and w is not None else None,
            gb if needs[2] else None)


@_batch_norm.def_derivative
def _(ns, g, x, w, _b, save_mean, save_invstd, mean=None, var=None, eps=1e-5,
      needs=(True, True, True)):
    axes = (0,) + tuple(range(2, x.ndim))
    cshape = (x.shape[1],) + (1,) * (x.ndim - 2)
    train = mean is None
    if ns.xp is not None and x.size and g.dtype == x.dtype:
        return _bn_backward_arrays(ns.xp, g, x, w, save_mean, save_invstd, train, needs)
    if train:
        m, rstd = _stats_ns(ns, x, axes, eps)
    else:  # eval: the running statistics (as the forward copied them) are constants
        m = ns.asarray(_raw(save_mean).reshape(cshape), x)
        rstd = ns.asarray(_raw(save_invstd).reshape(cshape), x)
    xhat = (x - m) * rstd
    gw = ns.sum(g * xhat, axes) if needs[1] and w is not None else None
    gb = ns.sum(g, axes) if needs[2] else None
    gx = None
    if needs[0]:
        gxh = g * ns.reshape(w, cshape) if w is not None else g
        gx = _norm_backward(ns, gxh, xhat, rstd, axes) if train else gxh * rstd
    return gx, gw, gb


def _raw(a):
    return a._data if isinstance(a, Tensor) else a


# ----------------------------------------------------------------------------- public
def _check_affine(name, x, w, b, shape):
    for what, t in (("weight", w), ("bias", b)):
        if t is not None and tuple(t.shape) != tuple(shape):
            raise RuntimeError(
                f"{name}(): expected {what} of shape {list(shape)} for input of shape "
                f"{list(x.shape)}, but got {list(t.shape)}")


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the last ``len(normalized_shape)`` dims, then scale and shift."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if tuple(input.shape[input.ndim - k:]) != normalized_shape or input.ndim < k:
        raise RuntimeError(
            f"layer_norm(): Given normalized_shape={list(normalized_shape)}, expected input "
            f"with shape [*, {', '.join(str(s) for s in normalized_shape)}], but got input of "
            f"size {list(input.shape)}")
    _check_affine("layer_norm", input, weight, bias, normalized_shape)
    return _layer_norm(input, weight, bias, ndim=k, eps=eps)[0]


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise each of ``num_groups`` channel groups per sample, then scale and shift."""
    if input.ndim < 2:
        raise RuntimeError(f"group_norm(): expected at least 2D input (N, C, *), got "
                           f"{list(input.shape)}")
    c = input.shape[1]
    if c % num_groups:
        raise RuntimeError(f"group_norm(): Expected number of channels in input to be "
                           f"divisible by num_groups, but got input of shape "
                           f"{list(input.shape)} and num_groups={num_groups}")
    _check_affine("group_norm", input, weight, bias, (c,))
    return _group_norm(input, weight, bias, groups=num_groups, eps=eps)[0]


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float | None = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Batch normalisation over (N, *) per channel (dim 1).

    In training mode the batch statistics normalise and, when given, ``running_mean`` and
    ``running_var`` are updated in place: ``r = (1 - momentum) r + momentum * stat`` with
    the unbiased batch variance (``momentum=None`` means the caller already folded a
    cumulative factor into ``momentum``).
    """
    if input.ndim < 2:
        raise ValueError(f"batch_norm(): expected 2D or more input (N, C, *), got "
                         f"{list(input.shape)}")
    c = input.shape[1]
    _check_affine("batch_norm", input, weight, bias, (c,))
    if training:
        count = input.numel() // c
        if count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input "
                             f"size {list(input.shape)}")
        y, m, v, _ = _batch_norm(input, weight, bias, eps=eps)
        if running_mean is not None or running_var is not None:
            mom = 0.0 if momentum is None else momentum
            if running_mean is not None:
                rm = running_mean._data
                rm *= (1.0 - mom)
                rm += mom * m._data.reshape(c).astype(rm.dtype, copy=False)
                _bump(running_mean)
            if running_var is not None:
                rv = running_var._data
                rv *= (1.0 - mom)
                rv += (mom * count / (count - 1)) * v._data.reshape(c).astype(rv.dtype,
                                                                              copy=False)
                _bump(running_var)
        return y
    if running_mean is None or running_var is None:
        raise RuntimeError("batch_norm(): running_mean and running_var must be given in eval "
                           "mode (training=False)")
    return _batch_norm(input, weight, bias, mean=running_mean._data, var=running_var._data,
                       eps=eps)[0]


_bump = bump_version


def _torch_batch_norm(input: Tensor, weight, bias, running_mean, running_var, training: bool,
                      momentum: float, eps: float, cudnn_enabled: bool = True) -> Tensor:
    """``torch.batch_norm``: the same op with the ATen argument order."""
    return batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def _torch_layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5,
                      cudnn_enable=True):
    return layer_norm(input, normalized_shape, weight, bias, eps)


def _torch_group_norm(input, num_groups, weight=None, bias=None, eps=1e-5,
                      cudnn_enabled=True):
    return group_norm(input, num_groups, weight, bias, eps)


PUBLIC: dict = {"layer_norm": _torch_layer_norm, "group_norm": _torch_group_norm,
                "batch_norm": _torch_batch_norm}
