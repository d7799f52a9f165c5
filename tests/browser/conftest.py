"""Real Jupyter servers (JupyterLab 4, Notebook 7) and headless Chromium (Debian's
/usr/bin/chromium) for the browser end-to-end tests.

Which dyntorch the servers run: with ``DYNTORCH_TEST_VENV`` set (``make test`` sets it to
``.whl/venv``, where the wheel built from this tree is installed with its notebook extra), the
servers and kernels run from that venv with nothing of the checkout on their path, so the tests
see exactly what ``pip install dyntorch[notebook]`` gives. Without it they run from this
interpreter with the checkout on PYTHONPATH (the editable install of ``make lab``), which is
quicker while developing.

Without Chromium, Playwright or a working server these tests skip with the reason, unless
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
TEST_VENV = os.path.abspath(os.environ["DYNTORCH_TEST_VENV"]) if os.environ.get("DYNTORCH_TEST_VENV") else ""
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
    """A running Jupyter server: ``url``, ``root`` (its notebook directory), ``write(name,
    cells)``; ``app`` ("lab" or "notebook"), ``python`` (the interpreter its kernels run),
    ``from_wheel`` (True when that is the wheel venv of ``DYNTORCH_TEST_VENV``) and
    ``notebook_url(name)`` (where the app opens a notebook)."""

    def __init__(self, url: str, root: Path, proc: subprocess.Popen, log: Path,
                 app: str = "lab", python: str = sys.executable, from_wheel: bool = False):
        self.url, self.root, self.proc, self.log = url, root, proc, log
        self.app, self.python, self.from_wheel = app, python, from_wheel

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}" if self.app == "lab" else f"{self.url}/notebooks/{name}"

    def write(self, name: str, cells: list[str]) -> str:
        nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}",
                         "metadata": {}, "outputs": [], "source": src}
                        for i, src in enumerate(cells)],
              "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                          "name": "python3"}},
              "nbformat": 4, "nbformat_minor": 5}
        (self.root / name).write_text(json.dumps(nb), encoding="utf-8")
        return name


def _environment() -> tuple[Path, dict, bool]:
    """The python whose jupyter to run, the environment for it, and whether it is the wheel's."""
    env = dict(os.environ)
    env.pop("JUPYTER_PATH", None)
    if TEST_VENV:
        py = Path(TEST_VENV) / "bin" / "python"
        if not py.exists():
            unavailable(f"DYNTORCH_TEST_VENV={TEST_VENV} has no bin/python (run `make wheel-venv`)")
        env.pop("PYTHONPATH", None)  # the installed wheel, nothing of the checkout
        env["PATH"] = str(py.parent) + os.pathsep + env.get("PATH", "")
        env["VIRTUAL_ENV"] = TEST_VENV
        where = subprocess.run([str(py), "-c", "import dyntorch, sys; print(dyntorch.__file__)"],
                               capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
        if where.returncode != 0 or not where.stdout.startswith(str(Path(TEST_VENV))):
            unavailable(f"dyntorch in {TEST_VENV} is not an installed wheel: "
                        f"{where.stdout.strip() or where.stderr[-400:]}")
        return py, env, True
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    return Path(sys.executable), env, False


@contextlib.contextmanager
def _running_lab(plugin: bool = True, app: str = "lab"):
    if not Path(CHROMIUM).exists():
        unavailable(f"Chromium is not installed at {CHROMIUM} (make browser-deps installs it "
                    "as root: apt-get install chromium)")
    py, env, from_wheel = _environment()
    jupyter = py.with_name("jupyter")
    if not jupyter.exists():
        unavailable(f"jupyter is not installed next to {py}")
    prefix = subprocess.run([str(py), "-c", "import sys; print(sys.prefix)"], env=env,
                            capture_output=True, text=True).stdout.strip()
    ext = Path(prefix) / "share/jupyter/labextensions/dyntorch-jupyter/package.json"
    if not ext.exists() or (not from_wheel and not (ROOT / "dyntorch/viz/static/widget.js").exists()):
        unavailable("the front end is not built (run `make extension`)" if not from_wheel else
                    f"the wheel in {TEST_VENV} did not install {ext}")
    root = Path(tempfile.mkdtemp(prefix=f"dyntorch-{app}-"))
    port = _free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / (f"jupyter{app}.log" if plugin else f"jupyter{app}-no-plugin.log")
    config = root / ".jupyter-config"
    if not plugin:  # the widget alone, as in VS Code, Colab or a lab without our extension
        (config / "labconfig").mkdir(parents=True)
        (config / "labconfig/page_config.json").write_text(
            json.dumps({"disabledExtensions": {"dyntorch-jupyter": True}}))
    env.update(JUPYTER_CONFIG_DIR=str(config),
               JUPYTERLAB_SETTINGS_DIR=str(root / ".lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(root / ".lab-workspaces"))
    if from_wheel:  # only what the venv installed: no user-level extensions or kernels
        env["JUPYTER_DATA_DIR"] = str(root / ".jupyter-data")
    cls = "LabApp" if app == "lab" else "JupyterNotebookApp"
    cmd = [str(jupyter), app, "--allow-root", "--no-browser", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", "--ServerApp.token=", "--ServerApp.password=",
           "--ServerApp.disable_check_xsrf=True", f"--ServerApp.root_dir={root}",
           f"--{cls}.expose_app_in_browser=True", "--LabApp.news_url=None",
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
                unavailable(f"Jupyter {app} did not start (see {log}): "
                            + log.read_text()[-800:])
            time.sleep(0.3)
        yield Lab(url, root, proc, log, app=app, python=str(py), from_wheel=from_wheel)
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
def notebook7():
    """A Jupyter Notebook 7 server (``jupyter notebook``), same ``Lab`` interface."""
    with _running_lab(app="notebook") as nb_:
        yield nb_


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
