"""Public API surface: torch's keyword forms run and give torch's values; missing modules
and names (accelerator, backends.cudnn, nn.modules paths, pixel shuffle, hooks) exist."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import dyntorch as dt  # noqa: E402


def _same(a, b):
    np.testing.assert_allclose(np.asarray(a.detach().tolist(), dtype=float),
                               np.asarray(b.detach().tolist(), dtype=float), rtol=1e-12)


# ----------------------------------------------------------------------------- keyword forms
X = np.arange(24.0).reshape(2, 3, 4)
CALLS = [
    ("flip dims=", lambda m, x: m.flip(x, dims=[0, 2])),
    ("reshape shape=", lambda m, x: x.reshape(shape=(4, 6))),
    ("torch.reshape input=", lambda m, x: m.reshape(input=x, shape=(6, 4))),
    ("view size=", lambda m, x: x.view(size=(6, 4))),
    ("permute dims=", lambda m, x: x.permute(dims=(2, 0, 1))),
    ("torch.permute", lambda m, x: m.permute(x, (2, 0, 1))),
    ("pow exponent=", lambda m, x: x.pow(exponent=2)),
    ("split split_size=", lambda m, x: x.split(split_size=1, dim=2)[3]),
    ("add input= other= alpha=", lambda m, x: m.add(input=x, other=x, alpha=3)),
    ("mul input= other=", lambda m, x: m.mul(input=x, other=x)),
    ("swapaxes axis0=", lambda m, x: m.swapaxes(x, axis0=0, axis1=2)),
    ("x.swapaxes axis0=", lambda m, x: x.swapaxes(axis0=1, axis1=2)),
    ("repeat repeats=", lambda m, x: x.repeat(repeats=(1, 2, 1))),
    ("tile dims=", lambda m, x: x.tile(dims=(2,))),
    ("expand size=", lambda m, x: x[:1].expand(size=(3, 3, 4))),
    ("broadcast_to size=", lambda m, x: x.broadcast_to(size=(2, 2, 3, 4))),
    ("squeeze two dims", lambda m, x: x[:1, :, :1].squeeze(0, 2)),
    ("count_nonzero dims", lambda m, x: x.count_nonzero(0, 2)),
    ("tensor_split sections=", lambda m, x: x.tensor_split(sections=3, dim=2)[1]),
    ("tensor_split indices=", lambda m, x: x.tensor_split(indices=[1, 3], dim=2)[1]),
    ("roll no dims", lambda m, x: m.roll(x, 5)),
    ("nan_to_num nan=None", lambda m, x: m.nan_to_num(x * float("nan"), nan=None)),
    ("addcmul tensor1=", lambda m, x: m.addcmul(x, tensor1=x, tensor2=x, value=2)),
    ("dot tensor=", lambda m, x: m.dot(x.flatten(), tensor=x.flatten())),
    ("linalg.det A=", lambda m, x: m.linalg.det(A=x[:, :3, :3] + m.eye(3, dtype=x.dtype))),
    ("linalg.vector_norm x=", lambda m, x: m.linalg.vector_norm(x=x, ord=3, dim=1)),
    ("searchsorted input=", lambda m, x: m.searchsorted(x.flatten(), input=x[0, 0] + 0.5)),
    ("searchsorted sorter=", lambda m, x: m.searchsorted(
        x.flatten().flip(0), x[0, 0], sorter=m.arange(23, -1, -1))),
]


@pytest.mark.parametrize("name,call", CALLS, ids=[c[0] for c in CALLS])
def test_keyword_form_matches_torch(name, call):
    _same(call(dt, dt.tensor(X)), call(torch, torch.tensor(X)))


@pytest.mark.parametrize("fn", ["zeros", "ones", "empty", "rand", "randn"])
def test_creation_size_keyword(fn):
    a = getattr(dt, fn)(size=(2, 3))
    assert a.shape == getattr(torch, fn)(size=(2, 3)).shape == (2, 3)
    assert getattr(dt, fn)(2, 3).shape == getattr(dt, fn)((2, 3)).shape == (2, 3)
    with pytest.raises(TypeError, match="multiple values"):
        getattr(dt, fn)(2, size=(2, 3))


def test_new_factories_take_size_keyword():
    x = dt.ones(2, dtype=dt.float64)
    assert x.new_zeros(size=(3,)).dtype is dt.float64
    assert x.new_ones(size=(2, 2)).sum().item() == 4
    assert x.new_empty(size=(1, 2)).shape == (1, 2)


def test_creation_out_is_honoured_not_dropped():
    out = dt.empty(2, 2)
    r = dt.ones(2, 2, out=out)
    assert r is out and out.sum().item() == 4
    with pytest.raises(RuntimeError, match="out= has shape"):
        dt.zeros(3, out=dt.empty(2))
    with pytest.raises(NotImplementedError, match="layout"):
        dt.zeros(2, layout="sparse_coo")


def test_gradients_flow_through_keyword_wrappers():
    a = dt.tensor([1.0, 2.0], requires_grad=True)
    dt.mul(input=a, other=a).sum().backward()
    assert a.grad.tolist() == [2.0, 4.0]


def test_uniform_from_to():
    r = dt.zeros(1000).uniform_(**{"from": -2.0, "to": -1.0})
    assert -2.0 <= r.min().item() and r.max().item() < -1.0
    with pytest.raises(TypeError, match="unexpected keyword argument 'lo'"):
        dt.zeros(2).uniform_(lo=1)


def test_refused_arguments_say_so():
    with pytest.raises(RuntimeError, match="driver"):
        dt.linalg.svd(dt.eye(2), driver="gesvd")
    with pytest.raises(RuntimeError, match="requires_grad"):
        dt.tril_indices(3, 3, requires_grad=True)
    with pytest.raises(TypeError, match="exactly one"):
        dt.ones(4).tensor_split(2, sections=2)


# ----------------------------------------------------------------------------- accelerator
def test_accelerator_matches_torch_on_a_cpu_machine():
    import dyntorch.accelerator as acc

    if dt.cuda.is_available():
        assert acc.current_accelerator().type == "cuda"
        assert acc.device_count() == dt.cuda.device_count()
        return
    assert acc.is_available() is torch.accelerator.is_available() is False
    assert acc.current_accelerator() is None and torch.accelerator.current_accelerator() is None
    assert acc.current_accelerator(check_available=True) is None
    assert acc.device_count() == 0
    for call in (acc.current_device_index, acc.synchronize, lambda: acc.set_device_index(0)):
        with pytest.raises(RuntimeError, match="none is available"):
            call()
    # the idiom of pytorch/examples' mnist
    device = acc.current_accelerator() if acc.is_available() else dt.device("cpu")
    assert dt.ones(2, device=device).device.type == "cpu"


@pytest.mark.cuda
def test_accelerator_on_cuda():
    import dyntorch.accelerator as acc

    if not dt.cuda.is_available():
        pytest.skip("no CUDA device")
    assert acc.is_available() and acc.current_accelerator() == dt.device("cuda")
    assert acc.device_count() >= 1 and acc.current_device_index() == 0
    acc.set_device_index("cuda:0")
    x = dt.ones(3, device=acc.current_accelerator()) * 2
    acc.synchronize()
    with acc.device_index(0):
        assert x.sum().item() == 6


# ----------------------------------------------------------------------------- backends
def test_backends_are_importable_modules():
    import importlib

    cudnn = importlib.import_module("dyntorch.backends.cudnn")
    assert cudnn is dt.backends.cudnn
    old = cudnn.benchmark
    try:
        cudnn.benchmark = True
        cudnn.deterministic = True
        assert dt.backends.cudnn.benchmark and dt.backends.cudnn.deterministic
    finally:
        cudnn.benchmark, cudnn.deterministic = old, False
    assert cudnn.enabled is True and cudnn.allow_tf32 is True
    assert cudnn.is_available() is False and cudnn.version() is None
    with cudnn.flags(enabled=False, deterministic=True):
        assert cudnn.enabled is False and cudnn.deterministic is True
    assert cudnn.enabled is True and cudnn.deterministic is False
    assert dt.backends.cuda.matmul.allow_tf32 is False
    dt.backends.cuda.matmul.allow_tf32 = True  # scripts set it; it must stick
    assert dt.backends.cuda.matmul.allow_tf32 is True
    dt.backends.cuda.matmul.allow_tf32 = False
    assert dt.backends.mps.is_available() is False and dt.backends.mps.is_built() is False
    for name in ("cudnn", "cuda", "mps", "mkldnn", "openmp"):
        assert importlib.import_module(f"dyntorch.backends.{name}") is getattr(dt.backends, name)


def test_device_kind_flags():
    x = dt.ones(2)
    for name in ("is_xpu", "is_mps", "is_meta", "is_cuda"):
        assert getattr(x, name) is getattr(torch.ones(2), name) is False
    assert x.is_cpu is True


# ----------------------------------------------------------------------------- nn.modules
def _torch_module_classes():
    import importlib
    import pkgutil

    import torch.nn.modules as tm

    for info in pkgutil.iter_modules(tm.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"torch.nn.modules.{info.name}")
        for name, obj in vars(mod).items():
            if isinstance(obj, type) and not name.startswith("_") and \
                    obj.__module__ == mod.__name__:
                yield info.name, name


TORCH_CLASSES = sorted(set(_torch_module_classes()))


def test_every_dyntorch_class_sits_where_torch_puts_it():
    import importlib

    import dyntorch.nn as dnn

    checked, wrong = 0, []
    for sub, name in TORCH_CLASSES:
        ours = getattr(dnn, name, None)
        if not isinstance(ours, type):
            continue
        checked += 1
        try:
            there = getattr(importlib.import_module(f"dyntorch.nn.modules.{sub}"), name)
        except (ImportError, AttributeError) as e:
            wrong.append(f"nn.modules.{sub}.{name}: {e}")
            continue
        if there is not ours:
            wrong.append(f"nn.modules.{sub}.{name} is not nn.{name}")
    assert checked > 100, checked  # the walk must reach the layers, or this passes vacuously
    assert not wrong, "\n".join(wrong)


def test_the_paths_scripts_import():
    import dyntorch.nn as dnn
    from dyntorch.nn.modules.activation import MultiheadAttention
    from dyntorch.nn.modules.linear import NonDynamicallyQuantizableLinear
    from dyntorch.nn.modules.pixelshuffle import PixelShuffle, PixelUnshuffle

    assert MultiheadAttention is dnn.MultiheadAttention
    assert issubclass(NonDynamicallyQuantizableLinear, dnn.Linear)
    mha = dnn.MultiheadAttention(8, 2)
    # minGPT's optimizer set-up: every Linear's weight decays, so out_proj must count
    assert isinstance(mha.out_proj, dnn.Linear)
    assert mha.out_proj.bias.abs().sum().item() == 0  # torch starts it at zero
    assert set(dict(mha.named_parameters())) == set(dict(
        torch.nn.MultiheadAttention(8, 2).named_parameters()))
    assert repr(PixelShuffle(3)) == repr(torch.nn.PixelShuffle(3))
    assert repr(PixelUnshuffle(2)) == repr(torch.nn.PixelUnshuffle(2))


@pytest.mark.parametrize("shape,r", [((2, 8, 3, 5), 2), ((18, 2, 4), 3), ((1, 2, 4, 4, 3), 1)])
def test_pixel_shuffle_values_and_grads_match_torch(shape, r):
    import dyntorch.nn as dnn
    import dyntorch.nn.functional as F

    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape)
    x, tx = dt.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, ty = F.pixel_shuffle(x, r), torch.nn.functional.pixel_shuffle(tx, r)
    _same(y, ty)
    w = rng.standard_normal(tuple(ty.shape))
    (y * dt.tensor(w)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    _same(x.grad, tx.grad)
    # and back again
    z, tz = F.pixel_unshuffle(y, r), torch.nn.functional.pixel_unshuffle(ty, r)
    _same(z, tz)
    _same(dnn.PixelUnshuffle(r)(dnn.PixelShuffle(r)(x)), x)
    assert dt.autograd.gradcheck(lambda t: F.pixel_unshuffle(t, r), (x.detach().reshape(
        tuple(ty.shape)).requires_grad_(),))


def test_pixel_shuffle_bad_shapes_say_why():
    import dyntorch.nn.functional as F

    with pytest.raises(RuntimeError, match="upscale_factor"):
        F.pixel_shuffle(dt.ones(1, 3, 2, 2), 2)
    with pytest.raises(RuntimeError, match="downscale_factor"):
        F.pixel_unshuffle(dt.ones(1, 1, 3, 4), 2)


# ----------------------------------------------------------------------------- module hooks
def test_global_forward_hook_always_call_and_with_kwargs():
    import dyntorch.nn as dnn
    from dyntorch.nn.modules.module import register_module_forward_hook

    class Boom(dnn.Module):
        def forward(self, x, scale=1.0):
            if scale < 0:
                raise ValueError("negative scale")
            return x * scale

    seen = []
    h1 = register_module_forward_hook(lambda m, a, out: seen.append(("plain", out is None)),
                                      always_call=True)
    h2 = register_module_forward_hook(lambda m, a, kw, out: seen.append(("kw", kw)),
                                      with_kwargs=True)
    try:
        m = Boom()
        m(dt.ones(1), scale=2.0)
        assert seen == [("plain", False), ("kw", {"scale": 2.0})]
        seen.clear()
        with pytest.raises(ValueError, match="negative scale"):
            m(dt.ones(1), scale=-1.0)
        assert seen == [("plain", True)]  # only the always_call hook runs on the error
    finally:
        h1.remove()
        h2.remove()
    seen.clear()
    Boom()(dt.ones(1))
    assert seen == []


# ----------------------------------------------------------------------------- editors
def test_tensor_stub_is_in_sync_with_the_class():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(dt.__file__).parent.parent
    r = subprocess.run([sys.executable, "-m", "dyntorch._stubgen", "--check"], cwd=root,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr + "\nrun `python -m dyntorch._stubgen` to refresh it"


def test_stub_declares_every_tensor_method_and_ships_py_typed():
    import ast
    from pathlib import Path

    import dyntorch.linalg  # noqa: F401  (attach everything the generator sees)
    import dyntorch.nn  # noqa: F401
    import dyntorch.special  # noqa: F401

    pkg = Path(dt.__file__).parent
    assert (pkg / "py.typed").is_file()
    tree = ast.parse((pkg / "_tensor.pyi").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Tensor")
    declared = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)} | {
        n.target.id for n in cls.body if isinstance(n, ast.AnnAssign)}
    public = {n for n in vars(dt.Tensor) if not n.startswith("_")}
    assert len(public) > 300
    assert public <= declared, sorted(public - declared)
    # the methods the issue names are there with torch's keywords
    src = (pkg / "_tensor.pyi").read_text()
    assert "def reshape(self, *shapes: Any, shape: Any = ...) -> Tensor:" in src
    assert "def lgamma(self, *, out: Any = ...) -> Tensor:" in src


def test_a_type_checker_follows_the_stub(tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    mypy = shutil.which("mypy") or shutil.which("mypy", path=str(Path(sys.executable).parent))
    if mypy is None:
        pytest.skip("mypy is not installed")
    snippet = tmp_path / "use.py"
    snippet.write_text("import dyntorch\nx = dyntorch.ones(2)\n"
                       "reveal_type(x.reshape(2, 1).permute(1, 0).lgamma().sum())\n"
                       "x.no_such_method()\n")
    r = subprocess.run([mypy, "--follow-imports=silent", str(snippet)], capture_output=True,
                       text=True, cwd=Path(dt.__file__).parent.parent, timeout=300)
    assert 'Revealed type is "dyntorch._tensor.Tensor"' in r.stdout, r.stdout
    assert '"Tensor" has no attribute "no_such_method"' in r.stdout, r.stdout


def test_nn_modules_utils_helpers_match_torch():
    from torch.nn.modules import utils as tu

    from dyntorch.nn.modules import utils as du

    for name in ("_single", "_pair", "_triple", "_quadruple"):
        for v in (3, (1, 2), [4, 5, 6]):
            assert getattr(du, name)(v) == getattr(tu, name)(v)
    assert du._reverse_repeat_tuple((1, 2), 2) == tu._reverse_repeat_tuple((1, 2), 2)


def test_in_place_special_methods():
    x = dt.tensor([0.5, 2.0, 3.0], dtype=dt.float64)
    for name in ("lgamma", "digamma", "erfc", "i0", "sgn"):
        y = x.clone()
        assert getattr(y, name + "_")() is y
        np.testing.assert_allclose(y.tolist(), getattr(torch.tensor(x.tolist(),
                                   dtype=torch.float64), name)().tolist(), rtol=1e-12)
    y = x.clone().polygamma_(2)
    np.testing.assert_allclose(y.tolist(), torch.tensor(x.tolist(), dtype=torch.float64)
                               .polygamma(2).tolist(), rtol=1e-12)
    z = dt.tensor([[3.0, 4.0], [0.3, 0.4]])
    assert z.renorm_(2, 0, 1.0) is z and abs(z[0].norm().item() - 1.0) < 1e-5
