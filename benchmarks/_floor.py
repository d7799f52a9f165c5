"""The NumPy floor: each benchmark's computation written by hand in NumPy.

Forward and backward by hand, parameters updated in place, buffers reused where the shape
repeats. It is what the same math costs with NumPy's BLAS (OpenBLAS) and no autograd, so
``dyntorch / floor`` is what is ours (Python overhead, copies, kernels) and ``floor / torch``
is the BLAS gap (torch ships MKL/oneDNN). Weights are copied from the torch model of the case,
so the first loss equals torch's (checked by ``check_loss``).
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

F32 = np.float32


def params_of(torch_module) -> dict:
    """name -> float32 NumPy copy of every parameter (and buffer) of a torch module."""
    return {k: v.detach().numpy().copy() for k, v in torch_module.state_dict().items()}


# ----------------------------------------------------------------------------- layers
def linear_fwd(x, w, b):
    y = x @ w.T
    if b is not None:
        y += b
    return y


def linear_bwd(g, x, w, want_dx=True):
    """(dx, dw, db) for y = x @ w.T + b, x of any leading shape."""
    g2 = g.reshape(-1, g.shape[-1])
    x2 = x.reshape(-1, x.shape[-1])
    dw = g2.T @ x2
    db = g2.sum(0)
    dx = (g @ w) if want_dx else None
    return dx, dw, db


def cross_entropy(logits, y):
    """(loss, dlogits) of the mean cross-entropy over rows."""
    m = logits.max(1, keepdims=True)
    e = np.exp(logits - m)
    s = e.sum(1, keepdims=True)
    n = logits.shape[0]
    loss = float(np.mean(np.log(s[:, 0]) + m[:, 0] - logits[np.arange(n), y]))
    e /= s
    e[np.arange(n), y] -= 1
    e /= n
    return loss, e


def _windows(a, kh, kw, oh, ow, stride):
    """(n, c, oh, ow, kh, kw) view of the windows of ``a`` (no copy)."""
    s0, s1, s2, s3 = a.strides
    return as_strided(a, (a.shape[0], a.shape[1], oh, ow, kh, kw),
                      (s0, s1, s2 * stride, s3 * stride, s2, s3), writeable=False)


class Conv:
    """conv2d by im2col: for small output planes laid out (C*kh*kw, N*oh*ow), one GEMM over
    the batch for the forward, the weight gradient and the input gradient's columns; for big
    planes one GEMM per image (the faster of the two there)."""

    def __init__(self, w, b, stride=1, pad=0):
        self.w, self.b, self.stride, self.pad = w, b, stride, pad
        self.xpad = self.cols = None

    def fwd(self, x):
        n, c, h, wd = x.shape
        o, _, kh, kw = self.w.shape
        p, s = self.pad, self.stride
        hp, wp = h + 2 * p, wd + 2 * p
        if p:
            if self.xpad is None or self.xpad.shape != (n, c, hp, wp):
                self.xpad = np.zeros((n, c, hp, wp), F32)
            self.xpad[:, :, p:p + h, p:p + wd] = x
            xpad = self.xpad
        else:
            xpad = x
        oh, ow = (hp - kh) // s + 1, (wp - kw) // s + 1
        win = _windows(xpad, kh, kw, oh, ow, s)  # (n, c, oh, ow, kh, kw)
        self.geo = (x.shape, oh, ow)
        # big output planes: one GEMM per image; small ones: one GEMM over the batch
        self.per_image = oh * ow > 64
        shape = (n, c, kh, kw, oh, ow) if self.per_image else (c, kh, kw, n, oh, ow)
        if self.cols is None or self.cols.shape != shape:
            self.cols = np.empty(shape, F32)
        if self.per_image:
            self.cols[...] = win.transpose(0, 1, 4, 5, 2, 3)
            y = np.matmul(self.w.reshape(o, -1), self.cols.reshape(n, c * kh * kw, -1))
            if self.b is not None:
                y += self.b[:, None]
            return y.reshape(n, o, oh, ow)
        self.cols[...] = win.transpose(1, 4, 5, 0, 2, 3)
        y = self.w.reshape(o, -1) @ self.cols.reshape(c * kh * kw, -1)
        if self.b is not None:
            y += self.b[:, None]
        return y.reshape(o, n, oh, ow).transpose(1, 0, 2, 3)

    def bwd(self, g, want_dx=True):
        (n, c, h, wd), oh, ow = self.geo
        o, _, kh, kw = self.w.shape
        p, s = self.pad, self.stride
        if self.per_image:
            ck = c * kh * kw
            g3 = g.reshape(n, o, -1)
            cols = self.cols.reshape(n, ck, -1)
            dw = np.matmul(g3, cols.transpose(0, 2, 1)).sum(0).reshape(self.w.shape)
            db = g3.sum((0, 2)) if self.b is not None else None
            if not want_dx:
                return None, dw, db
            dcols = np.matmul(self.w.reshape(o, -1).T, g3).reshape(n, c, kh, kw, oh, ow)
            dx = np.zeros((n, c, h + 2 * p, wd + 2 * p), F32)
            for i in range(kh):
                for j in range(kw):
                    dx[:, :, i:i + s * oh:s, j:j + s * ow:s] += dcols[:, :, i, j]
            return (dx[:, :, p:p + h, p:p + wd] if p else dx), dw, db
        g2 = np.ascontiguousarray(g.transpose(1, 0, 2, 3)).reshape(o, -1)
        dw = (g2 @ self.cols.reshape(c * kh * kw, -1).T).reshape(self.w.shape)
        db = g2.sum(1) if self.b is not None else None
        if not want_dx:
            return None, dw, db
        dcols = (self.w.reshape(o, -1).T @ g2).reshape(c, kh, kw, n, oh, ow)
        dx = np.zeros((c, n, h + 2 * p, wd + 2 * p), F32)
        for i in range(kh):
            for j in range(kw):
                dx[:, :, i:i + s * oh:s, j:j + s * ow:s] += dcols[:, i, j]
        dx = dx.transpose(1, 0, 2, 3)
        return (dx[:, :, p:p + h, p:p + wd] if p else dx), dw, db


class MaxPool:
    """max pooling (k, stride, pad); non-overlapping windows by a reshape, others over a window
    view with the backward added per kernel offset."""

    def __init__(self, k, stride, pad=0):
        self.k, self.s, self.p = k, stride, pad

    def fwd(self, x):
        n, c, h, w = x.shape
        k, s, p = self.k, self.s, self.p
        if k == s and not p and h % k == 0 and w % k == 0:
            self.x = x
            self.out = x.reshape(n, c, h // k, k, w // k, k).max((3, 5))
            return self.out
        self.x = None
        if p:
            xpad = np.full((n, c, h + 2 * p, w + 2 * p), -np.inf, F32)
            xpad[:, :, p:p + h, p:p + w] = x
        else:
            xpad = x
        oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        win = _windows(xpad, k, k, oh, ow, s).reshape(n, c, oh, ow, k * k)
        self.arg = win.argmax(-1)
        self.geo = (x.shape, oh, ow)
        return np.take_along_axis(win, self.arg[..., None], -1)[..., 0]

    def bwd(self, g):
        k, s, p = self.k, self.s, self.p
        if self.x is not None:
            n, c, h, w = self.x.shape
            x6 = self.x.reshape(n, c, h // k, k, w // k, k)
            mask = x6 == self.out[:, :, :, None, :, None]
            return (mask * g[:, :, :, None, :, None]).reshape(n, c, h, w)
        (n, c, h, w), oh, ow = self.geo
        dx = np.zeros((n, c, h + 2 * p, w + 2 * p), F32)
        for i in range(k):
            for j in range(k):
                dx[:, :, i:i + s * oh:s, j:j + s * ow:s] += g * (self.arg == i * k + j)
        return dx[:, :, p:p + h, p:p + w] if p else dx


class BatchNorm:
    """batch norm in training mode (batch statistics), over (N, H, W)."""

    def __init__(self, w, b, eps=1e-5):
        self.w, self.b, self.eps = w, b, eps

    def fwd(self, x):
        mu = x.mean((0, 2, 3), keepdims=True)
        xc = x - mu
        var = (xc * xc).mean((0, 2, 3), keepdims=True)
        self.rstd = 1.0 / np.sqrt(var + self.eps)
        self.xhat = xc * self.rstd
        return self.xhat * self.w[:, None, None] + self.b[:, None, None]

    def bwd(self, g):
        xhat, rstd = self.xhat, self.rstd
        db = g.sum((0, 2, 3))
        dw = (g * xhat).sum((0, 2, 3))
        m = g.shape[0] * g.shape[2] * g.shape[3]
        dx = (self.w * rstd[0, :, 0, 0])[:, None, None] / m * (
            m * g - db[:, None, None] - xhat * dw[:, None, None])
        return dx, dw, db


def layer_norm_fwd(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    xc = x - mu
    rstd = 1.0 / np.sqrt((xc * xc).mean(-1, keepdims=True) + eps)
    xhat = xc * rstd
    return xhat * w + b, (xhat, rstd)


def layer_norm_bwd(g, w, saved):
    xhat, rstd = saved
    g2, x2 = g.reshape(-1, g.shape[-1]), xhat.reshape(-1, g.shape[-1])
    dw, db = (g2 * x2).sum(0), g2.sum(0)
    gx = g * w
    dx = rstd * (gx - gx.mean(-1, keepdims=True) - xhat * (gx * xhat).mean(-1, keepdims=True))
    return dx, dw, db


_C = math.sqrt(2.0 / math.pi)


def gelu_tanh_fwd(x):
    t = x * x
    t *= 0.044715
    t += 1.0
    t *= x
    t *= _C
    np.tanh(t, out=t)
    y = t + 1.0
    y *= x
    y *= 0.5
    return y, t


def gelu_tanh_bwd(g, x, t):
    d = x * x
    d *= 3 * 0.044715
    d += 1.0
    d *= x
    d *= 0.5 * _C
    s = t * t
    s -= 1.0
    d *= s
    np.add(t, 1.0, out=s)
    s *= 0.5
    s -= d
    s *= g
    return s


# ----------------------------------------------------------------------------- optimizers
class SGD:
    """SGD with momentum, updating the arrays in place (torch's formula)."""

    def __init__(self, params: list, lr, momentum):
        self.p, self.lr, self.mu = params, lr, momentum
        self.buf = [None] * len(params)

    def step(self, grads):
        for i, (p, g) in enumerate(zip(self.p, grads)):
            b = self.buf[i]
            if b is None:
                b = self.buf[i] = g.copy()
            else:
                b *= self.mu
                b += g
            p -= self.lr * b


class AdamW:
    def __init__(self, params: list, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        self.p, self.lr, self.b1, self.b2 = params, lr, betas[0], betas[1]
        self.eps, self.wd, self.t = eps, weight_decay, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads):
        self.t += 1
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        for p, g, m, v in zip(self.p, grads, self.m, self.v):
            p *= 1 - self.lr * self.wd
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            den = np.sqrt(v / c2)
            den += self.eps
            p -= (self.lr / c1) * m / den


def check_loss(name: str, floor_loss: float, torch_loss: float) -> None:
    """Refuse to time a floor that does not compute what torch computes."""
    if not abs(floor_loss - torch_loss) <= 1e-3 * max(1.0, abs(torch_loss)):
        raise AssertionError(f"{name}: NumPy floor loss {floor_loss} != torch loss {torch_loss}")
