"""An offline stand-in for ``requests.get`` serving a synthetic Cora archive (gcn, gat).

The archive has Cora's layout (``cora/cora.content``: id, binary features, label;
``cora/cora.cites``: cited, citing) with 2708 papers, 7 classes and random citations.
"""
from __future__ import annotations

import io
import os
import tarfile

import numpy as np

N_PAPERS, N_FEATURES, N_EDGES = 2708, int(os.environ.get("STANDIN_CORA_FEATURES", 300)), 5429
LABELS = ["Case_Based", "Genetic_Algorithms", "Neural_Networks", "Probabilistic_Methods",
          "Reinforcement_Learning", "Rule_Learning", "Theory"]


def cora_tgz() -> bytes:
    rng = np.random.default_rng(0)
    ids = rng.choice(1_200_000, N_PAPERS, replace=False) + 35
    feats = (rng.random((N_PAPERS, N_FEATURES)) < 0.02).astype(int)
    feats[np.arange(N_PAPERS), rng.integers(0, N_FEATURES, N_PAPERS)] = 1  # no empty rows
    labels = rng.integers(0, len(LABELS), N_PAPERS)
    content = "".join(f"{i}\t" + "\t".join(map(str, f)) + f"\t{LABELS[c]}\n"
                      for i, f, c in zip(ids, feats, labels))
    a, b = rng.integers(0, N_PAPERS, N_EDGES), rng.integers(0, N_PAPERS, N_EDGES)
    cites = "".join(f"{ids[x]}\t{ids[y]}\n" for x, y in zip(a, b))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in (("cora/cora.content", content), ("cora/cora.cites", cites)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Response:
    def __init__(self, url: str):
        if not url.endswith("cora.tgz"):
            raise ConnectionError(f"requests stand-in is offline: no data for {url}")
        self.raw = io.BytesIO(cora_tgz())
        self.status_code = 200

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def get(url: str, stream: bool = False, **kwargs):
    return _Response(url)
