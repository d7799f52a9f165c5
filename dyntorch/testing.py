"""``dyntorch.testing.assert_close``: compare tensors like ``torch.testing.assert_close``."""
from __future__ import annotations

import numpy as np

from . import _backend as B
from ._tensor import Tensor

# torch's default tolerances by dtype (rtol, atol)
_TOL = {B.float16: (1e-3, 1e-5), B.float32: (1.3e-6, 1e-5), B.float64: (1e-7, 1e-7)}


def _array(x):
    if isinstance(x, Tensor):
        return B.to_numpy(x.detach()._data), x.dtype
    arr = np.asarray(x)
    return arr, B.from_np(arr.dtype) if arr.dtype.kind in "biuf" else None


def assert_close(actual, expected, *, rtol: float | None = None, atol: float | None = None,
                 equal_nan: bool = False, check_dtype: bool = True, msg: str | None = None):
    """Raise ``AssertionError`` unless ``actual`` and ``expected`` are close elementwise.

    Parameters
    ----------
    actual, expected : Tensor, array or number (also nested lists/tuples/dicts of them)
    rtol, atol : float, optional
        Tolerances; default by dtype as in torch (float32: 1.3e-6, 1e-5).
    equal_nan : bool
        Treat NaNs in the same place as equal.
    check_dtype : bool
        Require equal dtypes when both are tensors.
    """
    if isinstance(actual, dict):
        assert set(actual) == set(expected), msg or f"keys differ: {set(actual) ^ set(expected)}"
        for k in actual:
            assert_close(actual[k], expected[k], rtol=rtol, atol=atol, equal_nan=equal_nan,
                         check_dtype=check_dtype, msg=msg)
        return
    if isinstance(actual, (list, tuple)) and not isinstance(expected, Tensor):
        assert len(actual) == len(expected), msg or "sequences differ in length"
        for a, e in zip(actual, expected):
            assert_close(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan,
                         check_dtype=check_dtype, msg=msg)
        return
    a, adt = _array(actual)
    e, edt = _array(expected)
    if check_dtype and isinstance(actual, Tensor) and isinstance(expected, Tensor) and \
            adt is not edt:
        raise AssertionError(msg or f"The values for attribute 'dtype' do not match: {adt} != "
                                    f"{edt}.")
    if a.shape != e.shape:
        raise AssertionError(msg or f"The values for attribute 'shape' do not match: "
                                    f"{list(a.shape)} != {list(e.shape)}.")
    d_rtol, d_atol = _TOL.get(adt, (0.0, 0.0))
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    ok = np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan)
    if not ok.all():
        bad = int((~ok).sum())
        diff = np.abs(a.astype(np.float64) - e.astype(np.float64))
        diff = np.where(np.isnan(diff), np.inf, diff)
        idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = (diff / np.abs(e.astype(np.float64))).max()
        raise AssertionError(msg or (
            f"Tensor-likes are not close!\n\nMismatched elements: {bad} / {a.size} "
            f"({100 * bad / max(a.size, 1):.1f}%)\nGreatest absolute difference: "
            f"{diff.max()} at index {idx} (up to {atol} allowed)\nGreatest relative "
            f"difference: {rel} (up to {rtol} "
            "allowed)"))


assert_allclose = assert_close
