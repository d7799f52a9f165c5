"""Kernels for fused elementwise chains.

CPU: one generated Python function that runs the chain with NumPy ufuncs, writing each step
into the buffer of a temporary that dies there (``out=``), so a chain of n ops allocates one
array instead of n. Steps without a ufunc spelling call their op's forward.

GPU: one ``cupy.ElementwiseKernel`` whose body is the chain spelled in CUDA C; it reads each
input once and writes the output once. A chain with a step that has no C spelling (or an
integer dtype) runs step by step with CuPy instead.
"""
from __future__ import annotations

import numpy as np

from ._ir import Local, Ref, iter_locals

# op name -> (ufunc name, number of array operands) for the CPU in-place path.
_UFUNC = {
    "add": ("add", 2), "sub": ("subtract", 2), "mul": ("multiply", 2),
    "div": ("true_divide", 2), "neg": ("negative", 1), "exp": ("exp", 1),
    "exp2": ("exp2", 1), "log": ("log", 1), "log2": ("log2", 1), "log10": ("log10", 1),
    "log1p": ("log1p", 1), "expm1": ("expm1", 1), "sqrt": ("sqrt", 1),
    "square": ("square", 1), "abs": ("absolute", 1), "sign": ("sign", 1), "sin": ("sin", 1),
    "cos": ("cos", 1), "tan": ("tan", 1), "asin": ("arcsin", 1), "acos": ("arccos", 1),
    "atan": ("arctan", 1), "sinh": ("sinh", 1), "cosh": ("cosh", 1), "tanh": ("tanh", 1),
    "maximum": ("maximum", 2), "minimum": ("minimum", 2), "pow_tensor": ("power", 2),
}

# op name -> CUDA C expression over operands a, b (and attrs by name) for the GPU kernel.
_CEXPR = {
    "add": "({a} + {b})", "sub": "({a} - {b})", "mul": "({a} * {b})", "div": "({a} / {b})",
    "neg": "(-{a})", "exp": "exp({a})", "exp2": "exp2({a})", "log": "log({a})",
    "log2": "log2({a})", "log10": "log10({a})", "log1p": "log1p({a})", "expm1": "expm1({a})",
    "sqrt": "sqrt({a})", "rsqrt": "rsqrt({a})", "square": "({a} * {a})",
    "reciprocal": "((T)1 / {a})", "abs": "fabs({a})", "sin": "sin({a})", "cos": "cos({a})",
    "tan": "tan({a})", "asin": "asin({a})", "acos": "acos({a})", "atan": "atan({a})",
    "sinh": "sinh({a})", "cosh": "cosh({a})", "tanh": "tanh({a})",
    "sigmoid": "((T)1 / ((T)1 + exp(-{a})))", "relu": "max({a}, (T)0)", "erf": "erf({a})",
    "maximum": "max({a}, {b})", "minimum": "min({a}, {b})", "pow": "pow({a}, (T){exponent})",
    "pow_tensor": "pow({a}, {b})", "silu": "({a} / ((T)1 + exp(-{a})))",
    "sign": "(T)(({a} > (T)0) - ({a} < (T)0))",
}
_CTYPE = {"float32": "float", "float64": "double"}


# ----------------------------------------------------------------------------- CPU
def cpu_source(steps, n_in: int, out_shape, out_dtype) -> tuple[str, dict]:
    """Python source of the fused CPU function and the globals it needs."""
    lines = [f"def fused(xp, {', '.join(f'i{k}' for k in range(n_in))}):"]
    env: dict = {}
    last_use: dict = {}
    for j, (_op, args, _attrs, _shape, _dtype) in enumerate(steps):
        for a in iter_locals(args):
            if a.kind == "step":
                last_use[a.k] = j
    owned: set = set()  # steps whose result is a buffer this function allocated
    for j, (op, args, attrs, shape, dtype) in enumerate(steps):
        env[f"a{j}"] = attrs

        def name(a, j=j):
            if isinstance(a, Local):
                return f"i{a.k}" if a.kind == "in" else f"t{a.k}"
            key = f"c{j}_{len(env)}"
            env[key] = a
            return key

        uf = ("maximum", 1) if op == "relu" else _UFUNC.get(op)
        if uf is not None and not attrs and len(args) == uf[1]:
            operands = [name(a) for a in args] + (["0"] if op == "relu" else [])
            dst = None
            for a in iter_locals(args):
                if (a.kind == "step" and a.k in owned and last_use.get(a.k) == j
                        and tuple(steps[a.k][3]) == tuple(shape) and steps[a.k][4] == dtype):
                    dst = f"t{a.k}"
                    break
            if dst is not None:
                lines.append(f"    t{j} = xp.{uf[0]}({', '.join(operands)}, out={dst})")
            else:
                lines.append(f"    t{j} = xp.{uf[0]}({', '.join(operands)})")
        else:
            env[f"f{j}"] = _forward(op)
            lines.append(f"    t{j} = f{j}(xp, {', '.join(name(a) for a in args)}, **a{j})"
                         if args else f"    t{j} = f{j}(xp, **a{j})")
        if len(shape):  # 0-d ufunc results are NumPy scalars: no buffer to write into
            owned.add(j)
    lines.append(f"    return t{len(steps) - 1}")
    return "\n".join(lines) + "\n", env


def _forward(name):
    from ._run import resolve_op

    return resolve_op(name).forward


def _compile_cpu(steps, n_in, shape, dtype):
    src, env = cpu_source(steps, n_in, shape, dtype)
    glb = dict(env)
    exec(compile(src, "<dyntorch.jit fused>", "exec"), glb)  # noqa: S102 - generated code
    fn = glb["fused"]
    fn.__source__ = src
    return fn


# ----------------------------------------------------------------------------- GPU
def cuda_source(steps, in_dtypes, out_dtype):
    """(in_params, out_params, body) of a ``cupy.ElementwiseKernel``, or None when some step
    has no CUDA spelling."""
    ct = _CTYPE.get(out_dtype)
    if ct is None or any(_CTYPE.get(d) is None for d in in_dtypes):
        return None
    body = []
    for j, (op, args, attrs, _shape, dtype) in enumerate(steps):
        tmpl = _CEXPR.get(op)
        if tmpl is None or _CTYPE.get(dtype) != ct:
            return None
        ops = []
        for a in args:
            if isinstance(a, Local):
                ops.append(f"in{a.k}" if a.kind == "in" else f"t{a.k}")
            elif isinstance(a, (bool, int, float)):
                ops.append(f"(({ct}){float(a)!r})")
            else:
                return None
        fields = {"a": ops[0] if ops else "", "b": ops[1] if len(ops) > 1 else ""}
        for k, v in attrs.items():
            if not isinstance(v, (int, float)):
                return None
            fields[k] = repr(float(v))
        expr = tmpl.replace("(T)", f"({ct})").format(**fields)
        body.append(f"{ct} t{j} = {expr};")
    body.append(f"out0 = t{len(steps) - 1};")
    in_params = ", ".join(f"{_CTYPE[d]} in{k}" for k, d in enumerate(in_dtypes))
    return in_params, f"{ct} out0", " ".join(body)


_KERNELS: dict = {}


def _cuda_kernel(steps, in_dtypes, out_dtype):
    src = cuda_source(steps, in_dtypes, out_dtype)
    if src is None:
        return None
    k = _KERNELS.get(src)
    if k is None:
        import cupy

        k = _KERNELS[src] = cupy.ElementwiseKernel(*src, "dyntorch_fused")
    return k


def _stepwise(steps):
    """Run the chain op by op (any device): the fallback when no kernel can be built."""
    fwds = [_forward(s[0]) for s in steps]

    def run(xp, *ins):
        res = []

        def val(a):
            if isinstance(a, Local):
                return ins[a.k] if a.kind == "in" else res[a.k]
            if isinstance(a, tuple):
                return tuple(val(x) for x in a)
            return a

        for f, (_op, args, attrs, _s, _d) in zip(fwds, steps):
            res.append(f(xp, *(val(a) for a in args), **attrs))
        return res[-1]

    return run


def build_fused(node, graph):
    """The callable ``fn(xp, *arrays)`` for a fused node."""
    steps = node.steps
    out = graph.values[node.outs[0]]
    cpu = _compile_cpu(steps, len(node.args), out.shape, out.dtype)
    in_dtypes = [graph.values[r.i].dtype for r in node.args if isinstance(r, Ref)]
    gpu_cache: list = []

    def fused(xp, *ins):
        if xp is np:
            return cpu(xp, *ins)
        if not gpu_cache:  # first GPU call: build the kernel (or fall back)
            k = _cuda_kernel(steps, in_dtypes, out.dtype)
            gpu_cache.append((lambda _xp, *a: k(*a)) if k is not None else _stepwise(steps))
        try:
            return gpu_cache[0](xp, *ins)
        except TypeError:  # the kernel's declared types do not fit these inputs: op by op
            gpu_cache[0] = _stepwise(steps)
            return gpu_cache[0](xp, *ins)

    fused.cpu = cpu
    fused.steps = steps
    return fused
