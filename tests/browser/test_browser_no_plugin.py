"""The widget without the JupyterLab plugin (as in VS Code, Colab, or a lab without it):
it draws, steps and inspects on its own; only the palette commands and shortcuts are missing."""
from __future__ import annotations

import json

import pytest

from ._lab import APP, open_notebook, run_cell, views, wait_drawn
from .conftest import ARTIFACTS
from .notebook_cells import SETUP, STEPPER

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_debugger_works_without_the_plugin(browser, lab_without_plugin):
    lab = lab_without_plugin
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(60000)
    try:
        lab.write("plain.ipynb", [SETUP, STEPPER])
        open_notebook(page, lab, "plain.ipynb")
        assert not page.evaluate(f"() => {APP}.commands.hasCommand('dyntorch:step')")
        run_cell(page, 0)
        run_cell(page, 1)
        v = wait_drawn(page, 0)
        assert v["mode"] == "stepper" and v["nodes"] > 5
        vid = page.evaluate("() => [...window.__dyntorchHub.views][0].id")
        sel = f'.dt-root[data-view="{vid}"]'
        for k in (1, 2):
            page.click(f'{sel} button[data-cmd="step"]')
            page.wait_for_function(
                "([s, k]) => document.querySelector(s + ' .dt-status-text').dataset.step === k",
                arg=[sel, str(k)])
        current = page.locator(f"{sel} g.node.st-current")
        assert current.count() == 1
        current.click()
        page.wait_for_selector(f"{sel} .dt-insp [data-part=in0] [data-stat=norm]")
        info = views(page)[0]
        assert info["status"]["step"] == 2
        page.locator(sel).screenshot(path=str(ARTIFACTS / "no-plugin-debugger.png"))
        (ARTIFACTS / "no-plugin.json").write_text(json.dumps(info["status"]))
    finally:
        ctx.close()
