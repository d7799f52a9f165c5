"""``dyntorch.nn.functional``: the stateless form of every layer (``torch.nn.functional``).

The math lives in ``dyntorch/ops`` (activation, norm, loss, layer); this module gives it
torch's names and arguments. Conv, pooling, interpolate, pad, unfold and attention come from
``functional_conv``.
"""
from __future__ import annotations

from .. import _backend as B
from .._tensor import Tensor, _make
from ..ops import activation as _A
from ..ops import elementwise as _E
from ..ops.activation import gelu, log_softmax, logsigmoid, prelu, softmax, softmin, softsign  # noqa: F401,E501
from ..ops.inplace import inplace as _inplace
from ..ops.layer import bilinear, channel_dropout, embedding, linear  # noqa: F401
from ..ops.layer import dropout as _dropout
from ..ops.loss import (  # noqa: F401
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    ctc_loss,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)
from ..ops.norm import batch_norm, group_norm, layer_norm  # noqa: F401


# ----------------------------------------------------------------------------- activations
def _act(input: Tensor, inplace: bool, name: str, fn, **kw) -> Tensor:
    """Run ``fn`` out of place, or in place (recorded like torch's ``relu_``) when asked."""
    if inplace:
        return _inplace(input, name + "_", lambda s: fn(s, **kw))
    return fn(input, **kw)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0)."""
    return _act(input, inplace, "relu", _E.relu)


def relu_(input: Tensor) -> Tensor:
    return _act(input, True, "relu", _E.relu)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return _act(input, inplace, "relu6", _A.relu6)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    return _act(input, inplace, "leaky_relu", _A.leaky_relu, negative_slope=negative_slope)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return _act(input, inplace, "elu", _A.elu, alpha=alpha)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    return _act(input, inplace, "selu", _A.selu)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return _act(input, inplace, "celu", _A.celu, alpha=alpha)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return _act(input, inplace, "silu", _A.silu)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    return _act(input, inplace, "mish", _A.mish)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    return _act(input, inplace, "hardtanh", _A.hardtanh, min_val=min_val, max_val=max_val)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    return _act(input, inplace, "hardsigmoid", _A.hardsigmoid)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    return _act(input, inplace, "hardswish", _A.hardswish)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    return _act(input, inplace, "threshold", _A.threshold, threshold=threshold, value=value)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return _A.softplus(input, beta, threshold)


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (training)."""
    if inplace and training and p > 0:
        return _inplace(input, "dropout_", lambda s: _dropout(s, p, True))
    return _dropout(input, p, training)


def sigmoid(input: Tensor) -> Tensor:
    return _E.FLOAT_UNARY["sigmoid"](input)


def tanh(input: Tensor) -> Tensor:
    return _E.FLOAT_UNARY["tanh"](input)


def tanhshrink(input: Tensor) -> Tensor:
    return input - tanh(input)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    return _A.hardshrink(input, lambd)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    return _A.softshrink(input, lambd)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """a * sigmoid(b) for the two halves a, b of ``input`` along ``dim``."""
    n = input.shape[dim]
    if n % 2:
        raise RuntimeError(f"glu(): Halving dimension must be even, but dimension {dim} is "
                           f"size {n}")
    a, b = input.chunk(2, dim)
    return a * sigmoid(b)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
          training: bool = False, inplace: bool = False) -> Tensor:
    if training:
        from ..ops.creation import _rng

        r = _rng(None, input.device).random(tuple(input.shape))
        slope = _make(B.move((lower + (upper - lower) * r).astype(input._data.dtype),
                             input.device))
        return _E.where(input >= 0, input, input * slope)
    return leaky_relu(input, (lower + upper) / 2)


# dropout1d/2d/3d and alpha_dropout: functional_dropout.py (torch's rank rules)
from .functional_dropout import (  # noqa: E402,F401
    alpha_dropout,
    dropout1d,
    dropout2d,
    dropout3d,
    feature_alpha_dropout,
)


# ----------------------------------------------------------------------------- misc
def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """(..., num_classes) int64 tensor with a 1 at each index."""
    d = tensor._data
    if d.dtype.kind not in "iu":
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    xp = B.xp_of(d)
    if num_classes == -1:
        if d.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(d.max()) + 1
    if d.size and (int(d.min()) < 0 or int(d.max()) >= num_classes):
        raise RuntimeError("one_hot(): Class values must be non-negative and smaller than "
                           "num_classes.")
    out = (xp.expand_dims(d, -1) == xp.arange(num_classes)).astype(xp.int64)
    return _make(out)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,
              out=None) -> Tensor:
    """input / max(||input||_p along dim, eps)."""
    n = _pnorm(input, p, dim, keepdim=True)
    r = input / n.clamp_min(eps)
    if out is not None:
        out.copy_(r)
        return out
    return r


def _pnorm(x: Tensor, p: float, dim, keepdim: bool) -> Tensor:
    if p == 2:
        return (x * x).sum(dim=dim, keepdim=keepdim).sqrt()
    if p == 1:
        return x.abs().sum(dim=dim, keepdim=keepdim)
    if p == float("inf"):
        return x.abs().amax(dim=dim, keepdim=keepdim)
    return (x.abs() ** p).sum(dim=dim, keepdim=keepdim) ** (1.0 / p)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1 * x2) / (max(||x1||, eps) * max(||x2||, eps)) along ``dim``."""
    n1 = _pnorm(x1, 2, dim, False).clamp_min(eps)
    n2 = _pnorm(x2, 2, dim, False).clamp_min(eps)
    return (x1 * x2).sum(dim=dim) / (n1 * n2)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """||x1 - x2 + eps||_p along the last dim."""
    return _pnorm(x1 - x2 + eps, p, -1, keepdim)


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                          reduction="mean"):
    from ..ops.loss import _reduce, _reduction

    reduction = _reduction(size_average, reduce, reduction)
    cos = cosine_similarity(input1, input2, dim=-1, eps=1e-12)
    loss = _E.where(target == 1, 1 - cos, (cos - margin).clamp_min(0.0))
    return _reduce(loss, reduction)


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                        reduction="mean"):
    from ..ops.loss import _reduce, _reduction

    reduction = _reduction(size_average, reduce, reduction)
    return _reduce((-target * (input1 - input2) + margin).clamp_min(0.0), reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    from ..ops.loss import _reduce, _reduction

    reduction = _reduction(size_average, reduce, reduction)
    return _reduce(softplus(-target * input), reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    import math

    from ..ops.loss import _reduce

    if var.ndim == input.ndim - 1 or (var.ndim == input.ndim and var.shape[-1] == 1 and
                                      input.shape[-1] != 1):
        if var.ndim == input.ndim - 1:
            var = var.unsqueeze(-1)
    v = var.clamp_min(eps)
    loss = 0.5 * (v.log() + (input - target) ** 2 / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean"):
    import math

    from ..ops.loss import _reduce, _reduction

    reduction = _reduction(size_average, reduce, reduction)
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        t = target
        st = t * t.clamp_min(1.0).log() - t + 0.5 * (2 * math.pi * t.clamp_min(1.0)).log()
        loss = loss + _E.where(t > 1, st, 0.0 * st)
    return _reduce(loss, reduction)


def _inplace_alias(fn, name):
    def f(input: Tensor, *args, **kwargs) -> Tensor:
        return fn(input, *args, inplace=True, **kwargs)

    f.__name__ = name
    f.__doc__ = f"In-place ``{name[:-1]}``."
    return f


elu_ = _inplace_alias(elu, "elu_")
celu_ = _inplace_alias(celu, "celu_")
selu_ = _inplace_alias(selu, "selu_")
leaky_relu_ = _inplace_alias(leaky_relu, "leaky_relu_")
hardtanh_ = _inplace_alias(hardtanh, "hardtanh_")
threshold_ = _inplace_alias(threshold, "threshold_")


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
           training: bool = False, generator=None) -> Tensor:
    if generator is not None:
        raise NotImplementedError("rrelu_(): generator= is not supported yet; seed the global "
                                  "generator with torch.manual_seed instead")
    return input.copy_(rrelu(input, lower, upper, training)) if not input.requires_grad \
        else rrelu(input, lower, upper, training)


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-10,
                   dim: int = -1) -> Tensor:
    """Sample from the Gumbel-softmax distribution; ``hard`` gives one-hot samples with the
    soft sample's gradient (straight-through)."""
    from ..ops.creation import _rng

    u = _rng(None, logits.device).random(tuple(logits.shape))
    xp = B.xp_of(u)
    g = _make((-xp.log(-xp.log(u + eps) + eps)).astype(logits._data.dtype))
    y = softmax((logits + g) / tau, dim)
    if not hard:
        return y
    d = dim % y.ndim
    idx = xp.expand_dims(y._data.argmax(axis=d), d)
    shape = [1] * y.ndim
    shape[d] = y.shape[d]
    hard_arr = (xp.arange(y.shape[d]).reshape(shape) == idx).astype(y._data.dtype)
    return _make(hard_arr) - y.detach() + y


def instance_norm(input: Tensor, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats: bool = True, momentum: float = 0.1,
                  eps: float = 1e-5) -> Tensor:
    """Normalise each channel of each sample over its spatial dims.

    With ``use_input_stats`` (training), given running statistics are updated as torch does:
    by the batch mean of the per-instance means and unbiased variances.
    """
    if not use_input_stats:
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    spatial = 1
    for s in input.shape[2:]:
        spatial *= s
    if input.ndim < 2 or spatial == 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input "
                         f"size {list(input.shape)}")
    y = group_norm(input, input.shape[1], weight, bias, eps)
    if running_mean is not None or running_var is not None:
        from ..autograd.grad_mode import no_grad

        axes = tuple(range(2, input.ndim))
        with no_grad():
            x = input.detach()
            if running_mean is not None:
                m = x.mean(dim=axes).mean(0).to(running_mean.dtype)
                running_mean.mul_(1.0 - momentum).add_(m * momentum)
            if running_var is not None:
                v = x.var(dim=axes, unbiased=True).mean(0).to(running_var.dtype)
                running_var.mul_(1.0 - momentum).add_(v * momentum)
    return y


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x^2 over the last dims) + eps), times ``weight``."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    if eps is None:
        eps = float(B.np.finfo(input._data.dtype).eps)
    dims = tuple(range(input.ndim - len(normalized_shape), input.ndim))
    y = input * ((input * input).mean(dim=dims, keepdim=True) + eps).rsqrt()
    return y * weight if weight is not None else y


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """x / (k + alpha/size * sum of x^2 over ``size`` neighbouring channels)^beta."""
    if input.ndim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {input.ndim} "
                         "dimensions)")
    if input.numel() == 0:
        return input
    from ..ops.shape import cat

    c = input.shape[1]
    sq = input * input
    before, after = size // 2, (size - 1) // 2
    zero = sq[:, :1] * 0.0  # zero channels on both sides, on sq's device and dtype
    parts = ([zero.expand(-1, before, *sq.shape[2:])] if before else []) + [sq] + (
        [zero.expand(-1, after, *sq.shape[2:])] if after else [])
    padded = cat(parts, 1) if len(parts) > 1 else sq
    div = padded[:, 0:c]
    for j in range(1, size):
        div = div + padded[:, j:j + c]
    return input / (div * (alpha / size) + k) ** beta


def pdist(input: Tensor, p: float = 2.0) -> Tensor:
    """Distances between every pair of rows i < j of an (N, M) input, as a flat vector."""
    n = input.shape[0]
    if input.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.ndim}D")
    xp = B.xp_of(input._data)
    i, j = xp.triu_indices(n, 1)
    a, b = input[_make(i)], input[_make(j)]
    return _pnorm(a - b, p, -1, False)


def embedding_bag(input: Tensor, weight: Tensor, offsets: Tensor | None = None,
                  max_norm=None, norm_type: float = 2, scale_grad_by_freq: bool = False,
                  mode: str = "mean", sparse: bool = False, per_sample_weights=None,
                  include_last_offset: bool = False, padding_idx=None) -> Tensor:
    """Sum, mean or max of embedding bags (rows of a 2-D input, or 1-D input + offsets)."""
    from ..ops.shape import stack

    if input.ndim == 2:
        bags = [input[i] for i in range(input.shape[0])]
        ws = [per_sample_weights[i] for i in range(input.shape[0])] \
            if per_sample_weights is not None else None
    else:
        offs = [int(o) for o in offsets.tolist()]
        if not include_last_offset:
            offs = offs + [input.shape[0]]
        bags = [input[offs[i]:offs[i + 1]] for i in range(len(offs) - 1)]
        ws = [per_sample_weights[offs[i]:offs[i + 1]] for i in range(len(offs) - 1)] \
            if per_sample_weights is not None else None
    rows = []
    for k, bag in enumerate(bags):
        e = embedding(bag, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq)
        if ws is not None:
            e = e * ws[k].unsqueeze(-1)
        if bag.numel() == 0:
            rows.append(weight[0] * 0.0)
        elif mode == "sum":
            rows.append(e.sum(0))
        elif mode == "max":
            rows.append(e.amax(0))
        else:
            rows.append(e.mean(0))
    return stack(rows, 0)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None,
                         reduction="mean"):
    from ..ops.loss import _reduce, _reduction

    reduction = _reduction(size_average, reduce, reduction)
    zero = 0.0 * input
    loss = _E.where(target == 1, input, zero) + _E.where(target == -1,
                                                          (margin - input).clamp_min(0.0), zero)
    return _reduce(loss, reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean"):
    from ..ops.loss import _reduce, _reduction

    reduction = _reduction(size_average, reduce, reduction)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    loss = loss.mean(dim=input.ndim - 1)
    return _reduce(loss, reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None,
                      reduce=None, reduction="mean"):
    """Multi-class hinge loss: sum_i max(0, margin - x[y] + x[i])^p / C over i != y."""
    from ..ops.loss import _reduce, _reduction

    reduction = _reduction(size_average, reduce, reduction)
    x = input if input.ndim == 2 else input.reshape(1, -1)
    t = target.reshape(-1)
    c = x.shape[1]
    oh = one_hot(t, c).to(x.dtype)
    xy = (x * oh).sum(dim=1, keepdim=True)
    m = (margin - xy + x).clamp_min(0.0)
    if p == 2:
        m = m * m
    if weight is not None:
        m = m * (oh * weight).sum(dim=1, keepdim=True)
    loss = (m * (1 - oh)).sum(dim=1) / c
    if input.ndim == 1:
        loss = loss.reshape(())
    return _reduce(loss, reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    from ..ops.loss import _reduce, _reduction

    reduction = _reduction(size_average, reduce, reduction)
    d_ap = pairwise_distance(anchor, positive, p, eps)
    d_an = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_pn = pairwise_distance(positive, negative, p, eps)
        d_an = _E.minimum(d_an, d_pn)
    return _reduce((d_ap - d_an + margin).clamp_min(0.0), reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None,
                                      margin=1.0, swap=False, reduction="mean"):
    from ..ops.loss import _reduce

    dist = distance_function if distance_function is not None else pairwise_distance
    d_ap = dist(anchor, positive)
    d_an = dist(anchor, negative)
    if swap:
        d_an = _E.minimum(d_an, dist(positive, negative))
    return _reduce((d_ap - d_an + margin).clamp_min(0.0), reduction)


from .functional_conv import *  # noqa: E402,F401,F403  conv, pooling, interpolate, pad, unfold, attention
