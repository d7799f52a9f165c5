"""Trainer: fit/validate/test/predict, resume == uninterrupted, callbacks, clipping, accumulation."""
from __future__ import annotations

import csv
import os

import numpy as np
import pytest

import dyntorch
from dyntorch import nn, optim
from dyntorch.optim import lr_scheduler
from dyntorch.train import (
    Callback,
    EarlyStopping,
    GradientMonitor,
    LearningRateMonitor,
    ModelCheckpoint,
    Trainer,
    TrainModule,
)
from dyntorch.utils.data import DataLoader, TensorDataset


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    y = (x @ np.array([[1.0], [-2.0], [0.5], [0.0]]) + 0.1 * rng.standard_normal((n, 1)))
    return TensorDataset(dyntorch.tensor(x, dtype=dyntorch.float64),
                         dyntorch.tensor(y, dtype=dyntorch.float64))


class Reg(TrainModule):
    def __init__(self, dropout=0.2, opt="adam", sched=None, val_scores=None):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(dropout),
                                 nn.Linear(8, 1)).double()
        self.opt, self.sched, self.val_scores = opt, sched, val_scores

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss, prog_bar=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("val_loss", loss)
        if self.val_scores is not None:
            self.log("score", float(self.val_scores[self.current_epoch]))

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_loss", nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        if self.opt == "sgd":
            o = optim.SGD(self.parameters(), lr=0.05, momentum=0.9)
        else:
            o = optim.Adam(self.parameters(), lr=0.01)
        if self.sched == "step":
            return [o], [lr_scheduler.StepLR(o, step_size=2, gamma=0.5)]
        if self.sched == "onecycle":
            return {"optimizer": o, "lr_scheduler": {
                "scheduler": lr_scheduler.OneCycleLR(
                    o, max_lr=0.05, total_steps=self.trainer.estimated_stepping_batches),
                "interval": "step"}}
        if self.sched == "plateau":
            return {"optimizer": o, "lr_scheduler": lr_scheduler.ReduceLROnPlateau(
                o, patience=0, factor=0.5), "monitor": "val_loss"}
        return o


def _params(m):
    return {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _loaders(gen=None, workers=0):
    tl = DataLoader(_data(), batch_size=8, shuffle=True, generator=gen, num_workers=workers)
    vl = DataLoader(_data(16, seed=1), batch_size=8)
    return tl, vl


def _trainer(tmp_path, **kw):
    kw.setdefault("enable_progress_bar", False)
    kw.setdefault("default_root_dir", str(tmp_path))
    kw.setdefault("log_every_n_steps", 1)
    return Trainer(**kw)


def test_fit_validate_test_predict(tmp_path, capsys):
    dyntorch.manual_seed(0)
    m = Reg()
    tl, vl = _loaders()
    tr = _trainer(tmp_path, max_epochs=3)
    before = nn.functional.mse_loss(m(_data().tensors[0]), _data().tensors[1]).item()
    tr.fit(m, tl, vl)
    assert tr.current_epoch == 3 and tr.global_step == 15
    for k in ("train_loss", "train_loss_step", "train_loss_epoch", "val_loss"):
        assert k in tr.callback_metrics, k
    m.eval()
    after = nn.functional.mse_loss(m(_data().tensors[0]), _data().tensors[1]).item()
    assert after < before
    res = tr.validate(m, vl, verbose=False)
    assert set(res[0]) == {"val_loss"}
    res = tr.test(m, vl)
    assert "test_loss" in res[0] and "Test metrics" in capsys.readouterr().out
    preds = tr.predict(m, DataLoader(_data(16, seed=1), batch_size=8))
    assert len(preds) == 2 and tuple(preds[0].shape) == (8, 1)
    with open(tmp_path / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    cols = set(rows[0])
    assert {"epoch", "step", "train_loss_step", "val_loss", "train_loss_epoch"} <= cols
    assert sum(1 for r in rows if r["train_loss_step"]) == 15
    assert sum(1 for r in rows if r.get("val_loss")) >= 3
    assert os.path.exists(tr.checkpoint_callback.best_model_path)


def _uninterrupted(tmp_path, epochs, workers=0, **kw):
    dyntorch.manual_seed(0)
    gen = dyntorch.Generator().manual_seed(5) if kw.pop("gen", False) else None
    m = Reg(**kw)
    tl, vl = _loaders(gen, workers)
    ck = ModelCheckpoint(dirpath=str(tmp_path / "ck"), filename="{epoch}", save_top_k=-1)
    tr = _trainer(tmp_path, max_epochs=epochs, callbacks=[ck])
    tr.fit(m, tl, vl)
    return m, tr, gen


@pytest.mark.parametrize("kw", [dict(), dict(sched="step", opt="sgd", gen=True),
                                dict(sched="onecycle"), dict(sched="plateau", workers=2)])
def test_resume_from_epoch_checkpoint_equals_uninterrupted(tmp_path, kw):
    kw = dict(kw)
    workers = kw.pop("workers", 0)
    a, tra, _ = _uninterrupted(tmp_path / "a", 4, workers, **dict(kw))
    ckpt = tmp_path / "a" / "ck" / "epoch=1.ckpt"
    assert ckpt.exists()
    dyntorch.manual_seed(123)  # a different init and RNG: everything must come from the file
    use_gen = kw.pop("gen", False)
    b = Reg(**kw)
    gen = dyntorch.Generator().manual_seed(999) if use_gen else None
    tl, vl = _loaders(gen, workers)
    trb = _trainer(tmp_path / "b", max_epochs=4)
    trb.fit(b, tl, vl, ckpt_path=str(ckpt))
    assert trb.global_step == tra.global_step and trb.current_epoch == 4
    _assert_same(_params(a), _params(b))
    assert trb.optimizers[0].param_groups[0]["lr"] == tra.optimizers[0].param_groups[0]["lr"]


class InterruptAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            raise KeyboardInterrupt


def test_keyboard_interrupt_saves_checkpoint_and_resume_matches(tmp_path, capsys):
    a, tra, _ = _uninterrupted(tmp_path / "a", 3, sched="onecycle")
    dyntorch.manual_seed(0)
    b = Reg(sched="onecycle")
    tl, vl = _loaders()
    trb = _trainer(tmp_path / "b", max_epochs=3, callbacks=[InterruptAt(7)])
    trb.fit(b, tl, vl)  # returns, no exception
    assert trb.interrupted and trb.global_step == 7
    path = tmp_path / "b" / "interrupted.ckpt"
    assert path.exists() and str(path) in capsys.readouterr().err
    # the model is usable
    assert all(p.grad is None for p in b.parameters())
    b.eval()
    assert b(dyntorch.zeros(2, 4, dtype=dyntorch.float64)).shape == (2, 1)
    dyntorch.manual_seed(77)
    c = Reg(sched="onecycle")
    tl, vl = _loaders()
    trc = _trainer(tmp_path / "c", max_epochs=3)
    trc.fit(c, tl, vl, ckpt_path=str(path))
    assert trc.global_step == tra.global_step
    _assert_same(_params(a), _params(c))


def test_early_stopping_stops(tmp_path):
    m = Reg(val_scores=[1.0] * 50)
    tl, vl = _loaders()
    es = EarlyStopping(monitor="score", patience=2)
    tr = _trainer(tmp_path, max_epochs=20, callbacks=[es])
    tr.fit(m, tl, vl)
    assert tr.current_epoch == 3 and es.wait_count == 2 and es.stopped_epoch == 2
    m2 = Reg(val_scores=[5, 4, 3, 2, 1, 0.5, 0.4, 0.39, 0.38, 0.37])
    es2 = EarlyStopping(monitor="score", patience=1, min_delta=0.05)
    tr2 = _trainer(tmp_path / "2", max_epochs=10, callbacks=[es2])
    tr2.fit(m2, *_loaders())
    assert tr2.current_epoch == 8  # epoch 7 (0.39) is the first change below min_delta
    with pytest.raises(RuntimeError, match="not available"):
        _trainer(tmp_path / "3", max_epochs=2, callbacks=[EarlyStopping("nope")]).fit(
            Reg(), *_loaders())


def test_model_checkpoint_keeps_best_k(tmp_path):
    scores = [5.0, 3.0, 4.0, 1.0, 2.0]
    m = Reg(val_scores=scores)
    ck = ModelCheckpoint(dirpath=str(tmp_path / "ck"), filename="{epoch}-{score:.1f}",
                         monitor="score", mode="min", save_top_k=2, save_last=True)
    tr = _trainer(tmp_path, max_epochs=5, callbacks=[ck])
    tr.fit(m, *_loaders())
    files = sorted(os.listdir(tmp_path / "ck"))
    assert files == ["epoch=3-score=1.0.ckpt", "epoch=4-score=2.0.ckpt", "last.ckpt"]
    assert ck.best_model_path.endswith("epoch=3-score=1.0.ckpt")
    assert ck.best_model_score == pytest.approx(1.0)
    best = dyntorch.load(ck.best_model_path)
    assert best["epoch"] == 3 and best["global_step"] == 20
    mx = ModelCheckpoint(dirpath=str(tmp_path / "mx"), monitor="score", mode="max",
                         save_top_k=1)
    _trainer(tmp_path / "x", max_epochs=5, callbacks=[mx]).fit(Reg(val_scores=scores),
                                                               *_loaders())
    assert os.listdir(tmp_path / "mx") == ["epoch=0-step=5.ckpt"]
    # validate/test from the best checkpoint
    res = tr.test(m, _loaders()[1], ckpt_path="best", verbose=False)
    assert "test_loss" in res[0]


def test_clipping_and_accumulation_match_hand_written_loop(tmp_path):
    from dyntorch.nn.utils import clip_grad_norm_, clip_grad_value_

    for algo, clip in (("norm", 0.3), ("value", 0.05)):
        dyntorch.manual_seed(0)
        m = Reg(dropout=0.0, opt="sgd")
        init = {k: v.clone() for k, v in m.state_dict().items()}
        tl = DataLoader(_data(), batch_size=6)  # 7 batches: the last accumulation is short
        tr = _trainer(tmp_path / algo, max_epochs=2, gradient_clip_val=clip,
                      gradient_clip_algorithm=algo, accumulate_grad_batches=3,
                      enable_checkpointing=False, logger=False)
        tr.fit(m, tl)
        h = Reg(dropout=0.0, opt="sgd")
        h.load_state_dict(init)
        o = optim.SGD(h.parameters(), lr=0.05, momentum=0.9)
        steps = 0
        for _ in range(2):
            n = len(tl)
            for i, (x, y) in enumerate(tl):
                loss = nn.functional.mse_loss(h(x), y) / 3
                loss.backward()
                if (i + 1) % 3 == 0 or i + 1 == n:
                    if algo == "norm":
                        clip_grad_norm_(h.parameters(), clip)
                    else:
                        clip_grad_value_(h.parameters(), clip)
                    o.step()
                    o.zero_grad()
                    steps += 1
        assert tr.global_step == steps == 6
        _assert_same(_params(m), _params(h))


def test_gradient_and_lr_monitors(tmp_path):
    seen = []

    class Check(Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            seen.append({name: float(np.sqrt(sum(float((p.grad.numpy() ** 2).sum())
                                                 for p in mod.parameters(recurse=False))))
                         for name, mod in pl_module.named_modules()
                         if any(True for _ in mod.parameters(recurse=False))})

    gm = GradientMonitor()
    lm = LearningRateMonitor(log_momentum=True)
    tr = _trainer(tmp_path, max_epochs=3, callbacks=[Check(), gm, lm])
    tr.fit(Reg(sched="step", opt="sgd"), *_loaders())
    assert len(gm.history) == len(gm.steps) == 15 and gm.steps[:3] == [0, 1, 2]
    assert set(gm.history[0]) == {"net.0", "net.3"}
    for got, ref in zip(gm.history, seen):
        assert got.keys() == ref.keys()
        for k in ref:
            assert got[k] == pytest.approx(ref[k], rel=1e-12)
    assert len(lm.lrs["lr-SGD"]) == 15  # StepLR(step_size=2) halves after the 2nd epoch
    assert lm.lrs["lr-SGD"][:10] == [0.05] * 10 and lm.lrs["lr-SGD"][10:] == [0.025] * 5
    assert "lr-SGD-momentum" in lm.lrs
    assert "lr-SGD" in tr.callback_metrics


def test_max_steps_hooks_order_and_errors(tmp_path):
    calls = []

    class Rec(Callback):
        def on_fit_start(self, trainer, pl_module):
            calls.append("fit_start")

        def on_train_epoch_start(self, trainer, pl_module):
            calls.append("epoch_start")

        def on_after_backward(self, trainer, pl_module):
            calls.append("after_backward")

        def on_validation_epoch_end(self, trainer, pl_module):
            calls.append("val_end")

        def on_train_epoch_end(self, trainer, pl_module):
            calls.append("epoch_end")

        def on_fit_end(self, trainer, pl_module):
            calls.append("fit_end")

    tr = _trainer(tmp_path, max_steps=7, callbacks=[Rec()])
    tr.fit(Reg(), *_loaders())
    assert tr.global_step == 7 and tr.current_epoch == 2
    assert calls[0] == "fit_start" and calls[-1] == "fit_end"
    assert calls.count("after_backward") == 7
    assert calls.index("val_end") < calls.index("epoch_end")

    class NoStep(TrainModule):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 1)

        def configure_optimizers(self):
            return optim.SGD(self.parameters(), lr=0.1)

    with pytest.raises(NotImplementedError, match="training_step"):
        _trainer(tmp_path / "e", max_epochs=1).fit(NoStep(), _loaders()[0])

    class Two(NoStep):
        def training_step(self, batch, batch_idx):
            return self.lin(batch[0].float()).sum()

        def configure_optimizers(self):
            return [optim.SGD(self.parameters(), lr=0.1), optim.Adam(self.parameters())]

    with pytest.raises(RuntimeError, match="manual optimization"):
        _trainer(tmp_path / "f", max_epochs=1).fit(Two(), _loaders()[0])


def test_mid_epoch_validation(tmp_path):
    m = Reg()
    tr = _trainer(tmp_path, max_epochs=2, val_check_interval=2)
    n = []

    class Count(Callback):
        def on_validation_end(self, trainer, pl_module):
            n.append(trainer.global_step)

    tr.callbacks.insert(0, Count())
    tr.fit(m, *_loaders())
    assert n == [2, 4, 5, 7, 9, 10]


@pytest.mark.cuda
def test_fit_on_gpu_moves_model_and_batches(tmp_path):
    m = Reg()
    tr = _trainer(tmp_path, max_epochs=1, accelerator="gpu")
    tr.fit(m, *_loaders())
    assert next(iter(m.parameters())).is_cuda and tr.global_step == 5


def test_hparams_saved_and_checkpoint_is_plain_data(tmp_path):
    class H(Reg):
        def __init__(self, width=8, act=None, name="h"):
            super().__init__()
            self.save_hyperparameters()

    m = H(width=3, act=lambda x: x)
    ck = ModelCheckpoint(dirpath=str(tmp_path / "ck"))
    _trainer(tmp_path, max_epochs=1, callbacks=[ck]).fit(m, *_loaders())
    assert m.hparams["width"] == 3 and callable(m.hparams["act"])
    data = dyntorch.load(ck.best_model_path)  # weights_only=True works
    assert data["hyper_parameters"] == {"width": 3, "name": "h"}


def test_several_val_loaders_and_disabled_validation(tmp_path):
    m = Reg()
    tl, vl = _loaders()
    vl2 = DataLoader(_data(8, seed=3), batch_size=4)
    tr = _trainer(tmp_path, max_epochs=1)
    tr.fit(m, tl, [vl, vl2])
    assert "val_loss/dataloader_idx_0" in tr.callback_metrics
    assert "val_loss/dataloader_idx_1" in tr.callback_metrics
    res = tr.validate(m, [vl, vl2], verbose=False)[0]
    assert res["val_loss/dataloader_idx_1"] != res["val_loss/dataloader_idx_0"]
    tr2 = _trainer(tmp_path / "2", max_epochs=1, limit_val_batches=0)
    tr2.fit(Reg(), tl, vl)
    assert "val_loss" not in tr2.callback_metrics


def test_copies_of_the_module_leave_the_trainer_behind(tmp_path):
    import copy

    m = Reg()
    tr = _trainer(tmp_path, max_epochs=1)
    tr.fit(m, *_loaders())
    c = copy.deepcopy(m)
    assert m.trainer is tr and c.trainer is None
    _assert_same(_params(m), _params(c))
