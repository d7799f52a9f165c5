"""Bind ``torch`` to dyntorch in child interpreters (``multiprocessing`` with ``spawn``).

``launch.py`` puts this folder on ``PYTHONPATH`` for the dyntorch backend; a spawned child
starts a fresh interpreter, which runs this before it re-imports the example's main module,
so the child's ``import torch`` gets dyntorch as the parent's did.
"""
import os
import sys

if os.environ.get("PTEX_TORCH_ALIAS") == "dyntorch":
    sys.path.insert(0, os.environ["DYNTORCH_ROOT"])
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from launch import alias_dyntorch

    alias_dyntorch()
