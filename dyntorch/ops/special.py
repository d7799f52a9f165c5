"""Special functions (``lgamma``, ``digamma``, ``polygamma``, ``erfc``, ``erfinv``, the normal
distribution's ``ndtr``/``ndtri``/``log_ndtr``, modified Bessel ``i0``/``i1`` ...), each an op
with its forward and derivative side by side.

The kernels use only the array module's elementary functions, so one code path serves NumPy
and CuPy. They compute in float64 and cast back: the series and continued fractions below
are written for double precision and their accuracy is tested against torch.

Where a derivative needs another special function, :func:`_sp` picks the array kernel on the
plain path and the dyntorch op (which records graph) under ``create_graph=True``.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

from .. import _backend as B
from .._dispatch import op
from .._tensor import Tensor
from . import elementwise as E
from ._util import method

_SQRT_PI = math.sqrt(math.pi)
_TWO_OVER_SQRT_PI = 2.0 / _SQRT_PI
_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _quiet(xp):
    # poles and tails give inf/nan on purpose (as in torch); keep NumPy from warning
    return np.errstate(all="ignore") if xp is np else contextlib.nullcontext()


def _f64(xp, a):
    return a.astype(xp.float64, copy=False)


def _abs_sinpi(xp, x):
    """|sin(pi x)| with the argument reduced to [-1/2, 1/2] first, so it is exactly 0 at
    every integer."""
    return xp.abs(xp.sin(math.pi * (x - xp.round(x))))


# ----------------------------------------------------------------------------- gamma family
# Lanczos (g = 7, n = 9): Gamma(z + 1) = sqrt(2 pi) t^(z + 1/2) e^-t A(z), t = z + 7.5
_LANCZOS = (0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012,
            9.9843695780195716e-6, 1.5056327351493116e-7)


def lgamma_array(xp, x):
    """log|Gamma(x)|; +inf at the poles (0, -1, -2, ...)."""
    x = _f64(xp, x)
    with _quiet(xp):
        refl = x < 0.5
        y = xp.where(refl, 1.0 - x, x)  # y >= 0.5, where Lanczos holds
        z = y - 1.0
        acc = xp.full_like(z, _LANCZOS[0])
        for k in range(1, 9):
            acc = acc + _LANCZOS[k] / (z + k)
        t = z + 7.5
        lg = _LOG_SQRT_2PI + (z + 0.5) * xp.log(t) - t + xp.log(acc)
        # reflection: Gamma(x) Gamma(1 - x) = pi / sin(pi x)
        out = xp.where(refl, math.log(math.pi) - xp.log(_abs_sinpi(xp, x)) - lg, lg)
        return xp.where(xp.isinf(x), xp.inf, out)


_B2K = (1 / 12, 1 / 120, 1 / 252, 1 / 240, 1 / 132, 691 / 32760, 1 / 12)  # |B_2k| / 2k


def digamma_array(xp, x):
    """psi(x) = d/dx log Gamma(x); -inf at +0 (+inf at -0) and nan at the negative integers, as
    torch."""
    x = _f64(xp, x)
    with _quiet(xp):
        refl = x < 0.5
        y = xp.where(refl, 1.0 - x, x)
        acc = xp.zeros_like(y)
        for _ in range(10):  # psi(y) = psi(y + 1) - 1/y, until y >= 10 (y >= 0.5 to start)
            small = y < 10.0
            acc = acc - xp.where(small, 1.0 / y, 0.0)
            y = xp.where(small, y + 1.0, y)
        inv2 = 1.0 / (y * y)
        s = 0.0
        for k in range(len(_B2K) - 1, -1, -1):  # alternating asymptotic series in 1/y^2
            s = inv2 * (_B2K[k] - s)
        psi = xp.log(y) - 0.5 / y - s + acc
        r = x - xp.round(x)  # psi(1 - x) - psi(x) = pi cot(pi x)
        out = xp.where(refl, psi - math.pi / xp.tan(math.pi * r), psi)
        out = xp.where(refl & (x == xp.floor(x)), xp.nan, out)
        return xp.where(x == 0, -xp.copysign(xp.inf, x), out)  # psi(+-0) = -+inf


# B_2j / (2j)! for the Euler-Maclaurin tail of the Hurwitz zeta function
_B2J_FACT = (1 / 12, -1 / 720, 1 / 30240, -1 / 1209600, 1 / 47900160, -691 / 1307674368000,
             1 / 74724249600, -3617 / 10670622842880000, 43867 / 5109094217170944000)


def zeta_array(xp, s, q):
    """Hurwitz zeta sum_k (q + k)^-s (``s`` a number or an array broadcast with ``q``):
    direct terms until q + k >= 10 + s, then the Euler-Maclaurin tail. As torch: inf at
    s = 1 and at q = 0, -1, -2, ...; nan for s < 1, and for q < 0 unless s is an integer."""
    q = _f64(xp, q)
    scalar_s = isinstance(s, (int, float))
    if not scalar_s:
        s = _f64(xp, s)
        s, q = xp.broadcast_arrays(s, q)
    with _quiet(xp):
        finite = xp.isfinite(q)
        lo = float(xp.where(finite, q, xp.inf).min()) if q.size else math.inf
        hi = float(s) if scalar_s else (float(xp.where(xp.isfinite(s), s, 1.0).max())
                                         if s.size else 1.0)
        n = max(0, int(math.ceil(10.0 + hi - lo))) if math.isfinite(lo) else 0
        stop = 10.0 + s
        total = xp.zeros_like(q)
        a = q
        for _ in range(n):
            total = total + xp.where(a >= stop, 0.0, a ** -s)
            a = xp.where(a >= stop, a, a + 1.0)
        total = total + a ** (1.0 - s) / (s - 1.0) + 0.5 * a ** -s
        poch, ap = s, a ** (-s - 1.0)
        for j, c in enumerate(_B2J_FACT):
            total = total + c * poch * ap
            poch = poch * ((s + 2 * j + 1) * (s + 2 * j + 2))
            ap = ap / (a * a)
        total = xp.where((q <= 0) & (q == xp.floor(q)), xp.inf, total)
        if scalar_s:
            return total
        total = xp.where((q < 0) & (q != xp.floor(q)) & (s != xp.floor(s)), xp.nan, total)
        return xp.where(s == 1, xp.inf, xp.where(s < 1, xp.nan, total))


def polygamma_array(xp, n: int, x):
    """The n-th derivative of psi: (-1)^(n+1) n! zeta(n + 1, x) for n >= 1."""
    if n == 0:
        return digamma_array(xp, x)
    return (-1.0) ** (n + 1) * math.factorial(n) * zeta_array(xp, n + 1.0, x)


# ----------------------------------------------------------------------------- incomplete gamma
_TINY = 1e-300


def _gamma_series(xp, a, x):
    """P(a, x) for x < a + 1: e^-x x^a / Gamma(a + 1) sum_n x^n / ((a + 1)...(a + n))."""
    term = 1.0 / a
    total = term
    ap = a
    for i in range(4000):
        ap = ap + 1.0
        term = term * x / ap
        total = total + term
        if i % 16 == 15 and not bool((xp.abs(term) > xp.abs(total) * 1e-17).any()):
            break
    return total * xp.exp(-x + a * xp.log(x) - lgamma_array(xp, a))


def _gamma_cf(xp, a, x):
    """Q(a, x) for x >= a + 1 by the continued fraction of Legendre, evaluated with the
    modified Lentz method."""
    b = x + 1.0 - a
    c = xp.full_like(x, 1.0 / _TINY)
    d = 1.0 / b
    h = d
    for i in range(1, 4000):
        an = -i * (i - a)
        b = b + 2.0
        d = an * d + b
        d = xp.where(xp.abs(d) < _TINY, _TINY, d)
        c = b + an / c
        c = xp.where(xp.abs(c) < _TINY, _TINY, c)
        d = 1.0 / d
        delta = d * c
        h = h * delta
        if i % 16 == 0 and not bool((xp.abs(delta - 1.0) > 1e-16).any()):
            break
    return h * xp.exp(-x + a * xp.log(x) - lgamma_array(xp, a))


def gammainc_array(xp, a, x, upper: bool):
    """The regularized incomplete gamma P(a, x), or Q(a, x) = 1 - P when ``upper``."""
    a, x = xp.broadcast_arrays(_f64(xp, a), _f64(xp, x))
    with _quiet(xp):
        ok = (a > 0) & (x > 0) & xp.isfinite(a) & xp.isfinite(x)
        a1, x1 = xp.where(ok, a, 1.0), xp.where(ok, x, 1.0)
        series = x1 < a1 + 1.0

        def by_pair(fn):
            return lambda idx: fn(xp, a1.reshape(-1)[idx], x1.reshape(-1)[idx])

        flat = xp.arange(a1.size).reshape(a1.shape)
        p = _piecewise(xp, series, flat, by_pair(_gamma_series),
                       lambda idx: 1.0 - by_pair(_gamma_cf)(idx))
        p = p.reshape(a1.shape)
        q = 1.0 - p
        # where the fraction ran, Q itself is the accurate one (P near 1)
        q = _piecewise(xp, ~series, flat, by_pair(_gamma_cf), lambda idx: q.reshape(-1)[idx])
        out = q if upper else p
        edge = xp.where((x == 0) & (a > 0), 1.0 if upper else 0.0, xp.nan)
        edge = xp.where(xp.isposinf(x) & (a > 0), 0.0 if upper else 1.0, edge)
        edge = xp.where((a == 0) & (x > 0), 0.0 if upper else 1.0, edge)
        return xp.where(ok, out, edge)


# ----------------------------------------------------------------------------- error functions
# Below it the series (1 - erf loses at most ~30x in erfc there); beyond it the continued
# fraction, which at depth 100 is exact to double precision from 1.5 on (checked against
# math.erfc when this was written: 2e-16 at 1.5, 1e-16 at 2).
_ERF_SWITCH = 1.5


def _piecewise(xp, mask, x, inside, outside):
    """``inside(x)`` where ``mask``, ``outside(x)`` elsewhere, each run on its own elements only
    (a branch computed everywhere and masked by ``where`` costs the work twice)."""
    shape = x.shape
    x, mask = x.reshape(-1), mask.reshape(-1)
    out = xp.empty(x.shape, dtype=xp.float64)  # x may be an index array
    if bool(mask.any()):
        out[mask] = inside(x[mask])
    rest = ~mask
    if bool(rest.any()):
        out[rest] = outside(x[rest])
    return out.reshape(shape)


def _erf_series(xp, x):
    """erf on |x| <= 1.5: 2/sqrt(pi) e^-x^2 sum 2^n x^(2n+1) / (2n+1)!! (all terms one sign;
    32 terms leave less than 1e-22 at 1.5)."""
    term = x
    total = x
    x2 = 2.0 * x * x
    for n in range(1, 32):
        term = term * x2 / (2 * n + 1)
        total = total + term
    return _TWO_OVER_SQRT_PI * xp.exp(-x * x) * total


def _erfc_cf(xp, x):
    """The continued fraction x + (1/2)/(x + 1/(x + (3/2)/(x + ...))) for x >= 1.5, so that
    erfc(x) = e^-x^2 / (sqrt(pi) cf) and erfcx(x) = 1 / (sqrt(pi) cf). It converges faster
    the larger x: depth 100 from 1.5, 40 from 3 (5e-16 at 3 against math.erfc)."""
    def depth(n):
        def cf(v):
            f = v
            for k in range(n, 0, -1):
                f = v + (0.5 * k) / f
            return f
        return cf

    return _piecewise(xp, x > 3.0, x, depth(40), depth(100))


def _erfc_pos(xp, ax):
    """erfc on ax >= 0 (nan passes through)."""
    return _piecewise(xp, ax > _ERF_SWITCH, ax,
                      lambda v: xp.exp(-v * v) / (_SQRT_PI * _erfc_cf(xp, v)),
                      lambda v: 1.0 - _erf_series(xp, v))


def erfc_array(xp, x):
    x = _f64(xp, x)
    with _quiet(xp):
        pos = _erfc_pos(xp, xp.abs(x))
        return xp.where(x < 0, 2.0 - pos, pos)


def erfcx_array(xp, x):
    """exp(x^2) erfc(x), without the overflow of either factor for large x."""
    x = _f64(xp, x)
    with _quiet(xp):
        return _piecewise(xp, x > _ERF_SWITCH, x,
                          lambda v: 1.0 / (_SQRT_PI * _erfc_cf(xp, v)),
                          lambda v: xp.exp(v * v) * erfc_array(xp, v))


def _log_erfc_and_erfcx(xp, x):
    """(log erfc(x), erfcx(x)) for x >= 0 from one continued fraction or one series."""
    big = x > _ERF_SWITCH
    f = _piecewise(xp, big, x, lambda v: _SQRT_PI * _erfc_cf(xp, v),
                   lambda v: 1.0 - _erf_series(xp, v))  # sqrt(pi) cf, or erfc itself
    log_erfc = xp.where(big, -x * x - xp.log(f), xp.log(f))
    erfcx = xp.where(big, 1.0 / f, xp.exp(x * x) * f)
    return log_erfc, erfcx


def _log_erfc_pos(xp, x):
    """log erfc(x) for x >= 0 without underflow in the far tail."""
    return _log_erfc_and_erfcx(xp, x)[0]


def _erfc_inv_tail(xp, q):
    """x > 0 with erfc(x) = q for 0 < q <= 0.5: Newton on log erfc, which is near linear in
    x^2 and so converges from Winitzki's closed-form guess (1e-3 off) in a few steps."""
    a = 0.147
    w = xp.log(q) + xp.log(2.0 - q)  # log(1 - y^2) with y = 1 - q, exact for tiny q
    t = 2.0 / (math.pi * a) + 0.5 * w
    x = xp.sqrt(xp.sqrt(t * t - w / a) - t)
    lq = xp.log(q)
    for _ in range(5):
        le, ex = _log_erfc_and_erfcx(xp, x)
        x = x + (le - lq) * _SQRT_PI * ex / 2.0
    return x


def _erfinv_core(xp, y):
    """erfinv on |y| <= 0.5 by Halley's method on erf (erf'' = -2x erf')."""
    x = y * (_SQRT_PI / 2.0) * (1.0 + (math.pi / 12.0) * y * y)
    for _ in range(4):
        u = (_erf_series(xp, x) - y) / (_TWO_OVER_SQRT_PI * xp.exp(-x * x))
        x = x - u / (1.0 + x * u)
    return x


def erfinv_array(xp, y):
    y = _f64(xp, y)
    with _quiet(xp):
        ay = xp.abs(y)
        inner = (ay > 0.5) & (ay < 1.0)
        # 1 - |y| is exact there (Sterbenz), so the tail keeps every digit near +-1
        tail = _piecewise(xp, inner, ay, lambda v: _erfc_inv_tail(xp, 1.0 - v),
                          lambda v: xp.zeros_like(v))
        out = xp.where(inner, xp.sign(y) * tail, 0.0)
        out = _piecewise(xp, ay <= 0.5, y, lambda v: _erfinv_core(xp, v),
                         lambda v: xp.zeros_like(v)) + out
        out = xp.where(ay == 1.0, xp.sign(y) * xp.inf, out)
        return xp.where((ay > 1.0) | xp.isnan(y), xp.nan, out)


def erfcinv_array(xp, q):
    """x with erfc(x) = q, q in [0, 2]."""
    q = _f64(xp, q)
    with _quiet(xp):
        lo, hi = (q > 0) & (q <= 0.5), (q >= 1.5) & (q < 2)
        tails = lo | hi
        t = _piecewise(xp, tails, xp.where(hi, 2.0 - q, q),
                       lambda v: _erfc_inv_tail(xp, v), lambda v: xp.zeros_like(v))
        m = _piecewise(xp, ~tails, 1.0 - q, lambda v: erfinv_array(xp, v),
                       lambda v: xp.zeros_like(v))
        out = xp.where(lo, t, xp.where(hi, -t, m))
        out = xp.where(q == 0, xp.inf, xp.where(q == 2, -xp.inf, out))
        return xp.where((q < 0) | (q > 2), xp.nan, out)


def ndtri_array(xp, p):
    return -_SQRT2 * erfcinv_array(xp, 2.0 * _f64(xp, p))


def log_ndtr_array(xp, x):
    """log Phi(x): the far left tail from the continued fraction, the right side as
    log1p(-Phi(-x)) so values near 0 keep their digits."""
    x = _f64(xp, x)
    with _quiet(xp):
        z = -x / _SQRT2
        left = _log_erfc_pos(xp, xp.where(x <= 0, z, 0.0)) - math.log(2.0)
        right = xp.log1p(-0.5 * erfc_array(xp, xp.where(x > 0, -z, 0.0)))
        return xp.where(x <= 0, left, xp.where(x > 0, right, x))  # nan stays nan


# ----------------------------------------------------------------------------- Bessel I0, I1
_BESSEL_SWITCH = 30.0


def _bessel_i(xp, nu: int, x, scaled: bool):
    """I_nu(|x|) (nu = 0 or 1), times e^-|x| when ``scaled``: the power series up to 30, the
    asymptotic series e^x / sqrt(2 pi x) sum c_k x^-k beyond."""
    mu = 4.0 * nu * nu

    def series(s):
        q = s * s / 4.0
        term = xp.ones_like(s) if nu == 0 else s / 2.0
        total = term
        for k in range(1, 60):
            term = term * q / (k * (k + nu))
            total = total + term
        return total * xp.exp(-s) if scaled else total

    def asymptotic(b):
        c, acc, p, inv = 1.0, xp.ones_like(b), xp.ones_like(b), 1.0 / b
        for k in range(1, 30):
            c *= ((2 * k - 1) ** 2 - mu) / (8.0 * k)
            p = p * inv
            acc = acc + c * p
        r = acc / xp.sqrt(2 * math.pi * b)
        return r if scaled else r * xp.exp(b)

    ax = xp.abs(_f64(xp, x))
    with _quiet(xp):
        return _piecewise(xp, ax > _BESSEL_SWITCH, ax, asymptotic, series)


def i0_array(xp, x):
    return _bessel_i(xp, 0, x, False)


def i0e_array(xp, x):
    return _bessel_i(xp, 0, x, True)


def i1_array(xp, x):
    return xp.sign(_f64(xp, x)) * _bessel_i(xp, 1, x, False)


def i1e_array(xp, x):
    return xp.sign(_f64(xp, x)) * _bessel_i(xp, 1, x, True)


# ----------------------------------------------------------------------------- the ops
_KERNELS = {"lgamma": lgamma_array, "digamma": digamma_array, "erfc": erfc_array,
            "erfcx": erfcx_array, "erfinv": erfinv_array, "ndtri": ndtri_array,
            "log_ndtr": log_ndtr_array, "i0": i0_array, "i0e": i0e_array, "i1": i1_array,
            "i1e": i1e_array}


def _sp(ns, name: str, x, **kw):
    """Special function ``name`` on the derivative's kind of value: the array kernel on the
    plain path, the recording op under ``create_graph``."""
    if ns.xp is None:
        return _OPS[name](x, **kw)
    if name == "polygamma":
        return polygamma_array(ns.xp, kw["n"], x).astype(x.dtype, copy=False)
    return _KERNELS[name](ns.xp, x).astype(x.dtype, copy=False)


def _unary(name):
    kernel = _KERNELS[name]

    @op(name=name)
    def f(xp, a):
        return kernel(xp, a).astype(a.dtype, copy=False)

    return f


lgamma_op = _unary("lgamma")
digamma_op = _unary("digamma")
erfc_op = _unary("erfc")
erfcx_op = _unary("erfcx")
erfinv_op = _unary("erfinv")
ndtri_op = _unary("ndtri")
log_ndtr_op = _unary("log_ndtr")
i0_op = _unary("i0")
i0e_op = _unary("i0e")
i1_op = _unary("i1")
i1e_op = _unary("i1e")


@op(name="zeta", promote=True, backward_name="SpecialZetaBackward0")
def zeta_op(xp, s, q):
    return zeta_array(xp, s, q).astype(q.dtype, copy=False)


@zeta_op.def_derivative
def _(ns, g, s, q, needs):
    if needs[0]:
        raise NotImplementedError("the derivative for 'zeta' with respect to its first "
                                  "argument (the exponent) is not implemented, in torch "
                                  "either; detach it, or differentiate with respect to q only")
    if ns.xp is None:
        dq = zeta_op(s + 1, q)
    else:
        dq = zeta_array(ns.xp, s + 1, q).astype(q.dtype, copy=False)
    return None, g * -s * dq


def _igamma(upper: bool):
    name = "igammac" if upper else "igamma"

    @op(name=name, promote=True)
    def f(xp, a, x):
        return gammainc_array(xp, a, x, upper).astype(x.dtype, copy=False)

    @f.def_derivative
    def _(ns, g, a, x, needs):
        if needs[0]:
            raise NotImplementedError(f"the derivative for '{name}' with respect to its first "
                                      "argument (a) is not implemented, in torch either; "
                                      "detach it, or differentiate with respect to x only")
        # d/dx P(a, x) = x^(a-1) e^-x / Gamma(a); Q = 1 - P
        safe = ns.where(x > 0, x, 1.0)
        d = ns.exp((a - 1) * ns.log(safe) - safe - _sp(ns, "lgamma", a))
        d = ns.where(x > 0, d, 0.0)
        return None, (-g * d if upper else g * d)

    return f


igamma_op = _igamma(False)
igammac_op = _igamma(True)


@op(name="polygamma")
def polygamma_op(xp, a, n):
    return polygamma_array(xp, n, a).astype(a.dtype, copy=False)


@lgamma_op.def_derivative
def _(ns, g, a):
    return g * _sp(ns, "digamma", a)


@digamma_op.def_derivative
def _(ns, g, a):
    return g * _sp(ns, "polygamma", a, n=1)


@polygamma_op.def_derivative
def _(ns, g, a, *, n):
    return g * _sp(ns, "polygamma", a, n=n + 1)


@erfc_op.def_derivative
def _(ns, g, a):
    return g * (-_TWO_OVER_SQRT_PI) * ns.exp(-a * a)


@erfcx_op.def_derivative
def _(ns, g, a, out):
    return g * (2 * a * out - _TWO_OVER_SQRT_PI)


@erfinv_op.def_derivative
def _(ns, g, _a, out):
    return g * (_SQRT_PI / 2) * ns.exp(out * out)


@ndtri_op.def_derivative
def _(ns, g, _a, out):
    return g * math.sqrt(2 * math.pi) * ns.exp(out * out / 2)


@log_ndtr_op.def_derivative
def _(ns, g, a, out):
    return g * ns.exp(-a * a / 2 - out - _LOG_SQRT_2PI)  # phi(x) / Phi(x), in logs


@i0_op.def_derivative
def _(ns, g, a):
    return g * _sp(ns, "i1", a)


@i0e_op.def_derivative
def _(ns, g, a, out):
    return g * (_sp(ns, "i1e", a) - ns.sign(a) * out)


def _safe_x(ns, a):
    return ns.where(a == 0, 1.0, a)  # I1(x)/x -> 1/2 at 0: divide by 1 there, then mask


@i1_op.def_derivative
def _(ns, g, a, out):
    d = _sp(ns, "i0", a) - out / _safe_x(ns, a)
    return g * ns.where(a == 0, 0.5, d)


@i1e_op.def_derivative
def _(ns, g, a, out):
    d = _sp(ns, "i0e", a) - out * (ns.sign(a) + 1 / _safe_x(ns, a))
    return g * ns.where(a == 0, 0.5, d)


_OPS = {"lgamma": lgamma_op, "digamma": digamma_op, "erfc": erfc_op, "erfcx": erfcx_op,
        "erfinv": erfinv_op, "ndtri": ndtri_op, "log_ndtr": log_ndtr_op, "i0": i0_op,
        "i0e": i0e_op, "i1": i1_op, "i1e": i1e_op, "polygamma": polygamma_op}


# ----------------------------------------------------------------------------- public wrappers
def _public(o, doc: str):
    def f(input: Tensor, *, out=None) -> Tensor:
        r = o(E._int_to_float(_need(input, o.name)))
        return r if out is None else out.copy_(r)

    f.__name__ = f.__qualname__ = o.name
    f.__doc__ = doc
    return f


def _need(x, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")
    return x


lgamma = _public(lgamma_op, "log|Gamma(x)| elementwise (``torch.lgamma``).")
digamma = _public(digamma_op, "psi(x) = d/dx log Gamma(x) (``torch.digamma``).")
erfc = _public(erfc_op, "1 - erf(x), accurate in the tails (``torch.erfc``).")
erfcx = _public(erfcx_op, "exp(x^2) erfc(x) (``torch.special.erfcx``).")
erfinv = _public(erfinv_op, "The inverse of erf on (-1, 1) (``torch.erfinv``).")
ndtri = _public(ndtri_op, "The standard normal quantile: Phi^-1(p) (``torch.special.ndtri``).")
log_ndtr = _public(log_ndtr_op, "log Phi(x), accurate far into the left tail "
                                "(``torch.special.log_ndtr``).")
i0 = _public(i0_op, "Modified Bessel function of the first kind, order 0 (``torch.i0``).")
i0e = _public(i0e_op, "exp(-|x|) I0(x) (``torch.special.i0e``).")
i1 = _public(i1_op, "Modified Bessel function of the first kind, order 1 "
                    "(``torch.special.i1``).")
i1e = _public(i1e_op, "exp(-|x|) I1(x) (``torch.special.i1e``).")


def polygamma(n: int, input: Tensor, *, out=None) -> Tensor:
    """The ``n``-th derivative of digamma (``torch.polygamma``)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise RuntimeError(f"polygamma(n, x) does not support negative n (got n={n!r}); n is "
                           "the order of the derivative of digamma, an int >= 0")
    x = E._int_to_float(_need(input, "polygamma"))
    r = digamma_op(x) if n == 0 else polygamma_op(x, n=n)
    return r if out is None else out.copy_(r)


def zeta(input, other, *, out=None) -> Tensor:
    """The Hurwitz zeta function sum_k (other + k)^-input (``torch.special.zeta``);
    differentiable with respect to ``other``."""
    from .math_extra import _t

    like = input if isinstance(input, Tensor) else other
    if not isinstance(like, Tensor):
        raise TypeError("zeta(): expected at least one Tensor argument, got two numbers")
    s, q = _t(input, like), _t(other, like)
    r = zeta_op(E._int_to_float(s), E._int_to_float(q))
    return r if out is None else out.copy_(r)


def _igamma_public(o, name: str, doc: str):
    def f(input, other, *, out=None) -> Tensor:
        from .math_extra import _t

        like = input if isinstance(input, Tensor) else other
        if not isinstance(like, Tensor):
            raise TypeError(f"{name}(): expected at least one Tensor argument, got two numbers")
        r = o(E._int_to_float(_t(input, like)), E._int_to_float(_t(other, like)))
        return r if out is None else out.copy_(r)

    f.__name__ = f.__qualname__ = name
    f.__doc__ = doc
    return f


igamma = _igamma_public(igamma_op, "igamma", "The regularized lower incomplete gamma function "
                        "P(input, other) (``torch.igamma``, ``torch.special.gammainc``); "
                        "differentiable with respect to ``other``.")
igammac = _igamma_public(igammac_op, "igammac", "The regularized upper incomplete gamma "
                         "function Q(input, other) = 1 - P (``torch.igammac``, "
                         "``torch.special.gammaincc``); differentiable with respect to "
                         "``other``.")


def ndtr(input: Tensor, *, out=None) -> Tensor:
    """The standard normal CDF Phi(x) (``torch.special.ndtr``)."""
    x = E._int_to_float(_need(input, "ndtr"))
    r = erfc_op(x * (-1 / _SQRT2)) * 0.5
    return r if out is None else out.copy_(r)


def mvlgamma(input: Tensor, p: int, *, out=None) -> Tensor:
    """The log of the multivariate gamma function of dimension ``p`` (``torch.mvlgamma``)."""
    x = E._int_to_float(_need(input, "mvlgamma"))
    if p < 1:
        raise RuntimeError(f"mvlgamma(): p has to be greater than or equal to 1, got {p}")
    if bool((x <= (p - 1) / 2).any()):
        raise RuntimeError(f"mvlgamma(): All elements must be greater than (p-1)/2 = "
                           f"{(p - 1) / 2} for p={p}")
    r = lgamma_op(x)
    for j in range(1, p):
        r = r + lgamma_op(x - j / 2)
    r = r + p * (p - 1) / 4 * math.log(math.pi)
    return r if out is None else out.copy_(r)


def xlog1py(input, other, *, out=None) -> Tensor:
    """x * log1p(y), and 0 where x == 0 (``torch.special.xlog1py``)."""
    from .math_extra import _t

    like = input if isinstance(input, Tensor) else other
    x, y = _t(input, like), _t(other, like)
    zero = x == 0
    r = E.where(zero, 0.0, x * E.log1p(E.where(zero, 0.0, y)))
    return r if out is None else out.copy_(r)


def entr(input: Tensor, *, out=None) -> Tensor:
    """-x log x for x > 0, 0 at 0, -inf below (``torch.special.entr``)."""
    x = E._int_to_float(_need(input, "entr"))
    pos = x > 0
    r = E.where(pos, -x * E.log(E.where(pos, x, 1.0)), E.where(x == 0, 0.0, -math.inf))
    r = E.where(E.isnan(x), x, r)
    return r if out is None else out.copy_(r)


def spherical_bessel_j0(input: Tensor, *, out=None) -> Tensor:
    """sin(x) / x, and 1 at 0 (``torch.special.spherical_bessel_j0``)."""
    x = E._int_to_float(_need(input, "spherical_bessel_j0"))
    zero = x == 0
    s = E.where(zero, 1.0, x)
    r = E.where(zero, 1.0, E.where(E.isinf(x), 0.0, E.sin(s) / s))
    return r if out is None else out.copy_(r)


# ----------------------------------------------------------------------------- everyday names
def sgn(input: Tensor, *, out=None) -> Tensor:
    """The sign, x / |x|, and 0 at nan (``torch.sgn``; for real tensors torch's ``sign``)."""
    r = E.sign(input)
    if r.dtype.is_floating_point:
        r = E.where(E.isnan(input), 0.0, r)
    return r if out is None else out.copy_(r)


def heaviside(input: Tensor, values, *, out=None) -> Tensor:
    """0 where input < 0, ``values`` where input == 0, 1 where input > 0 (``torch.heaviside``).

    Not differentiable (torch has no derivative for it either), so the result never
    requires grad."""
    _need(input, "heaviside")
    if not isinstance(values, Tensor):
        raise TypeError(f"heaviside(): argument 'values' (position 2) must be Tensor, not "
                        f"{type(values).__name__}")
    if input.dtype is not values.dtype:
        raise RuntimeError(f"heaviside is not yet implemented for tensors with different "
                           f"dtypes: input is {input.dtype}, values is {values.dtype}; cast "
                           "one with .to()")
    a, v = input.detach(), values.detach()
    r = E.where(a == 0, v, (a > 0).to(a.dtype))
    return r if out is None else out.copy_(r)


def renorm(input: Tensor, p: float, dim: int, maxnorm: float, *, out=None) -> Tensor:
    """Each slice along ``dim`` scaled down to p-norm ``maxnorm`` where its norm exceeds it
    (``torch.renorm``; torch's ``1e-7`` guard included)."""
    from ._util import norm_dim
    from .reduce import vector_norm

    _need(input, "renorm")
    if p <= 0:
        raise RuntimeError(f"renorm(): non-positive-norm not supported, got p={p}")
    if maxnorm < 0:
        raise RuntimeError(f"renorm(): expected maxnorm to be >= 0 but got {maxnorm}")
    if input.ndim <= 1:
        raise RuntimeError(f"renorm(): input needs at least 2 dimensions, got {input.ndim} "
                           "dimensions")
    d = norm_dim(dim, input.ndim, "renorm", single=True)
    others = tuple(i for i in range(input.ndim) if i != d)
    norms = vector_norm(input, p, others, True)
    scale = E.where(norms > maxnorm, maxnorm / (norms + 1e-7), 1.0)
    r = input * scale
    return r if out is None else out.copy_(r)


def vander(x: Tensor, N: int | None = None, increasing: bool = False) -> Tensor:
    """The Vandermonde matrix of a 1-D tensor: columns x^(N-1) ... x^0, or x^0 ... x^(N-1)
    when ``increasing`` (``torch.vander``)."""
    from .shape import stack

    _need(x, "vander")
    if x.ndim != 1:
        raise RuntimeError(f"vander(): x must be a one-dimensional tensor, got {x.ndim} "
                           "dimensions")
    n = x.shape[0] if N is None else N
    if n < 0:
        raise RuntimeError(f"vander(): N must be non-negative, got {n}")
    if x.dtype.is_floating_point:
        xs = x
    else:  # torch promotes bool and small ints to int64
        xs = x.to(B.int64)
    cols, c = [], xs ** 0  # ones, on the graph like torch's (N=1 still requires grad)
    for k in range(n):
        cols.append(c)
        if k + 1 < n:
            c = c * xs
    if not cols:
        return xs.reshape(-1, 1)[:, :0]
    m = stack(cols if increasing else cols[::-1], 1)
    return m


def row_stack(tensors, *, out=None) -> Tensor:
    """Alias of :func:`vstack` (``torch.row_stack``)."""
    from .shape import vstack

    r = vstack(tensors)
    return r if out is None else out.copy_(r)


def unsafe_chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:
    """:func:`chunk` (``torch.unsafe_chunk``: torch skips a view check; dyntorch has none)."""
    from .shape import chunk

    return chunk(input, chunks, dim)


def unsafe_split(input: Tensor, split_size: int, dim: int = 0) -> tuple:
    """:func:`split` (``torch.unsafe_split``)."""
    from .shape import split

    return split(input, split_size, dim)


PUBLIC = {"lgamma": lgamma, "digamma": digamma, "polygamma": polygamma, "erfc": erfc,
          "erfinv": erfinv, "i0": i0, "mvlgamma": mvlgamma, "sgn": sgn, "heaviside": heaviside,
          "renorm": renorm, "vander": vander, "row_stack": row_stack,
          "unsafe_chunk": unsafe_chunk, "unsafe_split": unsafe_split, "igamma": igamma,
          "igammac": igammac}

for _n in ("lgamma", "digamma", "erfc", "erfinv", "i0", "sgn"):
    method(_n, PUBLIC[_n])
method("polygamma", lambda self, n: polygamma(n, self))
method("mvlgamma", lambda self, p: mvlgamma(self, p))
method("igamma", lambda self, other: igamma(self, other))
method("igammac", lambda self, other: igammac(self, other))
method("heaviside", lambda self, values: heaviside(self, values))
method("renorm", lambda self, p, dim, maxnorm: renorm(self, p, dim, maxnorm))
method("unsafe_chunk", lambda self, chunks, dim=0: unsafe_chunk(self, chunks, dim))
method("unsafe_split", lambda self, split_size, dim=0: unsafe_split(self, split_size, dim))


def _attach_in_place() -> None:
    from .inplace import _unary_inplace

    for n in ("lgamma", "digamma", "erfc", "erfinv", "i0", "sgn"):
        method(n + "_", _unary_inplace(n + "_", PUBLIC[n]))
    method("polygamma_", _unary_inplace("polygamma_", lambda s, n: polygamma(n, s)))
    method("mvlgamma_", _unary_inplace("mvlgamma_", mvlgamma))
    method("renorm_", _unary_inplace("renorm_", renorm))


_attach_in_place()
