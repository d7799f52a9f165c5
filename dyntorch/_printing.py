"""``repr`` of tensors in torch's layout.

One formatter per tensor picks the style from the finite non-zero values (integers shown as
``1.``, fixed point with ``precision`` digits, or scientific when the range is wide) and one
width that every element is right-aligned to; rows wrap at ``linewidth`` and large tensors
are summarised with ``...`` around ``edgeitems`` at each end.
"""
from __future__ import annotations

import math

import numpy as np

from . import _backend as B

_opts = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80, "sci_mode": None}
_DEFAULTS = dict(_opts)


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None) -> None:
    """Set how tensors print (``torch.set_printoptions``)."""
    if profile is not None:
        presets = {"default": dict(_DEFAULTS), "short": dict(_DEFAULTS, precision=2),
                   "full": dict(_DEFAULTS, threshold=math.inf)}
        if profile not in presets:
            raise ValueError(f"set_printoptions(): unknown profile '{profile}'")
        _opts.update(presets[profile])
    for k, v in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                 ("linewidth", linewidth)):
        if v is not None:
            _opts[k] = v
    _opts["sci_mode"] = sci_mode


def get_printoptions() -> dict:
    return dict(_opts)


class _Formatter:
    """Formats every element of one tensor to the same width."""

    __slots__ = ("floating", "int_mode", "sci", "width", "p")

    def __init__(self, arr: np.ndarray):
        self.floating = (arr.dtype.kind == "f" or B.is_float_np(arr.dtype))
        self.int_mode = True
        self.sci = False
        self.width = 1
        self.p = _opts["precision"]
        flat = arr.reshape(-1)
        if not self.floating:
            if flat.size:
                if arr.dtype.kind == "b":
                    self.width = 5 if not flat.all() else 4
                else:
                    self.width = max(len(str(flat.max())), len(str(flat.min())))
            return
        vals = flat.astype(np.float64)
        vals = vals[np.isfinite(vals) & (vals != 0)]
        if vals.size:
            absv = np.abs(vals)
            lo, hi = absv.min(), absv.max()
            self.int_mode = bool(np.all(vals == np.ceil(vals)))
            wide = hi / lo > 1000.0 or hi > 1.0e8
            if not self.int_mode:
                wide = wide or lo < 1.0e-4
            self.sci = bool(wide)
            self.width = max(len(self._fmt(v)) for v in self._extremes(vals))
        if _opts["sci_mode"] is not None:
            self.sci = bool(_opts["sci_mode"])

    @staticmethod
    def _extremes(vals):
        # the widest strings come from the largest magnitudes and the negative values; a few
        # candidates are enough, so huge tensors don't format every element twice
        if vals.size <= 64:
            return vals.tolist()
        order = np.argsort(np.abs(vals))
        cand = np.concatenate([vals[order[-8:]], vals[order[:8]], np.sort(vals)[:8]])
        return cand.tolist()

    def _fmt(self, v) -> str:
        if self.sci:
            return f"{v:.{self.p}e}"
        if self.int_mode:
            s = f"{v:.0f}"
            return s if (math.isinf(v) or math.isnan(v)) else s + "."
        return f"{v:.{self.p}f}"

    def format(self, v) -> str:
        if self.floating:
            s = self._fmt(float(v))
        elif isinstance(v, (bool, np.bool_)):
            s = "True" if v else "False"
        else:
            s = str(v)
        return s.rjust(self.width)


def _summarised(arr: np.ndarray, edge: int) -> np.ndarray:
    """The elements that will be shown (for choosing the format)."""
    if arr.ndim == 0:
        return arr
    if arr.shape[0] > 2 * edge:
        idx = list(range(edge)) + list(range(arr.shape[0] - edge, arr.shape[0]))
        arr = arr[idx]
    if arr.ndim == 1:
        return arr
    return np.stack([_summarised(a, edge) for a in arr]) if len(arr) else arr


def _vector(arr, indent, summarize, fmt) -> str:
    per_line = max(1, int(math.floor((_opts["linewidth"] - indent) / (fmt.width + 2))))
    edge = _opts["edgeitems"]
    n = arr.shape[0]
    if summarize and n > 2 * edge:
        items = [fmt.format(v) for v in arr[:edge].tolist()] + [" ..."] + \
                [fmt.format(v) for v in arr[n - edge:].tolist()]
    else:
        items = [fmt.format(v) for v in arr.tolist()]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _body(arr, indent, summarize, fmt) -> str:
    if arr.ndim == 0:
        return fmt.format(arr.item())
    if arr.ndim == 1:
        return _vector(arr, indent, summarize, fmt)
    edge = _opts["edgeitems"]
    n = arr.shape[0]
    if summarize and n > 2 * edge:
        parts = [_body(arr[i], indent + 1, summarize, fmt) for i in range(edge)] + ["..."] + \
                [_body(arr[i], indent + 1, summarize, fmt) for i in range(n - edge, n)]
    else:
        parts = [_body(arr[i], indent + 1, summarize, fmt) for i in range(n)]
    sep = "," + "\n" * (arr.ndim - 1) + " " * (indent + 1)
    return "[" + sep.join(parts) + "]"


def format_array(arr: np.ndarray, indent: int) -> str:
    """The bracketed body of a tensor's repr (without the ``tensor(`` prefix)."""
    if arr.size == 0:
        return "[]"
    summarize = arr.size > _opts["threshold"]
    shown = _summarised(arr, _opts["edgeitems"]) if summarize else arr
    return _body(arr, indent, summarize, _Formatter(shown))


def _add_suffixes(text: str, suffixes, indent: int) -> str:
    out = [text]
    last = len(text) - text.rfind("\n") + 1
    for s in suffixes:
        if last + len(s) + 2 > _opts["linewidth"]:
            out.append(",\n" + " " * indent + s)
            last = indent + len(s)
        else:
            out.append(", " + s)
            last += len(s) + 2
    out.append(")")
    return "".join(out)


def tensor_repr(t, prefix: str = "tensor(") -> str:
    arr = B.to_numpy(t._data)
    indent = len(prefix)
    dt = B.from_np(arr.dtype)
    suffixes = []
    dev = t.device
    if dev.type != "cpu":
        suffixes.append(f"device='{dev}'")
    if arr.size == 0:
        if arr.ndim != 1:
            suffixes.append(f"size={tuple(arr.shape)}")
        if dt is not B.get_default_dtype():
            suffixes.append(f"dtype={dt!r}")
    elif dt not in (B.get_default_dtype(), B.int64, B.bool_):
        suffixes.append(f"dtype={dt!r}")
    body = format_array(arr, indent)
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t._requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + body, suffixes, indent)
