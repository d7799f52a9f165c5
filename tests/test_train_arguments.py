"""Trainer arguments that used to be dropped: num_sanity_val_steps, deterministic,
enable_model_summary, devices/strategy/num_nodes and unknown keywords; and the split of the
Trainer into modules (no attribute first created outside __init__)."""
from __future__ import annotations

import ast
import csv
import os
import pathlib

import numpy as np
import pytest

import dyntorch
from dyntorch import nn, optim
from dyntorch.train import Callback, Trainer, TrainModule
from dyntorch.utils.data import DataLoader, TensorDataset


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    y = x @ np.array([[1.0], [-2.0], [0.5], [0.0]])
    return TensorDataset(dyntorch.tensor(x), dyntorch.tensor(y))


class Reg(TrainModule):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(0.3)).double()
        self.head = nn.Linear(8, 1).double()
        self.val_batches = []

    def forward(self, x):
        return self.head(self.body(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.val_batches.append((self.trainer.sanity_checking, batch_idx))
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        return optim.SGD(self.parameters(), lr=0.05)


def _fit(tmp_path, **kw):
    m = Reg()
    tl = DataLoader(_data(), batch_size=8, shuffle=True)
    vl = DataLoader(_data(32, seed=1), batch_size=8)
    kw.setdefault("enable_progress_bar", False)
    tr = Trainer(default_root_dir=str(tmp_path), **kw)
    tr.fit(m, tl, vl)
    return tr, m


class Hooks(Callback):
    def __init__(self):
        self.calls = []

    def on_sanity_check_start(self, trainer, pl_module):
        self.calls.append("sanity_start")

    def on_sanity_check_end(self, trainer, pl_module):
        self.calls.append("sanity_end")

    def on_train_start(self, trainer, pl_module):
        self.calls.append("train_start")


def test_sanity_steps_run_before_training_and_log_nothing(tmp_path):
    hooks = Hooks()
    tr, m = _fit(tmp_path, max_epochs=1, num_sanity_val_steps=2, callbacks=[hooks])
    assert m.val_batches[:2] == [(True, 0), (True, 1)]
    # then the real end-of-epoch validation over all 4 batches
    assert m.val_batches[2:] == [(False, i) for i in range(4)]
    assert hooks.calls == ["sanity_start", "sanity_end", "train_start"]
    with open(os.path.join(tmp_path, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    # one epoch, one validation row: the sanity check wrote none
    assert sum(1 for r in rows if r.get("val_loss")) == 1


def test_sanity_steps_all_and_none(tmp_path):
    _, m = _fit(tmp_path / "a", max_epochs=1, num_sanity_val_steps=-1)
    assert [b for s, b in m.val_batches if s] == [0, 1, 2, 3]
    _, m = _fit(tmp_path / "b", max_epochs=1, num_sanity_val_steps=0)
    assert not any(s for s, _ in m.val_batches)


def test_sanity_step_errors_surface_before_training(tmp_path):
    class Broken(Reg):
        def validation_step(self, batch, batch_idx):
            raise KeyError("bad key in validation_step")

    m = Broken()
    tr = Trainer(default_root_dir=str(tmp_path), max_epochs=1, num_sanity_val_steps=1,
                 enable_progress_bar=False)
    with pytest.raises(KeyError, match="bad key"):
        tr.fit(m, DataLoader(_data(), batch_size=8), DataLoader(_data(), batch_size=8))
    assert tr.global_step == 0


@pytest.mark.parametrize("bad", [-2, 1.5, "2"])
def test_sanity_steps_bad_value(bad):
    with pytest.raises(ValueError, match="num_sanity_val_steps"):
        Trainer(num_sanity_val_steps=bad)


def test_deterministic_seeds_each_fit(tmp_path):
    # two runs from the same weights, with the global generators disturbed differently
    # before each fit: deterministic=True reseeds, so shuffles and dropout masks match
    dyntorch.manual_seed(3)
    m1 = Reg()
    dyntorch.manual_seed(3)
    m2 = Reg()
    for m, sub in ((m1, "c"), (m2, "d")):
        dyntorch.manual_seed(999 if sub == "c" else 4)  # disturb the global generator
        tr = Trainer(default_root_dir=str(tmp_path / sub), max_epochs=2, deterministic=True,
                     enable_progress_bar=False)
        tr.fit(m, DataLoader(_data(), batch_size=8, shuffle=True))
    for (k, v1), v2 in zip(m1.state_dict().items(), m2.state_dict().values()):
        np.testing.assert_array_equal(v1.numpy(), v2.numpy(), err_msg=k)
    assert dyntorch.are_deterministic_algorithms_enabled()
    dyntorch.use_deterministic_algorithms(False)


def test_without_deterministic_runs_differ(tmp_path):
    dyntorch.manual_seed(3)
    m1 = Reg()
    dyntorch.manual_seed(3)
    m2 = Reg()
    for m, s in ((m1, 1), (m2, 2)):
        dyntorch.manual_seed(s)
        Trainer(default_root_dir=str(tmp_path / str(s)), max_epochs=2,
                enable_progress_bar=False).fit(m, DataLoader(_data(), batch_size=8, shuffle=True))
    assert not np.array_equal(m1.head.weight.detach().numpy(), m2.head.weight.detach().numpy())


def test_deterministic_bad_value():
    with pytest.raises(ValueError, match="deterministic"):
        Trainer(deterministic="warn")


def test_model_summary_table(tmp_path, capsys):
    _fit(tmp_path, max_epochs=1, enable_model_summary=True)
    out = capsys.readouterr().out
    lines = out.splitlines()
    i = next(k for k, line in enumerate(lines) if "Name" in line and "Params" in line)
    body = lines[i + 2:i + 4]
    assert body[0].split("|")[1].strip() == "body" and "Sequential" in body[0]
    assert body[0].split("|")[3].strip() == "40"  # 4*8 + 8
    assert body[1].split("|")[1].strip() == "head" and body[1].split("|")[3].strip() == "9"
    assert "49        Trainable params" in out
    assert "0         Non-trainable params" in out
    assert "49        Total params" in out
    assert f"{49 * 8 / 1e6:<10.3f}Total estimated model params size (MB)" in out


def test_no_summary_by_default(tmp_path, capsys):
    _fit(tmp_path, max_epochs=1)
    assert "Trainable params" not in capsys.readouterr().out


def test_summary_counts_frozen_and_large():
    from dyntorch.train.summary import model_summary

    m = nn.Sequential(nn.Linear(1000, 1500), nn.Linear(1500, 2))
    for p in m[1].parameters():
        p.requires_grad_(False)
    text = model_summary(m)
    assert "1.5 M     Trainable params" in text
    assert "3.0 K     Non-trainable params" in text


def test_unknown_arguments_refused():
    with pytest.raises(TypeError, match=r"does not support gpus, precision.*implements: "
                                        r"max_epochs"):
        Trainer(precision="16-mixed", gpus=1)


@pytest.mark.parametrize("kw", [{"devices": 2}, {"num_nodes": 2}, {"devices": [0, 1]}])
def test_several_devices_need_ddp(kw):
    with pytest.raises(ValueError, match="strategy='ddp'.*mpiexec"):
        Trainer(**kw)


def test_unknown_strategy_refused():
    with pytest.raises(ValueError, match="strategy='deepspeed'"):
        Trainer(strategy="deepspeed")


def test_single_process_properties():
    tr = Trainer(devices=1)
    assert (tr.global_rank, tr.world_size, tr.is_global_zero) == (0, 1, True)


def _self_attrs(tree: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for t in targets:
            for sub in ast.walk(t):
                if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and \
                        sub.value.id == "self":
                    out.add(sub.attr)
    return out


def test_trainer_attributes_all_born_in_init():
    import dyntorch.train as train_pkg

    root = pathlib.Path(train_pkg.__file__).parent
    parts = ["trainer.py", "loop.py", "checkpointing.py", "metrics.py", "progress.py",
             "optimizers.py"]
    trees = {p: ast.parse((root / p).read_text()) for p in parts}
    init = next(n for n in ast.walk(trees["trainer.py"])
                if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    born = _self_attrs(init)
    later = set().union(*(_self_attrs(t) for t in trees.values())) - born
    assert not later, f"attributes first set outside Trainer.__init__: {sorted(later)}"
    for p in parts:
        assert len((root / p).read_text().splitlines()) < 600, p
