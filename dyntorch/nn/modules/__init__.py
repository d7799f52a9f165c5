"""The layers of ``dyntorch.nn``."""
from __future__ import annotations

from .conv import *  # noqa: F401,F403
from .conv import __all__ as _conv_all
from .pooling import *  # noqa: F401,F403
from .pooling import __all__ as _pool_all
from .rnn import *  # noqa: F401,F403
from .rnn import __all__ as _rnn_all
from .transformer import *  # noqa: F401,F403
from .transformer import __all__ as _tr_all

__all__ = [*_conv_all, *_pool_all, *_rnn_all, *_tr_all]
