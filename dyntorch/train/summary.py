"""``Trainer(enable_model_summary=True)``: Lightning's table of a model's child modules."""
from __future__ import annotations

from ..nn.module import Module

__all__ = ["model_summary"]


def _human(n: int) -> str:
    """Lightning's counts: 0, 999, 1.2 K, 3.4 M, 5.6 B."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return str(n)


def model_summary(model: Module) -> str:
    """A table of ``model``'s direct children (name, type, parameters, train/eval mode) and the
    totals: trainable, non-trainable, all, and their size in MB."""
    rows = []
    for i, (name, child) in enumerate(model.named_children()):
        n = sum(p.numel() for p in child.parameters())
        rows.append((str(i), name, type(child).__name__, _human(n),
                     "train" if child.training else "eval"))
    head = ("", "Name", "Type", "Params", "Mode")
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(5)]
    fmt = lambda r: " | ".join(s.ljust(w) for s, w in zip(r, widths)).rstrip()
    line = "-" * len(fmt(head))
    params = list(model.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    total = sum(p.numel() for p in params)
    size_mb = sum(p.numel() * p.element_size() for p in params) / 1e6
    out = [fmt(head), line, *(fmt(r) for r in rows), line,
           f"{_human(trainable):<10}Trainable params",
           f"{_human(total - trainable):<10}Non-trainable params",
           f"{_human(total):<10}Total params",
           f"{size_mb:<10.3f}Total estimated model params size (MB)"]
    return "\n".join(out)
