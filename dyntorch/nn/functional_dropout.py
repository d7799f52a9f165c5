"""The channel ("feature") dropout family with torch's rank rules.

torch's ``feature_dropout`` draws one keep/drop decision per (dim 0, dim 1) pair and shares
it over the remaining dims. The public functions decide which dims those are:

- ``dropout1d``: (N, C, L) or unbatched (C, L); other ranks are an error.
- ``dropout2d``: the input as given, so (N, C, H, W) shares over H, W; a 3-D input is read
  as (N, C, L) and a 2-D (N, features) input is dropped element-wise, each with torch's
  warning (ranks other than 3 and 4 are deprecated there).
- ``dropout3d``: (N, C, D, H, W) or unbatched (C, D, H, W), which gets a batch dim first;
  other ranks warn and follow the same rule.
- ``feature_alpha_dropout``: alpha dropout with ``feature_dropout``'s mask shape.
"""
from __future__ import annotations

import warnings

from .. import _backend as B
from .._tensor import Tensor, _make
from ..ops.inplace import inplace as _inplace
from ..ops.layer import channel_dropout

_ALPHA = -1.7580993408473766  # -scale * alpha of SELU


def _check_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _feature_shape(shape: tuple) -> tuple:
    if len(shape) < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    return tuple(shape[:2]) + (1,) * (len(shape) - 2)


def _feature_dropout(input, p, training, inplace, name, batched=True):
    _check_p(p)
    if not training or p == 0.0:
        return input
    nd = input.ndim
    if batched:
        _feature_shape(tuple(input.shape))
        shared = nd - 2  # the mask varies over (dim 0, dim 1) and is shared over the rest
    else:  # unbatched: as torch, a batch dim of 1 goes in front, so only dim 0 varies
        _feature_shape((1,) + tuple(input.shape))
        shared = nd - 1
    run = (lambda s: channel_dropout(s, p, True, shared))
    return _inplace(input, name + "_", run) if inplace else run(input)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, L) or unbatched (C, L) input; scale the rest by 1/(1-p).

    Parameters
    ----------
    input : Tensor
        2-D (C, L) or 3-D (N, C, L).
    p : float
        Probability of zeroing a channel.
    training : bool
        When False the input is returned unchanged.
    inplace : bool
        Write the result into ``input``.
    """
    if input.ndim not in (2, 3):
        raise RuntimeError(
            f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D input. Note "
            "that dropout1d exists to provide channel-wise dropout on inputs with 1 spatial "
            "dimension, a channel dimension, and an optional batch dimension (i.e. 2D or 3D "
            "inputs).")
    return _feature_dropout(input, p, training, inplace, "dropout1d", input.ndim == 3)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, H, W) input (3-D is read as (N, C, L), with torch's
    warning; 2-D (N, features) is dropped element-wise, with torch's deprecation warning)."""
    nd = input.ndim
    if nd not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {nd}-D input to dropout2d, which is deprecated and will "
            "result in an error in a future release. To retain the behavior and silence this "
            "warning, please use dropout instead. Note that dropout2d exists to provide "
            "channel-wise dropout on inputs with 2 spatial dimensions, a channel dimension, "
            "and an optional batch dimension (i.e. 3D or 4D inputs).", stacklevel=2)
    if nd == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D "
            "dropout behavior is desired - input is interpreted as shape (N, C, L), where C "
            "is the channel dim. This behavior will change in a future release to interpret "
            "the input as one without a batch dimension, i.e. shape (C, H, W). To maintain "
            "the 1D channel-wise dropout behavior, please switch to using dropout1d instead.",
            stacklevel=2)
    return _feature_dropout(input, p, training, inplace, "dropout2d")


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, D, H, W) or unbatched (C, D, H, W) input."""
    nd = input.ndim
    if nd not in (4, 5):
        warnings.warn(
            f"dropout3d: Received a {nd}-D input to dropout3d, which is deprecated and will "
            "result in an error in a future release. To retain the behavior and silence this "
            "warning, please use dropout instead. Note that dropout3d exists to provide "
            "channel-wise dropout on inputs with 3 spatial dimensions, a channel dimension, "
            "and an optional batch dimension (i.e. 4D or 5D inputs).", stacklevel=2)
    return _feature_dropout(input, p, training, inplace, "dropout3d", nd == 5)


def _alpha(input: Tensor, p: float, training: bool, inplace: bool, mask_shape, name: str):
    _check_p(p)
    if not training or p == 0.0:
        return input
    if p == 1.0:  # every unit dropped: torch gives zeros
        return _inplace(input, name + "_", lambda s: s * 0.0) if inplace else input * 0.0
    from ..ops.creation import _rng

    keep = _rng(None, input.device).random(mask_shape) >= p
    a = (1.0 / ((1 - p) * (1 + p * _ALPHA ** 2))) ** 0.5
    b = -a * _ALPHA * p
    xp = B.xp_of(input._data)  # asarray: a 0-d draw comes back as a NumPy scalar
    k = _make(B.move(xp.asarray(keep.astype(input._data.dtype)), input.device))
    run = (lambda s: (s * k + _ALPHA * (1 - k)) * a + b)
    return _inplace(input, name + "_", run) if inplace else run(input)


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                  inplace: bool = False) -> Tensor:
    """Element-wise dropout that keeps SELU's self-normalising mean and variance."""
    return _alpha(input, p, training, inplace, tuple(input.shape), "alpha_dropout")


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                          inplace: bool = False) -> Tensor:
    """Alpha dropout of whole channels: one decision per (dim 0, dim 1) pair (at least 2-D)."""
    shape = _feature_shape(tuple(input.shape)) if training and p else tuple(input.shape)
    return _alpha(input, p, training, inplace, shape, "feature_alpha_dropout")
