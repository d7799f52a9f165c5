"""Inference speed: eager dyntorch vs traced graph vs traced + passes (constant folding,
elementwise fusion) vs onnxruntime, and the int8 path on the digits CNN (size, accuracy).

Run: `.venv/bin/python benchmarks/bench_jit.py` (add `--no-quant` to skip the training part).
Times are the median over interleaved rounds of the CPU time per call in milliseconds
(process time, one thread for BLAS and onnxruntime; NumPy backend), never a best round alone.
"""
from __future__ import annotations

import os

# One thread everywhere (BLAS and onnxruntime): CPU-time figures are then comparable on a
# shared machine, where idle BLAS threads spinning would otherwise be counted.
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import timeit  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import dyntorch as dt  # noqa: E402  (this checkout's, not an installed one)
import dyntorch.nn as nn  # noqa: E402
import dyntorch.nn.functional as F  # noqa: E402
from dyntorch import jit  # noqa: E402
from dyntorch import onnx as donnx  # noqa: E402


def ort_session(path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def compare(fns: list, number: int, rounds: int = 7) -> list:
    """Median CPU ms per call of each fn over rounds (process time, all threads), the fns
    interleaved round by round. CPU time rather than wall time because the benchmark machine
    is shared: wall time there mostly measures the other processes."""
    for f in fns:
        f()
    out: list = [[] for _ in fns]
    for _ in range(rounds):
        for k, f in enumerate(fns):
            t = timeit.Timer(f, timer=time.process_time).timeit(number=number)
            out[k].append(t / number * 1e3)
    return [statistics.median(ts) for ts in out]


def gelu_chain(x):
    """tanh-GELU spelled with primitive elementwise ops (what fusion is for)."""
    return 0.5 * x * (1.0 + dt.tanh(0.7978845608 * (x + 0.044715 * x * x * x)))


class Chain(nn.Module):
    def forward(self, x):
        return gelu_chain(x)


def cases():
    dt.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                        nn.Linear(256, 10)).eval()
    cnn = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(512, 128), nn.ReLU(),
                        nn.Linear(128, 10)).eval()
    enc = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True).eval()
    lstm = nn.LSTM(32, 64, batch_first=True).eval()
    return [
        ("elementwise chain (gelu-tanh, 1M)", Chain().eval(), dt.randn(1000, 1000), 5),
        ("elementwise chain (gelu-tanh, 4k)", Chain().eval(), dt.randn(64, 64), 500),
        ("MLP 784-512-256-10, batch 64", mlp, dt.randn(64, 784), 50),
        ("digits CNN, batch 64", cnn, dt.randn(64, 1, 8, 8), 20),
        ("TransformerEncoderLayer d64, 16x32", enc, dt.randn(16, 32, 64), 10),
        ("LSTM 32->64, batch 16, seq 20", _First(lstm).eval(), dt.randn(16, 20, 32), 10),
    ]


class _First(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x)[0]


def speed() -> None:

    print(f"{'model':38s} {'eager':>9s} {'no_grad':>9s} {'traced':>9s} {'+fold':>9s} "
          f"{'+fuse':>9s} {'ort':>9s}   speed-up traced+passes vs eager no_grad")
    tmp = tempfile.mkdtemp()
    for name, model, x, n in cases():
        traced = jit.trace(model, x)
        folded = jit.optimize_for_inference(traced, fuse=False)
        fused = jit.optimize_for_inference(traced)
        for got in (traced(x), folded(x), fused(x)):
            np.testing.assert_allclose(got.numpy(), model(x).detach().numpy(), rtol=1e-4,
                                       atol=1e-4)
        def ng(m=model, x=x):
            with dt.no_grad():
                return m(x)

        p = os.path.join(tmp, "m.onnx")
        donnx.export(model, x, p)
        sess = ort_session(p)
        feed = {sess.get_inputs()[0].name: x.numpy()}
        t_eager, t_ng, t_tr, t_fo, t_fu, t_ort = compare(
            [lambda: model(x), ng, lambda: traced(x), lambda: folded(x),  # noqa: B023
             lambda: fused(x), lambda: sess.run(None, feed)], n)  # noqa: B023
        print(f"{name:38s} {t_eager:8.3f}m {t_ng:8.3f}m {t_tr:8.3f}m {t_fo:8.3f}m "
              f"{t_fu:8.3f}m {t_ort:8.3f}m   {t_ng / t_fu:5.2f}x  (ops {len(traced.graph.nodes)}"
              f" -> {len(fused.graph.nodes)})")


# ----------------------------------------------------------------------------- int8
def digits_cnn(epochs: int = 4, seed: int = 0):
    """Train a small CNN on sklearn's 8x8 digits; (model, X_train, X_test, y_test)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    p = rng.permutation(len(X))
    X, y = X[p], y[p]
    Xtr, ytr, Xte, yte = X[:1400], y[:1400], X[1400:], y[1400:]
    dt.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                      nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(512, 128), nn.ReLU(),
                      nn.Linear(128, 10))
    opt = dt.optim.Adam(m.parameters(), lr=3e-3)
    for _ in range(epochs):
        m.train()
        order = rng.permutation(len(Xtr))
        for i in range(0, len(Xtr), 64):
            idx = order[i:i + 64]
            loss = F.cross_entropy(m(dt.from_numpy(Xtr[idx])), dt.from_numpy(ytr[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return m.eval(), Xtr, Xte, yte


def quant() -> None:

    from dyntorch.onnx.quantize import quantize_dynamic, quantize_static

    t0 = time.perf_counter()
    m, Xtr, Xte, yte = digits_cnn()
    print(f"\ndigits CNN trained in {time.perf_counter() - t0:.1f} s")
    with dt.no_grad():
        eager = float((m(dt.from_numpy(Xte)).argmax(1).numpy() == yte).mean())
    tmp = tempfile.mkdtemp()
    fp32 = os.path.join(tmp, "digits.onnx")
    donnx.export(m, dt.from_numpy(Xte[:8]), fp32, input_names=["x"], output_names=["logits"],
                 dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    dyn = quantize_dynamic(fp32, os.path.join(tmp, "digits.int8-dynamic.onnx"))
    sta = quantize_static(fp32, os.path.join(tmp, "digits.int8-static.onnx"),
                          [Xtr[i:i + 50] for i in range(0, 300, 50)])
    jp = os.path.join(tmp, "digits.dtj")
    jit.trace(m, dt.from_numpy(Xte[:8])).save(jp)
    print(f"{'model':28s} {'size (bytes)':>13s} {'vs fp32':>8s} {'test acc':>9s} "
          f"{'change':>8s} {'ms/397':>8s}")
    print(f"{'eager dyntorch (fp32)':28s} {'':>13s} {'':>8s} {eager:9.4f}")
    print(f"{'jit.save file (fp32)':28s} {os.path.getsize(jp):13d}")
    base = os.path.getsize(fp32)
    for label, path in (("onnx fp32", fp32), ("onnx int8 dynamic", dyn),
                        ("onnx int8 static (QDQ)", sta)):
        s = ort_session(path)
        acc = float((s.run(None, {"x": Xte})[0].argmax(1) == yte).mean())
        ms = compare([lambda s=s: s.run(None, {"x": Xte})], 10)[0]
        size = os.path.getsize(path)
        print(f"{label:28s} {size:13d} {size / base:7.2f}x {acc:9.4f} {acc - eager:+8.4f} "
              f"{ms:8.3f}")


if __name__ == "__main__":
    speed()
    if "--no-quant" not in sys.argv:
        quant()
