"""summary(): every number against NumPy's."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch as dt
from dyntorch.debug import summary


@pytest.mark.parametrize("shape", [(7,), (5, 9), (3, 20, 30), ()])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_summary_matches_numpy(shape, dtype, device):
    a = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    if a.size > 3:
        a.ravel()[:3] = 0.0
    s = summary(dt.tensor(a, device=device))
    a64 = a.astype(np.float64)
    assert s["shape"] == list(shape) and s["dtype"] == np.dtype(dtype).name
    assert s["count"] == a.size
    assert s["mean"] == pytest.approx(a64.mean(), rel=1e-9, abs=1e-12)
    assert s["std"] == pytest.approx(a64.std(), rel=1e-9, abs=1e-12)
    assert s["min"] == a64.min() and s["max"] == a64.max()
    assert s["norm"] == pytest.approx(np.linalg.norm(a64.ravel()), rel=1e-9)
    assert s["nan"] == 0 and s["inf"] == 0
    assert s["zeros"] == pytest.approx(np.mean(a64 == 0))
    if a.size > 1:
        counts, edges = np.histogram(a64, bins=20, range=(a64.min(), a64.max()))
        np.testing.assert_allclose(s["hist"]["edges"], edges, rtol=1e-12)
        assert sum(s["hist"]["counts"]) == a.size
        assert s["hist"]["counts"] == counts.tolist()
    if a.ndim >= 2:
        ref = a64[(0,) * (a.ndim - 2)][:8, :8]
        np.testing.assert_array_equal(np.array(s["preview"]), ref)
    elif a.ndim == 1:
        assert s["preview"] == a64[:8].tolist()
    else:
        assert s["preview"] == float(a64)


def test_summary_nonfinite_and_heat():
    a = np.arange(24, dtype=np.float64).reshape(4, 6) - 10
    a[0, 0] = np.nan
    a[1, 1] = np.inf
    a[2, 2] = -np.inf
    s = summary(dt.tensor(a))
    fin = a[np.isfinite(a)]
    assert s["nan"] == 1 and s["inf"] == 2
    assert s["mean"] == pytest.approx(fin.mean()) and s["std"] == pytest.approx(fin.std())
    assert s["min"] == fin.min() and s["max"] == fin.max()
    assert s["preview"][0][0] is None and s["preview"][1][1] is None
    h = s["heat"]
    assert h["rows"] == 4 and h["cols"] == 6
    ref = np.where(np.isfinite(a), np.abs(a), np.nan)
    np.testing.assert_allclose(np.array(h["values"]).reshape(4, 6)[np.isfinite(a)],
                               ref[np.isfinite(a)], rtol=1e-3)
    big = np.random.default_rng(0).standard_normal((40, 50))
    hb = summary(dt.tensor(big))["heat"]
    assert hb["rows"] == 16 and hb["cols"] == 16
    # cell (i, j) covers rows i*R//16 .. (i+1)*R//16 - 1 and columns likewise
    ref = np.array([[np.abs(big[i * 40 // 16:(i + 1) * 40 // 16,
                                j * 50 // 16:(j + 1) * 50 // 16]).mean()
                     for j in range(16)] for i in range(16)])
    np.testing.assert_allclose(np.array(hb["values"]).reshape(16, 16), ref, rtol=1e-3)


def test_summary_constant_empty_int_and_json():
    import json

    s = summary(dt.tensor(np.full(5, 2.0)))
    assert s["std"] == 0 and s["hist"]["edges"][0] == 1.5 and s["hist"]["counts"][10] == 5
    e = summary(dt.tensor(np.zeros((0, 3))))
    assert e["count"] == 0 and e["mean"] is None
    i = summary(dt.tensor(np.array([1, 2, 3])))
    assert i["mean"] == 2.0 and i["dtype"] == "int64"
    allnan = summary(dt.tensor(np.array([np.nan, np.nan])))
    assert allnan["mean"] is None and allnan["nan"] == 2
    json.dumps([s, e, i, allnan], allow_nan=False)
    assert "Tensor[5] float64" in repr(s)
