"""``profile()``: record how long each op's forward takes, for the "colour: time" overlay."""
from __future__ import annotations

import contextlib

from .. import _dispatch as D


@contextlib.contextmanager
def profile(enabled: bool = True):
    """Inside the block every recorded graph node gets ``time_us``, its forward time.

    The graph document carries it (``nodes[].time_us``) and the view's "colour: time" overlay
    shades nodes by it (log scale). It costs two clock reads per op (plus a device
    synchronisation per op on the GPU), so it is off by default.

    Examples
    --------
    >>> with dyntorch.viz.profile():
    ...     loss = model(x).pow(2).mean()
    >>> dyntorch.viz.show(loss)          # pick "colour: time" in the view
    """
    prev = D.profile
    D.profile = bool(enabled)
    try:
        yield
    finally:
        D.profile = prev
