"""Driving JupyterLab from Playwright: open a notebook, run cells, read outputs, find views."""
from __future__ import annotations

import contextlib
import json

APP = "window.jupyterapp"


@contextlib.contextmanager
def notebook_page(browser, lab, name: str, cells: list[str], setup_cell: int, *,
                  viewport: dict, timeout: float = 60000):
    """A page with notebook ``name`` (written from ``cells``) open and its set-up cell run;
    ``page.errors`` collects the page's JavaScript errors."""
    ctx = browser.new_context(viewport=viewport)
    try:
        page = ctx.new_page()
        page.set_default_timeout(timeout)
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        lab.write(name, cells)
        open_notebook(page, lab, name)
        run_cell(page, setup_cell)
        yield page
    finally:
        ctx.close()


def wait_kernel_ready(page, timeout: float = 90000) -> None:
    """Wait until the current notebook's kernel is connected and idle."""
    page.wait_for_function(
        f"""() => {{ const w = {APP} && {APP}.shell.currentWidget;
            const k = w && w.sessionContext && w.sessionContext.session &&
                      w.sessionContext.session.kernel;
            return k && k.connectionStatus === 'connected' && k.status === 'idle'; }}""",
        timeout=timeout)


def open_notebook(page, lab, name: str) -> None:
    # ?reset: a fresh workspace, so a page never reopens the notebooks of an earlier page
    page.goto(f"{lab.url}/lab/tree/{name}?reset")
    wait_kernel_ready(page)


def click_and_time(page, sel: str, cmd: str, expect_step: int, timeout_ms: int = 10000) -> float:
    """Click a debugger button of view ``sel``; ms until its status shows ``expect_step``
    (kernel round trip and redraw)."""
    return page.evaluate(
        """([sel, cmd, want, limit]) => new Promise((ok, fail) => {
            const root = document.querySelector(sel);
            const st = () => Number(root.querySelector('.dt-status-text').dataset.step);
            const t0 = performance.now();
            const obs = new MutationObserver(() => {
              if (st() === want) { obs.disconnect(); ok(performance.now() - t0); } });
            obs.observe(root.querySelector('.dt-status'), {subtree: true, childList: true, attributes: true});
            root.querySelector(`button[data-cmd="${cmd}"]`).click();
            setTimeout(() => fail(new Error(`no update within ${limit} ms`)), limit); })""",
        [sel, cmd, expect_step, timeout_ms])


def run_cell(page, i: int, timeout: float = 120000) -> str:
    """Run cell ``i`` of the current notebook; return its output text (raises on an error)."""
    page.evaluate(
        f"""async (i) => {{ const nb = {APP}.shell.currentWidget;
            nb.content.activeCellIndex = i;
            await {APP}.commands.execute('notebook:run-cell'); }}""", i, )
    page.wait_for_function(
        f"""(i) => {{ const nb = {APP}.shell.currentWidget; const c = nb.content.widgets[i];
            return c.model.executionCount !== null &&
                   nb.sessionContext.session.kernel.status === 'idle'; }}""",
        arg=i, timeout=timeout)
    text = output(page, i)
    if "Traceback" in text or "Error" in text.split("\n")[0]:
        raise AssertionError(f"cell {i} failed:\n{text}")
    return text


def output(page, i: int) -> str:
    return page.evaluate(
        f"""(i) => {{ const c = {APP}.shell.currentWidget.content.widgets[i];
            return c.outputArea ? c.outputArea.node.innerText : ''; }}""", i)


def json_output(page, i: int) -> dict:
    """Run cell ``i`` that prints one JSON line and parse it."""
    text = run_cell(page, i)
    line = [x for x in text.splitlines() if x.startswith("{")][-1]
    return json.loads(line)


def views(page) -> list:
    """info() of every dyntorch view on the page."""
    return page.evaluate("() => [...(window.__dyntorchHub ? window.__dyntorchHub.views : [])]"
                         ".map(v => ({mode: v.host.mode, ...v.info()}))")


def wait_drawn(page, index: int, at_least: int = 1, timeout: float = 60000) -> dict:
    page.wait_for_function(
        """([i, n]) => { const vs = [...(window.__dyntorchHub ? window.__dyntorchHub.views : [])];
            return vs[i] && vs[i].drawn >= n; }""", arg=[index, at_least], timeout=timeout)
    return views(page)[index]
