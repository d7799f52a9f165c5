"""``torch.nn.modules.distance`` import path (the classes live in ``activation.py``)."""
from .activation import CosineSimilarity, PairwiseDistance  # noqa: F401

__all__: list = []  # exported through activation.py
