"""Run the pytorch/examples scripts that the repository's CI script runs, as it runs them.

``python tools/pytorch_examples/run_examples.py --backend dyntorch [--examples mnist,vae]``
from the dyntorch checkout. Each example is copied to a scratch folder, given offline
stand-in data, and each of its CI commands runs in a fresh process through ``launch.py``
(``torch`` bound to dyntorch or real torch). Prints a table (example, runs to the end,
first blocker) and writes it as JSON with ``--json``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# The commands of run_python_examples.sh (CPU: no --accel / --cuda flags).
WLM = [["main.py", "--epochs", "1", "--dry-run"], ["generate.py"]]
for _m in ("RNN_TANH", "RNN_RELU", "LSTM", "GRU", "Transformer"):
    WLM += [["main.py", "--model", _m, "--epochs", "1", "--dry-run"], ["generate.py"]]
EXAMPLES: dict[str, list[list[str]]] = {
    "dcgan": [["main.py", "--dataset", "fake", "--dry-run"]],
    "mnist": [["main.py", "--epochs", "1", "--dry-run"]],
    "mnist_forward_forward": [["main.py", "--epochs", "1", "--no_accel"]],
    "mnist_hogwild": [["main.py", "--epochs", "1", "--dry-run"]],
    "mnist_rnn": [["main.py", "--epochs", "1", "--dry-run"]],
    "regression": [["main.py", "--epochs", "1"]],
    "reinforcement_learning": [["reinforce.py"], ["actor_critic.py"]],
    "siamese_network": [["main.py", "--epochs", "1", "--dry-run"]],
    "super_resolution": [
        ["main.py", "--upscale_factor", "3", "--batchSize", "4", "--testBatchSize", "100",
         "--nEpochs", "1", "--lr", "0.001"],
        ["super_resolve.py", "--input_image", "dataset/BSDS300/images/test/16077.jpg",
         "--model", "model_epoch_1.pth", "--output_filename", "out.png"]],
    "time_sequence_prediction": [["generate_sine_wave.py"], ["train.py", "--steps", "2"]],
    "vae": [["main.py", "--epochs", "1"]],
    "word_language_model": WLM,
    "gcn": [["main.py", "--epochs", "1", "--dry-run"]],
    "gat": [["main.py", "--epochs", "1", "--dry-run"]],
}
# In run_all of run_python_examples.sh too, but needing what the CI downloads; run on request
# (--examples) with offline stand-ins: fast_neural_style's pretrained weights, imagenet's
# sample photo.
EXTRA: dict[str, list[list[str]]] = {
    "imagenet": [["main.py", "--epochs", "1", "sample/"],
                 ["main.py", "--epochs", "1", "--gpu", "0", "sample/"]],
    "fast_neural_style": [
        ["neural_style/neural_style.py", "eval", "--content-image",
         "images/content-images/amber.jpg", "--model", "saved_models/candy.pth",
         "--output-image", "images/output-images/amber-candy.jpg"]],
}


def _bsds300(work: str) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for part, names in (("train", [f"{i}.jpg" for i in range(8)]),
                        ("test", ["16077.jpg", "1.jpg", "2.jpg"])):
        d = os.path.join(work, "dataset", "BSDS300", "images", part)
        os.makedirs(d, exist_ok=True)
        for n in names:
            Image.fromarray(rng.integers(0, 256, (321, 481, 3), dtype=np.uint8)).save(
                os.path.join(d, n))


def _wikitext(work: str) -> None:
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(300)]
    d = os.path.join(work, "data", "wikitext-2")
    os.makedirs(d, exist_ok=True)
    for part, lines in (("train", 400), ("valid", 60), ("test", 60)):
        with open(os.path.join(d, f"{part}.txt"), "w") as f:
            for _ in range(lines):
                f.write(" " + " ".join(rng.choice(vocab, int(rng.integers(5, 25)))) + " \n")


def _style_weights(work: str) -> None:
    """Random TransformerNet weights saved by real torch, in the downloaded files' layout.

    The published ``candy.pth`` comes from an old torch whose InstanceNorm kept running
    statistics; the script deletes those keys, so the stand-in carries them too. The last
    bias is lifted to mid-grey so the picture is not all clipped to black (outputs compare).
    """
    os.makedirs(os.path.join(work, "saved_models"), exist_ok=True)
    code = (
        "import sys, torch; sys.path.insert(0, 'neural_style');"
        "from transformer_net import TransformerNet; torch.manual_seed(0);"
        "sd = TransformerNet().state_dict();"
        "sd.update({k[:-len('weight')] + s: torch.zeros(v.shape) for k, v in list(sd.items())"
        " if '.in' in '.' + k and k.endswith('weight') for s in ('running_mean', 'running_var')});"
        "sd['deconv3.conv2d.bias'] += 128;"
        "torch.save(sd, 'saved_models/candy.pth')")
    subprocess.run([sys.executable, "-c", code], cwd=work, check=True)


def _imagenet_sample(work: str) -> None:
    """One photo-sized JPEG in sample/train/n and sample/val/n, as the CI's download gives."""
    from PIL import Image

    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (400, 300, 3), dtype=np.uint8))
    for part in ("train", "val"):
        d = os.path.join(work, "sample", part, "n")
        os.makedirs(d, exist_ok=True)
        img.save(os.path.join(d, "Socks-clinton.jpg"))


SETUP = {"super_resolution": _bsds300, "word_language_model": _wikitext,
         "imagenet": _imagenet_sample,
         "fast_neural_style": _style_weights}

# time_sequence_prediction's requirements.txt pins torch<2.6, whose torch.load defaulted to
# weights_only=False (it loads a pickled NumPy array); this switch, which torch honours,
# gives that default on newer versions.
ENV = {"time_sequence_prediction": {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}}


def first_blocker(stderr: str) -> str:
    """The exception line of the last traceback (or the last line of output)."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        if not ln.startswith((" ", "\t")) and ("Error" in ln or "Exception" in ln or
                                              ln.startswith(("KeyboardInterrupt", "Killed"))):
            return ln.strip()[:300]
    return lines[-1].strip()[:300] if lines else ""


def run_example(name: str, src: str, backend: str, timeout: float, probe: bool,
                root: str = ROOT, threads: int = 1) -> dict:
    work = tempfile.mkdtemp(prefix=f"ptex-{name}-")
    shutil.copytree(os.path.join(src, name), os.path.join(work, name))
    os.makedirs(os.path.join(work, "data"), exist_ok=True)  # '../data' of the MNIST scripts
    wd = os.path.join(work, name)
    if name in SETUP:
        SETUP[name](wd)
    env = dict(os.environ, DYNTORCH_ROOT=root, MPLBACKEND="Agg", PYTHONUNBUFFERED="1",
               **ENV.get(name, {}))
    if threads:  # on a shared machine, spinning BLAS/OpenMP threads make small ops 20x slower
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    res = {"example": name, "ok": True, "blocker": "", "commands": [], "seconds": 0.0}
    t0 = time.time()
    for cmd in {**EXAMPLES, **EXTRA}[name]:
        argv = [sys.executable, os.path.join(HERE, "launch.py"), backend] + \
            (["--probe"] if probe else []) + cmd
        try:
            p = subprocess.run(argv, cwd=wd, env=env, capture_output=True, text=True,
                               timeout=timeout)
            rc, err, out = p.returncode, p.stderr, p.stdout
        except subprocess.TimeoutExpired as e:
            rc, out = "timeout", (e.stdout or b"").decode(errors="replace") \
                if isinstance(e.stdout, bytes) else (e.stdout or "")
            err = f"Timeout: no end after {timeout:.0f} s"
        res["commands"].append({"cmd": " ".join(cmd), "rc": rc, "tail": (err or out)[-3000:]})
        if rc != 0:
            res["ok"] = False
            res["blocker"] = f"{' '.join(cmd)}: {first_blocker(err or out)}"
            break
    res["seconds"] = round(time.time() - t0, 1)
    shutil.rmtree(work, ignore_errors=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("dyntorch", "torch"), default="dyntorch")
    ap.add_argument("--examples", default=",".join(EXAMPLES),
                    help=f"comma-separated names (default: the 14; extra: {', '.join(EXTRA)})")
    ap.add_argument("--src", default=os.environ.get("PYTORCH_EXAMPLES", "/tmp/pytorch-examples"),
                    help="a checkout of github.com/pytorch/examples")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per command")
    ap.add_argument("--probe", action="store_true",
                    help="fill names owned elsewhere with placeholders (diagnostic; see launch.py)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS/OpenMP threads per run (0: leave the environment alone)")
    ap.add_argument("--dyntorch-root", default=ROOT,
                    help="the folder holding the dyntorch package to test (default: this checkout)")
    a = ap.parse_args()
    names = [n for n in a.examples.split(",") if n]
    unknown = [n for n in names if n not in EXAMPLES and n not in EXTRA]
    if unknown:
        raise SystemExit(f"unknown examples {unknown}; known: {list(EXAMPLES) + list(EXTRA)}")
    if not os.path.isdir(a.src):
        raise SystemExit(f"no pytorch/examples checkout at {a.src}; clone it there or pass --src")
    results = []
    for n in names:
        r = run_example(n, a.src, a.backend, a.timeout, a.probe, a.dyntorch_root, a.threads)
        results.append(r)
        print(f"{n:24s} {'yes' if r['ok'] else 'no ':3s} {r['seconds']:7.1f}s  {r['blocker']}",
              flush=True)
    ok = sum(r["ok"] for r in results)
    print(f"{ok} of {len(results)} run to the end with {a.backend}"
          f"{' (probe mode)' if a.probe else ''}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
