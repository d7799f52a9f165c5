"""L-BFGS with an optional strong-Wolfe line search (``torch.optim.LBFGS``).

The parameters are treated as one flat vector. Each step runs up to ``max_iter`` quasi-Newton
iterations: the search direction comes from the two-loop recursion over the last
``history_size`` curvature pairs (s, y), scaled by ys / yy; the step length is ``lr`` (the
first iteration ever takes min(1, 1 / |g|_1) * lr), or the one the strong-Wolfe search finds
(bracketing, then zooming with safeguarded cubic interpolation; Nocedal & Wright, Alg. 3.5
and 3.6, with torch's constants). The arithmetic is done on raw arrays of the parameters'
array module, in their dtype.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .. import _backend as B
from .._tensor import Tensor, _make
from ..autograd.grad_mode import enable_grad
from .optimizer import Optimizer, bump


def _cubic_min(x1, f1, g1, x2, f2, g2, bounds=None) -> float:
    """The minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), clipped to ``bounds``
    (the interval between the points by default); the middle when the cubic has none."""
    lo, hi = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3.0 * (f1 - f2) / (x1 - x2)
    disc = d1 * d1 - g1 * g2
    if disc < 0:
        return (lo + hi) / 2.0
    d2 = math.sqrt(disc)
    if x1 <= x2:
        m = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2.0 * d2))
    else:
        m = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2.0 * d2))
    return min(max(m, lo), hi)


def _strong_wolfe(evaluate, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9,
                  max_ls=25):
    """Step length along ``d`` meeting the strong Wolfe conditions.

    ``evaluate(t)`` gives (loss, flat gradient) at x + t d. Returns (loss, gradient, t, number
    of evaluations).
    """
    d_norm = float(abs(d).max())
    f_new, g_new = evaluate(t)
    evals = 1
    gtd_new = float(g_new @ d)
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    it = 0
    # bracketing: grow the step until an interval must hold a point meeting the conditions
    while it < max_ls:
        if f_new > f + c1 * t * gtd or (it > 1 and f_new >= f_prev):
            br, br_f, br_g, br_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new], \
                [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            br, br_f, br_g, br_gtd = [t], [f_new], [g_new], [gtd_new]
            done = True
            break
        if gtd_new >= 0:
            br, br_f, br_g, br_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new], \
                [gtd_prev, gtd_new]
            break
        lo, hi = t + 0.01 * (t - t_prev), t * 10.0
        t_next = _cubic_min(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(lo, hi))
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, g_new, gtd_new
        t = t_next
        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = float(g_new @ d)
        it += 1
    if it == max_ls:
        br, br_f, br_g, br_gtd = [0.0, t], [f, f_new], [g, g_new], [gtd, gtd_new]
    # zoom: shrink the bracket, keeping its low end the best point met so far
    stalled = False
    low, high = (0, 1) if br_f[0] <= br_f[-1] else (1, 0)
    while not done and it < max_ls:
        if abs(br[1] - br[0]) * d_norm < tolerance_change:
            break
        t = _cubic_min(br[0], br_f[0], br_gtd[0], br[1], br_f[1], br_gtd[1])
        top, bot = max(br), min(br)
        eps = 0.1 * (top - bot)
        if min(top - t, t - bot) < eps:  # too close to an end: step away unless first time
            if stalled or t >= top or t <= bot:
                t = top - eps if abs(t - top) < abs(t - bot) else bot + eps
                stalled = False
            else:
                stalled = True
        else:
            stalled = False
        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = float(g_new @ d)
        it += 1
        if f_new > f + c1 * t * gtd or f_new >= br_f[low]:
            br[high], br_f[high], br_g[high], br_gtd[high] = t, f_new, g_new, gtd_new
            low, high = (0, 1) if br_f[0] <= br_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (br[high] - br[low]) >= 0:
                br[high], br_f[high], br_g[high], br_gtd[high] = \
                    br[low], br_f[low], br_g[low], br_gtd[low]
            br[low], br_f[low], br_g[low], br_gtd[low] = t, f_new, g_new, gtd_new
    return br_f[low], br_g[low], br[low], evals


class LBFGS(Optimizer):
    """L-BFGS (see ``torch.optim.LBFGS``); ``step`` needs a closure that returns the loss.

    Parameters
    ----------
    params : iterable
        Parameters (one group only: L-BFGS treats them as one vector).
    lr : float
        Step length (default 1).
    max_iter : int
        Iterations per ``step`` (default 20).
    max_eval : int or None
        Closure evaluations per ``step`` (default ``max_iter * 5 // 4``).
    tolerance_grad : float
        Stop when the largest gradient entry is at most this.
    tolerance_change : float
        Stop when the step or the loss changes by less than this.
    history_size : int
        Curvature pairs kept (default 100).
    line_search_fn : str or None
        None (fixed step ``lr``) or ``"strong_wolfe"``.
    """

    def __init__(self, params, lr: float = 1, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                 history_size: int = 100, line_search_fn: str | None = None):
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= float(lr):
            raise ValueError(f"Invalid learning rate: {lr}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got "
                             f"{line_search_fn!r}")
        super().__init__(params, dict(
            lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change, history_size=history_size,
            line_search_fn=line_search_fn))
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    # ------------------------------------------------------------------ the flat vector
    def _xp(self):
        return B.xp_of(self._params[0]._data)

    def _flat_grad(self):
        xp = self._xp()
        parts = []
        for p in self._params:
            g = p._grad
            parts.append(xp.zeros(p._data.size, dtype=p._data.dtype) if g is None
                         else g._data.reshape(-1))
        return xp.concatenate(parts)

    def _add_to_params(self, t: float, d) -> None:
        k = 0
        for p in self._params:
            n = p._data.size
            p._data += t * d[k:k + n].reshape(p._data.shape)
            bump(p)
            k += n

    def _set_params(self, values) -> None:
        for p, v in zip(self._params, values):
            p._data[...] = v
            bump(p)

    def _loss(self, closure) -> tuple[Any, float]:
        with enable_grad():
            out = closure()
        return out, float(out)

    # ------------------------------------------------------------------ the step
    def step(self, closure: Callable[[], Any]):  # type: ignore[override]
        """Run up to ``max_iter`` L-BFGS iterations; returns the closure's first loss."""
        if closure is None:
            raise RuntimeError("LBFGS.step() requires a closure that reevaluates the model "
                               "and returns the loss")
        for h in list(self._pre_hooks.values()):
            h(self, (), {})
        group = self.param_groups[0]
        lr, max_iter, max_eval = float(group["lr"]), group["max_iter"], group["max_eval"]
        tol_grad, tol_change = group["tolerance_grad"], group["tolerance_change"]
        history = group["history_size"]
        st = self.state[self._params[0]]
        st.setdefault("func_evals", 0)
        st.setdefault("n_iter", 0)

        orig_loss, loss = self._loss(closure)
        evals = 1
        st["func_evals"] += 1
        g = self._flat_grad()
        if float(abs(g).max()) <= tol_grad:
            return self._done(orig_loss)

        raw = _unpack(st)
        d, t = raw.get("d"), raw.get("t")
        dirs, stps, ro = raw.get("old_dirs"), raw.get("old_stps"), raw.get("ro")
        h_diag, prev_g, prev_loss = raw.get("H_diag"), raw.get("prev_flat_grad"), \
            raw.get("prev_loss")
        n = 0
        while n < max_iter:
            n += 1
            st["n_iter"] += 1
            if st["n_iter"] == 1:
                d = -g
                dirs, stps, ro = [], [], []
                h_diag = 1.0
            else:
                y = g - prev_g
                s = d * t
                ys = float(y @ s)
                if ys > 1e-10:  # keep the pair only when the curvature is positive
                    if len(dirs) == history:
                        dirs.pop(0)
                        stps.pop(0)
                        ro.pop(0)
                    dirs.append(y)
                    stps.append(s)
                    ro.append(1.0 / ys)
                    h_diag = ys / float(y @ y)
                al = [0.0] * len(dirs)
                q = -g
                for i in range(len(dirs) - 1, -1, -1):
                    al[i] = float(stps[i] @ q) * ro[i]
                    q = q - al[i] * dirs[i]
                r = q * h_diag
                for i in range(len(dirs)):
                    be = float(dirs[i] @ r) * ro[i]
                    r = r + stps[i] * (al[i] - be)
                d = r
            prev_g = g.copy()
            prev_loss = loss
            t = min(1.0, 1.0 / float(abs(g).sum())) * lr if st["n_iter"] == 1 else lr
            gtd = float(g @ d)
            if gtd > -tol_change:  # not a descent direction any more
                break
            if group["line_search_fn"] is not None:
                x0 = [p._data.copy() for p in self._params]

                def evaluate(step, _x0=x0, _d=d):
                    self._add_to_params(step, _d)
                    _, fl = self._loss(closure)
                    fg = self._flat_grad().copy()
                    self._set_params(_x0)
                    return fl, fg

                # as torch: the search may spend what is left of max_eval, and it uses its
                # own default tolerance_change, not the group's
                loss, g, t, ls_evals = _strong_wolfe(evaluate, t, d, loss, g, gtd,
                                                     max_ls=max_eval - evals)
                self._add_to_params(t, d)
                converged = float(abs(g).max()) <= tol_grad
            else:
                self._add_to_params(t, d)
                ls_evals = 0
                converged = False
                if n != max_iter:  # the loss at the new point starts the next iteration
                    _, loss = self._loss(closure)
                    g = self._flat_grad()
                    converged = float(abs(g).max()) <= tol_grad
                    ls_evals = 1
            evals += ls_evals
            st["func_evals"] += ls_evals
            if n == max_iter or evals >= max_eval or converged:
                break
            if float(abs(d * t).max()) <= tol_change or abs(loss - prev_loss) < tol_change:
                break
        st.update(_pack(dict(d=d, t=t, old_dirs=dirs, old_stps=stps, ro=ro, H_diag=h_diag,
                             prev_flat_grad=prev_g, prev_loss=prev_loss)))
        return self._done(orig_loss)

    def _done(self, loss):
        self._opt_called = True
        for h in list(self._post_hooks.values()):
            h(self, (), {})
        return loss


def _pack(raw: dict) -> dict:
    """State as torch keeps it: tensors (lists of tensors) for arrays, floats for scalars."""
    out = {}
    for k, v in raw.items():
        if isinstance(v, list):
            out[k] = [_make(a) if not isinstance(a, float) else a for a in v]
        elif v is not None and not isinstance(v, (float, int)):
            out[k] = _make(v)
        else:
            out[k] = v
    return out


def _unpack(st: dict) -> dict:
    """The arrays behind :func:`_pack`'s tensors (``ro`` entries come back as floats)."""
    out = {}
    for k, v in st.items():
        if isinstance(v, list):
            out[k] = [float(a) if k == "ro" else a._data if isinstance(a, Tensor) else a
                      for a in v]
        elif isinstance(v, Tensor):
            out[k] = float(v) if k in ("t", "H_diag", "prev_loss") else v._data
        else:
            out[k] = v
    return out
