"""Export a dyntorch model to ONNX so onnxruntime (server, mobile, browser) can run it.

``export`` traces the model with :func:`dyntorch.jit.trace`, folds parameter-only computations
into initializers and spells every recorded op in ONNX (``_ops.py``); LSTM/GRU modules become
single ONNX ``LSTM``/``GRU`` nodes (``_rnn.py``). The model is checked with
``onnx.checker.check_model`` before it is written.

Example
-------
>>> dyntorch.onnx.export(model, torch.randn(1, 1, 8, 8), "digits.onnx",
...                      input_names=["x"], output_names=["logits"],
...                      dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
"""
from __future__ import annotations

import os

from ._context import ExportContext, UnsupportedOperatorError, onnx_dtype

DEFAULT_OPSET = 17
__all__ = ["export", "UnsupportedOperatorError", "DEFAULT_OPSET", "is_supported"]


def is_supported(op_name: str) -> bool:
    """Whether a registered op name has an ONNX converter."""
    from ._ops import CONVERTERS

    return op_name in CONVERTERS


def _norm_axes(dynamic_axes) -> dict:
    out: dict = {}
    for name, axes in (dynamic_axes or {}).items():
        if isinstance(axes, dict):
            out[name] = {int(k): str(v) for k, v in axes.items()}
        else:
            out[name] = {int(k): f"{name}_dynamic_axes_{int(k) + 1}" for k in axes}
    return out


def export(model, args, f, input_names=None, output_names=None, dynamic_axes=None,
           opset_version: int | None = None, do_constant_folding: bool = True,
           export_params: bool = True, verbose: bool = False, **_ignored):
    """Write ``model`` (an ``nn.Module`` or a function of tensors) as an ONNX model.

    Parameters
    ----------
    model : Module or callable
        Traced in eval mode (its mode is restored afterwards).
    args : Tensor or tuple of Tensors
        Example inputs.
    f : str, path or binary file object
        Where the ``.onnx`` file goes.
    input_names, output_names : list of str, optional
        Graph input/output names (default: the forward's argument names, ``output<k>``).
    dynamic_axes : dict, optional
        ``{name: {axis: "symbol"}}`` or ``{name: [axis, ...]}`` for inputs and outputs whose
        sizes may change (a batch dim, say). Reshapes are written so that they follow.
    opset_version : int, optional
        ONNX opset (default 17, the first with LayerNormalization; at least 13).

    Returns
    -------
    onnx.ModelProto
        The checked model (also written to ``f``).

    Raises
    ------
    UnsupportedOperatorError
        When an op of the traced graph has no ONNX spelling; the message names the op and the
        module scope it ran in.
    """
    import onnx
    from onnx import helper

    from .. import jit
    from ..jit._passes import compact, dce, fold_constants
    from . import _ops_nn  # noqa: F401  (registers the layer converters)
    from ._ops import CONVERTERS
    from ._rnn import RnnCapture

    if not export_params:
        raise ValueError("onnx.export(): export_params=False (weights as graph inputs) is not "
                         "supported; the parameters are always stored as initializers")
    opset = int(opset_version or DEFAULT_OPSET)
    if opset < 13:
        raise ValueError(f"onnx.export(): opset_version {opset} is not supported; use 13 or "
                         f"newer (default {DEFAULT_OPSET}).")
    if not isinstance(args, tuple):
        args = (args,) if not isinstance(args, list) else tuple(args)
    was_training = getattr(model, "training", None)
    if was_training:
        model.eval()
    rnn = RnnCapture(model)
    try:
        g, _tracer, _out, _label = jit.record(model, args, on_tracer=rnn.attach)
    finally:
        rnn.detach()
        if was_training:
            model.train()
    g = rnn.collapse(g)
    # with dynamic axes, a broadcast of a constant may have to follow the batch at run time
    keep = ("expand", "repeat") if dynamic_axes else ("expand",)
    g = compact(fold_constants(dce(g), keep=keep) if do_constant_folding else dce(g))

    ctx = ExportContext(g, opset)
    ctx.used = {i for n in g.nodes for i in n.refs()} | {r.i for r in g.output_refs()}
    axes = _norm_axes(dynamic_axes)
    in_names = list(input_names or [g.values[i].name for i in g.inputs])
    if len(in_names) != len(g.inputs):
        raise ValueError(f"onnx.export(): {len(in_names)} input_names for {len(g.inputs)} "
                         "inputs")
    out_refs = g.output_refs()
    out_names = list(output_names or [f"output{k}" for k in range(len(out_refs))])
    if len(out_names) != len(out_refs):
        raise ValueError(f"onnx.export(): {len(out_names)} output_names for {len(out_refs)} "
                         "outputs")
    unknown = set(axes) - set(in_names) - set(out_names)
    if unknown:
        raise ValueError(f"onnx.export(): dynamic_axes names {sorted(unknown)} are neither "
                         f"inputs {in_names} nor outputs {out_names}")

    def vinfo(name, v, dims_sym):
        shape = [dims_sym.get(d, s) for d, s in enumerate(v.shape)]
        return helper.make_tensor_value_info(name, onnx_dtype(v.dtype), shape)

    inputs = []
    for i, nm in zip(g.inputs, in_names):
        ctx.names[i] = nm
        sym = axes.get(nm, {})
        ctx.dyn[i] = set(sym)
        ctx.bases.update(g.values[i].shape[d] for d in sym)
        for d in sym:
            ctx.axis_sources.setdefault(g.values[i].shape[d], (nm, d))
        inputs.append(vinfo(nm, g.values[i], sym))
    used = set(in_names) | set(out_names)
    for i, arr in g.consts.items():
        from onnx import numpy_helper

        from .. import _backend as B

        nm = g.values[i].name
        if nm in used or not nm:
            nm = f"{nm}_{i}"
        used.add(nm)
        ctx.names[i] = nm
        data = B.to_numpy(arr)
        ctx.inits.append(numpy_helper.from_array(data.copy(), nm))
    for node in g.nodes:
        ctx.node = node
        conv = CONVERTERS.get(node.op)
        if conv is None:
            raise ctx.unsupported("no ONNX converter is registered for it")
        outs = conv(ctx, node)
        for k, (o, nm) in enumerate(zip(node.outs, outs)):
            ctx.names[o] = nm
            if o not in ctx.dyn:
                ctx.dyn[o] = _broadcast_dyn(ctx, node, k)
    outputs = []
    for r, nm in zip(out_refs, out_names):
        ctx.nodes.append(helper.make_node("Identity", [ctx.names[r.i]], [nm],
                                          name=ctx.fresh("n_out")))
        sym = dict(axes.get(nm, {}))
        for d in ctx.dyn.get(r.i, ()):
            sym.setdefault(d, f"{nm}_dim{d}")
        outputs.append(vinfo(nm, g.values[r.i], sym))
    graph = helper.make_graph(ctx.nodes, getattr(model, "__class__", type(model)).__name__,
                              inputs, outputs, initializer=ctx.inits)
    m = helper.make_model(graph, producer_name="dyntorch",
                          opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = min(m.ir_version, 10)  # readable by current onnxruntime releases
    onnx.checker.check_model(m)
    if verbose:
        print(helper.printable_graph(m.graph))
    if isinstance(f, (str, os.PathLike)):
        onnx.save(m, os.fspath(f))
    else:
        f.write(m.SerializeToString())
    return m


def _broadcast_dyn(ctx: ExportContext, node, k: int) -> set:
    """Default rule: an output dim is dynamic when a (right-aligned) input dim of the same
    size is."""
    from ..jit._ir import iter_refs

    osh = ctx.g.values[node.outs[k]].shape
    dyn = set()
    for r in iter_refs(node.args):
        ish = ctx.g.values[r.i].shape
        lead = len(osh) - len(ish)
        for d in ctx.dyn.get(r.i, ()):
            j = d + lead
            if 0 <= j < len(osh) and osh[j] == ish[d]:
                dyn.add(j)
    return dyn
