"""The layers of ``dyntorch.nn``."""
from __future__ import annotations

from ..module import Module
from .activation import *  # noqa: F401,F403
from .activation import __all__ as _act_all
from .channelshuffle import ChannelShuffle  # noqa: F401
from .container import *  # noqa: F401,F403
from .container import __all__ as _cont_all
from .conv import *  # noqa: F401,F403
from .conv import __all__ as _conv_all
from .dropout import *  # noqa: F401,F403
from .dropout import __all__ as _drop_all
from .flatten import *  # noqa: F401,F403
from .flatten import __all__ as _flat_all
from .linear import *  # noqa: F401,F403
from .linear import __all__ as _lin_all
from .loss import *  # noqa: F401,F403
from .loss import __all__ as _loss_all
from .normalization import *  # noqa: F401,F403
from .normalization import __all__ as _norm_all
from .pixelshuffle import PixelUnshuffle  # noqa: F401
from .pooling import *  # noqa: F401,F403
from .pooling import __all__ as _pool_all
from .rnn import *  # noqa: F401,F403
from .rnn import __all__ as _rnn_all
from .sparse import *  # noqa: F401,F403
from .sparse import __all__ as _sparse_all
from .transformer import *  # noqa: F401,F403
from .transformer import __all__ as _tr_all

__all__ = ["Module", *_act_all, *_cont_all, *_conv_all, *_drop_all, *_flat_all, *_lin_all,
           *_loss_all, *_norm_all, *_pool_all, "PixelUnshuffle", "ChannelShuffle", *_rnn_all,
           *_sparse_all, *_tr_all]
