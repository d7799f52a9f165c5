"""Fused CuPy elementwise kernels for the optimizer updates on the GPU.

One kernel launch per parameter updates the parameter and its state together, reading each
array once. Built lazily on first use, so importing the optimizers never needs CuPy.
"""
from __future__ import annotations

_KERNELS: dict[str, object] = {}


def _kernel(name: str, in_params: str, out_params: str, body: str):
    k = _KERNELS.get(name)
    if k is None:
        import cupy

        k = cupy.ElementwiseKernel(in_params, out_params, body, f"dyntorch_{name}")
        _KERNELS[name] = k
    return k


def sgd_cuda(p, g, buf, *, lr, momentum, dampening, weight_decay, nesterov, maximize,
             first) -> None:
    """``p`` (and ``buf`` when momentum is on) updated in place in one pass."""
    sign = -1.0 if maximize else 1.0
    if buf is None:
        k = _kernel("sgd_plain", "T g, float64 lr, float64 wd, float64 sign", "T p",
                    "T d = sign * g + (T)wd * p; p = p - (T)lr * d;")
        k(g, lr, weight_decay, sign, p)
        return
    k = _kernel(
        "sgd_momentum",
        "T g, float64 lr, float64 wd, float64 mom, float64 damp, float64 sign, int32 nest, "
        "int32 first",
        "T p, T buf",
        """
        T d = sign * g + (T)wd * p;
        T b = first ? d : (T)mom * buf + (T)(1.0 - damp) * d;
        buf = b;
        T upd = nest ? d + (T)mom * b : b;
        p = p - (T)lr * upd;
        """)
    k(g, lr, weight_decay, momentum, dampening, sign, int(nesterov), int(first), p, buf)


def adam_cuda(p, g, m, v, vmax, *, lr, beta1, beta2, eps, weight_decay, decoupled, maximize,
              bc1, bc2_sqrt) -> None:
    """One Adam/AdamW step for one parameter: ``p, m, v`` (and ``vmax``) in place."""
    sign = -1.0 if maximize else 1.0
    step_size = lr / bc1
    decay = (1.0 - lr * weight_decay) if decoupled else 1.0
    coupled_wd = 0.0 if decoupled else weight_decay
    common = """
        T gg = sign * g + (T)cwd * p;
        T pp = p * (T)decay;
        T mm = m + (T)(1.0 - b1) * (gg - m);
        T vv = (T)b2 * v + (T)(1.0 - b2) * gg * gg;
        m = mm; v = vv;
    """
    ins = ("T g, float64 sign, float64 cwd, float64 decay, float64 b1, float64 b2, "
           "float64 step_size, float64 bc2s, float64 eps")
    if vmax is None:
        k = _kernel("adam", ins, "T p, T m, T v", common + """
            p = pp - (T)step_size * mm / (sqrt(vv) / (T)bc2s + (T)eps);
        """)
        k(g, sign, coupled_wd, decay, beta1, beta2, step_size, bc2_sqrt, eps, p, m, v)
    else:
        k = _kernel("adam_amsgrad", ins, "T p, T m, T v, T vmax", common + """
            T vm = vmax > vv ? vmax : vv;
            vmax = vm;
            p = pp - (T)step_size * mm / (sqrt(vm) / (T)bc2s + (T)eps);
        """)
        k(g, sign, coupled_wd, decay, beta1, beta2, step_size, bc2_sqrt, eps, p, m, v, vmax)
