"""The Binder set-up, tested as far as this machine allows (no Docker here).

repo2docker must accept the folder, and an environment built from ``binder/`` alone, after
``postBuild`` ran in a clean clone (so the build hook really builds the front end, as on
mybinder.org), must hold dyntorch as a normal install, list the dyntorch JupyterLab plugin as
enabled and run the quickstart.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"


def test_binder_files_are_complete():
    assert (BINDER / "environment.yml").is_file()
    assert "graphviz" in (BINDER / "apt.txt").read_text().split()
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK), "postBuild must be executable"
    steps = [ln for ln in post.read_text().splitlines() if ln and not ln.startswith("#")]
    # a normal install built by the same hook as the wheel: no editable install, no side build
    assert "python -m pip install --no-deps ." in steps
    assert not any(" -e " in ln or "make " in ln for ln in steps), steps
    readme = (ROOT / "README.md").read_text()
    assert "mybinder.org/v2/gh/" in readme and "urlpath=lab/tree/notebooks/01_quickstart" in readme
    assert (ROOT / "notebooks" / "01_quickstart.ipynb").is_file()


def test_repo2docker_accepts_the_folder():
    exe = shutil.which("repo2docker") or str(pathlib.Path(sys.executable).parent / "repo2docker")
    if not os.path.exists(exe):
        pytest.skip("jupyter-repo2docker is not installed (it is in the dev extra)")
    out = subprocess.run([exe, "--no-build", "--no-run", "--debug", str(ROOT)],
                         capture_output=True, text=True, timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    assert "environment.yml" in text          # conda environment from binder/
    assert "graphviz" in text                 # apt.txt
    assert "binder/postBuild" in text


def _pip_requirements() -> list[str]:
    yaml = pytest.importorskip("yaml")
    env = yaml.safe_load((BINDER / "environment.yml").read_text())
    reqs = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict) and "pip" in dep:
            reqs += dep["pip"]
    assert any(r.startswith("jupyterlab") for r in reqs)
    return reqs


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_fresh_environment_from_binder_files(tmp_path):
    if shutil.which("node") is None or shutil.which("git") is None:
        pytest.skip("needs node (binder/environment.yml provides it) and git")
    venv = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_ = venv / "bin"
    env = dict(os.environ, PATH=f"{bin_}{os.pathsep}{os.environ['PATH']}",
               VIRTUAL_ENV=str(venv), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"),
               JUPYTER_DATA_DIR=str(tmp_path / "data"))
    env.pop("PYTHONPATH", None)
    subprocess.run([str(bin_ / "python"), "-m", "pip", "install", "-q", *_pip_requirements()],
                   check=True, env=env, timeout=600)
    # repo2docker builds from a fresh checkout: the front end is not built there yet
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    assert not (clone / "dyntorch/viz/static/widget.js").exists()
    post = subprocess.run([str(clone / "binder/postBuild")], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=900)
    assert post.returncode == 0, (post.stdout + post.stderr)[-3000:]
    where = subprocess.run([str(bin_ / "python"), "-c", "import dyntorch; print(dyntorch.__file__)"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "site-packages" in where.stdout and str(clone) not in where.stdout, where
    listed = subprocess.run([str(bin_ / "jupyter"), "labextension", "list"], env=env,
                            capture_output=True, text=True, timeout=120)
    lines = [ln for ln in (listed.stdout + listed.stderr).splitlines() if "dyntorch" in ln]
    assert lines and "enabled" in lines[0] and "OK" in lines[0], listed.stdout + listed.stderr
    out_nb = tmp_path / "quickstart.ipynb"
    run = subprocess.run(
        [str(bin_ / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
         "--ExecutePreprocessor.timeout=300", "--output", str(out_nb),
         str(ROOT / "notebooks" / "01_quickstart.ipynb")],
        cwd=ROOT / "notebooks", env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert out_nb.stat().st_size > 0
