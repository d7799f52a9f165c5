"""int8 models for on-device inference through onnxruntime's quantization tools.

Two paths, both writing a new ``.onnx`` file that onnxruntime (including onnxruntime-mobile and
onnxruntime-web) runs:

- :func:`quantize_dynamic`: weights to int8 ahead of time, activations quantized on the fly.
  No data needed; best for Linear/LSTM-heavy models.
- :func:`quantize_static`: weights and activations to int8 with scales measured on a few
  calibration batches (QDQ format); the usual choice for CNNs.

These wrap ``onnxruntime.quantization`` (installed with onnxruntime); see docs/deployment.md.
"""
from __future__ import annotations

import os

import numpy as np


def _ort_q():
    try:
        from onnxruntime import quantization as q
    except ImportError as e:  # pragma: no cover - onnxruntime is a declared dependency
        raise ImportError("int8 quantization needs onnxruntime (pip install onnxruntime)") from e
    return q


def _preprocess(src: str, dst: str) -> str:
    """onnxruntime's recommended pre-pass (shape inference + graph optimisation)."""
    q = _ort_q()
    try:
        q.shape_inference.quant_pre_process(src, dst, skip_symbolic_shape=True)
        return dst
    except Exception:  # the pre-pass is an optimisation; quantize the original if it fails
        return src


def quantize_dynamic(model_path, out_path, per_channel: bool = False,
                     op_types=None) -> str:
    """Write an int8-weight copy of ``model_path`` to ``out_path`` (returns ``out_path``)."""
    q = _ort_q()
    src, out = os.fspath(model_path), os.fspath(out_path)
    pre = _preprocess(src, out + ".pre.onnx")
    try:
        q.quantize_dynamic(pre, out, weight_type=q.QuantType.QInt8, per_channel=per_channel,
                           op_types_to_quantize=op_types)
    finally:
        if pre != src and os.path.exists(pre):
            os.remove(pre)
    return out


class _Reader:
    """A CalibrationDataReader over a list of input dicts."""

    def __init__(self, batches):
        self._it = iter(batches)

    def get_next(self):
        return next(self._it, None)

    def rewind(self):  # pragma: no cover - used by some calibration methods
        pass


def quantize_static(model_path, out_path, calibration, input_name: str | None = None,
                    per_channel: bool = True) -> str:
    """Write an int8 (QDQ) copy of ``model_path`` calibrated on ``calibration``.

    ``calibration``: an iterable of arrays (fed to the single input, or ``input_name``) or of
    ``{input name: array}`` dicts; a few hundred samples are enough.
    """
    q = _ort_q()
    import onnx

    src, out = os.fspath(model_path), os.fspath(out_path)
    if input_name is None:
        input_name = onnx.load(src).graph.input[0].name
    batches = [c if isinstance(c, dict) else {input_name: np.ascontiguousarray(
        np.asarray(c, dtype=np.float32))} for c in calibration]
    pre = _preprocess(src, out + ".pre.onnx")
    try:
        q.quantize_static(pre, out, _Reader(batches), quant_format=q.QuantFormat.QDQ,
                          per_channel=per_channel, activation_type=q.QuantType.QInt8,
                          weight_type=q.QuantType.QInt8)
    finally:
        if pre != src and os.path.exists(pre):
            os.remove(pre)
    return out
