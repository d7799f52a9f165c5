"""The few transforms the example scripts use, on PIL images and tensors."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x


class ToTensor:
    """PIL image or (H, W[, C]) uint8 array -> float tensor (C, H, W) in [0, 1]."""

    def __call__(self, pic):
        arr = np.array(pic, copy=True)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
        return t.float().div(255) if arr.dtype == np.uint8 else t.float()


class Normalize:
    def __init__(self, mean, std, inplace: bool = False):
        self.mean, self.std = list(mean), list(std)

    def __call__(self, t):
        m = torch.tensor(self.mean, dtype=t.dtype).view(-1, 1, 1)
        s = torch.tensor(self.std, dtype=t.dtype).view(-1, 1, 1)
        return (t - m) / s


def _size_hw(size, w, h):
    if isinstance(size, int):  # the shorter side becomes ``size``, aspect kept
        if w <= h:
            return size, max(1, int(size * h / w))
        return max(1, int(size * w / h)), size
    return size[1], size[0]


class Resize:
    def __init__(self, size, interpolation=Image.BILINEAR):
        self.size, self.interpolation = size, interpolation

    def __call__(self, img):
        if not isinstance(img, Image.Image):
            raise TypeError("torchvision stand-in: Resize takes PIL images only")
        return img.resize(_size_hw(self.size, *img.size), self.interpolation)


class CenterCrop:
    def __init__(self, size):
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, img):
        th, tw = self.size
        if isinstance(img, Image.Image):
            w, h = img.size
            left, top = int(round((w - tw) / 2.0)), int(round((h - th) / 2.0))
            return img.crop((left, top, left + tw, top + th))
        h, w = img.shape[-2], img.shape[-1]
        top, left = int(round((h - th) / 2.0)), int(round((w - tw) / 2.0))
        return img[..., top:top + th, left:left + tw]


class Lambda:
    def __init__(self, fn):
        self.fn = fn

    def __call__(self, x):
        return self.fn(x)
