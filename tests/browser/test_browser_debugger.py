"""End to end in real JupyterLab and headless Chromium: the debugger across training steps in
the view (issue 15) and big graphs.

- the toolbar's HTML / SVG / PNG buttons write a file beside the notebook;
- a Recorder's step slider scrubs the colours; the inspector charts a node's history;
- an ``explain`` result and a ``diff`` display with their marks, caption and legend;
- scale: two LSTMCells over 200 steps (2,400 nodes) and over 840 steps (10,000 nodes), and a
  24-layer GPT with a module per head (10,500 nodes), first
  paint folded as "time step x N"; Step on the 10,000-node graph; search opens a fold; the
  page's JS heap while a live view runs 1,000 training steps.

Figures go to test-artifacts/debugger-timings.json (the machine is shared: read them with the
load average recorded beside them); screenshots to test-artifacts/debugger-*.png.
"""
from __future__ import annotations

import json
import os
import threading
import time

import pytest

from ._lab import click_and_time, json_output, notebook_page, output, run_cell, views, wait_drawn
from .conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SETUP = '''\
import json, time
import dyntorch as torch
import dyntorch.nn as nn
import dyntorch.nn.functional as F
import dyntorch.viz as viz
from dyntorch.debug import BackwardStepper, Recorder, explain
from dyntorch.viz.widget import show, stepper_widget, live

def lstm_loss(steps):
    torch.manual_seed(0)
    c1, c2 = nn.LSTMCell(8, 16), nn.LSTMCell(16, 16)
    xs = torch.randn(steps, 4, 8)
    s1 = s2 = None
    for t in range(steps):
        s1 = c1(xs[t], s1)
        s2 = c2(s1[0], s2)
    return s2[0].pow(2).mean()

torch.manual_seed(0)
mlp = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
X, Y = torch.randn(32, 6), torch.randn(32, 1)
'''

EXPORT = '''\
ew = show(F.mse_loss(mlp(X), Y), model=mlp)
ew
'''

LSTM = '''\
lw = show(lstm_loss(200))
print(json.dumps({"nodes": len(lw.doc["nodes"])}))
lw
'''

BIG = '''\
big_loss = lstm_loss(840)
bw = show(big_loss)
print(json.dumps({"nodes": len(bw.doc["nodes"])}))
bw
'''

BIG_STEPPER = '''\
bs = BackwardStepper(big_loss)
bs
'''

RECORD = '''\
opt = torch.optim.SGD(mlp.parameters(), lr=0.05)
rec = Recorder(mlp, keep=50, optimizer=opt)
for i in range(20):
    opt.zero_grad()
    loss = F.mse_loss(mlp(X), Y)
    loss.backward()
    opt.step()
rec.close()
rw = show(rec)
relu_key = next(n["key"] for n in rw.doc["nodes"] if "relu" in n["op"].lower())
print(json.dumps({"steps": rec.steps, "relu": relu_key, "relu_id": next(
    n["id"] for n in rw.doc["nodes"] if n["key"] == relu_key)}))
rw
'''

REC_PROBE = '''\
c = rw.controller
print(json.dumps({"step": c.step, "ms": c.last_ms,
                  "grad_norm": rec.history(relu_key, "grad_norm").tolist(),
                  "out_zeros": rec.history(relu_key, "out_zeros").tolist()}))
'''

EXPLAIN = '''\
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
with torch.no_grad():
    net[0].bias.fill_(-100.0)
ex = explain((net(torch.randn(2, 3)).log() * 2.0).sum())
print(json.dumps({"cause": f"n{ex.node.seq}", "chain": [f"n{n.seq}" for n in ex.chain],
                  "reason": ex.reason}))
ex
'''

DIFF = '''\
def net2():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
ma, mb = net2(), net2()
with torch.no_grad():
    mb[2].weight.mul_(3.0)
xd = torch.randn(5, 3)
dd = viz.diff(ma(xd).sum(), mb(xd).sum(), model=(ma, mb))
print(json.dumps({"first": dd.first_divergent().scope}))
dd
'''

LIVE = '''\
small = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1))
sopt = torch.optim.SGD(small.parameters(), lr=0.01)
t0 = time.time()
with live(model=small, interval=0.05) as lv:
    for i in range(1000):
        sopt.zero_grad()
        l = F.mse_loss(small(X), Y)
        l.backward()
        sopt.step()
        time.sleep(0.008)  # a training step of ~10 ms: the view redraws ~100 times
print(json.dumps({"iterations": lv.iteration, "redraws": lv.redraws, "s": time.time() - t0}))
'''

GPT = '''\
class Head(nn.Module):
    def __init__(self, n_embd, head_size, block):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(block, block)))
        self.dropout = nn.Dropout(0.1)
    def forward(self, x):
        B, T, C = x.shape
        k, q = self.key(x), self.query(x)
        wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
        wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        wei = self.dropout(F.softmax(wei, dim=-1))
        return wei @ self.value(x)

class MultiHead(nn.Module):
    def __init__(self, n_embd, n_head, block):
        super().__init__()
        self.heads = nn.ModuleList([Head(n_embd, n_embd // n_head, block) for _ in range(n_head)])
        self.proj = nn.Linear(n_embd, n_embd)
        self.dropout = nn.Dropout(0.1)
    def forward(self, x):
        return self.dropout(self.proj(torch.cat([h(x) for h in self.heads], dim=-1)))

class Block(nn.Module):
    def __init__(self, n_embd, n_head, block):
        super().__init__()
        self.sa = MultiHead(n_embd, n_head, block)
        self.ffwd = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.ReLU(),
                                  nn.Linear(4 * n_embd, n_embd), nn.Dropout(0.1))
        self.ln1, self.ln2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
    def forward(self, x):
        x = x + self.sa(self.ln1(x))
        return x + self.ffwd(self.ln2(x))

class GPT(nn.Module):
    def __init__(self, vocab=65, n_embd=64, n_head=32, n_layer=24, block=16):
        super().__init__()
        self.tok = nn.Embedding(vocab, n_embd)
        self.pos = nn.Embedding(block, n_embd)
        self.blocks = nn.Sequential(*[Block(n_embd, n_head, block) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab)
    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.tok(idx) + self.pos(torch.arange(T))
        logits = self.lm_head(self.ln_f(self.blocks(x)))
        return F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))

torch.manual_seed(0)
gpt = GPT()
gidx, gtgt = torch.randint(0, 65, (4, 16)), torch.randint(0, 65, (4, 16))
gpt_loss = gpt(gidx, gtgt)
gw = show(gpt_loss, model=gpt)
print(json.dumps({"nodes": len(gw.doc["nodes"])}))
gw
'''
GPT_STEPPER = '''\
gs = BackwardStepper(gpt_loss)
gs
'''

FIT_REC = '''\
from dyntorch.train import LightningModule, Trainer
from dyntorch.train.callbacks import Callback, GraphRecorder
from dyntorch.utils.data import DataLoader, TensorDataset

class Slow(Callback):  # a training step of ~40 ms, so that fit lasts a few seconds
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        time.sleep(0.04)

class Reg(LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.mse_loss(self.net(x), y)
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)

torch.manual_seed(0)
gcb = GraphRecorder(keep=100, show=True)
Trainer(max_epochs=1, callbacks=[gcb, Slow()], enable_progress_bar=False, logger=False,
        enable_checkpointing=False).fit(
    Reg(), DataLoader(TensorDataset(torch.randn(640, 6), torch.randn(640, 1)), batch_size=8))
print(json.dumps({"last": gcb.recorder.steps[-1]}))
'''

CELLS = [SETUP, EXPORT, LSTM, BIG, BIG_STEPPER, GPT, GPT_STEPPER, RECORD, REC_PROBE, FIT_REC,
         EXPLAIN, DIFF, LIVE]
(C_SETUP, C_EXPORT, C_LSTM, C_BIG, C_BIG_STEPPER, C_GPT, C_GPT_STEPPER, C_RECORD, C_REC_PROBE,
 C_FIT_REC, C_EXPLAIN, C_DIFF,
 C_LIVE) = range(len(CELLS))
FIGURES: dict = {}


def record(name: str, value) -> None:
    FIGURES[name] = value
    FIGURES["load_average_1min"] = os.getloadavg()[0]  # the machine is shared
    print(f"[figure] {name}: {value}")
    (ARTIFACTS / "debugger-timings.json").write_text(json.dumps(FIGURES, indent=2))


def shot(page, name: str, sel: str) -> None:
    page.locator(sel).screenshot(path=str(ARTIFACTS / f"debugger-{name}.png"))


@pytest.fixture(scope="module")
def nb(browser, lab):
    with notebook_page(browser, lab, "debugger.ipynb", CELLS, C_SETUP,
                       viewport={"width": 1400, "height": 1000}, timeout=90000) as page:
        page.lab = lab
        yield page


def last_view(page, mode: str) -> tuple[int, str]:
    """Index and root selector of the newest view of ``mode``."""
    vs = views(page)
    i = [k for k, v in enumerate(vs) if v["mode"] == mode][-1]
    vid = page.evaluate("(i) => [...window.__dyntorchHub.views][i].id", i)
    return i, f'.dt-root[data-view="{vid}"]'


def view_eval(page, i: int, body: str):
    """Evaluate ``body`` (a function of ``v``, the GraphView) on view ``i``."""
    return page.evaluate(f"(i) => {{ const v = [...window.__dyntorchHub.views][i]; {body} }}", i)


# ----------------------------------------------------------------------------- export
@pytest.mark.parametrize("fmt", ["svg", "html", "png"])
def test_toolbar_export_writes_file_beside_notebook(nb, fmt):
    """SVG and HTML: the kernel draws them (export()); PNG: the drawing as shown, rasterised
    in the browser; each is written beside the notebook and named in the status line."""
    if fmt == "svg":
        run_cell(nb, C_EXPORT)
    i, sel = last_view(nb, "graph")
    wait_drawn(nb, i)
    before = set(nb.lab.root.glob(f"dyntorch-graph-*.{fmt}"))
    nb.click(f'{sel} button[data-cmd="export-{fmt}"]')
    nb.wait_for_function("(s) => { const d = document.querySelector(s).dataset; "
                         f"return (d.exported || '').endsWith('.{fmt}') || !!d.exportError; }}",
                         arg=sel)
    assert not nb.get_attribute(sel, "data-export-error")
    path = nb.get_attribute(sel, "data-exported")
    new = set(nb.lab.root.glob(f"dyntorch-graph-*.{fmt}")) - before
    assert len(new) == 1 and str(next(iter(new))) == path
    assert "beside the notebook" in nb.inner_text(f"{sel} .dt-status")
    data = next(iter(new)).read_bytes()
    if fmt == "png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert width > 100 and height > 100  # the whole drawing, at twice its size
        # not blank: the PNG holds more than a flat background (compressed size)
        assert len(data) > 4000
    else:
        text = data.decode()
        assert "relu" in text.lower() and ("<svg" in text)
        if fmt == "html":
            assert 'id="dt-doc"' in text and "<script src=" not in text  # offline


# ----------------------------------------------------------------------------- scale
def _first_paint(nb, cell: int, name: str) -> dict:
    out = run_cell(nb, cell, timeout=240000)
    want = json.loads(out.splitlines()[0])["nodes"]
    i, sel = last_view(nb, "graph")
    v = wait_drawn(nb, i, timeout=120000)
    assert v["nodes"] == want
    record(f"{name}_nodes", want)
    record(f"{name}_first_paint_ms (view created -> drawn)", round(v["first_draw_ms"], 1))
    record(f"{name}_drawn_items", v["items"])
    record(f"{name}_time_steps", v["time_steps"])
    shot(nb, name, sel)
    return {"i": i, "sel": sel, "v": v, "nodes": want}


def _assert_first_paint_placement(nb, sel: str) -> dict:
    """The first paint of a graph too big to fit readably: the folded "time step x N" box is in
    the canvas, no box is cut by the canvas's top edge, and when boxes lie out of view the
    canvas is filled down to its bottom (no blank band below the lowest visible box)."""
    nb.wait_for_timeout(300)
    g = nb.evaluate(
        """(s) => { const root = document.querySelector(s);
            const c = root.querySelector('.dt-canvas').getBoundingClientRect();
            const nodes = [...root.querySelectorAll('.dt-canvas svg g.node')].map(g => {
              const r = g.getBoundingClientRect();
              return {id: g.id, text: g.textContent, box: [r.left, r.top, r.right, r.bottom]}; });
            return {canvas: [c.left, c.top, c.right, c.bottom], nodes}; }""", sel)
    cl, ct, cr, cb = g["canvas"]
    folds = [n for n in g["nodes"] if n["id"].startswith("r:") and " \u00d7 " in n["text"]]
    assert folds, "no folded box drawn"
    for n in folds:
        left, top, right, bottom = n["box"]
        assert left >= cl - 1 and right <= cr + 1 and top >= ct - 1 and bottom <= cb + 1, \
            (n["text"], n["box"], g["canvas"])
    cut = [n["text"] for n in g["nodes"] if n["box"][1] < ct - 1 and n["box"][3] > ct + 1]
    assert not cut, f"boxes cut by the canvas's top edge: {cut}"
    visible = [n["box"] for n in g["nodes"]
               if n["box"][3] > ct and n["box"][1] < cb and n["box"][2] > cl and n["box"][0] < cr]
    hidden = len(g["nodes"]) - len(visible)
    assert visible
    blank = (cb - max(b[3] for b in visible)) / (cb - ct)
    record_name = sel.split('"')[1]
    print(f"[placement] {record_name}: {len(visible)} of {len(g['nodes'])} boxes visible, "
          f"blank below {blank:.2f}")
    if hidden:
        assert blank < 0.12, f"{blank:.0%} of the canvas is blank below the lowest visible box"
    return {"visible": len(visible), "hidden": hidden, "blank": blank}


def test_lstm_2400_nodes_paints_folded_by_time_step(nb):
    r = _first_paint(nb, C_LSTM, "lstm200")
    v, sel = r["v"], r["sel"]
    assert r["nodes"] > 2000
    ts = v["time_steps"]
    assert ts and ts["reps"] >= 190 and ts["period"] >= 10  # one step = both cells' ops
    assert v["items"] < 60
    label = nb.locator(f'{sel} g.node[id^="r:@t"]').first.text_content()
    assert "time step" in label and f"\u00d7 {ts['reps']}" in label
    assert v["first_draw_ms"] < 6000  # target 2 s; the figure is recorded (shared machine)
    p = _assert_first_paint_placement(nb, sel)
    record("lstm200_first_paint_visible_boxes", p["visible"])


def test_10k_nodes_paint_folded_step_and_search(nb):
    r = _first_paint(nb, C_BIG, "lstm840")
    v, sel, i = r["v"], r["sel"], r["i"]
    assert r["nodes"] >= 10000
    assert v["items"] < 60 and v["time_steps"]["reps"] >= 800
    assert v["first_draw_ms"] < 8000  # target 2 s; the figure is recorded
    p = _assert_first_paint_placement(nb, sel)
    record("lstm840_first_paint_visible_boxes", p["visible"])
    # search by op; Enter goes on to the next match, until one inside the folded time steps:
    # its fold opens and the node is drawn, selected and in view
    nb.fill(f"{sel} .dt-search", "LstmCell")
    for k in range(8):
        drawn = views(nb)[i]["drawn"]
        t0 = time.perf_counter()
        nb.press(f"{sel} .dt-search", "Enter")
        nb.wait_for_function("([s, k]) => document.querySelector(s).dataset.found && "
                             "document.querySelector(s + ' .dt-flash').textContent.includes("
                             "`match ${k + 1} of`)", arg=[sel, k])
        found = nb.get_attribute(sel, "data-found")
        nb.wait_for_selector(f'{sel} g.node[id="{found}"].dt-selected', timeout=90000)
        if views(nb)[i]["drawn"] > drawn:
            break  # this match was inside a fold, which opened
    else:
        raise AssertionError("no search match inside a fold was revealed")
    v2 = views(nb)[i]
    record("lstm840_search_reveal_ms (enter -> fold opened and drawn)",
           round((time.perf_counter() - t0) * 1e3, 1))
    record("lstm840_items_after_search", v2["items"])
    assert v2["selected"] == found and v2["items"] > v["items"]
    box = nb.locator(f'{sel} g.node[id="{found}"]').first.bounding_box()
    canvas = nb.locator(f"{sel} .dt-canvas").bounding_box()
    assert canvas["x"] <= box["x"] + box["width"] / 2 <= canvas["x"] + canvas["width"]
    assert canvas["y"] <= box["y"] + box["height"] / 2 <= canvas["y"] + canvas["height"]
    shot(nb, "lstm840-search", sel)


def _step_times(nb, sel: str, n: int) -> list[float]:
    """Milliseconds from a Step click to the view showing that step, for the first ``n``."""
    return [click_and_time(nb, sel, "step", k, timeout_ms=20000) for k in range(1, n + 1)]


def test_step_on_10k_nodes_under_100ms(nb):
    run_cell(nb, C_BIG_STEPPER, timeout=240000)
    i, sel = last_view(nb, "stepper")
    wait_drawn(nb, i, timeout=120000)
    times = _step_times(nb, sel, 5)
    record("lstm840_step_ms (click -> kernel -> view updated)", [round(t, 1) for t in times])
    # the front end's own part of a step (diff applied and restyled), without the kernel
    restyle = view_eval(nb, i, "const t0 = performance.now(); v.restyle(); return performance.now() - t0;")
    record("lstm840_restyle_ms (front end only)", round(restyle, 1))
    shot(nb, "lstm840-stepper", sel)
    assert sorted(times)[2] < 1000  # median; target 100 ms (shared machine: figure recorded)


def test_24_layer_transformer_10k_nodes_paints_folded_and_steps(nb):
    """A GPT written as users write it (a module per attention head, 24 blocks in a
    Sequential): over 10,000 nodes; the blocks fold to one repeated box; Step stays quick."""
    r = _first_paint(nb, C_GPT, "gpt24")
    v, sel = r["v"], r["sel"]
    assert r["nodes"] >= 10000
    assert v["items"] < 100
    texts = nb.locator(f"{sel} g.node").all_text_contents()
    assert any("\u00d7 24" in t for t in texts), texts  # the 24 blocks, one folded run
    assert v["first_draw_ms"] < 8000  # target 2 s; the figure is recorded (shared machine)
    run_cell(nb, C_GPT_STEPPER, timeout=240000)
    i, sel = last_view(nb, "stepper")
    wait_drawn(nb, i, timeout=120000)
    times = _step_times(nb, sel, 5)
    record("gpt24_step_ms (click -> kernel -> view updated)", [round(t, 1) for t in times])
    shot(nb, "gpt24-stepper", sel)
    assert sorted(times)[2] < 1000  # median; target 100 ms (shared machine: figure recorded)


# ----------------------------------------------------------------------------- recorder
def test_recorder_slider_scrubs_and_inspector_charts_history(nb):
    info = json_output(nb, C_RECORD)
    i, sel = last_view(nb, "graph")
    wait_drawn(nb, i)
    assert nb.get_attribute(sel, "data-rec-step") == str(info["steps"][-1])
    assert nb.locator(f"{sel} .dt-overlay").input_value() == "grad"
    fills_last = nb.evaluate("(s) => [...document.querySelectorAll(s + ' g.node > path, ' + s + "
                             "' g.node > polygon')].map(p => p.style.fill).join('|')", sel)
    # drag the slider to the first step: the kernel sends that step's colours
    t0 = time.perf_counter()
    nb.evaluate("(s) => { const r = document.querySelector(s + ' .dt-step-slider'); r.value = '0';"
                " r.dispatchEvent(new Event('input')); }", sel)
    nb.wait_for_function("(s) => document.querySelector(s).dataset.recStep === '0'", arg=sel)
    record("recorder_scrub_ms (slider -> recoloured)", round((time.perf_counter() - t0) * 1e3, 1))
    fills_first = nb.evaluate("(s) => [...document.querySelectorAll(s + ' g.node > path, ' + s + "
                              "' g.node > polygon')].map(p => p.style.fill).join('|')", sel)
    assert fills_first != fills_last
    probe = json_output(nb, C_REC_PROBE)
    assert probe["step"] == 0
    record("recorder_step_kernel_ms", round(probe["ms"], 2))
    # the dead-fraction overlay colours by the ReLU's zeros at this step
    nb.select_option(f"{sel} .dt-overlay", "dead")
    assert "zeros" in nb.inner_text(f"{sel} .dt-legend")
    nb.select_option(f"{sel} .dt-overlay", "grad")
    # the inspector of the ReLU node charts its history (one point per kept step)
    nb.locator(f'{sel} g.node[id="{info["relu_id"]}"]').first.dispatch_event("click")
    nb.wait_for_selector(f'{sel} .dt-history[data-points="{len(info["steps"])}"]')
    pts = nb.get_attribute(f'{sel} .dt-history svg[data-stat="grad_norm"]', "data-points")
    assert int(pts) == len(probe["grad_norm"])
    # the chart's last label is the recorder's own last value
    text = nb.inner_text(f'{sel} .dt-history')
    assert "grad_norm" in text and "out_zeros" in text
    shot(nb, "recorder", sel)


def test_trainer_recorder_view_appears_and_follows_fit_while_it_runs(nb):
    """``GraphRecorder(show=True)``: the view is displayed inside ``Trainer.fit`` and its step
    advances while the cell still runs (80 steps of ~40 ms), then ends on the last step."""
    before = len(views(nb))
    nb.evaluate("""async (i) => { const nb = window.jupyterapp.shell.currentWidget;
        nb.content.activeCellIndex = i;
        window.jupyterapp.commands.execute('notebook:run-cell'); }""", C_FIT_REC)
    nb.wait_for_function("(n) => window.__dyntorchHub && [...window.__dyntorchHub.views].length > n "
                         "&& [...window.__dyntorchHub.views][n].drawn >= 1", arg=before,
                         timeout=60000)
    i, sel = last_view(nb, "graph")
    busy = "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status"
    seen = []
    while nb.evaluate(busy) != "idle":
        s = nb.get_attribute(sel, "data-rec-step")
        if s is not None and (not seen or seen[-1] != s):
            seen.append(s)
        nb.wait_for_timeout(100)
    record("fit_recorder_steps_seen_while_running", seen)
    assert len(seen) >= 3, seen  # it moved while fit ran, not only at the end
    assert [int(x) for x in seen] == sorted(int(x) for x in seen)
    last = json.loads(output(nb, C_FIT_REC).splitlines()[-1])["last"]
    nb.wait_for_function("([s, k]) => document.querySelector(s).dataset.recStep === String(k)",
                         arg=[sel, last])
    shot(nb, "fit-recorder", sel)


# ----------------------------------------------------------------------------- marks
def test_explain_marks_cause_and_chain_with_caption(nb):
    info = json_output(nb, C_EXPLAIN)
    i, sel = last_view(nb, "graph")
    wait_drawn(nb, i)
    assert info["reason"] in nb.inner_text(f"{sel} .dt-caption")
    fill = nb.evaluate("([s, id]) => { const g = document.querySelector(s + ` g.node[id=\"${id}\"]`);"
                       " return g.querySelector('path, polygon').style.fill; }", [sel, info["cause"]])
    assert fill.replace(" ", "") in ("rgb(239,71,111)", "#ef476f")
    chain = [c for c in info["chain"] if c != info["cause"]]
    for c in chain:
        f = nb.evaluate("([s, id]) => document.querySelector(s + ` g.node[id=\"${id}\"]`)"
                        ".querySelector('path, polygon').style.fill", [sel, c])
        assert f.replace(" ", "") in ("rgb(255,209,102)", "#ffd166")
    assert "cause" in nb.inner_text(f"{sel} .dt-legend")
    shot(nb, "explain", sel)


def test_diff_coloured_by_divergence_with_legend(nb):
    info = json_output(nb, C_DIFF)
    i, sel = last_view(nb, "graph")
    wait_drawn(nb, i)
    legend = nb.inner_text(f"{sel} .dt-legend")
    assert "diverged" in legend and "same" in legend
    assert "first divergent" in nb.inner_text(f"{sel} .dt-caption")
    reds = nb.evaluate("(s) => [...document.querySelectorAll(s + ' g.node.dt-marked')]"
                       ".filter(g => g.querySelector('path, polygon').style.fill.replace(/ /g, '')"
                       " === 'rgb(239,71,111)').length", sel)
    assert reds >= 1 and info["first"] == "2"
    shot(nb, "diff", sel)


# ----------------------------------------------------------------------------- memory
def test_live_view_memory_bounded_over_1000_steps(nb):
    cdp = nb.context.new_cdp_session(nb)
    cdp.send("HeapProfiler.enable")

    def heap() -> float:
        cdp.send("HeapProfiler.collectGarbage")
        return cdp.send("Runtime.getHeapUsage")["usedSize"] / 2 ** 20

    base = heap()
    done = threading.Event()
    nb.evaluate(f"""() => {{ const nb = window.jupyterapp.shell.currentWidget;
        nb.content.activeCellIndex = {C_LIVE};
        window.jupyterapp.commands.execute('notebook:run-cell'); }}""")
    samples = []
    t0 = time.time()
    while time.time() - t0 < 300:
        nb.wait_for_timeout(500)
        samples.append(round(heap(), 1))
        finished = nb.evaluate(f"""() => {{ const nb = window.jupyterapp.shell.currentWidget;
            const c = nb.content.widgets[{C_LIVE}];
            return c.model.executionCount !== null &&
                   nb.sessionContext.session.kernel.status === 'idle'; }}""")
        if finished:
            break
    done.set()
    out = json.loads([x for x in nb.evaluate(
        f"() => window.jupyterapp.shell.currentWidget.content.widgets[{C_LIVE}]"
        ".outputArea.node.innerText").splitlines() if x.startswith("{")][-1])
    assert out["iterations"] == 1000
    end = heap()
    record("live_1000_steps_heap_MB (base, samples, end)", {"base": round(base, 1),
                                                              "samples": samples,
                                                              "end": round(end, 1)})
    record("live_1000_steps (redraws, seconds)", [out["redraws"], round(out["s"], 1)])
    third = max(1, len(samples) // 3)
    early, late = max(samples[:third]), max(samples[-third:])
    # bounded: the last third of the run holds no more than the first third plus a margin
    assert late <= early * 1.25 + 8, samples
    assert end - base < 40, (base, end)
    assert not nb.errors, nb.errors
