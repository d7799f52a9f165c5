"""Adaptive max pooling (``F.adaptive_max_pool1d/2d``): the largest entry of each of a fixed
number of bins, with its index, and the gradient sent to that index.

Bin ``i`` of ``o`` over ``n`` entries covers ``[floor(i n / o), ceil((i + 1) n / o))``, as in
torch; bins may overlap when ``n`` is not a multiple of ``o``. NaN counts as the largest
(torch propagates it). One array pass per output cell: outputs are small (a classifier's
7x7 or 1x1) while the bins are large.
"""
from __future__ import annotations

import numpy as np

from .._dispatch import op
from .._tensor import Tensor
from ._ns import _add_at


def _bins(n: int, o: int) -> list:
    return [((i * n) // o, -(-((i + 1) * n) // o)) for i in range(o)]


@op(name="adaptive_max_pool2d", backward_name="AdaptiveMaxPool2DBackward0", multi=True)
def _adaptive_max_pool2d(xp, a, oh, ow):
    lead, (h, w) = a.shape[:-2], a.shape[-2:]
    out = xp.empty(lead + (oh, ow), a.dtype)
    idx = xp.empty(lead + (oh, ow), np.int64)
    for i, (hs, he) in enumerate(_bins(h, oh)):
        for j, (ws, we) in enumerate(_bins(w, ow)):
            win = a[..., hs:he, ws:we].reshape(lead + (-1,))
            k = win.argmax(-1)  # the first NaN, if any: NaN propagates as in torch
            out[..., i, j] = xp.take_along_axis(win, k[..., None], -1)[..., 0]
            bw = we - ws
            idx[..., i, j] = (hs + k // bw) * w + ws + k % bw  # flat over the (h, w) plane
    return out, idx


@_adaptive_max_pool2d.def_derivative
def _(ns, g, a, out, oh, ow):
    if ns.xp is None:
        raise RuntimeError("adaptive_max_pool: double backward (create_graph=True) is not "
                           "supported")
    lead, (h, w) = a.shape[:-2], a.shape[-2:]
    gx = ns.xp.zeros(lead + (h * w,), g.dtype)
    rows = tuple(ns.xp.arange(n).reshape((n,) + (1,) * (len(lead) - d))
                 for d, n in enumerate(lead))  # each bin's winner: its batch and channel too
    _add_at(ns.xp, gx, rows + (out[1].reshape(lead + (-1,)),), g.reshape(lead + (-1,)))
    return gx.reshape(a.shape)


def _size(output_size, n: int, name: str) -> int:
    o = n if output_size is None else int(output_size)
    if o <= 0:
        raise RuntimeError(f"{name}(): elements of output_size must be greater than or equal "
                           f"to 0 but received {{{o}}}")
    return o


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """Adaptive 2-D max pooling over the last two dims (``F.adaptive_max_pool2d``).

    Parameters
    ----------
    input : Tensor
        ``(N, C, H, W)`` or ``(C, H, W)``.
    output_size : int or tuple of int (an entry None keeps that size)
    return_indices : bool
        Also return the index of each maximum, flat over the ``(H, W)`` plane.
    """
    if input.ndim not in (3, 4):
        raise RuntimeError(f"adaptive_max_pool2d(): Expected 3D or 4D tensor, but got "
                           f"{list(input.shape)}")
    os_ = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    h, w = input.shape[-2:]
    v, i = _adaptive_max_pool2d(input, oh=_size(os_[0], h, "adaptive_max_pool2d"),
                                ow=_size(os_[1], w, "adaptive_max_pool2d"))
    return (v, i) if return_indices else v


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    """Adaptive 1-D max pooling over the last dim (``F.adaptive_max_pool1d``); ``input`` is
    ``(N, C, L)`` or ``(C, L)``."""
    if input.ndim not in (2, 3):
        raise RuntimeError(f"adaptive_max_pool1d(): Expected 2D or 3D tensor, but got "
                           f"{list(input.shape)}")
    o = output_size[0] if isinstance(output_size, (tuple, list)) else output_size
    v, i = adaptive_max_pool2d(input.unsqueeze(-2), (1, o), True)
    v, i = v.squeeze(-2), i.squeeze(-2)
    return (v, i) if return_indices else v


def _adaptive_max_pool1d_pair(input: Tensor, output_size) -> tuple:
    """``torch.adaptive_max_pool1d``: always ``(values, indices)``."""
    return adaptive_max_pool1d(input, output_size, True)


PUBLIC = {"adaptive_max_pool1d": _adaptive_max_pool1d_pair}
