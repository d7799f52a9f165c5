"""bfloat16 against torch 2.13: promotion, casts, arithmetic rounded as torch's CPU kernels
round it (float32 compute, one rounding), gradients, autocast, and the GPU refusal."""
import numpy as np
import pytest
import torch as T

import dyntorch as D
from dyntorch import _backend as B


def _bf(lib, a):
    return lib.tensor(a, dtype=lib.float32).to(lib.bfloat16)


def _np(t):
    return t.detach().float().numpy()


def test_dtype_names_and_finfo():
    assert D.bfloat16.is_floating_point and D.bfloat16.itemsize == 2
    assert repr(D.bfloat16) == "dyntorch.bfloat16"
    fd, ft = D.finfo(D.bfloat16), T.finfo(T.bfloat16)
    assert (fd.eps, fd.max, fd.tiny, fd.bits) == (ft.eps, ft.max, ft.tiny, ft.bits)


PAIRS = ["bfloat16", "float16", "float32", "float64", "int64", "int32", "uint8", "bool"]


@pytest.mark.parametrize("other", PAIRS)
def test_promotion_matches_torch(other):
    assert D.promote_types(D.bfloat16, getattr(D, other)).name == \
        str(T.promote_types(T.bfloat16, getattr(T, other))).split(".")[1]
    a = np.arange(1, 7).reshape(2, 3)
    d = _bf(D, a) + D.tensor(a).to(getattr(D, other))
    t = _bf(T, a) + T.tensor(a).to(getattr(T, other))
    assert d.dtype.name == str(t.dtype).split(".")[1]
    # Python scalars keep bfloat16, as in torch
    assert (_bf(D, a) * 2.5).dtype == D.bfloat16 and (_bf(D, a) + 3).dtype == D.bfloat16


def test_cast_rounds_like_torch():
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32) * 100
    np.testing.assert_array_equal(_np(_bf(D, x)), _np(_bf(T, x)))
    np.testing.assert_array_equal(_np(D.tensor(x).bfloat16()), _np(T.tensor(x).bfloat16()))


OPS = {
    "mul_add": lambda l, a, b: a * b + a,
    "div": lambda l, a, b: a / (b.abs() + 1),
    "exp_tanh": lambda l, a, b: a.exp() - b.tanh(),
    "sum": lambda l, a, b: a.sum(1),
    "mean": lambda l, a, b: a.mean(0),
    "matmul": lambda l, a, b: a @ b[:8].t(),
    "softmax": lambda l, a, b: l.softmax(a, 1),
    "linear": lambda l, a, b: l.nn.functional.linear(a, b[:8], b[0, :8]),
    "layer_norm": lambda l, a, b: l.nn.functional.layer_norm(a, (a.shape[1],)),
    "relu_max": lambda l, a, b: l.relu(a).amax(1),
}


@pytest.mark.parametrize("name", OPS)
def test_ops_round_like_torch(name):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((16, 64)), rng.standard_normal((16, 64))
    d = OPS[name](D, _bf(D, a), _bf(D, b))
    t = OPS[name](T, _bf(T, a), _bf(T, b))
    assert d.dtype == D.bfloat16
    # one bfloat16 ulp at most (torch's kernels may order float32 sums differently)
    np.testing.assert_allclose(_np(d), _np(t), rtol=2 ** -7, atol=1e-6)
    if name in ("mul_add", "div", "exp_tanh", "softmax", "sum", "matmul"):
        assert np.mean(_np(d) == _np(t)) > 0.95


def test_gradients_in_bfloat16_match_torch():
    rng = np.random.default_rng(2)
    x0, w0 = rng.standard_normal((8, 32)), rng.standard_normal((4, 32))
    res = []
    for lib in (D, T):
        x = _bf(lib, x0).requires_grad_()
        w = _bf(lib, w0).requires_grad_()
        y = lib.nn.functional.linear(x, w).tanh()
        (y * y).sum().backward()
        assert x.grad.dtype == lib.bfloat16 and w.grad.dtype == lib.bfloat16
        res.append((_np(x.grad), _np(w.grad)))
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=2 ** -6, atol=1e-3)


def test_autocast_bfloat16_on_cpu_is_accepted():
    x = D.randn(4, 4)
    with D.autocast("cpu", dtype=D.bfloat16):
        y = x @ x
    assert y.shape == (4, 4)


def test_gpu_refuses_bfloat16_clearly():
    with pytest.raises(TypeError, match="CuPy has no bfloat16"):
        B.check_gpu_dtype(B.device("cuda", 0), D.bfloat16)
    B.check_gpu_dtype(B.device("cpu"), D.bfloat16)  # fine on the CPU


@pytest.mark.cuda
def test_moving_bfloat16_to_gpu_raises():
    if not D.cuda.is_available():
        pytest.skip("no CUDA device")
    with pytest.raises(TypeError, match="bfloat16"):
        D.ones(2, dtype=D.bfloat16).cuda()


def test_casts_out_of_bfloat16_keep_their_dtype_and_gradients():
    x0 = np.random.default_rng(3).standard_normal(7)
    res = []
    for lib in (D, T):
        x = lib.tensor(x0, dtype=lib.float32, requires_grad=True)
        b = x.to(lib.bfloat16)
        outs = [b.float(), b.double(), b.half(), b.sum(dtype=lib.float32), b.sum()]
        assert [o.dtype for o in outs] == [lib.float32, lib.float64, lib.float16, lib.float32,
                                           lib.bfloat16]
        (outs[0] * 3).sum().backward()
        res.append((outs[0].detach().numpy(), x.grad.numpy()))
    for a, t in zip(*res):
        np.testing.assert_array_equal(a, t)


def test_import_does_not_load_ml_dtypes_until_bfloat16_is_used():
    # ml_dtypes takes about a second to import: `import dyntorch` must not pay for it
    import subprocess
    import sys

    code = ("import sys, dyntorch as t; a = 'ml_dtypes' in sys.modules; "
            "x = t.ones(2).to(t.bfloat16); print(a, 'ml_dtypes' in sys.modules, x.dtype)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split() == ["False", "True", "dyntorch.bfloat16"], out.stderr


def test_module_bfloat16_casts_floating_parameters_like_torch():
    torch = T

    m = D.nn.Sequential(D.nn.Linear(3, 2), D.nn.BatchNorm1d(2)).bfloat16()
    tm = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2)).bfloat16()
    got = {k: str(v.dtype).split(".")[-1] for k, v in m.state_dict().items()}
    want = {k: str(v.dtype).split(".")[-1] for k, v in tm.state_dict().items()}
    assert got == want  # num_batches_tracked stays int64, the rest bfloat16
