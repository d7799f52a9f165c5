"""Run one pytorch/examples script with ``torch`` bound to dyntorch (or to real torch).

Usage: ``python launch.py {dyntorch|torch} [--probe] script.py [args...]``, from the
example's directory. The offline stand-ins (``standins/``: torchvision, gymnasium, requests)
come before site-packages on ``sys.path`` so no script reaches the network.

``--probe`` is a diagnostic mode for finding what hides behind a blocker that another part
of the project owns: it fills a few missing public names with minimal placeholders (listed
in ``PROBE_NAMES``). Runs made with it are never counted as passing.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


class _TorchAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolve ``torch`` and ``torch.X.Y`` to ``dyntorch`` and ``dyntorch.X.Y``."""

    def find_spec(self, name, path=None, target=None):
        if name != "torch" and not name.startswith("torch."):
            return None
        real = "dyntorch" + name[len("torch"):]
        try:
            importlib.util.find_spec(real)
        except ModuleNotFoundError:
            return None
        if importlib.util.find_spec(real) is None:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        return importlib.import_module("dyntorch" + spec.name[len("torch"):])

    def exec_module(self, module):
        pass  # already executed under its dyntorch name


def alias_dyntorch() -> None:
    import dyntorch

    sys.meta_path.insert(0, _TorchAlias())
    sys.modules["torch"] = dyntorch
    for name, mod in list(sys.modules.items()):
        if name.startswith("dyntorch."):
            sys.modules.setdefault("torch" + name[len("dyntorch"):], mod)


PROBE_NAMES = ("torch.accelerator (no accelerator)", "torch.backends.cudnn (module)",
               "torch.serialization.safe_globals (no-op context)",
               "size= keyword of torch.empty/zeros/ones/randn/rand",
               "torch.load(weights_only=False) inside safe_globals",
               "nn.modules.pixelshuffle / linear.NonDynamicallyQuantizableLinear paths",
               "Tensor.is_xpu / is_mps")


def probe_fill() -> None:
    """Placeholders for names owned elsewhere (diagnostic runs only)."""
    import types

    import torch

    if not hasattr(torch, "accelerator"):
        acc = types.ModuleType("torch.accelerator")
        acc.is_available = lambda: False
        acc.current_accelerator = lambda check_available=False: None
        acc.device_count = lambda: 0
        torch.accelerator = acc
        sys.modules["torch.accelerator"] = acc
    import torch.backends as tb

    if "torch.backends.cudnn" not in sys.modules:
        try:
            importlib.import_module("torch.backends.cudnn")
        except ImportError:
            cud = types.ModuleType("torch.backends.cudnn")
            cud.benchmark = cud.deterministic = False
            cud.enabled = True
            cud.is_available = lambda: False
            tb.cudnn = cud
            sys.modules["torch.backends.cudnn"] = cud
    import inspect

    for name in ("empty", "zeros", "ones", "randn", "rand"):
        fn = getattr(torch, name)
        try:
            par = inspect.signature(fn).parameters.get("size")
            takes_size = par is not None and par.kind != par.VAR_POSITIONAL
        except (TypeError, ValueError):
            takes_size = True
        if not takes_size:
            def wrapped(*args, _fn=fn, size=None, **kw):
                return _fn(*(args if size is None else tuple(size)), **kw)
            setattr(torch, name, wrapped)
    ser = importlib.import_module("torch.serialization")
    if not hasattr(ser, "safe_globals"):
        import contextlib

        trusted = [False]

        @contextlib.contextmanager
        def safe_globals(globs):
            trusted[0] = True
            try:
                yield
            finally:
                trusted[0] = False

        real_load = torch.load

        def load(*args, **kw):
            if trusted[0]:
                kw.setdefault("weights_only", False)
            return real_load(*args, **kw)

        ser.safe_globals = safe_globals
        ser.add_safe_globals = lambda globs: None
        torch.load = load
    import torch.nn as nn

    mods = importlib.import_module("torch.nn.modules")
    if not hasattr(mods, "pixelshuffle"):
        ps = types.ModuleType("torch.nn.modules.pixelshuffle")
        ps.PixelShuffle = nn.PixelShuffle
        mods.pixelshuffle = ps
        sys.modules["torch.nn.modules.pixelshuffle"] = ps
    for name in ("is_xpu", "is_mps"):
        if not hasattr(torch.Tensor, name):
            setattr(torch.Tensor, name, property(lambda self: False))


def main(argv: list[str]) -> None:
    backend, rest = argv[0], argv[1:]
    probe = bool(rest) and rest[0] == "--probe"
    if probe:
        rest = rest[1:]
    script = rest[0]
    sys.path.insert(0, os.path.join(HERE, "standins"))
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    if backend == "dyntorch":
        root = os.environ.get("DYNTORCH_ROOT", os.path.dirname(os.path.dirname(HERE)))
        sys.path.insert(0, root)
        alias_dyntorch()
        # children started with multiprocessing's spawn are fresh interpreters: they get the
        # alias from child_alias/sitecustomize.py
        paths = [os.path.join(HERE, "child_alias")] + \
            [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        os.environ.update(DYNTORCH_ROOT=root, PTEX_TORCH_ALIAS="dyntorch",
                          PYTHONPATH=os.pathsep.join(paths))
    elif backend != "torch":
        raise SystemExit(f"launch.py: backend must be 'dyntorch' or 'torch', not {backend!r}")
    if probe:
        probe_fill()
    import matplotlib

    matplotlib.use("Agg")  # time_sequence_prediction draws to files
    sys.argv = rest
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
