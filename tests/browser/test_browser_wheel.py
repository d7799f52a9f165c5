"""The installed wheel in both notebook apps: JupyterLab 4 and Jupyter Notebook 7.

Under ``make test`` the servers run from ``.whl/venv`` (the wheel built from this tree,
installed with ``[notebook]``; see conftest.py), so this is what a user's
``pip install "dyntorch[notebook]"`` gives: ``show()`` and the stepper render and step, the
plugin is active, and the live widget (not the saved picture) is what a running kernel shows.
"""
from __future__ import annotations

import json

import pytest

from ._lab import APP, run_cell, views, wait_drawn, wait_kernel_ready
from .conftest import ARTIFACTS, ROOT, TEST_VENV
from .notebook_cells import SETUP, SHOW, STEP_IN_CODE, STEPPER

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WHERE = ("import dyntorch, json, sys\n"
         "print(json.dumps({'file': dyntorch.__file__, 'version': dyntorch.__version__, "
         "'exe': sys.executable}))")
CELLS = [WHERE, SETUP, SHOW, STEPPER, STEP_IN_CODE]


def _open(page, server, name: str) -> None:
    # A workspace of our own in JupyterLab: the default one, which the other browser tests on
    # this server restore, must not get our notebook as a tab
    url = (f"{server.url}/lab/workspaces/dyntorch-wheel/tree/{name}" if server.app == "lab"
           else server.notebook_url(name))
    page.goto(url)
    wait_kernel_ready(page)


def _json(text: str) -> dict:
    return json.loads([x for x in text.splitlines() if x.startswith("{")][-1])


@pytest.mark.parametrize("app", ["lab", "notebook7"])
def test_show_and_stepper_render_and_step(app, request, browser):
    server = request.getfixturevalue(app)
    if TEST_VENV and not server.from_wheel:
        pytest.fail("DYNTORCH_TEST_VENV is set but the server does not run from it")
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(60000)
    errors: list = []
    page.on("pageerror", lambda e: errors.append(f"{e}\n{e.stack}"))
    try:
        name = server.write(f"wheel-{app}.ipynb", CELLS)
        _open(page, server, name)
        where = _json(run_cell(page, 0))
        if server.from_wheel:  # the kernel imports the installed wheel, not the checkout
            assert where["file"].startswith(TEST_VENV), where
            assert not where["file"].startswith(str(ROOT / "dyntorch")), where
        run_cell(page, 1)
        shown = _json(run_cell(page, 2))
        v = wait_drawn(page, 0)
        assert v["mode"] == "graph" and v["nodes"] == shown["nodes"], (v, shown)
        # with a kernel the live widget takes over: the saved picture is not what is shown
        out2 = page.evaluate(f"() => {APP}.shell.currentWidget.content.widgets[2]"
                             ".outputArea.node.innerHTML")
        assert "dt-root" in out2 and "jp-RenderedSVG" not in out2
        run_cell(page, 3)
        s = wait_drawn(page, 1)
        assert s["mode"] == "stepper" and s["nodes"] > 5
        vid = page.evaluate("() => [...window.__dyntorchHub.views][1].id")
        sel = f'.dt-root[data-view="{vid}"]'
        for k in ("1", "2"):
            page.click(f'{sel} button[data-cmd="step"]')
            page.wait_for_function(
                "([s, k]) => document.querySelector(s + ' .dt-status-text').dataset.step === k",
                arg=[sel, k])
        assert page.locator(f"{sel} g.node.st-current").count() == 1
        stepped = _json(run_cell(page, 4))  # stepper.step() in code
        assert stepped["step"] == 3
        page.wait_for_function(
            "(s) => document.querySelector(s + ' .dt-status-text').dataset.step === '3'",
            arg=sel)
        # the JupyterLab plugin is active in both apps (its commands are registered)
        assert page.evaluate(f"() => {APP}.commands.hasCommand('dyntorch:step')")
        page.screenshot(path=str(ARTIFACTS / f"wheel-{app}.png"))
        info = {"app": app, "from_wheel": server.from_wheel, "where": where,
                "views": [{k: x[k] for k in ("mode", "nodes")} for x in views(page)]}
        (ARTIFACTS / f"wheel-{app}.json").write_text(json.dumps(info, indent=2))
        # Notebook 7.6 itself throws this while loading settings, with our plugin disabled too
        known = [e for e in errors if "reading 'schema'" in e and "notebook_core" in e
                 and "dyntorch" not in e]
        assert not [e for e in errors if e not in known], errors
    finally:
        ctx.close()
