"""A tiny offline stand-in for torchvision, written over whatever ``torch`` is bound to.

It holds only what the pytorch/examples CI scripts use: ``datasets`` (MNIST, FakeData with
small synthetic data, ImageFolder), ``transforms`` (Compose, ToTensor, Normalize, Resize,
CenterCrop, Lambda, RandomResizedCrop, RandomHorizontalFlip), ``utils`` (make_grid,
save_image) and ``models.resnet18``. Not part of dyntorch.
"""
from . import datasets, models, transforms, utils  # noqa: F401

__version__ = "0.0-standin"
