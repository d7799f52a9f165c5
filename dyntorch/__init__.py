"""dyntorch: an eager tensor library with autograd, built to be watched and stepped through.

``import dyntorch as torch`` runs ordinary PyTorch code for the common subset.
"""
from __future__ import annotations

__version__ = "0.1.0"

import warnings as _warnings

# Like torch, ops give nan/inf silently (log(-1), 1/0); NumPy would warn from inside our ops.
_warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"dyntorch(\.|$)")

from . import _backend
from . import ops as _ops
from ._backend import (
    Generator,
    bfloat16,
    device,
    dtype,
    float16,
    float32,
    float64,
    get_default_dtype,
    int8,
    int16,
    int32,
    int64,
    set_default_dtype,
    uint8,
)
from ._backend import (
    bool_ as bool,
)
from ._compat import (
    BoolTensor,
    ByteTensor,
    CharTensor,
    DoubleTensor,
    FloatTensor,
    HalfTensor,
    IntTensor,
    LongTensor,
    ShortTensor,
    are_deterministic_algorithms_enabled,
    compile,
    get_num_interop_threads,
    get_num_threads,
    is_deterministic_algorithms_warn_only_enabled,
    set_num_interop_threads,
    set_num_threads,
    use_deterministic_algorithms,
)
from ._dtype_info import finfo, iinfo
from ._printing import set_printoptions
from ._tensor import Size, Tensor
from .ops.creation import (
    arange,
    as_tensor,
    asarray,
    bernoulli,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    get_rng_state,
    initial_seed,
    linspace,
    logspace,
    manual_seed,
    multinomial,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    seed,
    set_rng_state,
    tensor,
    zeros,
    zeros_like,
)
from .ops.inplace import addcdiv, addcmul

for _fam in _ops.FAMILIES:
    globals().update(getattr(_fam, "PUBLIC", {}))
del _fam

from . import autograd, cuda
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled

half, float, double = float16, float32, float64
short, int, long = int16, int32, int64
cfloat = None
default_generator = _backend.default_generator
strided = "strided"
contiguous_format = preserve_format = channels_last = "memory_format"


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def is_floating_point(input: Tensor) -> bool:
    return input.is_floating_point()


def numel(input: Tensor) -> int:
    return input.numel()


def result_type(tensor, other) -> dtype:  # noqa: F811  (torch names it `tensor`)
    return _backend.result_type(tensor, other)


def promote_types(type1: dtype, type2: dtype) -> dtype:
    """The smallest dtype both ``type1`` and ``type2`` convert to (``torch.promote_types``)."""
    return _backend.promote_types(type1, type2)


def can_cast(from_: dtype, to: dtype) -> bool:
    return from_.category <= to.category


def clone(input: Tensor, *, memory_format=None) -> Tensor:
    return input.clone(memory_format=memory_format)


def detach(input: Tensor) -> Tensor:
    return input.detach()


def __getattr__(name):
    # Heavy or optional sub-packages load on first use, to keep `import dyntorch` fast.
    import importlib

    if name in ("nn", "optim", "utils", "debug", "viz", "jit", "onnx", "train", "linalg",
                "special", "distributions", "testing", "fft", "backends", "amp", "distributed",
                "serialization", "accelerator", "sparse", "multiprocessing"):
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            # AttributeError, so hasattr(torch, "fft")-style feature probes answer False
            raise AttributeError(f"module 'dyntorch' has no attribute '{name}': torch.{name} "
                                 "is not implemented in dyntorch yet") from None
        globals()[name] = mod
        return mod
    if name in ("save", "load"):
        from .serialization import load, save

        globals().update(save=save, load=load)
        return globals()[name]
    if name == "autocast":
        from .amp import autocast

        globals()["autocast"] = autocast
        return autocast
    raise AttributeError(f"module 'dyntorch' has no attribute '{name}'")
