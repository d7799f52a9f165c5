"""The few transforms the example scripts use, on PIL images and tensors."""
from __future__ import annotations

import math
import random

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


class RandomResizedCrop:
    """A crop of random area (``scale`` of the image) and aspect (``ratio``), resized."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
                 interpolation=Image.BILINEAR):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.scale, self.ratio, self.interpolation = scale, ratio, interpolation

    def __call__(self, img):
        w, h = img.size
        box = None
        for _ in range(10):
            area = w * h * random.uniform(*self.scale)
            aspect = math.exp(random.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
            cw, ch = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                left, top = random.randint(0, w - cw), random.randint(0, h - ch)
                box = (left, top, left + cw, top + ch)
                break
        if box is None:  # the whole image, centred, as the fallback
            side = min(w, h)
            box = ((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2)
        return img.crop(box).resize((self.size[1], self.size[0]), self.interpolation)


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, img):
        if random.random() < self.p:
            if isinstance(img, Image.Image):
                return img.transpose(Image.FLIP_LEFT_RIGHT)
            return img.flip(-1)
        return img
