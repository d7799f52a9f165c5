"""Build the notebook front end into the Python package.

Writes ``dyntorch/viz/static/{widget.js,layout_worker.js}`` (the anywidget module and the
Graphviz worker, by ``build.mjs``) and ``dyntorch/labextension/`` (the prebuilt JupyterLab 4
extension, by ``@jupyterlab/builder``).

It is the build function of the ``hatch-jupyter-builder`` hook in ``pyproject.toml``, so
``pip wheel .``, ``python -m build`` and ``pip install .`` run it; the hook skips it when the
built files are already there (an sdist carries them, so installing one needs no Node).
``make extension`` runs it as a script. Without Node it fails and says what to install: a
package without its front end is never built.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

EXT = Path(__file__).resolve().parent
ROOT = EXT.parent
OUTPUTS = [ROOT / "dyntorch/viz/static/widget.js",
           ROOT / "dyntorch/viz/static/layout_worker.js",
           ROOT / "dyntorch/labextension/package.json",
           ROOT / "dyntorch/labextension/install.json"]
NODE_MAJOR = 20

NO_NODE = (
    "dyntorch: building the notebook front end (extension/) needs Node.js {need} or newer "
    "with npm on PATH, {found}. Install Node {need}: https://nodejs.org/en/download, "
    "`conda install -c conda-forge nodejs=20`, `brew install node@20` or your system's "
    "package (Debian/Ubuntu: `apt-get install nodejs npm`). Or install dyntorch from its "
    "sdist or a wheel, which carry the built front end and need no Node.")


class FrontEndBuildError(RuntimeError):
    """The front end could not be built (no Node, or a failing step)."""


def _sources() -> list[Path]:
    src = [p for p in (EXT / "src").rglob("*") if p.is_file()]
    return src + [EXT / "build.mjs", EXT / "package.json", EXT / "package-lock.json"]


def up_to_date() -> bool:
    """Whether every output exists and is newer than every source."""
    if not all(p.exists() for p in OUTPUTS):
        return False
    newest = max((p.stat().st_mtime for p in _sources() if p.exists()), default=0.0)
    return newest <= min(p.stat().st_mtime for p in OUTPUTS)


def _node() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = [n for n, p in (("node", node), ("npm", npm)) if p is None]
        found = f"but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not on PATH"
        raise FrontEndBuildError(NO_NODE.format(need=NODE_MAJOR, found=found))
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    m = re.match(r"v(\d+)", out.stdout.strip())
    if m is None or int(m.group(1)) < NODE_MAJOR:
        raise FrontEndBuildError(NO_NODE.format(
            need=NODE_MAJOR, found=f"but {node} is {out.stdout.strip() or 'unknown'}"))
    return node, npm


def _run(cmd: list[str], what: str, quiet: bool = False) -> None:
    print(f"dyntorch front end: {what}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    pipe = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT} if quiet else {}
    r = subprocess.run(cmd, cwd=EXT, check=False, text=True, **pipe)
    if r.returncode != 0:
        if quiet:
            print(r.stdout[-4000:], file=sys.stderr)
        raise FrontEndBuildError(f"dyntorch: building the front end failed at `{what}` "
                                 f"(exit code {r.returncode}; command: {' '.join(cmd)})")


def _core_path() -> str:
    try:
        import jupyterlab
    except ImportError as e:
        raise FrontEndBuildError(
            "dyntorch: building the JupyterLab extension needs the jupyterlab package in the "
            "build environment (it is in [build-system] requires; for a build without "
            "isolation: pip install 'jupyterlab>=4.1,<5')") from e
    return os.path.join(os.path.dirname(jupyterlab.__file__), "staging")


def build(target_name: str = "wheel", version: str = "standard", *,
          force: bool = False) -> None:
    """Build the front end unless it is up to date (the hook's build-function signature)."""
    if not force and up_to_date():
        print("dyntorch front end: up to date", file=sys.stderr)
        return
    node, npm = _node()
    stamp = EXT / "node_modules/.installed"
    lock = EXT / "package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], "npm ci")
        stamp.touch()
    _run([node, "build.mjs"], "bundle (esbuild)")
    builder = EXT / "node_modules/@jupyterlab/builder/lib/build-labextension.js"
    shutil.rmtree(ROOT / "dyntorch/labextension", ignore_errors=True)  # no stale chunks
    _run([node, str(builder), "--core-path", _core_path(), "."], "JupyterLab extension",
         quiet=True)
    # install.json: `jupyter labextension list` names the Python package that installed it
    shutil.copyfile(EXT / "install.json", ROOT / "dyntorch/labextension/install.json")
    missing = [str(p.relative_to(ROOT)) for p in OUTPUTS if not p.exists()]
    if missing:
        raise FrontEndBuildError(f"dyntorch: the front-end build ran but did not write {missing}")
    for p in OUTPUTS:  # the builder may keep an unchanged file's old time
        p.touch()


if __name__ == "__main__":
    try:
        build(force="--force" in sys.argv)
    except FrontEndBuildError as e:
        sys.exit(str(e))
