"""dyntorch as a package: the version, the wheel's front end, the sdist without Node, and what
a build without Node says.

The wheel checks read the wheel ``make test`` built (``.whl/dist``, installed into
``DYNTORCH_TEST_VENV``); the slow ones build from a clean ``git clone`` of this checkout's
HEAD, as ``pip install git+URL`` and a release do.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import dyntorch

ROOT = Path(__file__).resolve().parents[1]
WHEELS = sorted((ROOT / ".whl" / "dist").glob("dyntorch-*.whl"))
TEST_VENV = os.path.abspath(os.environ["DYNTORCH_TEST_VENV"]) if os.environ.get("DYNTORCH_TEST_VENV") else ""
LABEXT = "share/jupyter/labextensions/dyntorch-jupyter"
NODE_TOOLS = {"node", "nodejs", "npm", "npx", "corepack", "yarn", "yarnpkg"}


def _front_end(names: list[str], data_prefix: str) -> list[str]:
    return sorted(n for n in names if "/static/" in n or n.startswith(data_prefix))


def _check_front_end(names: list[str], read) -> None:
    """The wheel's front-end files: the widget module, the worker, the prebuilt extension."""
    data = next(n.split(LABEXT)[0] for n in names if LABEXT in n)  # dyntorch-X.data/data/
    need = ["dyntorch/viz/static/widget.js", "dyntorch/viz/static/layout_worker.js",
            data + LABEXT + "/package.json", data + LABEXT + "/install.json"]
    for n in need:
        assert n in names, (n, _front_end(names, data))
    assert any(n.startswith(data + LABEXT + "/static/remoteEntry.") for n in names)
    assert not any(n.startswith("dyntorch/labextension/") for n in names), \
        "the prebuilt extension belongs in share/jupyter/labextensions only"
    esm = read("dyntorch/viz/static/widget.js").decode()
    assert len(esm) > 10_000 and "export" in esm and "not built" not in esm  # no placeholder
    pkg = json.loads(read(data + LABEXT + "/package.json"))
    assert pkg["name"] == "dyntorch-jupyter" and pkg["jupyterlab"]["_build"]["load"]
    assert json.loads(read(data + LABEXT + "/install.json"))["packageName"] == "dyntorch"


def _path_without_node(tmp_path: Path) -> str:
    """A PATH with every program of the current one except Node's."""
    bin_ = tmp_path / "bin-without-node"
    bin_.mkdir()
    for d in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(d):
            continue
        for f in os.listdir(d):
            if f not in NODE_TOOLS and not (bin_ / f).exists():
                (bin_ / f).symlink_to(os.path.join(d, f))
    return str(bin_)


def _clone(tmp_path: Path) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout")
    src = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(src)], check=True)
    assert not (src / "dyntorch/viz/static/widget.js").exists()  # built files are not in git
    return src


# ----------------------------------------------------------------------------- version
def test_version_is_single_sourced_and_printed_by_python_m_dyntorch():
    text = (ROOT / "pyproject.toml").read_text()
    project = text.split("[project]", 1)[1].split("\n[", 1)[0]
    assert 'dynamic = ["version"]' in project and "\nversion =" not in project
    assert '[tool.hatch.version]\npath = "dyntorch/__init__.py"' in text
    out = subprocess.run([sys.executable, "-m", "dyntorch", "--version"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"dyntorch {dyntorch.__version__}"
    # `jupyter labextension list` shows the extension's version: the same number
    ext = json.loads((ROOT / "extension/package.json").read_text())
    assert ext["version"] == dyntorch.__version__


def test_python_m_dyntorch_refuses_unknown_arguments():
    out = subprocess.run([sys.executable, "-m", "dyntorch", "--frobnicate"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--frobnicate" in out.stderr


# ----------------------------------------------------------------------------- the built wheel
def test_wheel_carries_the_built_front_end():
    if not WHEELS:
        if TEST_VENV:
            pytest.fail(".whl/dist has no wheel although DYNTORCH_TEST_VENV is set")
        pytest.skip("no wheel built (make wheel-venv builds it)")
    with zipfile.ZipFile(WHEELS[-1]) as z:
        _check_front_end(z.namelist(), z.read)


def test_wheel_venv_lists_the_plugin_enabled():
    if not TEST_VENV:
        pytest.skip("DYNTORCH_TEST_VENV is not set (make test sets it)")
    venv = Path(TEST_VENV)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JUPYTER_PATH")}
    env["JUPYTER_DATA_DIR"] = str(venv / "no-user-data")
    out = subprocess.run([str(venv / "bin/jupyter"), "labextension", "list"], env=env,
                         capture_output=True, text=True, timeout=120, cwd=venv)
    lines = [ln for ln in (out.stdout + out.stderr).splitlines() if "dyntorch-jupyter" in ln]
    assert lines, out.stdout + out.stderr
    assert "enabled" in lines[0] and "OK" in lines[0] and "(python, dyntorch)" in lines[0]
    check = ("import dyntorch, dyntorch.viz._static as s, sys; "
             "assert 'not built' not in s.widget_esm(); print(dyntorch.__file__)")
    out = subprocess.run([str(venv / "bin/python"), "-c", check], env=env, cwd=venv,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith(str(venv)) and "site-packages" in out.stdout, out.stdout


# ----------------------------------------------------------------------------- from a clean clone
def test_build_without_node_fails_and_says_install_node_20(tmp_path):
    pytest.importorskip("hatch_jupyter_builder")
    pytest.importorskip("jupyterlab")
    src = _clone(tmp_path)
    env = dict(os.environ, PATH=_path_without_node(tmp_path))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                          "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "needs Node.js 20" in out.stdout + out.stderr, (out.stdout + out.stderr)[-3000:]
    assert not list((tmp_path / "dist").glob("*.whl")), "a wheel without its front end was built"


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_clean_clone_sdist_has_sources_and_assets_and_installs_without_node(tmp_path):
    """`python -m build --sdist` from a clean clone runs the front-end build through the hook;
    the sdist holds the TypeScript sources and the built assets, so a wheel builds from it
    (pip's isolated build, as `pip install dyntorch-X.tar.gz` does) with no Node on PATH."""
    pytest.importorskip("build")
    if shutil.which("node") is None:
        pytest.skip("building from a clean clone needs Node 20")
    src = _clone(tmp_path)
    out = subprocess.run([sys.executable, "-m", "build", "--sdist", "-o", str(tmp_path / "sd"),
                          str(src)], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    sdist = next((tmp_path / "sd").glob("dyntorch-*.tar.gz"))
    with tarfile.open(sdist) as t:
        names = [n.split("/", 1)[1] for n in t.getnames() if "/" in n]
    for n in ["extension/src/widget.ts", "extension/src/plugin.ts", "extension/package.json",
              "extension/package-lock.json", "extension/build.mjs", "extension/pybuild.py",
              "dyntorch/viz/static/widget.js", "dyntorch/viz/static/layout_worker.js",
              "dyntorch/labextension/package.json", "dyntorch/labextension/install.json"]:
        assert n in names, n
    assert not any(n.startswith("extension/node_modules/") for n in names)
    env = dict(os.environ, PATH=_path_without_node(tmp_path))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w",
                          str(tmp_path / "wd"), str(sdist)],
                         env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    whl = next((tmp_path / "wd").glob("dyntorch-*.whl"))
    with zipfile.ZipFile(whl) as z:
        _check_front_end(z.namelist(), z.read)
