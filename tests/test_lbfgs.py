"""optim.LBFGS against torch.optim.LBFGS: trajectories in float64 to 1e-9, state_dict."""
import numpy as np
import pytest
import torch as T

import dyntorch as D


def _problem(lib, x0):
    """A mildly coupled, non-quadratic objective (a Rosenbrock-like valley with a gentle
    wall, so that rounding is not amplified across many iterations) plus a least-squares
    term on a second parameter."""
    x = lib.tensor(x0[:6].copy(), requires_grad=True)
    w = lib.tensor(x0[6:].reshape(2, 2).copy(), requires_grad=True)
    a = lib.tensor(np.array([[1.0, 2.0], [3.0, -1.0]]))

    def f():
        r = (3 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum() + (x ** 4).sum() * 0.1
        return r + ((w @ a - 1.0) ** 2).sum()

    return [x, w], f


def _trajectory(lib, steps, **kw):
    x0 = np.random.default_rng(0).uniform(-1.5, 1.5, 10)
    params, f = _problem(lib, x0)
    opt = lib.optim.LBFGS(params, **kw)
    evals = [0]

    def closure():
        opt.zero_grad()
        loss = f()
        loss.backward()
        evals[0] += 1
        return loss

    out = []
    for _ in range(steps):
        first = opt.step(closure)
        out.append((float(first), np.concatenate([p.detach().numpy().ravel() for p in params]),
                    evals[0]))
    return out, opt


@pytest.mark.parametrize("kw", [
    dict(),
    dict(line_search_fn="strong_wolfe"),
    dict(lr=0.5, max_iter=7, history_size=3),
    dict(lr=0.8, max_iter=5, history_size=4, line_search_fn="strong_wolfe"),
    dict(max_iter=50, max_eval=30, line_search_fn="strong_wolfe", tolerance_change=1e-12),
    dict(max_iter=1, line_search_fn="strong_wolfe"),  # no evaluations left for the search
    dict(max_iter=3, max_eval=4, line_search_fn="strong_wolfe"),
])
def test_trajectory_matches_torch(kw):
    got, _ = _trajectory(D, 12, **kw)
    want, _ = _trajectory(T, 12, **kw)
    for (lg, xg, eg), (lw, xw, ew) in zip(got, want):
        assert eg == ew  # the same number of closure evaluations
        np.testing.assert_allclose(lg, lw, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(xg, xw, rtol=1e-9, atol=1e-12)


def test_state_dict_resumes_identically():
    kw = dict(line_search_fn="strong_wolfe", history_size=5, max_iter=4)
    ref, _ = _trajectory(D, 4, **kw)
    x0 = np.random.default_rng(0).uniform(-1.5, 1.5, 10)
    params, f = _problem(D, x0)
    opt = D.optim.LBFGS(params, **kw)

    def closure():
        opt.zero_grad()
        loss = f()
        loss.backward()
        return loss

    for _ in range(2):
        opt.step(closure)
    sd = opt.state_dict()
    assert set(sd["state"][0]) >= {"d", "t", "old_dirs", "old_stps", "ro", "H_diag",
                                   "prev_flat_grad", "prev_loss", "n_iter", "func_evals"}
    opt2 = D.optim.LBFGS(params, **kw)
    opt2.load_state_dict(sd)

    def closure2():
        opt2.zero_grad()
        loss = f()
        loss.backward()
        return loss

    for _ in range(2):
        opt2.step(closure2)
    now = np.concatenate([p.detach().numpy().ravel() for p in params])
    np.testing.assert_allclose(now, ref[-1][1], rtol=1e-12)


def test_bad_arguments_are_refused():
    p = D.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="line_search_fn"):
        D.optim.LBFGS([p], line_search_fn="armijo")
    with pytest.raises(ValueError, match="parameter groups"):
        D.optim.LBFGS([{"params": [p]}, {"params": [D.zeros(1, requires_grad=True)]}])
    with pytest.raises(RuntimeError, match="closure"):
        D.optim.LBFGS([p]).step(None)
