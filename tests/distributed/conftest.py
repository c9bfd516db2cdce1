"""Fixtures of the distributed tests: private config folders, one torch thread, the generated data."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .data import NightlyData, make_data

_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "NO_ALBUMENTATIONS_UPDATE": "1"}
_set_here: list[str] = []
_roots: list[Path] = []


def pytest_configure(config: pytest.Config) -> None:
    """Matplotlib (imported by torchmetrics) keeps its font cache in a temporary folder, not in ``~``."""
    root = Path(tempfile.mkdtemp(prefix="ecowatch-distributed-tests-"))
    _roots.append(root)
    for key, value in {**_ENV, "MPLCONFIGDIR": str(root / "matplotlib"), "TORCH_HOME": str(root / "torch")}.items():
        if key not in os.environ:
            os.environ[key] = value
            _set_here.append(key)


def pytest_unconfigure(config: pytest.Config) -> None:
    for key in _set_here:
        os.environ.pop(key, None)
    for root in _roots:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tests share a small machine: one torch thread."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def nightly_data(tmp_path_factory: pytest.TempPathFactory) -> NightlyData:
    """The generated dump and the tiny classifier trained on it (see :mod:`tests.distributed.data`)."""
    return make_data(tmp_path_factory.mktemp("distributed") / "data")
