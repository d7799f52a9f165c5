"""dyntorch.save to a path is atomic: a process SIGKILLed at random moments while saving ~4 MB
objects in a loop always leaves a file that loads whole (the old content or the new)."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import dyntorch
from dyntorch.serialization import LoadError, atomic_write

# The helper imports the library once, then forks one saver per kill (a fresh interpreter per
# kill would spend the test's time importing). Each saver writes {"i": i, "w": 1M float32 of
# value i} in a loop; the parent kills it after a seeded random delay and loads the file.
KILLER = textwrap.dedent('''
    import json, os, random, signal, sys, time
    import numpy as np
    lib, path, kills, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if lib == "torch":
        import torch as T
        def save(i, p): T.save({"i": i, "w": T.full((1 << 20,), float(i))}, p)
        def load(p):
            d = T.load(p, weights_only=True)
            return d["i"], d["w"].numpy()
    else:
        import dyntorch as T
        def save(i, p): T.save({"i": i, "w": T.full((1 << 20,), float(i))}, p)
        def load(p):
            d = T.load(p)
            return d["i"], d["w"].numpy()
    rng = random.Random(seed)
    save(0, path)
    start = 0
    results = []
    for k in range(kills):
        start += 100000
        r, wr = os.pipe()
        pid = os.fork()
        if pid == 0:  # the saver: never returns
            os.close(r)
            i = start
            while True:
                save(i, path)
                os.write(wr, b".")  # one byte per finished save
                i += 1
        os.close(wr)
        os.read(r, 1)  # the first save is done: the kill lands in a later one
        time.sleep(rng.uniform(0.0, 0.06))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(r)
        i = -1
        try:
            i, w = load(path)
            ok = w.shape == (1 << 20,) and bool((w == float(i)).all())
            why = "" if ok else f"content of step {i} is torn"
        except Exception as e:
            ok, why = False, f"{type(e).__name__}: {str(e)[:200]}"
        results.append([ok, why, i - start])  # saves this saver finished (if it loaded)
    leftovers = [f for f in os.listdir(os.path.dirname(path)) if f.endswith(".tmp")]
    print(json.dumps({"results": results, "tmp_left": len(leftovers)}))
''')


def run_kills(tmp_path, lib: str, kills: int, seed: int) -> dict:
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    target = tmp_path / "ckpt" / "model.pt"
    target.parent.mkdir()
    root = os.path.dirname(os.path.dirname(os.path.abspath(dyntorch.__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, str(script), lib, str(target), str(kills), str(seed)],
                         capture_output=True, text=True, timeout=120, env=env, cwd=root)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork and SIGKILL")
def test_save_survives_sigkill_at_random_moments(tmp_path):
    res = run_kills(tmp_path, "dyntorch", kills=30, seed=1234)
    bad = [why for ok, why, _ in res["results"] if not ok]
    assert not bad, f"{len(bad)} of 30 kills left a file that does not load whole: {bad[:3]}"
    # each saver finished a save before its kill, so the file holds one of its saves
    assert all(done >= 0 for _, _, done in res["results"]), res["results"]


def test_error_while_saving_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    p = tmp_path / "m.pt"
    dyntorch.save({"v": dyntorch.ones(3)}, p)
    before = p.read_bytes()

    class Boom:
        def __reduce__(self):
            raise KeyboardInterrupt  # an interrupt mid-save, not just an exception

    with pytest.raises(KeyboardInterrupt):
        dyntorch.save({"v": dyntorch.zeros(3), "x": Boom()}, p)
    assert p.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.pt"]
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_write(p) as f:
            f.write(b"half")
            raise RuntimeError("disk full")
    assert p.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["m.pt"]
    assert dyntorch.load(p)["v"].tolist() == [1.0, 1.0, 1.0]


def test_atomic_write_replaces_whole_and_keeps_umask_permissions(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"old")
    with atomic_write(p) as f:
        f.write(b"new content")
        assert p.read_bytes() == b"old"  # nothing visible until the block ends
    assert p.read_bytes() == b"new content"
    mask = os.umask(0)
    os.umask(mask)
    q = tmp_path / "g.bin"
    with open(q, "wb"):
        pass
    assert (p.stat().st_mode & 0o777) == (q.stat().st_mode & 0o777) == (0o666 & ~mask)


def test_saving_to_a_file_object_writes_in_place(tmp_path):
    buf = io.BytesIO(b"prefix")
    buf.seek(6)
    dyntorch.save({"a": dyntorch.arange(4)}, buf)
    assert buf.getvalue().startswith(b"prefix")
    buf.seek(6)
    assert dyntorch.load(buf)["a"].tolist() == [0, 1, 2, 3]
    with pytest.raises(LoadError):
        dyntorch.load(io.BytesIO(b"PK\x03\x04" + b"\x00" * 40))
    np.testing.assert_array_equal(dyntorch.load(io.BytesIO(buf.getvalue()[6:]))["a"].numpy(),
                                  np.arange(4))
