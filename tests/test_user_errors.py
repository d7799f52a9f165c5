"""Common user mistakes get a clear error, of the same type torch 2.13.0 raises.

Each case is run on dyntorch and on torch.  Our message must name the op or layer and the
shapes / dtypes / devices involved (the key parts are listed per case), and where torch
raises RuntimeError / ValueError / IndexError / TypeError we raise the same type (or a
subclass), so ``except RuntimeError:`` blocks written for torch keep working.
"""
from __future__ import annotations

import io
import warnings
from importlib import import_module

import numpy as np
import pytest

import dyntorch

reference = pytest.importorskip("torch")

MATCHED_TYPES = (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError)


def _data(t):
    return import_module(t.__name__ + ".utils.data")


def _rnn_utils(t):
    return import_module(t.__name__ + ".nn.utils.rnn")


def _backward_twice(t):
    x = t.ones(2, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    y.backward()


def _sd_missing_unexpected(t):
    m = t.nn.Linear(2, 2)
    sd = m.state_dict()
    del sd["bias"]
    sd["extra"] = t.ones(1)
    m.load_state_dict(sd)


def _no_super(t):
    class M(t.nn.Module):
        def __init__(self):
            self.fc = t.nn.Linear(2, 2)

    M()


def _no_forward(t):
    class M(t.nn.Module):
        def __init__(self):
            super().__init__()

    M()(t.ones(1))


def _saved_modified(t):
    x = t.ones(2, requires_grad=True)
    y = x.exp()
    z = y.sum()
    y.add_(1)
    z.backward()


def _grad_unused(t):
    x = t.ones(2, requires_grad=True)
    y = t.ones(2, requires_grad=True)
    t.autograd.grad((y * 2).sum(), [x])


def _save_load_wrong_model(t):
    buf = io.BytesIO()
    t.save(t.nn.Linear(3, 2).state_dict(), buf)
    buf.seek(0)
    t.nn.Linear(2, 2).load_state_dict(t.load(buf))


# (id, mistake, key parts of our message)
CASES = [
    # ---- shapes
    ("linear_in_features", lambda t: t.nn.Linear(4, 3)(t.ones(2, 5)),
     ["linear", "[2, 5]", "[3, 4]"]),
    ("matmul_shapes", lambda t: t.ones(2, 3) @ t.ones(4, 5), ["matmul", "2x3", "4x5"]),
    ("mm_shapes", lambda t: t.mm(t.ones(2, 3), t.ones(4, 5)), ["mm", "2x3", "4x5"]),
    ("bmm_batch", lambda t: t.bmm(t.ones(2, 2, 3), t.ones(3, 4, 5)),
     ["bmm", "[2, 2, 3]", "[3, 4, 5]"]),
    ("bmm_2d", lambda t: t.bmm(t.ones(2, 3), t.ones(3, 2)), ["bmm", "3", "[2, 3]"]),
    ("matmul_1d", lambda t: t.ones(3) @ t.ones(4), ["matmul", "[3]", "[4]"]),
    ("cat_sizes", lambda t: t.cat([t.ones(2, 3), t.ones(2, 4)], dim=0),
     ["cat", "Expected size 3 but got size 4", "[2, 4]"]),
    ("cat_dim", lambda t: t.cat([t.ones(2, 3), t.ones(2, 3)], dim=2),
     ["cat", "Dimension out of range", "got 2"]),
    ("cat_ndim", lambda t: t.cat([t.ones(2), t.ones(2, 2)]), ["cat", "got 1 and 2"]),
    ("cat_not_list", lambda t: t.cat(t.ones(2, 3)), ["cat", "Tensor"]),
    ("stack_sizes", lambda t: t.stack([t.ones(2, 3), t.ones(3, 2)]),
     ["stack", "[2, 3]", "[3, 2]"]),
    ("view_numel", lambda t: t.ones(2, 3).view(4, 2), ["view", "[4, 2]", "size 6"]),
    ("view_noncontiguous", lambda t: t.ones(2, 3).t().view(6), ["view", "reshape"]),
    ("view_two_inferred", lambda t: t.ones(6).view(-1, -1), ["only one dimension"]),
    ("reshape_numel", lambda t: t.ones(2, 3).reshape(-1, 4), ["reshape", "[-1, 4]", "6"]),
    ("broadcast_add", lambda t: t.ones(2, 3) + t.ones(4, 3),
     ["add", "[2, 3]", "[4, 3]", "non-singleton dimension 0"]),
    ("inplace_broadcast", lambda t: t.ones(3).add_(t.ones(2, 3)),
     ["add_", "[3]", "[2, 3]"]),
    ("inplace_mul_no_broadcast", lambda t: t.ones(3).mul_(t.ones(2)), ["mul_", "[3]", "[2]"]),
    ("inplace_int_float", lambda t: t.ones(3, dtype=t.int64).add_(t.ones(3) * 0.5),
     ["add_", "float32", "int64"]),
    ("expand_bad", lambda t: t.ones(2, 3).expand(4, 3), ["expand", "[4, 3]", "[2, 3]"]),
    ("masked_fill_shape",
     lambda t: t.ones(2, 3).masked_fill(t.ones(3, 2, dtype=t.bool), 0),
     ["masked_fill", "[2, 3]", "[3, 2]"]),
    ("masked_fill_float_mask", lambda t: t.ones(2, 3).masked_fill(t.ones(2, 3), 0),
     ["masked_fill", "bool", "float"]),
    ("where_shapes", lambda t: t.where(t.ones(2, dtype=t.bool), t.ones(3), t.ones(2)),
     ["where", "[2]", "[3]"]),
    ("gather_ndim", lambda t: t.gather(t.ones(2, 3), 1, t.tensor([0, 1])),
     ["gather", "same number of dimensions"]),
    ("split_sizes", lambda t: t.ones(4).split([1, 2]), ["split", "4", "[1, 2]"]),
    ("sum_dim_oob", lambda t: t.ones(2, 3).sum(dim=2), ["sum", "[-2, 1]", "got 2"]),
    ("transpose_dim_oob", lambda t: t.ones(2, 3).transpose(0, 3), ["transpose", "got 3"]),
    ("permute_len", lambda t: t.ones(2, 3).permute(0), ["permute", "2", "1"]),
    ("softmax_dim_oob", lambda t: t.nn.functional.softmax(t.ones(2, 3), dim=3),
     ["softmax", "got 3"]),
    ("einsum_sizes", lambda t: t.einsum("ij,jk->ik", t.ones(2, 3), t.ones(4, 5)),
     ["einsum", "j", "3", "4"]),
    ("einsum_repeated", lambda t: t.einsum("ii->i", t.ones(2, 3)),
     ["einsum", "subscript i", "operand 0", "[2, 3]"]),
    ("einsum_ellipsis", lambda t: t.einsum("...i,...i", t.ones(2, 3), t.ones(4, 3)),
     ["einsum", "ellipsis", "operand 1", "[4, 3]"]),
    ("nll_multi_target", lambda t: t.nn.functional.nll_loss(t.randn(3, 5), t.ones(3, 1).long()),
     ["nll_loss", "[3, 1]", "[3, 5]", "squeeze"]),
    ("ce_multi_target", lambda t: t.nn.functional.cross_entropy(t.randn(3, 5),
                                                                t.ones(3, 1).long()),
     ["cross_entropy", "multi-target", "[3, 1]"]),
    ("nll_spatial_batch", lambda t: t.nn.functional.nll_loss(t.randn(3, 5, 4),
                                                             t.zeros(2, 4).long()),
     ["nll_loss", "[3, 4]", "[2, 4]"]),
    ("nll_spatial_shape", lambda t: t.nn.functional.nll_loss(t.randn(3, 5, 4),
                                                             t.zeros(3, 5).long()),
     ["nll_loss", "[3, 4]", "[3, 5]"]),
    ("max_pool1d_too_small", lambda t: t.nn.functional.max_pool1d(t.ones(1, 1, 2), 4),
     ["max_pool1d", "(1x2)", "too small"]),
    ("avg_pool2d_too_small", lambda t: t.nn.AvgPool2d(3)(t.ones(1, 1, 2, 5)),
     ["avg_pool2d", "(1x2x5)", "(1x0x1)", "too small"]),
    ("max_pool2d_dilation_too_small", lambda t: t.nn.functional.max_pool2d(
        t.ones(1, 1, 3, 3), 2, dilation=3), ["max_pool2d", "dilation", "too small"]),
    ("sum_dim_str_in_tuple", lambda t: t.ones(2, 3).sum(dim=(0, "a")),
     ["sum", "dim", "str", "'a'"]),
    ("cumsum_dim_list", lambda t: t.ones(2, 3).cumsum(dim=[1]), ["cumsum", "dim", "list"]),
    ("argmax_dim_float", lambda t: t.ones(2, 3).argmax(dim=1.0), ["argmax", "dim", "float"]),
    ("sum_dim_bool", lambda t: t.ones(2, 3).sum(dim=True), ["sum", "dim", "bool"]),
    ("scalar_sum_dim_oob", lambda t: t.tensor(1.0).sum(dim=1), ["sum", "got 1"]),
    ("layernorm_shape", lambda t: t.nn.LayerNorm(5)(t.ones(2, 4)),
     ["layer_norm", "[5]", "[2, 4]"]),
    # ---- dtypes
    ("ce_float_target", lambda t: t.nn.functional.cross_entropy(
        t.randn(3, 5), t.tensor([1.0, 2.0, 3.0])), ["cross_entropy", "[3]", "[3, 5]"]),
    ("ce_target_out_of_range", lambda t: t.nn.functional.cross_entropy(
        t.randn(3, 5), t.tensor([1, 2, 7])), ["cross_entropy", "7", "5 classes"]),
    ("ce_batch_mismatch", lambda t: t.nn.functional.cross_entropy(
        t.randn(3, 5), t.tensor([1, 2])), ["cross_entropy", "[3]", "[2]"]),
    ("bce_not_probabilities", lambda t: t.nn.functional.binary_cross_entropy(
        t.tensor([1.5]), t.tensor([1.0])), ["binary_cross_entropy", "between 0 and 1"]),
    ("bce_shape", lambda t: t.nn.functional.binary_cross_entropy(t.rand(3, 1), t.rand(3)),
     ["[3]", "[3, 1]"]),
    ("bce_long_target", lambda t: t.nn.functional.binary_cross_entropy(
        t.rand(3), t.tensor([0, 1, 1])), ["binary_cross_entropy", "int64", ".float()"]),
    ("bce_logits_bool_target", lambda t: t.nn.BCEWithLogitsLoss()(
        t.randn(3), t.tensor([0, 1, 1]).bool()),
     ["binary_cross_entropy_with_logits", "bool", ".float()"]),
    ("bce_logits_long_input", lambda t: t.nn.functional.binary_cross_entropy_with_logits(
        t.tensor([0, 1, 1]), t.randn(3)), ["binary_cross_entropy_with_logits", "int64"]),
    ("mean_of_int", lambda t: t.arange(3).mean(), ["mean", "int64", ".float()"]),
    ("mse_of_int", lambda t: t.nn.functional.mse_loss(t.tensor([1, 2]), t.tensor([1, 3])),
     ["int64"]),
    ("linear_double_input", lambda t: t.nn.Linear(2, 2)(t.ones(2, 2, dtype=t.float64)),
     ["linear", "float64", "float32"]),
    ("matmul_dtypes", lambda t: t.ones(2, 2) @ t.ones(2, 2, dtype=t.float64),
     ["matmul", "float32", "float64"]),
    ("conv_double_input", lambda t: t.nn.Conv2d(1, 1, 1)(t.ones(1, 1, 3, 3, dtype=t.float64)),
     ["conv2d", "float64", "float32"]),
    ("embedding_float_idx", lambda t: t.nn.Embedding(5, 3)(t.tensor([1.0, 2.0])),
     ["embedding", "Long", "float32"]),
    ("index_with_float", lambda t: t.ones(3)[t.tensor([0.0, 1.0])], ["long", "float32"]),
    ("one_hot_float", lambda t: t.nn.functional.one_hot(t.tensor([1.0]), 3), ["one_hot"]),
    ("requires_grad_int", lambda t: t.ones(2, dtype=t.int64).requires_grad_(),
     ["floating point", "int64"]),
    ("parameter_int", lambda t: t.nn.Parameter(t.tensor([1, 2])), ["floating point"]),
    ("softmax_int", lambda t: t.softmax(t.tensor([1, 2]), 0), ["float"]),
    ("gather_float_index", lambda t: t.gather(t.ones(2, 3), 1, t.tensor([[0.0]])),
     ["gather", "int64"]),
    # ---- devices
    ("cuda_without_gpu", lambda t: t.ones(2).to("cuda") + t.ones(2), ["cuda"]),
    ("bad_device_string", lambda t: t.ones(2).to("tpu"), ["tpu", "cpu"]),
    # ---- autograd
    ("backward_twice", _backward_twice, ["second time", "retain_graph=True"]),
    ("inplace_on_leaf", lambda t: t.ones(2, requires_grad=True).add_(1),
     ["add_", "leaf", "no_grad"]),
    ("numpy_requires_grad", lambda t: t.ones(2, requires_grad=True).numpy(),
     ["numpy()", "detach()"]),
    ("backward_non_scalar", lambda t: (t.ones(2, requires_grad=True) * 2).backward(),
     ["scalar outputs", "[2]"]),
    ("backward_without_grad", lambda t: t.ones(2).sum().backward(),
     ["does not require grad"]),
    ("saved_tensor_modified", _saved_modified, ["modified by an inplace operation",
                                                "version 1"]),
    ("requires_grad_nonleaf",
     lambda t: setattr(t.ones(2, requires_grad=True) * 2, "requires_grad", False),
     ["leaf", "detach()"]),
    ("grad_unused_input", _grad_unused, ["allow_unused=True"]),
    ("grad_wrong_shape", lambda t: setattr(t.ones(2, requires_grad=True), "grad", t.ones(3)),
     ["[3]", "[2]"]),
    # ---- indexing / conversion
    ("index_out_of_range", lambda t: t.ones(3)[5], ["index 5", "size 3"]),
    ("tensor_index_out_of_range", lambda t: t.ones(3)[t.tensor([0, 5])], ["5", "size 3"]),
    ("setitem_out_of_range", lambda t: t.ones(3).__setitem__(5, 1.0), ["5", "size 3"]),
    ("too_many_indices", lambda t: t.ones(3)[0, 1], ["too many indices", "1"]),
    ("mask_shape", lambda t: t.ones(3, 2)[t.tensor([True, False])], ["mask", "[2]", "[3, 2]"]),
    ("item_of_many", lambda t: t.ones(3).item(), ["3 elements", "Scalar"]),
    ("int_of_many", lambda t: int(t.ones(3)), ["only one element"]),
    ("float_of_many", lambda t: float(t.ones(2, 2)), ["only one element"]),
    ("bool_of_many", lambda t: bool(t.ones(3)), ["ambiguous"]),
    ("topk_too_big", lambda t: t.ones(3).topk(5), ["topk", "k"]),
    ("size_dim_oob", lambda t: t.ones(2, 3).size(3), ["got 3"]),
    # ---- creation
    ("tensor_ragged", lambda t: t.tensor([[1, 2], [3]]),
     ["tensor", "expected sequence of length 2 at dim 1 (got 1)"]),
    ("tensor_ragged_deep", lambda t: t.tensor([[[1, 2], [3, 4]], [[1, 2], [3]]]),
     ["expected sequence of length 2 at dim 2 (got 1)"]),
    ("zeros_negative", lambda t: t.zeros(-1, 2), ["negative dimension", "[-1, 2]"]),
    ("randn_negative", lambda t: t.randn(-2), ["negative dimension", "[-2]"]),
    ("randint_empty_range", lambda t: t.randint(5, 5, (2,)), ["5"]),
    ("randint_no_size", lambda t: t.randint(0, 10), ["randint", "size"]),
    ("normal_negative_std", lambda t: t.normal(0.0, -1.0, (2,)), ["normal", "std", "-1"]),
    ("zeros_like_list", lambda t: t.zeros_like([1, 2]), ["zeros_like", "Tensor", "list"]),
    ("ones_float_size", lambda t: t.ones(2.5), ["2.5"]),
    ("arange_zero_step", lambda t: t.arange(0, 5, 0), ["step must be nonzero"]),
    ("int_floor_div_zero", lambda t: t.tensor([1, 2]) // 0, ["floor_divide", "ZeroDivisionError"]),
    ("int_remainder_zero", lambda t: t.tensor([1, 2]) % t.tensor([1, 0]),
     ["remainder", "ZeroDivisionError"]),
    ("int_trunc_div_zero", lambda t: t.tensor([1]).div(0, rounding_mode="trunc"),
     ["ZeroDivisionError"]),
    ("from_numpy_list", lambda t: t.from_numpy([1, 2]), ["np.ndarray", "list"]),
    # ---- nn layers
    ("conv2d_channels", lambda t: t.nn.Conv2d(3, 4, 3)(t.ones(1, 1, 8, 8)),
     ["conv2d", "[4, 3, 3, 3]", "[1, 1, 8, 8]", "3 channels"]),
    ("conv2d_2d_input", lambda t: t.nn.Conv2d(3, 4, 3)(t.ones(8, 8)),
     ["conv2d", "3D", "4D", "[8, 8]"]),
    ("conv2d_kernel_too_big", lambda t: t.nn.Conv2d(1, 1, 5)(t.ones(1, 1, 3, 3)),
     ["conv2d", "Kernel size"]),
    ("batchnorm_features", lambda t: t.nn.BatchNorm1d(4)(t.ones(3, 5)), ["5", "4"]),
    ("batchnorm2d_ndim", lambda t: t.nn.BatchNorm2d(4)(t.ones(3, 4)), ["4D", "2D"]),
    ("batchnorm_one_sample", lambda t: t.nn.BatchNorm1d(4)(t.ones(1, 4)),
     ["more than 1 value per channel", "[1, 4]"]),
    ("lstm_ndim", lambda t: t.nn.LSTM(4, 5)(t.ones(2, 3, 4, 1)), ["LSTM", "2D or 3D", "4D"]),
    ("lstm_features", lambda t: t.nn.LSTM(4, 5)(t.ones(2, 3, 6)),
     ["input_size", "Expected 4, got 6"]),
    ("lstm_hidden_shape", lambda t: t.nn.LSTM(4, 5)(
        t.ones(3, 2, 4), (t.zeros(1, 3, 5), t.zeros(1, 3, 5))), ["(1, 2, 5)", "[1, 3, 5]"]),
    ("embedding_out_of_range", lambda t: t.nn.Embedding(5, 3)(t.tensor([1, 7])),
     ["embedding", "index out of range"]),
    ("dropout_p", lambda t: t.nn.Dropout(p=1.5), ["dropout probability", "1.5"]),
    ("pack_unsorted", lambda t: _rnn_utils(t).pack_padded_sequence(
        t.ones(2, 3, 1), [2, 3], batch_first=True), ["enforce_sorted=False"]),
    ("pack_zero_length", lambda t: _rnn_utils(t).pack_padded_sequence(
        t.ones(2, 3, 1), [3, 0], batch_first=True), ["greater than 0"]),
    # ---- modules
    ("module_no_super_init", _no_super, ["before Module.__init__() call"]),
    ("module_no_forward", _no_forward, ["M", "forward"]),
    ("module_wrong_arg_count", lambda t: t.nn.Linear(2, 2)(t.ones(2), t.ones(2)),
     ["forward()", "3 were given"]),
    ("module_no_args", lambda t: t.nn.Linear(2, 2)(), ["forward()", "input"]),
    ("module_attr_typo", lambda t: t.nn.Linear(2, 2).wieght, ["Linear", "wieght"]),
    ("sequential_list", lambda t: t.nn.Sequential([t.nn.ReLU()]), ["list", "Module"]),
    ("modulelist_int", lambda t: t.nn.ModuleList([1]), ["int", "Module"]),
    ("sequential_index", lambda t: t.nn.Sequential(t.nn.ReLU())[3], ["3"]),
    ("assign_tensor_to_param", lambda t: setattr(t.nn.Linear(2, 2), "weight", t.ones(2, 2)),
     ["weight", "Parameter"]),
    ("buffer_not_tensor", lambda t: t.nn.Module().register_buffer("b", [1]),
     ["buffer", "list"]),
    ("train_mode_not_bool", lambda t: t.nn.Linear(2, 2).train("no"), ["boolean"]),
    ("mha_heads", lambda t: t.nn.MultiheadAttention(10, 3), ["divisible by num_heads"]),
    # ---- state dicts / serialization
    ("state_dict_missing_unexpected", _sd_missing_unexpected,
     ["Linear", 'Missing key(s) in state_dict: "bias"', 'Unexpected key(s) in state_dict: '
      '"extra"']),
    ("state_dict_shapes", _save_load_wrong_model,
     ["size mismatch for weight", "[2, 3]", "[2, 2]"]),
    ("state_dict_prefix", lambda t: t.nn.Sequential(t.nn.Linear(2, 2)).load_state_dict(
        t.nn.Linear(2, 2).state_dict()), ["Sequential", '"0.weight"', '"weight"']),
    ("state_dict_not_dict", lambda t: t.nn.Linear(2, 2).load_state_dict([1, 2]),
     ["dict", "list"]),
    ("load_missing_file", lambda t: t.load("/nonexistent/ckpt.pt"), ["ckpt.pt"]),
    # ---- optim / data
    ("optim_empty_list", lambda t: t.optim.SGD([], lr=0.1), ["empty parameter list"]),
    ("optim_module_without_params", lambda t: t.optim.Adam(t.nn.ReLU().parameters()),
     ["empty parameter list"]),
    ("optim_single_tensor", lambda t: t.optim.SGD(t.ones(2, requires_grad=True), lr=0.1),
     ["iterable of Tensors"]),
    ("optim_parameters_not_called", lambda t: t.optim.SGD(t.nn.Linear(2, 2).parameters,
                                                          lr=0.1), ["method"]),
    ("optim_negative_lr", lambda t: t.optim.Adam(t.nn.Linear(2, 2).parameters(), lr=-1),
     ["learning rate", "-1"]),
    ("scheduler_no_optimizer", lambda t: t.optim.lr_scheduler.StepLR(None, 1),
     ["Optimizer"]),
    ("loader_batch_size_zero", lambda t: _data(t).DataLoader(list(range(4)), batch_size=0),
     ["batch_size", "0"]),
    ("loader_shuffle_and_sampler", lambda t: _data(t).DataLoader(
        list(range(4)), shuffle=True, sampler=_data(t).SequentialSampler(range(4))),
     ["sampler", "shuffle"]),
    ("collate_ragged", lambda t: next(iter(_data(t).DataLoader(
        [t.ones(2), t.ones(3)], batch_size=2))), ["stack", "equal size", "collate_fn"]),
    ("random_split_lengths", lambda t: _data(t).random_split(range(10), [3, 3]),
     ["6", "10"]),
    # ---- NumPy arrays / lists where a Tensor is expected
    ("linear_numpy_input", lambda t: t.nn.Linear(2, 2)(np.ones((1, 2), dtype=np.float32)),
     ["linear", "Tensor", "numpy.ndarray", "from_numpy"]),
    ("linear_list_input", lambda t: t.nn.functional.linear([[1.0, 2.0]], t.ones(2, 2)),
     ["linear", "Tensor", "list"]),
    ("conv_numpy_input", lambda t: t.nn.Conv2d(1, 1, 1)(np.ones((1, 1, 2, 2), np.float32)),
     ["Conv2d", "Tensor", "numpy.ndarray"]),
    ("sequential_numpy_input", lambda t: t.nn.Sequential(t.nn.Linear(2, 2))(np.ones((1, 2))),
     ["Tensor", "numpy.ndarray"]),
    ("loss_module_numpy_target", lambda t: t.nn.CrossEntropyLoss()(t.ones(2, 3),
                                                                    np.array([0, 1])),
     ["CrossEntropyLoss", "Tensor", "numpy.ndarray"]),
    ("embedding_numpy_input", lambda t: t.nn.Embedding(3, 2)(np.array([1])),
     ["embedding", "Tensor", "numpy.ndarray"]),
    ("embedding_1d_weight", lambda t: t.nn.functional.embedding(t.tensor([0]), t.ones(3)),
     ["embedding", "2-D", "[3]"]),
    ("loss_class_not_instantiated", lambda t: t.nn.CrossEntropyLoss(
        t.randn(2, 3), t.tensor([0, 1])), ["ambiguous"]),
]


def _run(fn, lib):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fn(lib)
        except Exception as e:  # noqa: BLE001 - comparing what each library raises
            return e
    return None


@pytest.mark.parametrize(("fn", "parts"), [pytest.param(f, p, id=i) for i, f, p in CASES])
def test_user_error(fn, parts):
    ref = _run(fn, reference)
    ours = _run(fn, dyntorch)
    assert ours is not None, "dyntorch raised nothing"
    msg = str(ours)
    for part in parts:
        assert part in msg, f"{part!r} not in our message: {msg}"
    if ref is None or not isinstance(ref, MATCHED_TYPES):
        return  # torch raises nothing / an AssertionError: any clear error of ours will do
    want = next(c for c in MATCHED_TYPES if isinstance(ref, c))
    if want is NotImplementedError:  # torch's "kernel not implemented for 'Long'"
        want = (NotImplementedError, RuntimeError)
    assert isinstance(ours, want), (
        f"torch raises {type(ref).__name__}, we raise {type(ours).__name__}: {msg}")


def test_every_message_names_something():
    """No bare NumPy message leaks out: each of ours is longer than a couple of words."""
    for _id, fn, _parts in CASES:
        e = _run(fn, dyntorch)
        assert e is not None and len(str(e).split()) >= 2, _id


def test_mse_broadcast_warns():
    with pytest.warns(UserWarning, match=r"mse_loss.*\[3, 2\].*\[3, 1\]"):
        dyntorch.nn.functional.mse_loss(dyntorch.randn(3, 1), dyntorch.randn(3, 2))


def test_nonleaf_grad_warns():
    with pytest.warns(UserWarning, match="not a leaf"):
        assert (dyntorch.ones(2, requires_grad=True) * 2).grad is None


def test_tensor_from_tensor_warns():
    with pytest.warns(UserWarning, match=r"detach\(\)\.clone\(\)"):
        dyntorch.tensor(dyntorch.ones(2))


def test_scheduler_before_optimizer_warns_once():
    for lib in (dyntorch, reference):
        opt = lib.optim.SGD(lib.nn.Linear(1, 1).parameters(), lr=1.0)
        sched = lib.optim.lr_scheduler.StepLR(opt, 1)
        with pytest.warns(UserWarning, match=r"`lr_scheduler.step\(\)` before `optimizer.step"):
            sched.step()
    opt = dyntorch.optim.SGD(dyntorch.nn.Linear(1, 1).parameters(), lr=1.0)
    sched = dyntorch.optim.lr_scheduler.StepLR(opt, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()
        sched.step()
        sched.step()


def test_randint_high_and_size():
    """torch.randint(high, size) - the two-argument form - starts at 0."""
    r = dyntorch.randint(10, (3, 4))
    assert tuple(r.shape) == (3, 4) and r.dtype == dyntorch.int64
    assert bool(((r >= 0) & (r < 10)).all())
    assert tuple(dyntorch.randint(high=4, size=(2,)).shape) == (2,)


def test_no_kernel_crash_on_huge_alloc():
    """A huge allocation is a Python error, not a dead process."""
    with pytest.raises((MemoryError, RuntimeError, ValueError)):
        dyntorch.empty(10**7, 10**7)
    assert np.isfinite(dyntorch.ones(2).sum().item())


def test_compare_with_none_like_torch():
    """`if mask == None:` is a plain bool in torch, not an ambiguous tensor."""
    t = dyntorch.ones(2)
    assert (t == None) is False and (t != None) is True  # noqa: E711
    assert (reference.ones(2) == None) is False  # noqa: E711


# ----------------------------------------------------------------------------------------
# Further errors checked against torch: type and wording.

def test_cross_entropy_int_logits():
    with pytest.raises((RuntimeError, NotImplementedError), match="float"):
        dyntorch.nn.functional.cross_entropy(dyntorch.tensor([[1, 2], [3, 4]]),
                                             dyntorch.tensor([0, 1]))


def test_cross_entropy_float_index_target_mentions_long():
    with pytest.raises(RuntimeError, match=r"\.long\(\)"):
        dyntorch.nn.functional.cross_entropy(dyntorch.randn(3, 5),
                                             dyntorch.tensor([1.0, 2.0, 3.0]))


def test_nll_loss_multi_target_type():
    with pytest.raises(RuntimeError, match=r"\[3, 1\]"):
        dyntorch.nn.functional.nll_loss(dyntorch.randn(3, 5),
                                        dyntorch.tensor([[1], [2], [3]]))


def test_bce_with_logits_long_target():
    with pytest.raises(RuntimeError, match="int64|Long"):
        dyntorch.nn.functional.binary_cross_entropy_with_logits(
            dyntorch.randn(3), dyntorch.tensor([0, 1, 1]))


def test_max_pool_output_too_small():
    with pytest.raises(RuntimeError, match="too small"):
        dyntorch.nn.MaxPool2d(4)(dyntorch.ones(1, 1, 2, 2))


def test_einsum_message_names_operand():
    with pytest.raises(RuntimeError, match="operand 1"):
        dyntorch.einsum("ij,jk->ik", dyntorch.ones(2, 3), dyntorch.ones(4, 5))


def test_functional_cross_entropy_numpy_target():
    with pytest.raises(TypeError, match="Tensor"):
        dyntorch.nn.functional.cross_entropy(dyntorch.ones(2, 3), np.array([0, 1]))


def test_reduction_bad_dim_type_message():
    with pytest.raises(TypeError, match="sum"):
        dyntorch.ones(2).sum(dim="a")
    with pytest.raises(TypeError, match="max"):
        dyntorch.max(dyntorch.ones(2, 3), dim=[0, 1])


@pytest.mark.parametrize("call, name", [
    (lambda x: x.softmax(dim=[0, 1]), "softmax"),
    (lambda x: x.sort(dim=[0]), "sort"),
    (lambda x: x.topk(1, dim=[1]), "topk"),
    (lambda x: x.gather([0], dyntorch.zeros(2, 3, dtype=dyntorch.long)), "gather"),
    (lambda x: x.index_select([0], dyntorch.tensor([0])), "index_select"),
])
def test_single_dim_ops_refuse_a_list_of_dims(call, name):
    # torch: "<op>(): argument 'dim' must be int, not list" (a TypeError), never an
    # internal error from deeper down
    x = dyntorch.ones(2, 3)
    with pytest.raises(TypeError, match=rf"{name}\(\).*dim.*list"):
        call(x)


def test_add_string_message():
    """Operands torch refuses give Python's own 'unsupported operand' TypeError, and named
    methods say which argument is wrong."""
    for lib in (dyntorch, reference):
        with pytest.raises(TypeError, match=r"unsupported operand type\(s\) for \+: 'Tensor' "
                                            "and 'str'"):
            lib.ones(2) + "a"
        with pytest.raises(TypeError, match="unsupported operand"):
            None * lib.ones(2)
        with pytest.raises(TypeError, match=r"mul\(\): argument 'other'"):
            lib.ones(2).mul("a")


def test_T_on_3d_warns():
    with pytest.warns(UserWarning, match="deprecated"):
        dyntorch.ones(2, 3, 4).T


def test_T_still_reverses_and_is_quiet_below_3d():
    with pytest.warns(UserWarning, match="mT"):
        assert dyntorch.ones(2, 3, 4).T.shape == (4, 3, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for shape in ((), (3,), (2, 3)):
            x = dyntorch.ones(*shape)
            assert x.T.shape == tuple(reversed(shape))


@pytest.mark.parametrize("name", ["nll_loss", "cross_entropy"])
def test_unbatched_class_loss_targets_like_torch(name):
    x = np.linspace(-1.0, 1.0, 5)
    got = []
    for lib in (dyntorch, reference):
        fn = getattr(lib.nn.functional, name)
        xi = lib.tensor(x).log_softmax(0)
        got.append([float(fn(xi, lib.tensor(t))) for t in (1, [1])])
        with pytest.raises(ValueError, match="1D target must have size 1"):
            fn(xi, lib.tensor([1, 2]))
    np.testing.assert_allclose(got[0], got[1], rtol=1e-12)


def test_H_is_for_matrices_like_torch():
    for lib in (dyntorch, reference):
        assert lib.arange(6.0).reshape(2, 3).H.shape == (3, 2)
        for shape, hint in (((3,), "1-D"), ((2, 3, 4), "mH")):
            with pytest.raises(RuntimeError, match=rf"only supported on matrices.*{hint}"):
                lib.ones(*shape).H
        with pytest.warns(UserWarning, match="0-D"):
            assert lib.ones(()).H.shape == ()


def test_lstm_dropout_single_layer_warns():
    with pytest.warns(UserWarning, match="num_layers"):
        dyntorch.nn.LSTM(2, 2, num_layers=1, dropout=0.5)
