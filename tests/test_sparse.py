"""Sparse COO tensors against torch 2.13 (float64): construction, coalesce, to_dense,
products with gradients for the dense operand and the values, and clear refusals."""
import numpy as np
import pytest
import torch as T

import dyntorch as D

IDX = [[0, 2, 1, 2, 0, 3], [1, 0, 2, 0, 3, 3]]  # (2, 0) repeats
VALS = [1.5, -2.0, 3.0, 0.5, 4.0, -1.0]


def _pair(lib, **kw):
    return lib.sparse_coo_tensor(IDX, lib.tensor(VALS, dtype=lib.float64), (4, 5), **kw)


def test_construct_coalesce_and_parts_match_torch():
    d, t = _pair(D), _pair(T)
    assert d.is_sparse and t.is_sparse and not D.ones(2).is_sparse
    assert tuple(d.shape) == tuple(t.shape) and d.dtype == D.float64
    assert d.sparse_dim() == 2 and d.dense_dim() == 0 and d._nnz() == t._nnz()
    assert not d.is_coalesced()
    with pytest.raises(RuntimeError, match="coalesce"):
        d.indices()
    dc, tc = d.coalesce(), t.coalesce()
    assert dc.is_coalesced()
    np.testing.assert_array_equal(dc.indices().numpy(), tc.indices().numpy())
    np.testing.assert_allclose(dc.values().numpy(), tc.values().numpy())
    np.testing.assert_allclose(d.to_dense().numpy(), t.to_dense().numpy())


def test_size_inferred_dtype_cast_and_bad_indices():
    d = D.sparse_coo_tensor(IDX, D.ones(6), dtype=D.int64)
    t = T.sparse_coo_tensor(IDX, T.ones(6), dtype=T.int64)
    assert tuple(d.shape) == tuple(t.shape) and d.dtype == D.int64
    np.testing.assert_array_equal(d.to_dense().numpy(), t.to_dense().numpy())
    with pytest.raises(RuntimeError, match="inconsistent with indices"):
        D.sparse_coo_tensor(IDX, D.ones(6), (3, 5))
    with pytest.raises(RuntimeError, match="same number"):
        D.sparse_coo_tensor(IDX, D.ones(5), (4, 5))


def test_to_sparse_round_trip_and_dense_plus_sparse():
    x = np.diag([1.0, 0.0, 2.0, 3.0])
    for lib in (D, T):
        s = lib.tensor(x).to_sparse()
        assert s.is_sparse and s.is_coalesced()
    ds, ts = D.tensor(x).to_sparse(), T.tensor(x).to_sparse()
    np.testing.assert_array_equal(ds.indices().numpy(), ts.indices().numpy())
    # dense + sparse is dense (the gcn example: eye + adjacency), sparse + dense refused
    out = D.eye(4, dtype=D.float64) + _pair(D).to_dense()[:, :4].to_sparse()
    want = T.eye(4, dtype=T.float64) + _pair(T).to_dense()[:, :4].to_sparse()
    assert not out.is_sparse
    np.testing.assert_allclose(out.numpy(), want.numpy())
    with pytest.raises(RuntimeError, match="add\\(dense, sparse\\)"):
        ds + D.eye(4, dtype=D.float64)


@pytest.mark.parametrize("how", ["spmm", "sparse.mm", "mm", "matmul_op", "dense_at_sparse"])
def test_products_and_gradients_match_torch(how):
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((5, 3)) if how != "dense_at_sparse" else \
        rng.standard_normal((3, 4))
    res = []
    for lib in (D, T):
        vals = lib.tensor(VALS, dtype=lib.float64, requires_grad=True)
        s = lib.sparse_coo_tensor(IDX, vals, (4, 5))
        m = lib.tensor(dense, requires_grad=True)
        if how == "spmm":
            y = lib.spmm(s, m)
        elif how == "sparse.mm":
            y = lib.sparse.mm(s, m)
        elif how == "mm":
            y = lib.mm(s, m)
        elif how == "matmul_op":
            y = s @ m
        else:
            y = m @ s
        assert not y.is_sparse
        (y.sin() * 3).sum().backward()
        res.append((y.detach().numpy(), m.grad.numpy(), vals.grad.numpy()))
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_gcn_layer_trains_like_torch():
    """features (sparse) @ W, then adjacency (sparse) @ that: both gradients reach W."""
    rng = np.random.default_rng(1)
    feat = (rng.random((6, 8)) < 0.3) * 1.0
    adj = np.eye(6) + (rng.random((6, 6)) < 0.3)
    w0 = rng.standard_normal((8, 3))
    res = []
    for lib in (D, T):
        f, a = lib.tensor(feat).to_sparse(), lib.tensor(adj).to_sparse()
        w = lib.tensor(w0, requires_grad=True)
        out = lib.spmm(a, lib.mm(f, w))
        lib.nn.functional.log_softmax(out, 1).sum().backward()
        res.append((out.detach().numpy(), w.grad.numpy()))
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_to_dense_and_coalesce_carry_value_gradients():
    res = []
    for lib in (D, T):
        vals = lib.tensor(VALS, dtype=lib.float64, requires_grad=True)
        s = lib.sparse_coo_tensor(IDX, vals, (4, 5))
        y = (s.coalesce().to_dense() ** 2).sum() + (s.to_dense() * 3).sum()
        y.backward()
        res.append(vals.grad.numpy())
    np.testing.assert_allclose(res[0], res[1], rtol=1e-12)


def test_unsupported_ops_raise_clear_errors():
    s = _pair(D)
    with pytest.raises(NotImplementedError, match="to_dense"):
        s.view(20)
    with pytest.raises(TypeError, match="to_dense"):
        D.relu(s)
    with pytest.raises(RuntimeError, match="same dtype"):
        D.mm(s, D.ones(5, 2, dtype=D.float32))
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        D.mm(s, D.ones(4, 2, dtype=D.float64))


def test_move_and_cast():
    s = _pair(D).to(D.float32)
    assert s.dtype == D.float32 and str(s.device) == "cpu"
    assert s.detach().coalesce().values().dtype == D.float32


@pytest.mark.cuda
def test_spmm_on_gpu_matches_cpu():
    if not D.cuda.is_available():
        pytest.skip("no CUDA device")
    s = _pair(D)
    m = D.randn(5, 3, dtype=D.float64)
    np.testing.assert_allclose(D.spmm(s.cuda(), m.cuda()).cpu().numpy(),
                               D.spmm(s, m).numpy(), rtol=1e-12)
