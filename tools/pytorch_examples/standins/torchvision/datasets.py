"""Synthetic datasets shaped like torchvision's (no download, no files read)."""
from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

# Small on purpose: the CI runs break after one batch (--dry-run) but still test on all of it.
MNIST_SIZES = {True: int(os.environ.get("STANDIN_MNIST_TRAIN", 640)),
               False: int(os.environ.get("STANDIN_MNIST_TEST", 200))}


def _digits(n: int, seed: int):
    """(n, 28, 28) uint8 images whose class shows as a bright bar, plus labels 0..9."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    imgs = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, c in enumerate(labels):
        imgs[i, 2 + 2 * c:4 + 2 * c, 4:24] = 255
    return imgs, labels


class MNIST:
    """MNIST-shaped data: ``data`` (N, 28, 28) uint8, ``targets`` (N,) int64, PIL 'L' items."""

    classes = [f"{i} - {w}" for i, w in enumerate(
        "zero one two three four five six seven eight nine".split())]

    def __init__(self, root, train: bool = True, transform=None, target_transform=None,
                 download: bool = False):
        imgs, labels = _digits(MNIST_SIZES[bool(train)], 0 if train else 1)
        self.data = torch.from_numpy(imgs)
        self.targets = torch.from_numpy(labels.astype(np.int64))
        self.transform, self.target_transform = transform, target_transform
        self.train = train

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i):
        img = Image.fromarray(self.data[i].numpy(), mode="L")
        target = int(self.targets[i])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target


class FakeData:
    """Random RGB images of ``image_size`` (C, H, W) with random labels, as PIL images."""

    def __init__(self, size: int = 1000, image_size=(3, 224, 224), num_classes: int = 10,
                 transform=None, target_transform=None, random_offset: int = 0):
        self.size, self.image_size, self.num_classes = size, tuple(image_size), num_classes
        self.transform, self.target_transform = transform, target_transform
        self.random_offset = random_offset

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i):
        rng = np.random.default_rng(i + self.random_offset)
        c, h, w = self.image_size
        arr = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
        img = Image.fromarray(arr[:, :, 0] if c == 1 else arr, mode="L" if c == 1 else "RGB")
        target = int(rng.integers(0, self.num_classes))
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target


class ImageFolder:
    """Images in ``root/<class>/<file>``, classes sorted by name, loaded as RGB PIL images."""

    EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

    def __init__(self, root: str, transform=None, target_transform=None):
        self.root, self.transform, self.target_transform = root, transform, target_transform
        self.classes = sorted(d.name for d in os.scandir(root) if d.is_dir())
        if not self.classes:
            raise FileNotFoundError(f"Couldn't find any class folder in {root}.")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.samples = [(os.path.join(root, c, f), self.class_to_idx[c]) for c in self.classes
                        for f in sorted(os.listdir(os.path.join(root, c)))
                        if f.lower().endswith(self.EXTENSIONS)]
        self.targets = [t for _, t in self.samples]
        self.imgs = self.samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i):
        path, target = self.samples[i]
        with open(path, "rb") as f:
            img = Image.open(f).convert("RGB")
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target


def _not_here(name):
    def make(*args, **kwargs):
        raise NotImplementedError(f"torchvision stand-in: datasets.{name} is not provided "
                                  "(the CI runs use MNIST and FakeData only)")
    return make


CIFAR10 = _not_here("CIFAR10")
LSUN = _not_here("LSUN")
