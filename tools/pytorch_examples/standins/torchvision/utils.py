"""make_grid / save_image over NumPy and PIL."""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image


def make_grid(tensor, nrow: int = 8, padding: int = 2, normalize: bool = False,
              value_range=None, scale_each: bool = False, pad_value: float = 0.0):
    a = tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else np.asarray(tensor)
    if a.ndim == 2:
        a = a[None]
    if a.ndim == 3:
        a = a[None]
    if a.shape[1] == 1:
        a = np.repeat(a, 3, axis=1)
    if normalize:
        lo, hi = value_range if value_range is not None else (a.min(), a.max())
        a = (np.clip(a, lo, hi) - lo) / max(hi - lo, 1e-5)
    n, c, h, w = a.shape
    cols = min(nrow, n)
    rows = int(math.ceil(n / cols))
    grid = np.full((c, rows * (h + padding) + padding, cols * (w + padding) + padding),
                   pad_value, dtype=np.float32)
    for k in range(n):
        r, q = divmod(k, cols)
        y, x = r * (h + padding) + padding, q * (w + padding) + padding
        grid[:, y:y + h, x:x + w] = a[k]
    return torch.from_numpy(grid)


def save_image(tensor, fp, format=None, **kwargs) -> None:
    grid = make_grid(tensor, **kwargs).numpy()
    arr = np.clip(grid * 255 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    Image.fromarray(arr).save(fp, format=format)
