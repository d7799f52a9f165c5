"""``torch.utils.hooks``: the handle every ``register_*hook`` returns.

The class lives at the bottom floor (``dyntorch._hooks``, which imports nothing of dyntorch) so
that autograd, nn and optim use it without importing ``dyntorch.utils`` (and its DataLoader).
"""
from .._hooks import RemovableHandle

__all__ = ["RemovableHandle"]
