"""Special functions and everyday names: values and gradients against torch 2.13 (float64,
same inputs), finite differences (gradcheck, gradgradcheck), edge values and float32."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import dyntorch as dt  # noqa: E402
import dyntorch.special as DS  # noqa: E402

TS = torch.special
# inf and nan inputs are part of the grids: NumPy's warnings about them are expected noise
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

# a wide grid, the points where the kernels switch method, and the awkward values
GRID = np.concatenate([np.linspace(-30, 40, 1401), [0.0, -0.0, 1.0, 2.0, 1.5, -1.5, 2.5, 30.0,
                                                     -30.5, 1e-300, 1e-10, -1e-10, 700.0,
                                                     720.0, -720.0, np.inf, -np.inf, np.nan]])
UNIT = np.concatenate([np.linspace(-1, 1, 801), [1e-300, -1e-20, 1 - 1e-16, -1 + 1e-16, 0.5,
                                                 -0.5, 1.0, -1.0, 2.0, np.nan]])
PROB = np.concatenate([np.linspace(0, 1, 801), [1e-300, 1e-100, 1e-20, 1 - 1e-16, 0.5 + 1e-12,
                                                0.25, 0.75, 2.0, -1.0, np.nan]])


def _close(ours: np.ndarray, ref: np.ndarray, tol: float = 2e-13):
    """Relative error where |ref| > 1, absolute below; inf, -inf and nan where torch has them."""
    ok = np.isfinite(ref)
    np.testing.assert_array_equal(ours[~ok], ref[~ok])
    err = np.abs(ours[ok] - ref[ok]) / np.maximum(np.abs(ref[ok]), 1.0)
    assert err.max(initial=0.0) < tol, (err.max(), np.asarray(ok.nonzero())[0][err.argmax()])


UNARY = [  # (name, our function, torch's, inputs)
    ("lgamma", dt.lgamma, torch.lgamma, GRID),
    ("special.gammaln", DS.gammaln, TS.gammaln, GRID),
    ("digamma", dt.digamma, torch.digamma, GRID),
    ("special.psi", DS.psi, TS.psi, GRID),
    ("erfc", dt.erfc, torch.erfc, GRID),
    ("special.erfcx", DS.erfcx, TS.erfcx, GRID),
    ("special.ndtr", DS.ndtr, TS.ndtr, GRID),
    ("special.log_ndtr", DS.log_ndtr, TS.log_ndtr, GRID),
    ("i0", dt.i0, torch.i0, GRID),
    ("special.i0e", DS.i0e, TS.i0e, GRID),
    ("special.i1", DS.i1, TS.i1, GRID),
    ("special.i1e", DS.i1e, TS.i1e, GRID),
    ("special.entr", DS.entr, TS.entr, GRID),
    ("special.spherical_bessel_j0", DS.spherical_bessel_j0, TS.spherical_bessel_j0, GRID),
    ("special.expit", DS.expit, TS.expit, GRID),
    ("special.erf", DS.erf, TS.erf, GRID),
    ("special.exp2", DS.exp2, TS.exp2, GRID),
    ("special.expm1", DS.expm1, TS.expm1, GRID),
    ("special.log1p", DS.log1p, TS.log1p, GRID),
    ("special.sinc", DS.sinc, TS.sinc, GRID),
    ("special.round", DS.round, TS.round, GRID),
    ("erfinv", dt.erfinv, torch.erfinv, UNIT),
    ("special.erfinv", DS.erfinv, TS.erfinv, UNIT),
    ("special.ndtri", DS.ndtri, TS.ndtri, PROB),
    ("special.logit", DS.logit, TS.logit, PROB),
    ("sgn", dt.sgn, torch.sgn, GRID),
]


@pytest.mark.parametrize("name,ours,ref,x", UNARY, ids=[u[0] for u in UNARY])
def test_values_match_torch_float64(name, ours, ref, x):
    _close(ours(dt.tensor(x)).numpy(), ref(torch.tensor(x)).numpy())


@pytest.mark.parametrize("name,ours,ref,x", UNARY, ids=[u[0] for u in UNARY])
def test_float32_matches_torch(name, ours, ref, x):
    x32 = x[np.abs(x) < 80].astype(np.float32)  # float32 exp overflows beyond
    a = ours(dt.tensor(x32))
    assert a.dtype is dt.float32
    b = ref(torch.tensor(x32)).numpy().astype(np.float64)
    a = a.numpy().astype(np.float64)
    ok = np.isfinite(b) & np.isfinite(a)
    assert (np.isfinite(a) == np.isfinite(b)).mean() > 0.99
    err = np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), 1.0)
    assert err.max() < 1e-5  # both sides round in float32, by different algorithms


# torch's own trigamma (polygamma(1, .), digamma's derivative) is good to about 5e-10 only
# (1.0: 4.8e-10 off pi^2/6); ours is checked to 1e-14 against mpmath below
TRIGAMMA_TOL = 2e-9


@pytest.mark.parametrize("n", [1, 2, 3, 6])
def test_polygamma_matches_torch(n):
    # torch's trigamma gives large finite numbers at the negative integers (poles): skip those
    x = GRID[np.isfinite(GRID) & ~((GRID < 0) & (GRID == np.floor(GRID)))]
    tol = TRIGAMMA_TOL if n == 1 else 1e-12
    _close(dt.polygamma(n, dt.tensor(x)).numpy(), torch.polygamma(n, torch.tensor(x)).numpy(),
           tol=tol)
    _close(dt.tensor(x).polygamma(n).numpy(), TS.polygamma(n, torch.tensor(x)).numpy(),
           tol=tol)


def test_against_mpmath_where_torch_is_loose():
    mpmath = pytest.importorskip("mpmath")
    xs = [1.0, -0.35, 0.2, 3.7, -2.5, 12.0, 0.7, 3.0, 1e-3, 55.5]
    for n in (1, 2, 4):
        ours = dt.polygamma(n, dt.tensor(xs, dtype=dt.float64)).tolist()
        exact = [float(mpmath.polygamma(n, x)) for x in xs]
        _close(np.array(ours), np.array(exact), tol=1e-13)  # reflection at -2.5: 2.5e-14
    ours = dt.digamma(dt.tensor(xs, dtype=dt.float64)).tolist()
    _close(np.array(ours), np.array([float(mpmath.digamma(x)) for x in xs]), tol=1e-14)
    ys = [1e-300, 1e-12, 0.3, 0.5, 0.51, 0.9, 0.999999, 1 - 2 ** -52]
    ours = dt.erfinv(dt.tensor(ys, dtype=dt.float64)).tolist()
    exact = [float(mpmath.erfinv(y)) for y in ys]
    np.testing.assert_allclose(ours, exact, rtol=1e-14)
    ps = [1e-300, 1e-50, 1e-8, 0.3, 0.5 + 1e-13, 0.97]
    ours = DS.ndtri(dt.tensor(ps, dtype=dt.float64)).tolist()
    with mpmath.workdps(40):  # the root of Phi(x) = p near ours, to 40 digits
        exact = [float(mpmath.findroot(lambda x, p=p: mpmath.ncdf(x) - p, x0))
                 for p, x0 in zip(ps, ours)]
    np.testing.assert_allclose(ours, exact, rtol=1e-13)


def test_polygamma_zero_is_digamma_and_bad_n_is_refused():
    x = dt.tensor([0.3, 2.0, 7.5])
    assert dt.polygamma(0, x).tolist() == dt.digamma(x).tolist()
    with pytest.raises(RuntimeError, match="negative n"):
        dt.polygamma(-1, x)


@pytest.mark.parametrize("p", [1, 2, 4])
def test_multigammaln_matches_torch(p):
    x = np.linspace(2.0, 30.0, 57)
    _close(DS.multigammaln(dt.tensor(x), p).numpy(), TS.multigammaln(torch.tensor(x), p).numpy())
    _close(dt.mvlgamma(dt.tensor(x), p).numpy(), torch.mvlgamma(torch.tensor(x), p).numpy())
    with pytest.raises(RuntimeError, match=r"greater than \(p-1\)/2"):
        dt.mvlgamma(dt.tensor([0.1]), 3)


def test_binary_and_reductions_match_torch():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((3, 5)), rng.uniform(-0.9, 3, (3, 5))
    x[0, 0] = 0.0
    X, Y = dt.tensor(x), dt.tensor(y)
    tX, tY = torch.tensor(x), torch.tensor(y)
    _close(DS.xlog1py(X, Y).numpy(), TS.xlog1py(tX, tY).numpy())
    _close(DS.xlogy(X, Y.abs()).numpy(), TS.xlogy(tX, tY.abs()).numpy())
    _close(DS.softmax(X, 1).numpy(), TS.softmax(tX, 1).numpy())
    _close(DS.log_softmax(X, 0).numpy(), TS.log_softmax(tX, 0).numpy())
    _close(DS.logsumexp(X, 1, keepdim=True).numpy(), TS.logsumexp(tX, 1, keepdim=True).numpy())
    _close(DS.logit(X.sigmoid(), eps=1e-3).numpy(), TS.logit(tX.sigmoid(), eps=1e-3).numpy())


# ----------------------------------------------------------------------------- gradients
GRAD_CASES = [  # (name, ours, torch's, inputs where the function is smooth)
    ("lgamma", dt.lgamma, torch.lgamma, [-2.5, -0.3, 0.2, 1.0, 3.7, 12.0]),
    ("digamma", dt.digamma, torch.digamma, [-2.5, -0.3, 0.2, 1.0, 3.7, 12.0]),
    ("polygamma2", lambda t: dt.polygamma(2, t), lambda t: torch.polygamma(2, t),
     [-1.5, 0.4, 2.0, 9.0]),
    ("erfc", dt.erfc, torch.erfc, [-3.0, -0.2, 0.0, 1.2, 1.6, 4.0]),
    ("erfcx", DS.erfcx, TS.erfcx, [-1.0, 0.0, 1.2, 1.6, 5.0]),
    ("erfinv", dt.erfinv, torch.erfinv, [-0.9, -0.3, 0.0, 0.45, 0.6, 0.99]),
    ("ndtr", DS.ndtr, TS.ndtr, [-4.0, -0.5, 0.0, 2.0]),
    ("ndtri", DS.ndtri, TS.ndtri, [1e-3, 0.1, 0.5, 0.8, 0.999]),
    ("log_ndtr", DS.log_ndtr, TS.log_ndtr, [-40.0, -5.0, -1.0, 0.0, 2.0, 9.0]),
    ("i0", dt.i0, torch.i0, [-35.0, -3.0, 0.0, 0.5, 31.0]),
    ("i0e", DS.i0e, TS.i0e, [-35.0, -3.0, 0.5, 31.0]),
    ("i1", DS.i1, TS.i1, [-35.0, -3.0, 0.0, 0.5, 31.0]),
    ("i1e", DS.i1e, TS.i1e, [-35.0, -3.0, 0.0, 0.5, 31.0]),
    ("entr", DS.entr, TS.entr, [0.1, 1.0, 3.0]),
    ("xlog1py", lambda t: DS.xlog1py(t, t * 2), lambda t: TS.xlog1py(t, t * 2), [0.1, 1.0]),
    ("multigammaln", lambda t: DS.multigammaln(t, 3), lambda t: TS.multigammaln(t, 3),
     [1.2, 4.0]),
]


@pytest.mark.parametrize("name,ours,ref,x", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradients_match_torch(name, ours, ref, x):
    a = dt.tensor(x, dtype=dt.float64, requires_grad=True)
    b = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ours(a).sum().backward()
    ref(b).sum().backward()
    tol = TRIGAMMA_TOL if name in ("digamma", "multigammaln") else 1e-11
    _close(a.grad.numpy(), b.grad.numpy(), tol=tol)


@pytest.mark.parametrize("name,ours,ref,x", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradcheck_and_second_order(name, ours, ref, x):
    # i0/i1 at x = 0 and far out are checked above; finite differences want moderate values
    x = [v for v in x if abs(v) < 30]
    a = dt.tensor(x, dtype=dt.float64, requires_grad=True)
    assert dt.autograd.gradcheck(ours, (a,), eps=1e-6, atol=1e-6, rtol=1e-5)
    assert dt.autograd.gradgradcheck(ours, (a,), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_spherical_bessel_j0_gradient():
    # torch gives this one no derivative; finite differences and the closed form do
    x = [-2.0, 0.5, 7.0]
    a = dt.tensor(x, dtype=dt.float64, requires_grad=True)
    DS.spherical_bessel_j0(a).sum().backward()
    exact = [math.cos(v) / v - math.sin(v) / v ** 2 for v in x]
    np.testing.assert_allclose(a.grad.tolist(), exact, rtol=1e-13)
    assert dt.autograd.gradgradcheck(DS.spherical_bessel_j0, (a.detach().requires_grad_(),))


def test_second_derivatives_match_torch():
    for ours, ref, x in [(dt.lgamma, torch.lgamma, [0.7, 3.0]),
                         (dt.erfinv, torch.erfinv, [-0.6, 0.2]),
                         (DS.i1, TS.i1, [0.0, 2.0])]:
        a = dt.tensor(x, dtype=dt.float64, requires_grad=True)
        b = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        (ga,) = dt.autograd.grad(ours(a).sum(), a, create_graph=True)
        (gb,) = torch.autograd.grad(ref(b).sum(), b, create_graph=True)
        (gga,) = dt.autograd.grad(ga.sum(), a)
        (ggb,) = torch.autograd.grad(gb.sum(), b)
        _close(gga.numpy(), ggb.numpy(), tol=TRIGAMMA_TOL)


def test_integer_input_becomes_float_like_torch():
    for f, g in [(dt.lgamma, torch.lgamma), (dt.erfc, torch.erfc), (dt.i0, torch.i0)]:
        r = f(dt.tensor([1, 2, 3]))
        assert r.dtype is dt.float32 and g(torch.tensor([1, 2, 3])).dtype is torch.float32
        _close(r.numpy().astype(np.float64), g(torch.tensor([1, 2, 3])).numpy(), tol=1e-6)


def test_out_argument_is_written():
    out = dt.empty(3, dtype=dt.float64)
    r = dt.lgamma(dt.tensor([1.0, 2.0, 5.0], dtype=dt.float64), out=out)
    assert r is out and abs(out[2].item() - math.log(24.0)) < 1e-14


# ----------------------------------------------------------------------------- everyday names
def test_heaviside_matches_torch():
    x = np.array([-2.0, 0.0, -0.0, 3.0, np.nan])
    v = np.array([0.5])
    _close(dt.heaviside(dt.tensor(x), dt.tensor(v)).numpy(),
           torch.heaviside(torch.tensor(x), torch.tensor(v)).numpy())
    _close(dt.tensor(x).heaviside(dt.tensor(x)).numpy(),
           torch.tensor(x).heaviside(torch.tensor(x)).numpy())
    with pytest.raises(RuntimeError, match="different dtypes"):
        dt.heaviside(dt.tensor([1.0]), dt.tensor([1]))


@pytest.mark.parametrize("p,dim,maxnorm", [(2, 0, 5.0), (1, 1, 2.0), (3.5, -1, 0.5),
                                           (2, 1, 100.0)])
def test_renorm_values_and_grads_match_torch(p, dim, maxnorm):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 2)) * 3
    a = dt.tensor(x, requires_grad=True)
    b = torch.tensor(x, requires_grad=True)
    ra, rb = dt.renorm(a, p, dim, maxnorm), torch.renorm(b, p, dim, maxnorm)
    _close(ra.detach().numpy(), rb.detach().numpy())
    w = rng.standard_normal(x.shape)
    (ra * dt.tensor(w)).sum().backward()
    (rb * torch.tensor(w)).sum().backward()
    _close(a.grad.numpy(), b.grad.numpy(), tol=1e-12)
    _close(a.detach().renorm(p, dim, maxnorm).numpy(), rb.detach().numpy())
    assert dt.autograd.gradcheck(lambda t: dt.renorm(t, p, dim, maxnorm), (a.detach()
                                 .requires_grad_(),))


def test_renorm_refuses_what_torch_refuses():
    with pytest.raises(RuntimeError, match="non-positive-norm"):
        dt.renorm(dt.ones(2, 2), 0, 0, 1.0)
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        dt.renorm(dt.ones(3), 2, 0, 1.0)


@pytest.mark.parametrize("N,increasing", [(None, False), (None, True), (5, False), (1, True),
                                          (0, False)])
def test_vander_matches_torch(N, increasing):
    for x in ([1.5, -2.0, 0.0, 3.0], [1, 2, 3]):
        a = dt.vander(dt.tensor(x), N=N, increasing=increasing)
        b = torch.vander(torch.tensor(x), N=N, increasing=increasing)
        assert tuple(a.shape) == tuple(b.shape)
        assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
        _close(a.numpy().astype(np.float64), b.numpy().astype(np.float64))
    # torch's own vander cannot backward (it modifies a saved tensor in place), so the
    # reference gradient is that of the same matrix built from powers in torch
    a = dt.tensor([0.5, -1.2, 2.0], dtype=dt.float64, requires_grad=True)
    b = torch.tensor([0.5, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    n = 3 if N is None else N
    if n:
        w = np.random.default_rng(3).standard_normal((3, n))
        (dt.vander(a, N=N, increasing=increasing) * dt.tensor(w)).sum().backward()
        ks = range(n) if increasing else range(n - 1, -1, -1)
        (torch.stack([b ** k for k in ks], 1) * torch.tensor(w)).sum().backward()
        _close(a.grad.numpy(), b.grad.numpy())


def test_row_stack_unsafe_chunk_split_sgn():
    xs = [np.arange(3.0), np.arange(3.0) * 2]
    _close(dt.row_stack([dt.tensor(v) for v in xs]).numpy(),
           torch.row_stack([torch.tensor(v) for v in xs]).numpy())
    x = np.arange(10.0).reshape(5, 2)
    for ours, ref in zip(dt.unsafe_chunk(dt.tensor(x), 2), torch.unsafe_chunk(torch.tensor(x), 2)):
        _close(ours.numpy(), ref.numpy())
    for ours, ref in zip(dt.tensor(x).unsafe_split(2), torch.tensor(x).unsafe_split(2)):
        _close(ours.numpy(), ref.numpy())
    a = dt.tensor([-2.0, 0.0, 3.0], requires_grad=True)
    a.sgn().sum().backward()
    assert a.grad.tolist() == [0.0, 0.0, 0.0]


def test_special_namespace_covers_the_names_scripts_use():
    names = ["expit", "logit", "erf", "erfc", "erfinv", "xlogy", "xlog1py", "gammaln",
             "digamma", "psi", "i0", "i0e", "i1", "i1e", "sinc", "entr", "log_softmax",
             "softmax", "logsumexp", "log1p", "expm1", "exp2", "ndtr", "ndtri", "log_ndtr",
             "round", "multigammaln", "polygamma", "erfcx", "spherical_bessel_j0", "zeta", "gammainc", "gammaincc"]
    missing = [n for n in names if not callable(getattr(DS, n, None))]
    assert not missing
    assert set(DS.__all__) >= set(names)


def test_zeta_matches_torch_and_differentiates_in_q_only():
    rng = np.random.default_rng(4)
    s = np.concatenate([rng.uniform(1.01, 12, 300), [1.0, 0.5, 2.0, 2.5, 2.0, 3.0, 1.5]])
    q = np.concatenate([rng.uniform(-20, 30, 300), [1.0, 1.0, -1.0, -1.5, -1.5, 0.0, 1e-8]])
    _close(DS.zeta(dt.tensor(s), dt.tensor(q)).numpy(),
           TS.zeta(torch.tensor(s), torch.tensor(q)).numpy(), tol=1e-12)
    _close(DS.zeta(2.0, dt.tensor(q[:5])).numpy(), TS.zeta(2.0, torch.tensor(q[:5])).numpy())
    qv = [0.7, 2.0, 11.5]
    a = dt.tensor(qv, dtype=dt.float64, requires_grad=True)
    b = torch.tensor(qv, dtype=torch.float64, requires_grad=True)
    DS.zeta(dt.tensor([2.0, 3.5, 6.0], dtype=dt.float64), a).sum().backward()
    TS.zeta(torch.tensor([2.0, 3.5, 6.0], dtype=torch.float64), b).sum().backward()
    _close(a.grad.numpy(), b.grad.numpy(), tol=1e-12)
    sv = dt.tensor([2.0, 3.5, 6.0], dtype=dt.float64)
    assert dt.autograd.gradcheck(lambda t: DS.zeta(sv, t), (a.detach().requires_grad_(),))
    x = dt.tensor([2.0, 3.0], requires_grad=True)
    with pytest.raises(NotImplementedError, match="exponent"):
        DS.zeta(x, dt.tensor([1.5, 2.0])).sum().backward()


@pytest.mark.parametrize("upper", [False, True])
def test_incomplete_gamma_matches_torch_and_mpmath(upper):
    rng = np.random.default_rng(5)
    a = np.concatenate([rng.uniform(0.01, 50, 400), 10 ** rng.uniform(-3, 3.5, 100),
                        [1.0, 2.0, 0.5, 0.0, 0.0, 1.0, -1.0, np.nan, 3.0]])
    x = np.concatenate([rng.uniform(0, 100, 400), 10 ** rng.uniform(-3, 3.5, 100),
                        [0.0, 1.0, np.inf, 0.0, 1.0, -1.0, 1.0, 1.0, np.nan]])
    ours = (DS.gammaincc if upper else DS.gammainc)(dt.tensor(a), dt.tensor(x)).numpy()
    ref = (TS.gammaincc if upper else TS.gammainc)(torch.tensor(a), torch.tensor(x)).numpy()
    _close(ours, ref, tol=5e-9)  # torch's own is good to ~2e-9 (mpmath below)
    mpmath = pytest.importorskip("mpmath")
    for av, xv in [(26.97, 19.08), (24.33, 31.47), (0.5, 3.0), (500.0, 480.0), (3e3, 3.1e3),
                   (1e-3, 0.7)]:
        exact = float(mpmath.gammainc(av, xv if upper else 0, mpmath.inf if upper else xv,
                                      regularized=True))
        got = (DS.gammaincc if upper else DS.gammainc)(
            dt.tensor([av], dtype=dt.float64), dt.tensor([xv], dtype=dt.float64)).item()
        # Q from 1 - P where the series runs (x < a + 1) keeps ~11 digits when P is near 1
        assert abs(got - exact) <= 1e-11 * abs(exact), (av, xv, got, exact)


def test_incomplete_gamma_gradient_in_x_only():
    xv = [0.3, 2.0, 9.0]
    for ours, ref in [(dt.igamma, torch.igamma), (dt.igammac, torch.igammac)]:
        a = dt.tensor(xv, dtype=dt.float64, requires_grad=True)
        b = torch.tensor(xv, dtype=torch.float64, requires_grad=True)
        ours(dt.tensor([0.5, 2.5, 7.0], dtype=dt.float64), a).sum().backward()
        ref(torch.tensor([0.5, 2.5, 7.0], dtype=torch.float64), b).sum().backward()
        _close(a.grad.numpy(), b.grad.numpy(), tol=1e-10)
        s = dt.tensor([0.5, 2.5, 7.0], dtype=dt.float64)
        assert dt.autograd.gradcheck(lambda t: ours(s, t), (a.detach().requires_grad_(),))
    with pytest.raises(NotImplementedError, match="first argument"):
        dt.igamma(dt.tensor([1.0], requires_grad=True), dt.tensor([1.0])).sum().backward()
