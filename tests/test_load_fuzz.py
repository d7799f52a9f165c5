"""Damaged files fail cleanly: seeded mutations of dyntorch.save files, torch.save files and
jit.save files (truncated, bytes flipped, records rewritten with lying shapes, dtypes, offsets,
counts, ops and references) either load the saved data or raise LoadError naming the file.

The loads run in child processes under a memory limit (RLIMIT_AS), many per child, so that a
crash or an allocation blow-up fails the test instead of the test run.
"""
from __future__ import annotations

import io
import json
import os
import pickletools
import random
import struct
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import dyntorch

resource = pytest.importorskip("resource")
torch = pytest.importorskip("torch")

SEED = 20261206
N_PER_KIND = 150
LIMIT_EXTRA = 1536 << 20  # the child may grow this much past its size after imports

CHILD = textwrap.dedent('''
    import json, resource, sys, traceback
    import numpy as np
    import dyntorch
    from dyntorch import jit
    from dyntorch.serialization import LoadError
    jobs = json.load(open(sys.argv[1]))
    soft = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
    limit = soft + int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def flat(o, out):
        if isinstance(o, dyntorch.Tensor):
            out.append(o.detach().numpy())
        elif isinstance(o, dict):
            for k in o:
                out.append(repr(k)); flat(o[k], out)
        elif isinstance(o, (list, tuple)):
            for v in o:
                flat(v, out)
        else:
            out.append(repr(o))
        return out

    def eq(x, y):
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            return (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)
                    and x.dtype == y.dtype and x.shape == y.shape
                    and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"))
        return x == y

    def same(a, b):
        fa, fb = flat(a, []), flat(b, [])
        return len(fa) == len(fb) and all(eq(x, y) for x, y in zip(fa, fb))

    x = np.asarray(json.load(open(sys.argv[3])), dtype=np.float32)
    refs = {}
    out = []
    for kind, orig, path in jobs:
        if orig not in refs:
            refs[orig] = jit.load(orig)(x).numpy() if kind == "jit" else dyntorch.load(orig)
        try:
            if kind == "jit":
                m = jit.load(path)
                try:
                    y = m(x).numpy()
                except Exception as e:
                    out.append(["call-fails", f"{type(e).__name__}: {str(e)[:300]}"])
                    continue
                same_data = y.shape == refs[orig].shape and np.array_equal(y, refs[orig])
            else:
                same_data = same(dyntorch.load(path), refs[orig])
            out.append(["same" if same_data else "differs", ""])
        except LoadError as e:
            out.append(["LoadError" if path in str(e) else "LoadError-unnamed", str(e)[:300]])
        except BaseException as e:
            out.append(["escape", f"{type(e).__name__}: {str(e)[:300]} "
                                  f"{traceback.format_exc()[-600:]}"])
    print(json.dumps(out))
''')


# ----------------------------------------------------------------------------- base files
def _base_files(d):
    dyntorch.manual_seed(0)
    nn = dyntorch.nn
    m = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    x = dyntorch.arange(24.0).reshape(4, 6)
    ours = {"model": m.state_dict(), "step": dyntorch.tensor(7), "view": x[1:3, ::2],
            "x": x, "h": dyntorch.ones(3, dtype=dyntorch.float16), "lr": [0.1, (0.9, 0.99)],
            "b": dyntorch.tensor([True, False]), "i": dyntorch.tensor([1, -2], dtype=dyntorch.int32)}
    p_ours = os.path.join(d, "ours.pt")
    dyntorch.save(ours, p_ours)
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh())
    tx = torch.arange(24.0).reshape(4, 6)
    theirs = {"model": tm.state_dict(), "t": tx.t(), "row": tx[2], "epoch": 3,
              "d": torch.arange(5, dtype=torch.float64), "s": torch.tensor(2.5)}
    p_torch = os.path.join(d, "torch.pt")
    torch.save(theirs, p_torch)
    xin = np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6)
    p_jit = os.path.join(d, "model.dtj")
    dyntorch.jit.trace(m.eval(), dyntorch.tensor(xin)).save(p_jit)
    p_fused = os.path.join(d, "fused.dtj")

    def f(a):
        return (a * 2.0 + 1.0).tanh().reshape(6, 4).sum(0)
    dyntorch.jit.optimize_for_inference(dyntorch.jit.trace(f, dyntorch.tensor(xin))).save(p_fused)
    return {"ours": [p_ours], "torch": [p_torch], "jit": [p_jit, p_fused]}, xin


# ----------------------------------------------------------------------------- mutations
def _members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def _rezip(members) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for n, b in members:
            z.writestr(n, b)
    return buf.getvalue()


_LIES = [0, 1, 2, 3, 7, 255, 2**31 - 1, 2**40, 2**62, -1, -(2**31)]


def _pickle_int(v: int) -> bytes:
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if -(2**31) <= v < 2**31:
        return b"J" + struct.pack("<i", v)
    n = (v.bit_length() + 8) // 8
    return b"\x8a" + bytes([n]) + v.to_bytes(n, "little", signed=True)


def _lie_pickle(data: bytes, rng: random.Random) -> bytes:
    """Rewrite one opcode of a pickle: an int (shape, stride, offset, numel), a storage type
    (dtype), a string (storage key, location) or a container opcode."""
    ops = list(pickletools.genops(data))
    cands = [(op, arg, pos) for op, arg, pos in ops
             if op.name in ("BININT1", "BININT2", "BININT", "LONG1", "GLOBAL", "BINUNICODE",
                            "TUPLE2", "TUPLE3", "EMPTY_TUPLE", "NEWFALSE", "NEWTRUE")]
    op, arg, pos = rng.choice(cands)
    ends = [p for _, _, p in ops if p > pos]
    end = min(ends) if ends else len(data)
    if op.name in ("BININT1", "BININT2", "BININT", "LONG1"):
        new = _pickle_int(rng.choice(_LIES + [arg + 1, arg - 1, arg * 1000 + 1]))
    elif op.name == "GLOBAL":
        mod, name = arg.split(" ")
        alt = rng.choice(["DoubleStorage", "HalfStorage", "BoolStorage", "LongStorage",
                          "float16", "Size", "QInt8Storage", "_rebuild_tensor", "system"])
        if rng.random() < 0.2:
            mod = rng.choice(["os", "builtins", "torch._utils", "numpy"])
        new = b"c" + f"{mod}\n{alt}\n".encode()
    elif op.name == "BINUNICODE":
        s = rng.choice(["0", "1", "9", "cuda:0", "meta", "", "x" * 50, "../data.pkl"])
        new = b"X" + struct.pack("<I", len(s)) + s.encode()
    else:
        new = rng.choice([b")", b"\x86", b"\x87", b"\x88", b"\x89", b"N"])
    return data[:pos] + new + data[end:]


def _lie_npy(raw: bytes, rng: random.Random) -> bytes:
    head_len = struct.unpack("<H", raw[8:10])[0]
    header = raw[10:10 + head_len].decode("latin1")
    choice = rng.randrange(4)
    if choice == 0:
        header = header.replace("'shape': (", f"'shape': ({rng.choice([10**9, 7, 0, 10**12])}, ")
    elif choice == 1:
        header = header.replace("<f4", rng.choice(["<f8", "|O", "<i2", "|b1", "V8"]))
    elif choice == 2:
        header = header.replace("False", "True")
    else:
        return raw[:10 + head_len] + raw[10 + head_len:][: rng.randrange(0, 64)]
    header = header.ljust(head_len)[:head_len] if len(header) <= head_len else header
    return raw[:8] + struct.pack("<H", len(header)) + header.encode("latin1") + \
        raw[10 + head_len:]


def _json_paths(o, path=()):
    if isinstance(o, dict):
        for k, v in o.items():
            yield from _json_paths(v, path + (k,))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from _json_paths(v, path + (i,))
    else:
        yield path, o


def _lie_json(raw: bytes, rng: random.Random) -> bytes:
    doc = json.loads(raw)
    leaves = [(p, v) for p, v in _json_paths(doc)
              if p and p[0] in ("values", "inputs", "outputs", "nodes", "consts")]
    path, val = rng.choice(leaves)
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    if isinstance(val, bool) or not isinstance(val, (int, float, str)):
        new = rng.choice([0, "x", None, [1]])
    elif isinstance(val, (int, float)):
        new = rng.choice([-1, val + 1, val + 100, 10**12, 2**62, "0", 0.5, True])
    else:
        new = rng.choice(["no_such_op", "float128", "object", "V100000000", "consts/9.npy",
                          "", "relu", "matmul", "node", "const", "input"])
    if rng.random() < 0.1 and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return json.dumps(doc).encode()


def _mutate(data: bytes, kind: str, rng: random.Random) -> tuple[str, bytes]:
    r = rng.random()
    if r < 0.25:
        return "truncate", data[: rng.randrange(0, len(data))]
    if r < 0.5:
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] ^= rng.randint(1, 255)
        return "flip", bytes(b)
    members = _members(data)
    names = [n for n, _ in members]
    if kind == "jit":
        npys = [n for n in names if n.endswith(".npy")]
        target = "graph.json" if (r < 0.85 or not npys) else rng.choice(npys)
    else:
        pkls = [n for n in names if n.endswith("data.pkl")]
        stor = [n for n in names if "/data/" in n]
        target = pkls[0] if (r < 0.85 or not stor) else rng.choice(stor)
    out = []
    for n, b in members:
        if n == target:
            if n.endswith(".pkl"):
                b = _lie_pickle(b, rng)
            elif n.endswith(".json"):
                b = _lie_json(b, rng)
            elif n.endswith(".npy"):
                b = _lie_npy(b, rng)
            else:  # a storage whose byte count lies
                b = b[: rng.randrange(0, len(b) + 1)] if rng.random() < 0.5 else b + b"\0" * 8
        out.append((n, b))
    return "lie", _rezip(out)


def test_mutated_files_load_or_fail_cleanly(tmp_path):
    bases, xin = _base_files(str(tmp_path))
    rng = random.Random(SEED)
    jobs, meta = [], []
    for kind, paths in bases.items():
        for k in range(N_PER_KIND):
            orig = paths[k % len(paths)]
            with open(orig, "rb") as f:
                how, data = _mutate(f.read(), kind, rng)
            p = os.path.join(str(tmp_path), f"m_{kind}_{k}_{how}" + os.path.splitext(orig)[1])
            with open(p, "wb") as f:
                f.write(data)
            jobs.append([kind, orig, p])
            meta.append((kind, how))
    xfile = tmp_path / "x.json"
    xfile.write_text(json.dumps(xin.tolist()))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    root = os.path.dirname(os.path.dirname(os.path.abspath(dyntorch.__file__)))
    env = dict(os.environ, PYTHONPATH=root)
    results = []
    batch = 150
    for s in range(0, len(jobs), batch):
        jf = tmp_path / f"jobs{s}.json"
        jf.write_text(json.dumps(jobs[s:s + batch]))
        out = subprocess.run([sys.executable, str(script), str(jf), str(LIMIT_EXTRA),
                              str(xfile)], capture_output=True, text=True, timeout=300,
                             env=env, cwd=root)
        assert out.returncode == 0, (f"loader child for jobs {s}..{s + batch} died "
                                     f"(rc {out.returncode}): {out.stderr[-3000:]}")
        results += json.loads(out.stdout.strip().splitlines()[-1])
    assert len(results) == len(jobs)
    bad, tally = [], {}
    for (kind, how), (outcome, msg), job in zip(meta, results, jobs):
        tally.setdefault(kind, {}).setdefault(outcome, 0)
        tally[kind][outcome] += 1
        clean = outcome in ("LoadError", "same") or (outcome == "differs" and how == "lie")
        if not clean:
            bad.append((kind, how, outcome, os.path.basename(job[2]), msg[:400]))
    print("fuzz outcomes by kind:", json.dumps(tally))
    assert not bad, f"{len(bad)} of {len(jobs)} mutations escaped: " + "\n".join(map(str, bad[:8]))
    # the fuzz reached the checks: most mutations were refused, some loaded intact
    for kind, t in tally.items():
        assert t.get("LoadError", 0) >= N_PER_KIND // 3, (kind, t)


def test_lying_storage_count_and_shape_are_refused_before_allocating(tmp_path):
    from dyntorch.serialization import LoadError

    p = tmp_path / "big.pt"
    dyntorch.save({"w": dyntorch.ones(4)}, p)
    members = _members(p.read_bytes())
    pkl = dict(members)["archive/data.pkl"]
    # shape (4,) -> (2**40,): fits no storage of 4 elements
    lie = pkl.replace(b"K\x04\x85", _pickle_int(2**40) + b"\x85", 1)
    assert lie != pkl
    q = tmp_path / "lie.pt"
    q.write_bytes(_rezip([(n, lie if n == "archive/data.pkl" else b) for n, b in members]))
    with pytest.raises(LoadError, match=r"lie\.pt.*does not fit its storage"):
        dyntorch.load(q)
    # a pickle string that claims 4 GB
    evil = b"\x80\x02X" + struct.pack("<I", 2**32 - 1) + b"abc"
    r = tmp_path / "str.pt"
    r.write_bytes(_rezip([("archive/data.pkl", evil), ("archive/version", b"3\n")]))
    with pytest.raises(LoadError, match=r"str\.pt.*damaged pickle"):
        dyntorch.load(r)
    # a memo index that would make the unpickler grow its table to 2**31 slots
    memo = b"\x80\x02N" + b"r" + struct.pack("<I", 2**31) + b"."
    # numpy.ndarray instantiated directly with a lying shape (NEWOBJ)
    newobj = (b"\x80\x02cnumpy\nndarray\n" + b"J" + struct.pack("<i", 2**30) +
              b"\x85\x85\x81.")
    # torch.Tensor called with a size
    call = b"\x80\x02ctorch\nTensor\n" + b"J" + struct.pack("<i", 2**30) + b"\x85R."
    for tag, pkl, why in [("memo", memo, "memo index"), ("newobj", newobj, "NEWOBJ"),
                          ("call", call, "not callable")]:
        f = tmp_path / f"{tag}.pt"
        f.write_bytes(_rezip([("archive/data.pkl", pkl), ("archive/version", b"3\n")]))
        with pytest.raises(LoadError, match=rf"{tag}\.pt.*{why}"):
            dyntorch.load(f)
