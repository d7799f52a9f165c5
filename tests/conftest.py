"""Shared test fixtures: devices to parametrise over, torch as an optional reference."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch

DEVICES = ["cpu"] + (["cuda"] if dyntorch.cuda.is_available() else [])


def pytest_collection_modifyitems(config, items):
    if dyntorch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device and CuPy")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def device(request):
    """Every op test runs on every available device."""
    return request.param


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
