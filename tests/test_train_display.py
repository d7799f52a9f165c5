"""Trainer display: the tqdm progress bar and the live notebook plot (with a fake display)."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch
from dyntorch import nn, optim
from dyntorch.train import Trainer, TrainModule
from dyntorch.train import progress as progress_mod
from dyntorch.utils.data import DataLoader, TensorDataset


class Tiny(TrainModule):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self.lin(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.lin(x), y), prog_bar=True)

    def configure_optimizers(self):
        return optim.SGD(self.parameters(), lr=0.1)


def _loader():
    rng = np.random.default_rng(0)
    ds = TensorDataset(dyntorch.tensor(rng.standard_normal((12, 3)).astype(np.float32)),
                       dyntorch.tensor(rng.standard_normal((12, 1)).astype(np.float32)))
    return DataLoader(ds, batch_size=4)


def test_progress_bar_runs(tmp_path, capsys):
    tr = Trainer(max_epochs=2, default_root_dir=str(tmp_path), enable_progress_bar=True)
    tr.fit(Tiny(), _loader(), _loader())
    err = capsys.readouterr().err
    assert "Epoch 0" in err and "Epoch 1" in err and "3/3" in err


def test_live_plot_updates_in_place(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    ipd = pytest.importorskip("IPython.display")
    updates = []

    class Handle:
        def update(self, obj):
            updates.append(obj)

    monkeypatch.setattr(progress_mod, "in_notebook", lambda: True)
    monkeypatch.setattr(ipd, "display", lambda *a, **k: Handle())
    tr = Trainer(max_epochs=3, default_root_dir=str(tmp_path), enable_progress_bar=False,
                 log_every_n_steps=1)
    tr.fit(Tiny(), _loader(), _loader())
    assert tr.live_plot is not None and updates
    assert updates[-1].data[:8] == b"\x89PNG\r\n\x1a\n"
    fig = tr.live_plot.figure
    titles = {ax.get_title() for ax in fig.axes}
    assert "loss" in titles
    series = tr.live_plot.series
    assert len(series["train_loss"][1]) == 9 and len(series["val_loss"][1]) == 3
    # off outside a kernel, and when asked
    monkeypatch.setattr(progress_mod, "in_notebook", lambda: False)
    tr2 = Trainer(max_epochs=1, default_root_dir=str(tmp_path / "b"), enable_progress_bar=False)
    tr2.fit(Tiny(), _loader())
    assert tr2.live_plot is None


@pytest.mark.notebook
@pytest.mark.slow
def test_in_a_real_kernel_bar_is_a_widget_and_plot_is_png(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    code = f'''
import numpy as np, dyntorch
from dyntorch import nn, optim
from dyntorch.train import Trainer, TrainModule
from dyntorch.utils.data import DataLoader, TensorDataset
class M(TrainModule):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 1)
    def training_step(self, b, i):
        loss = nn.functional.mse_loss(self.lin(b[0]), b[1])
        self.log("train_loss", loss, prog_bar=True)
        return loss
    def configure_optimizers(self):
        return optim.SGD(self.parameters(), lr=0.1)
rng = np.random.default_rng(0)
ds = TensorDataset(dyntorch.tensor(rng.standard_normal((32, 3)).astype(np.float32)),
                   dyntorch.tensor(rng.standard_normal((32, 1)).astype(np.float32)))
tr = Trainer(max_epochs=2, default_root_dir={str(tmp_path)!r}, log_every_n_steps=1)
tr.fit(M(), DataLoader(ds, batch_size=8))
print("live", tr.live_plot is not None)
'''
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outs = nb.cells[0].outputs
    kinds = [sorted(o.get("data", {})) for o in outs if o["output_type"] == "display_data"]
    assert ["image/png", "text/plain"] in kinds
    assert any("application/vnd.jupyter.widget-view+json" in k for k in kinds)
    assert any(o["output_type"] == "stream" and "live True" in o["text"] for o in outs)
