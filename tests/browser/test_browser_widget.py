"""End to end in a real JupyterLab and headless Chromium: the graph view, the step debugger,
the inspector, the live view, the plugin's shortcut and side panel, and the speed targets.

Screenshots: test-artifacts/*.png. Timings are printed (run with -s to see them) and written to
test-artifacts/browser-timings.json.
"""
from __future__ import annotations

import json
import math
import os
import time

import pytest

from ._lab import APP, json_output, open_notebook, run_cell, views, wait_drawn
from .conftest import ARTIFACTS
from .notebook_cells import (
    BIG,
    LIVE,
    NAN,
    PROBE,
    SETUP,
    SHOW,
    STEP_IN_CODE,
    STEPPER,
    TF_STEPPER,
    TRANSFORMER,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELLS = [SETUP, SHOW, STEPPER, PROBE, STEP_IN_CODE, PROBE, BIG, TRANSFORMER, LIVE, TF_STEPPER,
         NAN]
C_SETUP, C_SHOW, C_STEPPER, C_PROBE, C_CODE, C_PROBE2, C_BIG, C_TF, C_LIVE, C_TFS, C_NAN = (
    range(len(CELLS)))
TIMINGS: dict = {}


def record(name: str, value) -> None:
    TIMINGS[name] = value
    TIMINGS["load_average_1min"] = os.getloadavg()[0]  # the machine is shared: read with this
    print(f"[timing] {name}: {value}")
    (ARTIFACTS / "browser-timings.json").write_text(json.dumps(TIMINGS, indent=2))


def shot(page, name: str, locator=None) -> None:
    (locator or page).screenshot(path=str(ARTIFACTS / f"{name}.png"))


@pytest.fixture(scope="module")
def nb(browser, lab):
    ctx = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = ctx.new_page()
    page.set_default_timeout(60000)
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    lab.write("tutorial.ipynb", CELLS)
    open_notebook(page, lab, "tutorial.ipynb")
    run_cell(page, C_SETUP)
    yield page
    ctx.close()


def view_of(page, mode: str, nth: int = 0) -> tuple[int, dict]:
    vs = views(page)
    idx = [i for i, v in enumerate(vs) if v["mode"] == mode][nth]
    return idx, vs[idx]


def root_sel(page, index: int) -> str:
    vid = page.evaluate("(i) => [...window.__dyntorchHub.views][i].id", index)
    return f'.dt-root[data-view="{vid}"]'


def drawn_ids(page, sel: str) -> int:
    """Distinct graph items drawn (a shared leaf is drawn once per consumer, as id~k)."""
    return page.evaluate("(s) => new Set([...document.querySelectorAll(s + ' .dt-canvas svg g.node')]"
                         ".map(g => g.id.split('~')[0])).size", sel)


def status_step(page, sel: str) -> int:
    return int(page.get_attribute(f"{sel} .dt-status-text", "data-step"))


def test_show_draws_every_node(nb):
    out = run_cell(nb, C_SHOW)
    want = json.loads(out.splitlines()[0])["nodes"]
    i, _ = view_of(nb, "graph")
    v = wait_drawn(nb, i)
    sel = root_sel(nb, i)
    assert drawn_ids(nb, sel) == want == v["nodes"]
    record("first_view_with_engine_load_ms", round(v["first_draw_ms"], 1))
    shot(nb, "show-mlp", nb.locator(sel))


def _click_and_time(page, sel: str, cmd: str, expect_step: int) -> float:
    """Click a debugger button; ms until the status shows the new step (kernel round trip)."""
    return page.evaluate(
        """([sel, cmd, want]) => new Promise((ok, fail) => {
            const root = document.querySelector(sel);
            const st = () => Number(root.querySelector('.dt-status-text').dataset.step);
            const t0 = performance.now();
            const obs = new MutationObserver(() => {
              if (st() === want) { obs.disconnect(); ok(performance.now() - t0); } });
            obs.observe(root.querySelector('.dt-status'), {subtree: true, childList: true, attributes: true});
            root.querySelector(`button[data-cmd="${cmd}"]`).click();
            setTimeout(() => fail(new Error('no update within 10 s')), 10000); })""",
        [sel, cmd, expect_step])


def _assert_summary_matches(page, sel: str, part: str, want: dict) -> None:
    for k in ("mean", "std", "min", "max", "norm"):
        cell = page.locator(f"{sel} .dt-inspector [data-part={part}] [data-stat={k}]")
        got = float(cell.get_attribute("data-value"))
        assert math.isclose(got, want[k], rel_tol=1e-9, abs_tol=1e-12), (k, got, want[k])


def test_stepper_buttons_match_python(nb):
    run_cell(nb, C_STEPPER)
    i, _ = view_of(nb, "stepper")
    wait_drawn(nb, i)
    sel = root_sel(nb, i)
    assert status_step(nb, sel) == 0
    times = [_click_and_time(nb, sel, "step", k) for k in (1, 2, 3)]
    record("step_update_ms (click -> kernel -> view)", [round(t, 1) for t in times])
    py = json_output(nb, C_PROBE)
    assert py["step"] == 3
    current = nb.locator(f"{sel} g.node.st-current")
    assert current.count() == 1
    assert current.get_attribute("id") == py["current"]
    assert py["op"] in nb.inner_text(f"{sel} .dt-status")
    # the inspector of the highlighted node shows the gradient the Python stepper saw
    current.click()
    nb.wait_for_selector(f'{sel} .dt-insp[data-node="{py["current"]}"]')
    _assert_summary_matches(nb, sel, "in0", py["grad_in"])
    assert nb.locator(f"{sel} .dt-inspector [data-part=in0] .dt-hist rect").count() == len(py["grad_in"]["hist"]["counts"])
    shot(nb, "debugger-after-3-steps", nb.locator(sel))
    assert max(times) < 2000, times  # generous: a shared 2-core machine; target is 100 ms


def test_step_from_code_updates_view(nb):
    i, _ = view_of(nb, "stepper")
    sel = root_sel(nb, i)
    py = json_output(nb, C_CODE)
    assert py["step"] == 4
    nb.wait_for_function("(s) => document.querySelector(s + ' .dt-status-text').dataset.step === '4'",
                         arg=sel)
    assert nb.get_attribute(f"{sel} g.node.st-current", "id") == py["current"]


def test_keyboard_shortcut_from_plugin(nb):
    assert nb.evaluate(f"() => {APP}.commands.hasCommand('dyntorch:step')")
    i, _ = view_of(nb, "stepper")
    sel = root_sel(nb, i)
    nb.click(f"{sel} .dt-status")  # focus this debugger
    nb.keyboard.press("Alt+Period")
    nb.wait_for_function("(s) => document.querySelector(s + ' .dt-status-text').dataset.step === '5'",
                         arg=sel)
    py = json_output(nb, C_PROBE2)
    assert py["step"] == 5
    assert nb.get_attribute(f"{sel} g.node.st-current", "id") == py["current"]
    # back with the other shortcut
    nb.click(f"{sel} .dt-status")
    nb.keyboard.press("Alt+Comma")
    nb.wait_for_function("(s) => document.querySelector(s + ' .dt-status-text').dataset.step === '4'",
                         arg=sel)


def test_continue_reset_step_out_buttons(nb):
    i, _ = view_of(nb, "stepper")
    sel = root_sel(nb, i)
    total = nb.evaluate("(i) => [...window.__dyntorchHub.views][i].doc.status.total", i)
    _click_and_time(nb, sel, "reset", 0)
    assert nb.locator(f"{sel} g.node.st-done").count() == 0
    _click_and_time(nb, sel, "run", total)  # Continue: no breakpoint, runs to the end
    assert nb.locator(f"{sel} g.node.st-done").count() >= total - 1
    _click_and_time(nb, sel, "reset", 0)
    # a breakpoint on a node from the view: Continue stops there
    target = nb.evaluate("(i) => [...window.__dyntorchHub.views][i].doc.nodes"
                         ".find(n => n.op === 'GeluBackward0').id", i)
    nb.locator(f'{sel} g.node[id="{target}"]').click()
    nb.click(f'{sel} button[data-cmd="break"]')
    nb.wait_for_selector(f'{sel} g.node.dt-bp[id="{target}"]')
    nb.click(f'{sel} button[data-cmd="run"]')
    nb.wait_for_function("([s, t]) => document.querySelector(s + ' .dt-status-text').dataset.current === t",
                         arg=[sel, target])
    nb.click(f'{sel} button[data-cmd="break"]')  # off again
    nb.wait_for_function("([s, t]) => !document.querySelector(s + ` g.node[id='${t}']`).classList.contains('dt-bp')",
                         arg=[sel, target])
    _click_and_time(nb, sel, "reset", 0)
    _click_and_time(nb, sel, "step", 1)
    nb.click(f'{sel} button[data-cmd="step_out"]')  # out of the top level: to the end
    nb.wait_for_function("(s) => document.querySelector(s + ' .dt-status-text').dataset.step !== '1'",
                         arg=sel)


def test_nan_badge(nb):
    run_cell(nb, C_NAN)
    i, _ = view_of(nb, "stepper", 1)
    wait_drawn(nb, i)
    sel = root_sel(nb, i)
    nb.click(f"{sel} g.node.st-current")
    badge = nb.locator(f"{sel} .dt-inspector [data-badge=nan]").first
    assert badge.is_visible() and "NaN" in badge.inner_text()
    shot(nb, "inspector-nan-badge", nb.locator(sel))


def test_big_graph_first_draw(nb):
    t0 = time.perf_counter()
    out = run_cell(nb, C_BIG)
    want = json.loads(out.splitlines()[0])["nodes"]
    i, _ = view_of(nb, "graph", 1)
    v = wait_drawn(nb, i)
    wall = (time.perf_counter() - t0) * 1e3
    sel = root_sel(nb, i)
    assert drawn_ids(nb, sel) == want >= 500
    record("first_draw_500_nodes_ms (view created -> drawn)", round(v["first_draw_ms"], 1))
    record("first_draw_500_nodes_layout_ms", round(v["timings"][0]["layout_ms"], 1))
    record("first_draw_500_nodes_layout_plus_dom_ms", round(v["timings"][0]["draw_ms"], 1))
    record("first_draw_500_nodes_phases_ms", {k: round(x, 1) for k, x in v["phase"].items()})
    record("first_draw_500_nodes_cell_to_drawn_ms", round(wall, 1))
    shot(nb, "graph-500-nodes", nb.locator(sel))
    assert v["first_draw_ms"] < 6000  # target 1.5 s (measured figure is printed)


def test_transformer_opens_folded(nb):
    out = run_cell(nb, C_TF)
    info = json.loads(out.splitlines()[0])
    i, _ = view_of(nb, "graph", 2)
    v = wait_drawn(nb, i)
    sel = root_sel(nb, i)
    assert v["nodes"] == info["nodes"] > 900
    assert v["items"] < 100 < v["nodes"]
    record("transformer_nodes", info["nodes"])
    record("transformer_first_draw_folded_ms", round(v["first_draw_ms"], 1))
    shot(nb, "transformer-folded", nb.locator(sel))
    # open folded boxes one after the other: repeat group, one block, its attention
    opened = []
    for prefix in ("r:blocks.0", "s:blocks.", "s:blocks.0.attn"):
        box = nb.locator(f'{sel} g.node[id^="{prefix}"]').first
        if box.count() == 0:
            continue
        before = views(nb)[i]["drawn"]
        t0 = time.perf_counter()
        box.dispatch_event("click")  # it may lie partly outside the visible window
        v = wait_drawn(nb, i, before + 1)
        opened.append((box_id := v["selected"], round((time.perf_counter() - t0) * 1e3, 1),
                       round(v["timings"][-1]["draw_ms"], 1), v["items"]))
        assert box_id
    record("transformer_fold_open (id, click->drawn ms, layout+draw ms, items)", opened)
    assert opened and all(o[2] < 3000 for o in opened)
    shot(nb, "transformer-unfolded", nb.locator(sel))
    # search by op highlights matches
    nb.fill(f"{sel} .dt-search", "Softmax")
    assert int(nb.get_attribute(sel, "data-matches")) >= 1


def test_live_training_loop(nb):
    out = run_cell(nb, C_LIVE)
    py = json.loads([x for x in out.splitlines() if x.startswith("{")][-1])
    assert py["iterations"] == 12
    i, v = view_of(nb, "live")
    sel = root_sel(nb, i)
    nb.wait_for_function("(s) => { const l = document.querySelector(s + ' .dt-loss');"
                         " return l && l.dataset.points === '12'; }", arg=sel)
    assert v["drawn"] >= 1 and v["rev"] >= 2
    assert nb.locator(f"{sel} .dt-norm-row").count() == len(py["modules"])
    record("live_redraws_kernel_side", py["redraws"])
    shot(nb, "live-training", nb.locator(sel))


def test_transformer_debugger_and_dark_theme(nb):
    run_cell(nb, C_TFS)
    i, _ = view_of(nb, "stepper", 2)
    v = wait_drawn(nb, i)
    sel = root_sel(nb, i)
    assert v["status"]["step"] == 40
    times = [_click_and_time(nb, sel, "step", k) for k in (41, 42, 43)]
    record("transformer_step_update_ms (1065 nodes, folded)", [round(t, 1) for t in times])
    box = nb.locator(f"{sel} g.node.st-current")
    assert box.count() == 1  # the current node, or the folded box that holds it
    shot(nb, "debugger-transformer", nb.locator(sel))
    nb.evaluate(f"() => {APP}.commands.execute('apputils:change-theme', {{theme: 'JupyterLab Dark'}})")
    nb.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    nb.wait_for_timeout(500)
    shot(nb, "debugger-transformer-dark", nb.locator(sel))
    nb.evaluate(f"() => {APP}.commands.execute('apputils:change-theme', {{theme: 'JupyterLab Light'}})")
    nb.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")
    # one Graphviz worker for the whole page, however many views
    assert nb.evaluate("() => window.__dyntorchLayout.loads") == 1


def test_side_panel_mirrors_latest_graph(nb):
    nb.evaluate(f"() => {APP}.commands.execute('dyntorch:show-graph-panel')")
    nb.wait_for_selector("#dyntorch-graph-panel .dt-canvas svg g.node", timeout=30000)
    shot(nb, "side-panel")
    assert not [e for e in nb.errors if "dyntorch" in e.lower() or "dt-" in e], nb.errors


def test_overlay_colours_by_gradient_norm(nb):
    i, _ = view_of(nb, "stepper")
    sel = root_sel(nb, i)
    nb.select_option(f"{sel} .dt-overlay", "grad")
    coloured = nb.evaluate("(s) => [...document.querySelectorAll(s + ' g.node > path, ' + s + ' g.node > polygon')]"
                           ".filter(e => e.style.fill).length", sel)
    assert coloured >= 4  # every node backward has reached
    shot(nb, "debugger-grad-norm-overlay", nb.locator(sel))
    nb.select_option(f"{sel} .dt-overlay", "state")


def test_saved_notebook_shows_last_drawing_without_its_kernel(nb, lab):
    # views store their drawing in the widget state 1.5 s after their last layout
    nb.wait_for_function("() => [...window.__dyntorchHub.views].every(v => !v.drawn || v.snapshots > 0)")
    nb.wait_for_timeout(300)  # the state update reaches the kernel-side model
    nb.evaluate(f"() => {APP}.commands.execute('docmanager:save')")
    nb.wait_for_function(f"() => !{APP}.shell.currentWidget.context.model.dirty")
    saved = json.loads((lab.root / "tutorial.ipynb").read_text())
    state = saved["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json")
    assert state, "widget state was not saved with the notebook"
    snaps = [m["state"].get("_snapshot") for m in state["state"].values()
             if m["state"].get("_snapshot")]
    assert len(snaps) >= 2
    nb.evaluate(f"() => {APP}.shell.currentWidget.sessionContext.shutdown()")
    nb.reload()
    nb.wait_for_function(f"() => {APP} && {APP}.shell.currentWidget && {APP}.shell.currentWidget.content"
                         " && {APP}.shell.currentWidget.content.widgets.length > 5".replace("{APP}", APP))
    nb.wait_for_selector(".dt-canvas.dt-static svg g.node", timeout=60000)
    shot(nb, "reopened-saved-notebook")
