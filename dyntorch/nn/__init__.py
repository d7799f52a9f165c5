"""``dyntorch.nn``: modules, parameters, functional API, initialisation and utilities."""
from __future__ import annotations

from . import functional, init, parallel, utils  # noqa: F401
from .module import Module  # noqa: F401
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _modules_all
from .parallel import DataParallel  # noqa: F401
from .parameter import Buffer, Parameter  # noqa: F401

__all__ = ["Module", "Parameter", "Buffer", "DataParallel", "functional", "init", "parallel",
           "utils", *_modules_all]
