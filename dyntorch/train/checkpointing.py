"""The Trainer's checkpoints: what a checkpoint holds, saving, restoring, resuming mid-epoch,
the interrupt checkpoint, and the random states that make a resumed run continue exactly.

The state it works on is created in ``Trainer.__init__``.
"""
from __future__ import annotations

import copy
import os
import random
import sys
from dataclasses import dataclass

import numpy as np

from .. import _backend as B
from .metrics import _scalar

__all__ = ["CheckpointIO"]


@dataclass
class _Resume:
    batches_done: int
    epoch_start_rng: dict
    rng: dict
    acc: dict


def _plain(v) -> bool:
    """Data that the safe checkpoint format holds (hyper-parameters that aren't are dropped, so
    that checkpoints load with ``weights_only=True``)."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return True
    if isinstance(v, (list, tuple)):
        return all(_plain(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, (str, int)) and _plain(x) for k, x in v.items())
    return False


class CheckpointIO:
    """Saving and restoring the training state (a part of :class:`Trainer`)."""

    def _checkpoint_dict(self, boundary: bool = False) -> dict:
        model = self.model
        if boundary and self._boundary is not None and not self._epoch_done:
            batches, rng, acc = self._boundary
        else:
            batches, rng = self._batches_done, self._rng_state()
            acc = copy.deepcopy(self._acc.get("train", {}))
        ck = {
            "dyntorch_checkpoint_version": 1,
            "epoch": self.current_epoch,
            "global_step": self.global_step,
            "loops": {"epoch_done": self._epoch_done, "batches_done": batches,
                      "epoch_start_rng": self._epoch_start_rng or rng},
            "state_dict": model.state_dict(),
            "optimizer_states": [o.state_dict() for o in self.optimizers],
            "lr_schedulers": [c.scheduler.state_dict() for c in self.lr_scheduler_configs],
            "callbacks": {cb.state_key: cb.state_dict() for cb in self.callbacks},
            "rng": rng,
            "train_epoch_acc": acc,
            "callback_metrics": {k: float(v.item()) for k, v in self.callback_metrics.items()},
            "hyper_parameters": {k: v for k, v in (getattr(model, "hparams", {}) or {}).items()
                                 if _plain(v)},
        }
        if self.world_size > 1:
            # every rank's generators (dropout masks differ between ranks): each rank resumes
            # with its own
            ck["rng_per_rank"] = self.strategy.all_gather_object(
                {"rng": rng, "epoch_start_rng": ck["loops"]["epoch_start_rng"]})
        for cb in self.callbacks:
            cb.on_save_checkpoint(self, model, ck)
        hook = getattr(model, "on_save_checkpoint", None)
        if callable(hook):
            hook(ck)
        return ck

    def save_checkpoint(self, filepath: str | os.PathLike, weights_only: bool = False) -> None:
        """Write the full training state to ``filepath`` (``dyntorch.save`` format).

        With ``strategy="ddp"`` every rank calls it (the checkpoint hooks run everywhere), rank
        0 writes the file, and all ranks return once it is there.
        """
        from ..serialization import save

        ck = self._checkpoint_dict()
        if weights_only:
            ck = {k: ck[k] for k in ("epoch", "global_step", "state_dict")}
        if self.is_global_zero:
            d = os.path.dirname(os.fspath(filepath))
            if d:
                os.makedirs(d, exist_ok=True)
            save(ck, filepath)  # atomic: a kill mid-save leaves the previous checkpoint whole
        self.strategy.barrier()

    def _load_ckpt(self, path: str) -> dict:
        from ..serialization import load

        return load(path)

    def _restore(self, path: str) -> _Resume | None:
        ck = self._load_ckpt(path)
        model = self.model
        if "state_dict" not in ck:
            raise ValueError(f"'{path}' is not a Trainer checkpoint (no 'state_dict'); to load "
                             "weights only, use model.load_state_dict(dyntorch.load(path))")
        model.load_state_dict(ck["state_dict"])
        for o, sd in zip(self.optimizers, ck.get("optimizer_states", [])):
            o.load_state_dict(sd)
        for c, sd in zip(self.lr_scheduler_configs, ck.get("lr_schedulers", [])):
            c.scheduler.load_state_dict(sd)
        states = ck.get("callbacks", {})
        for cb in self.callbacks:
            if cb.state_key in states:
                cb.load_state_dict(states[cb.state_key])
        for cb in self.callbacks:
            cb.on_load_checkpoint(self, model, ck)
        hook = getattr(model, "on_load_checkpoint", None)
        if callable(hook):
            hook(ck)
        self.global_step = int(ck.get("global_step", 0))
        self.callback_metrics = {k: _scalar(v) for k, v in ck.get("callback_metrics", {}).items()}
        loops = ck.get("loops", {"epoch_done": True, "batches_done": 0})
        rng, epoch_start_rng = ck.get("rng"), loops.get("epoch_start_rng")
        per_rank = ck.get("rng_per_rank")
        if per_rank is not None and len(per_rank) == self.world_size:
            rng = per_rank[self.global_rank]["rng"]
            epoch_start_rng = per_rank[self.global_rank]["epoch_start_rng"]
        if loops.get("epoch_done", True):
            self.current_epoch = int(ck.get("epoch", 0)) + 1
            if rng is not None:
                self._set_rng_state(rng)
            return None
        self.current_epoch = int(ck.get("epoch", 0))
        return _Resume(int(loops["batches_done"]), epoch_start_rng, rng,
                       ck.get("train_epoch_acc", {}))

    def _on_interrupt(self, model, exc: BaseException) -> None:
        self.interrupted = True
        self._close_pbar()
        for o in self.optimizers:
            o.zero_grad()  # drop half-accumulated gradients: the model stays usable
        path = os.path.join(self.default_root_dir, "interrupted.ckpt")
        try:
            self.save_interrupt_checkpoint(path)
            where = f"saved the state of the last completed step to {path}; resume with " \
                    f"trainer.fit(model, ..., ckpt_path={path!r})"
        except Exception as e:  # never turn Ctrl-C into a second traceback
            where = f"could not save a checkpoint ({type(e).__name__}: {e})"
        for cb in self.callbacks:
            cb.on_exception(self, model, exc)
        model.train(True)
        print(f"\nTraining interrupted at epoch {self.current_epoch}, step {self.global_step}: "
              f"{where}.", file=sys.stderr)

    def save_interrupt_checkpoint(self, path: str) -> None:
        from ..serialization import save

        ck = self._checkpoint_dict(boundary=True)
        if not self.is_global_zero:
            return  # no barrier: an interrupt need not reach every rank
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        save(ck, path)  # atomic, as every save to a path

    def _resolve_ckpt(self, ckpt_path) -> str:
        if ckpt_path in ("last", "best"):
            cb = self.checkpoint_callback
            path = None
            if cb is not None:
                path = cb.last_model_path if ckpt_path == "last" else cb.best_model_path
                if ckpt_path == "last" and not path and cb.dirpath:
                    cand = os.path.join(cb.dirpath, "last.ckpt")
                    path = cand if os.path.exists(cand) else None
                if ckpt_path == "last" and not path:
                    path = cb.best_model_path or None
            if not path:
                raise ValueError(f"ckpt_path={ckpt_path!r}: no such checkpoint is known yet; "
                                 "pass a file path")
            return path
        return os.fspath(ckpt_path)

    def _loader_generators(self) -> list:
        gens, seen = [], set()
        loader = self._train_loader
        for obj in (loader, getattr(loader, "sampler", None),
                    getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
            g = getattr(obj, "generator", None)
            if isinstance(g, B.Generator) and id(g) not in seen:
                seen.add(id(g))
                gens.append(g)
        return gens

    def _rng_state(self) -> dict:
        return {"dyntorch": B.default_generator.get_state(), "python": random.getstate(),
                "numpy": np.random.get_state(),
                "loaders": [g.get_state() for g in self._loader_generators()]}

    def _set_rng_state(self, st: dict) -> None:
        B.default_generator.set_state(st["dyntorch"])
        py = st["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
        np.random.set_state(tuple(st["numpy"]))
        for g, s in zip(self._loader_generators(), st.get("loaders", [])):
            g.set_state(s)
