"""``repr`` of tensors in torch's style."""
from __future__ import annotations

import numpy as np

from . import _backend as B

_opts = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80, "sci_mode": None}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None) -> None:
    """Set how tensors print (``torch.set_printoptions``)."""
    if profile == "full":
        _opts.update(threshold=np.inf)
    for k, v in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                 ("linewidth", linewidth)):
        if v is not None:
            _opts[k] = v
    _opts["sci_mode"] = sci_mode


def _float_formatter(arr):
    finite = arr[np.isfinite(arr)]
    p = _opts["precision"]
    if finite.size == 0:
        return lambda x: _special(x) or f"{x:.{p}f}"
    ints = np.all(finite == np.round(finite))
    amax = np.abs(finite).max()
    nz = np.abs(finite[finite != 0])
    amin = nz.min() if nz.size else 0.0
    sci = _opts["sci_mode"]
    if sci is None:
        sci = amax >= 1e8 or (amin != 0 and amin < 1e-4) or (amin != 0 and amax / amin > 1e5
                                                              and not ints)
    if ints and not sci:
        return lambda x: _special(x) or f"{x:.0f}."
    if sci:
        return lambda x: _special(x) or f"{x:.{p}e}"
    return lambda x: _special(x) or f"{x:.{p}f}"


def _special(x):
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return None


def tensor_repr(t) -> str:
    arr = B.to_numpy(t._data)
    prefix = "tensor("
    kind = arr.dtype.kind
    if arr.size == 0:
        body = "[]" if arr.ndim == 1 else "[]"
    elif kind == "f":
        fmt = _float_formatter(arr.astype(np.float64))
        body = np.array2string(arr.astype(np.float64), separator=", ", prefix=prefix,
                               formatter={"float_kind": fmt},
                               threshold=_opts["threshold"], edgeitems=_opts["edgeitems"],
                               max_line_width=_opts["linewidth"])
    elif kind == "b":
        body = np.array2string(arr, separator=", ", prefix=prefix,
                               formatter={"bool": lambda x: "True" if x else "False"},
                               threshold=_opts["threshold"], edgeitems=_opts["edgeitems"],
                               max_line_width=_opts["linewidth"])
    else:
        body = np.array2string(arr, separator=", ", prefix=prefix,
                               threshold=_opts["threshold"], edgeitems=_opts["edgeitems"],
                               max_line_width=_opts["linewidth"])
    extras = []
    dev = t.device
    if dev.type != "cpu":
        extras.append(f"device='{dev}'")
    dt = B.from_np(arr.dtype)
    if arr.size == 0 and arr.ndim != 1:
        extras.append(f"size={tuple(arr.shape)}")
    if dt not in (B.get_default_dtype(), B.int64, B.bool_):
        extras.append(f"dtype={dt!r}")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t._rg:
        extras.append("requires_grad=True")
    tail = "".join(", " + e for e in extras)
    return f"{prefix}{body}{tail})"
