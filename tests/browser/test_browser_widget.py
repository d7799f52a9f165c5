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

from ._lab import APP, click_and_time, json_output, notebook_page, run_cell, views, wait_drawn
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
    with notebook_page(browser, lab, "tutorial.ipynb", CELLS, C_SETUP,
                       viewport={"width": 1500, "height": 1100}) as page:
        yield page


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
    times = [click_and_time(nb, sel, "step", k) for k in (1, 2, 3)]
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
    click_and_time(nb, sel, "reset", 0)
    assert nb.locator(f"{sel} g.node.st-done").count() == 0
    click_and_time(nb, sel, "run", total)  # Continue: no breakpoint, runs to the end
    assert nb.locator(f"{sel} g.node.st-done").count() >= total - 1
    click_and_time(nb, sel, "reset", 0)
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
    click_and_time(nb, sel, "reset", 0)
    click_and_time(nb, sel, "step", 1)
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
    times = [click_and_time(nb, sel, "step", k) for k in (41, 42, 43)]
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


def test_saving_does_not_switch_on_widget_state(nb, lab):
    # the plugin no longer flips the widget manager's "save widget state" setting; saved
    # notebooks keep a static picture in each view's output instead
    nb.evaluate(f"() => {APP}.commands.execute('docmanager:save')")
    nb.wait_for_function(f"() => !{APP}.shell.currentWidget.context.model.dirty")
    saved = json.loads((lab.root / "tutorial.ipynb").read_text())
    assert "application/vnd.jupyter.widget-state+json" not in saved["metadata"].get("widgets", {})
    assert nb.evaluate(f"() => {APP}.commands.hasCommand('dyntorch:save-widget-state')")


# ----------------------------------------------------------------------------- issue 12: the first minute
from .notebook_cells import FOLDABLE, LIVE_ONCE, RES_SHOW, RESNET, SEQ_PROBE, SEQ_STEPPER  # noqa: E402

CELLS12 = [RESNET, RES_SHOW, SEQ_STEPPER, SEQ_PROBE, FOLDABLE, LIVE_ONCE]
R_SETUP, R_SHOW, R_STEP, R_PROBE, R_FOLD, R_LIVE = range(len(CELLS12))


@pytest.fixture(scope="module")
def nb12(browser, lab):
    with notebook_page(browser, lab, "first_minute.ipynb", CELLS12, R_SETUP,
                       viewport={"width": 1400, "height": 1000}) as page:
        yield page


def _geometry(page, sel: str) -> dict:
    return page.evaluate(
        """(s) => { const root = document.querySelector(s);
            const c = root.querySelector('.dt-canvas').getBoundingClientRect();
            const nodes = [...root.querySelectorAll('.dt-canvas svg g.node')].map(g => {
              const r = g.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; });
            const texts = [...root.querySelectorAll('.dt-canvas svg g.node text')]
              .map(t => t.getBoundingClientRect().height);
            return {canvas: [c.left, c.top, c.right, c.bottom], nodes, texts}; }""", sel)


def test_first_paint_shows_every_node_readably(nb12):
    out = run_cell(nb12, R_SHOW)
    assert 30 <= json.loads(out.splitlines()[0])["nodes"] <= 45
    i, _ = view_of(nb12, "graph")
    wait_drawn(nb12, i)
    sel = root_sel(nb12, i)
    nb12.wait_for_timeout(300)
    g = _geometry(nb12, sel)
    cl, ct, cr, cb = g["canvas"]
    assert g["nodes"], "nothing drawn"
    for (left, top, right, bottom) in g["nodes"]:
        assert left >= cl - 1 and right <= cr + 1 and top >= ct - 1 and bottom <= cb + 1, (g["canvas"], left, top)
    assert min(g["texts"]) >= 9, min(g["texts"])
    shot(nb12, "first-paint-40-nodes", nb12.locator(sel))
    # Fit keeps it readable too
    nb12.click(f'{sel} button[data-cmd="fit"]')
    assert min(_geometry(nb12, sel)["texts"]) >= 9


def _run_cells_until_stepper(page) -> tuple[int, str]:
    run_cell(page, R_STEP)
    i, _ = view_of(page, "stepper")
    wait_drawn(page, i)
    return i, root_sel(page, i)


def test_inspector_follows_the_step_and_pins(nb12):
    i, sel = _run_cells_until_stepper(nb12)
    h0 = nb12.evaluate("(s) => document.querySelector(s).getBoundingClientRect().height", sel)
    for k in (1, 2, 3):
        click_and_time(nb12, sel, "step", k)
    cur = nb12.get_attribute(f"{sel} .dt-status-text", "data-current")
    nb12.wait_for_selector(f'{sel} .dt-inspector .dt-insp[data-node="{cur}"] [data-part=in0] [data-stat=norm]')
    # a click pins another node; the pin button unpins and the inspector follows again
    other = nb12.evaluate("(i) => [...window.__dyntorchHub.views][i].doc.nodes.find(n => n.state === 'done').id", i)
    nb12.locator(f'{sel} g.node[id="{other}"]').dispatch_event("click")
    click_and_time(nb12, sel, "step", 4)
    assert nb12.get_attribute(f"{sel} .dt-inspector .dt-insp", "data-node") == other
    nb12.click(f"{sel} .dt-unpin")
    cur = nb12.get_attribute(f"{sel} .dt-status-text", "data-current")
    nb12.wait_for_selector(f'{sel} .dt-inspector .dt-insp[data-node="{cur}"]')
    # ten steps later the widget has the same height (the inspector scrolls inside)
    for k in range(5, 11):
        click_and_time(nb12, sel, "step", k)
    h1 = nb12.evaluate("(s) => document.querySelector(s).getBoundingClientRect().height", sel)
    assert abs(h1 - h0) < 1, (h0, h1)
    shot(nb12, "inspector-follows-step", nb12.locator(sel))


def test_step_out_leaves_the_module(nb12):
    i, _ = view_of(nb12, "stepper")
    sel = root_sel(nb12, i)
    click_and_time(nb12, sel, "reset", 0)
    for k in (1, 2, 3):
        click_and_time(nb12, sel, "step", k)
    before = json_output(nb12, R_PROBE)
    nb12.click(f'{sel} button[data-cmd="step_out"]')
    nb12.wait_for_function("(s) => document.querySelector(s + ' .dt-status-text').dataset.step !== '3'", arg=sel)
    after = json_output(nb12, R_PROBE)
    assert after["step"] > before["step"]
    assert after["scope"] != before["scope"]
    assert after["step"] < len(after["scopes"])  # not run to the end


def test_breakpoint_without_a_selection_says_so(nb12):
    i, _ = view_of(nb12, "stepper")
    sel = root_sel(nb12, i)
    click_and_time(nb12, sel, "reset", 0)
    assert "press Step" in nb12.inner_text(f"{sel} .dt-status")
    nb12.click(f'{sel} button[data-cmd="break"]')
    assert "select a node first" in nb12.inner_text(f"{sel} .dt-status")


def test_parameters_are_named_and_sources_name_the_cell(nb12):
    i, _ = view_of(nb12, "stepper")
    sel = root_sel(nb12, i)
    labels = nb12.evaluate("(s) => [...document.querySelectorAll(s + ' g.node')].map(g => g.textContent)", sel)
    assert any("0.weight" in t and "8\u00d74" in t for t in labels), labels
    assert not any(t.startswith("leaf") for t in labels)
    click_and_time(nb12, sel, "step", 1)
    src = nb12.inner_text(f'{sel} .dt-inspector [data-field="source"]')
    assert src.startswith("In [") and "line" in src and "ipykernel" not in src, src


def test_legends_and_label_contrast(nb12):
    i, _ = view_of(nb12, "stepper")
    sel = root_sel(nb12, i)
    for k in (2, 3):
        click_and_time(nb12, sel, "step", k)
    nb12.select_option(f"{sel} .dt-overlay", "grad")
    assert nb12.locator(f"{sel} .dt-legend .dt-colorbar").count() == 1
    ticks = nb12.locator(f"{sel} .dt-legend .dt-tick")
    assert ticks.count() == 2 and float(ticks.nth(0).get_attribute("data-value")) <= float(ticks.nth(1).get_attribute("data-value"))
    nb12.select_option(f"{sel} .dt-overlay", "time")
    assert "profile" in nb12.inner_text(f"{sel} .dt-legend")
    nb12.select_option(f"{sel} .dt-overlay", "grad")
    contrast = """(s) => { const lum = c => { const m = c.match(/[\\d.]+/g).map(Number).slice(0, 3)
          .map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
          return 0.2126 * m[0] + 0.7152 * m[1] + 0.0722 * m[2]; };
        return [...document.querySelectorAll(s + ' g.node')].map(g => {
          const f = getComputedStyle(g.querySelector('path, polygon, ellipse')).fill;
          const t = getComputedStyle(g.querySelector('text')).fill;
          if (!/rgb/.test(f) || /rgba\\(.*, 0\\)/.test(f)) return 21;
          const a = lum(f), b = lum(t); return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05); }); }"""
    assert min(nb12.evaluate(contrast, sel)) >= 3
    shot(nb12, "grad-norm-legend-light", nb12.locator(sel))
    nb12.evaluate(f"() => {APP}.commands.execute('apputils:change-theme', {{theme: 'JupyterLab Dark'}})")
    nb12.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    nb12.wait_for_timeout(800)
    assert min(nb12.evaluate(contrast, sel)) >= 3
    nb12.select_option(f"{sel} .dt-overlay", "state")
    nb12.wait_for_timeout(300)
    assert min(nb12.evaluate(contrast, sel)) >= 3
    shot(nb12, "stepper-dark", nb12.locator(sel))
    nb12.evaluate(f"() => {APP}.commands.execute('apputils:change-theme', {{theme: 'JupyterLab Light'}})")
    nb12.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")


def _drawn_graph(page, index: int) -> dict:
    return page.evaluate(
        """(i) => { const v = [...window.__dyntorchHub.views][i];
            const edges = new Set(); for (const e of v.doc.edges) { const a = v.vis.rep.get(e.src), b = v.vis.rep.get(e.dst);
              if (a && b && a !== b) edges.add(a + '>' + b); }
            return {items: [...v.vis.items.values()].map(it => ({id: it.id, type: it.type, members: it.members,
                    scopes: it.scopes || null})), edges: [...edges].map(x => x.split('>')),
                    nodeEdges: v.doc.edges.map(e => [e.src, e.dst])}; }""", index)


def _reach(edges, start):
    adj = {}
    for a, b in edges:
        adj.setdefault(a, []).append(b)
    seen, todo = set(), [start]
    while todo:
        for w in adj.get(todo.pop(), ()):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def test_fold_makes_runs_of_consecutive_blocks_and_stays_a_dag(nb12):
    run_cell(nb12, R_FOLD)
    i, _ = view_of(nb12, "graph", 1)
    wait_drawn(nb12, i)
    sel = root_sel(nb12, i)
    before = views(nb12)[i]["drawn"]
    nb12.click(f'{sel} button[data-cmd="fold"]')
    wait_drawn(nb12, i, before + 1)
    g = _drawn_graph(nb12, i)
    groups = [it for it in g["items"] if it["type"] == "group"]
    assert groups and all(it["scopes"] == ["0", "1", "2"] for it in groups), groups
    ids = [it["id"] for it in g["items"]]
    for a in ids:  # acyclic, and an item reaches another iff one of its nodes does
        assert a not in _reach(g["edges"], a)
    members = {it["id"]: it["members"] for it in g["items"]}
    for a in ids:
        got = _reach(g["edges"], a)
        want = set()
        for m in members[a]:
            want |= _reach(g["nodeEdges"], m)
        want = {b for b in ids if b != a and set(members[b]) & want}
        assert got == want, (a, got, want)
    n_items = len(ids)
    before = views(nb12)[i]["drawn"]
    nb12.locator(f'{sel} g.node[id^="r:"]').first.dispatch_event("click")
    wait_drawn(nb12, i, before + 1)
    assert views(nb12)[i]["items"] > n_items  # the click opened the fold
    shot(nb12, "fold-consecutive", nb12.locator(sel))


def test_live_norm_bars_full_width_with_log_axis(nb12):
    run_cell(nb12, R_LIVE)
    live_roots = nb12.locator(f"{'.jp-Cell'} >> nth={R_LIVE}").locator(".dt-root")
    assert live_roots.count() == 1
    i, _ = view_of(nb12, "live")
    sel = root_sel(nb12, i)
    nb12.wait_for_selector(f"{sel} .dt-norm-row")
    widths = nb12.evaluate("""(s) => [...document.querySelectorAll(s + ' .dt-norm-row')].map(r =>
        r.querySelector('.dt-norm-bar').getBoundingClientRect().width / r.querySelector('.dt-norm-track').getBoundingClientRect().width)""", sel)
    assert max(widths) > 0.97, widths
    ticks = nb12.locator(f"{sel} .dt-norm-axis .dt-norm-tick")
    assert ticks.count() >= 1 and ticks.first.inner_text().startswith("1e")
    assert "log scale" in nb12.inner_text(f"{sel} .dt-charts")
    # the graph grew while forward ran: still every drawn item in view, readable
    nb12.wait_for_timeout(500)
    g = _geometry(nb12, sel)
    cl, ct, cr, cb = g["canvas"]
    assert all(left >= cl - 1 and right <= cr + 1 and top >= ct - 1 and bottom <= cb + 1
               for (left, top, right, bottom) in g["nodes"]), (g["canvas"], g["nodes"])
    assert min(g["texts"]) >= 9
    shot(nb12, "live-norms", nb12.locator(sel))


def test_saved_notebook_is_not_modified_on_open(nb12, lab):
    nb12.evaluate(f"() => {APP}.commands.execute('docmanager:save')")
    nb12.wait_for_function(f"() => !{APP}.shell.currentWidget.context.model.dirty")
    nb12.reload()
    nb12.wait_for_function(f"() => {APP} && {APP}.shell.currentWidget && {APP}.shell.currentWidget.context"
                           " && {APP}.shell.currentWidget.context.isReady".replace("{APP}", APP))
    nb12.wait_for_timeout(4000)
    assert not nb12.evaluate(f"() => {APP}.shell.currentWidget.context.model.dirty")
