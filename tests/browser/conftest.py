"""A real JupyterLab server and headless Chromium (Debian's /usr/bin/chromium) for the browser
end-to-end tests.

Without Chromium, Playwright or a working JupyterLab these tests skip with the reason, unless
``DYNTORCH_REQUIRE_BROWSER`` is set (``.ci/run`` sets it): then they fail, so CI can never pass
without them. Screenshots go to ``test-artifacts/``.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("DYNTORCH_CHROMIUM", "/usr/bin/chromium")
REQUIRE = os.environ.get("DYNTORCH_REQUIRE_BROWSER", "") not in ("", "0")
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def unavailable(reason: str):
    """Skip (or, where the browser tests are required, fail) with ``reason``."""
    if REQUIRE:
        pytest.fail(f"browser tests required (DYNTORCH_REQUIRE_BROWSER=1) but {reason}",
                    pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A running JupyterLab: ``url``, ``root`` (its notebook directory), ``write(name, cells)``."""

    def __init__(self, url: str, root: Path, proc: subprocess.Popen, log: Path):
        self.url, self.root, self.proc, self.log = url, root, proc, log

    def write(self, name: str, cells: list[str]) -> str:
        nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}",
                         "metadata": {}, "outputs": [], "source": src}
                        for i, src in enumerate(cells)],
              "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                          "name": "python3"}},
              "nbformat": 4, "nbformat_minor": 5}
        (self.root / name).write_text(json.dumps(nb), encoding="utf-8")
        return name


@contextlib.contextmanager
def _running_lab(plugin: bool = True):
    if not Path(CHROMIUM).exists():
        unavailable(f"Chromium is not installed at {CHROMIUM} (make browser-deps installs it "
                    "as root: apt-get install chromium)")
    jupyter = Path(sys.executable).with_name("jupyter")
    if not jupyter.exists():
        unavailable(f"jupyter is not installed next to {sys.executable}")
    ext = Path(sys.prefix) / "share/jupyter/labextensions/dyntorch-jupyter/package.json"
    if not (ROOT / "dyntorch/viz/static/widget.js").exists() or not ext.exists():
        unavailable("the front end is not built (run `make extension`)")
    root = Path(tempfile.mkdtemp(prefix="dyntorch-lab-"))
    port = _free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / ("jupyterlab.log" if plugin else "jupyterlab-no-plugin.log")
    config = root / ".jupyter-config"
    if not plugin:  # the widget alone, as in VS Code, Colab or a lab without our extension
        (config / "labconfig").mkdir(parents=True)
        (config / "labconfig/page_config.json").write_text(
            json.dumps({"disabledExtensions": {"dyntorch-jupyter": True}}))
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               JUPYTER_CONFIG_DIR=str(config),
               JUPYTERLAB_SETTINGS_DIR=str(root / ".lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(root / ".lab-workspaces"))
    cmd = [str(jupyter), "lab", "--allow-root", "--no-browser", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", "--ServerApp.token=", "--ServerApp.password=",
           "--ServerApp.disable_check_xsrf=True", f"--ServerApp.root_dir={root}",
           "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    # no "get Jupyter news?" toast over the screenshots
    news = root / ".lab-settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false", "checkForUpdates": false}')
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/api/status", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                unavailable(f"JupyterLab did not start (see {log}): "
                            + log.read_text()[-800:])
            time.sleep(0.3)
        yield Lab(url, root, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def lab():
    with _running_lab() as lab_:
        yield lab_


@pytest.fixture(scope="session")
def lab_without_plugin():
    with _running_lab(plugin=False) as lab_:
        yield lab_


@pytest.fixture(scope="session")
def browser(lab):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the python package playwright is not installed")
    pw = sync_playwright().start()
    try:
        try:
            # Playwright gives every launch a fresh temporary profile (--user-data-dir).
            b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        except Exception as e:  # noqa: BLE001 - any launch failure means no browser here
            unavailable(f"Chromium at {CHROMIUM} did not start: {e}")
        yield b
        b.close()
    finally:
        pw.stop()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1500, "height": 1000})
    p = ctx.new_page()
    p.set_default_timeout(30000)
    errors: list = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.errors = errors
    yield p
    ctx.close()
