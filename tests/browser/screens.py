"""Screenshots of the tutorials' views in real JupyterLab, light and dark theme.

    .venv/bin/python -m tests.browser.screens before   # -> test-artifacts/before/*.png
    .venv/bin/python -m tests.browser.screens after    # -> test-artifacts/after/*.png

Each tutorial notebook is run top to bottom (Run All) as a user would; every dyntorch view on
the page is then captured on its own (``<notebook>-view<k>-<theme>.png``), plus the whole page.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from ._lab import APP, open_notebook
from .conftest import ARTIFACTS, CHROMIUM, FLAGS, ROOT, _running_lab

NOTEBOOKS = ("03_seeing_the_graph.ipynb", "04_step_debugging_backprop.ipynb")


def run_all(page, timeout: float = 300000) -> None:
    page.evaluate(f"() => {APP}.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(
        f"""() => {{ const nb = {APP}.shell.currentWidget;
            const cells = nb.content.widgets.filter(c => c.model.type === 'code');
            return cells.every(c => c.model.executionCount !== null) &&
                   nb.sessionContext.session.kernel.status === 'idle'; }}""", timeout=timeout)


def wait_views_drawn(page, timeout: float = 60000) -> None:
    page.wait_for_function(
        "() => { const vs = [...(window.__dyntorchHub ? window.__dyntorchHub.views : [])];"
        " return vs.length > 0 && vs.every(v => v.drawn > 0 || !v.doc); }", timeout=timeout)
    page.wait_for_timeout(800)


def set_theme(page, dark: bool) -> None:
    name = "JupyterLab Dark" if dark else "JupyterLab Light"
    page.evaluate(f"(t) => {APP}.commands.execute('apputils:change-theme', {{theme: t}})", name)
    page.wait_for_function("(d) => document.body.dataset.jpThemeLight === (d ? 'false' : 'true')",
                           arg=dark)
    page.wait_for_timeout(600)


def capture(out: Path, notebooks=NOTEBOOKS) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    files = []
    with _running_lab() as lab, sync_playwright() as pw:
        shutil.copytree(ROOT / "notebooks/data", lab.root / "data", dirs_exist_ok=True)
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        for name in notebooks:
            shutil.copy(ROOT / "notebooks" / name, lab.root / name)
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = ctx.new_page()
            page.set_default_timeout(60000)
            open_notebook(page, lab, name)
            print("opened", name, flush=True)
            run_all(page)
            print("ran", name, flush=True)
            wait_views_drawn(page)
            stem = name.split("_")[0]
            for dark in (False, True):
                set_theme(page, dark)
                theme = "dark" if dark else "light"
                k = 0
                ncells = page.evaluate(f"() => {APP}.shell.currentWidget.content.widgets.length")
                for i in range(ncells):
                    # the notebook renders only the cells near the viewport: bring each in
                    page.evaluate(f"async (i) => {{ const nb = {APP}.shell.currentWidget.content;"
                                  " nb.activeCellIndex = i; await nb.scrollToItem(i, 'start'); }", i)
                    page.wait_for_timeout(250)
                    roots = page.locator(f".jp-Notebook .jp-Cell >> nth={i}").locator(".dt-root")
                    for j in range(roots.count()):
                        el = roots.nth(j)
                        el.evaluate("e => e.scrollIntoView({block: 'center'})")
                        page.wait_for_timeout(300)
                        if not el.is_visible():
                            continue
                        p = out / f"{stem}-view{k}-{theme}.png"
                        el.screenshot(path=str(p), timeout=15000)
                        print(p, flush=True)
                        files.append(p)
                        k += 1
            set_theme(page, False)
            ctx.close()
        browser.close()
    return files


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "after"
    capture(ARTIFACTS / which)
