"""Fixtures of the detector tests: an offline ultralytics, a tiny seeded detector, a store, a dump.

Every test here runs with the network blocked: a connection to an IP address or a DNS lookup
fails the test that made it (ultralytics would otherwise fetch fonts and weights, and MLflow
would send telemetry). ultralytics writes its settings into a temporary ``YOLO_CONFIG_DIR``
for the session, never into ``~/.config``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecowatch.store import Store, open_store

from .tiny_model import build_tiny_detector

_OFFLINE_ENV = {
    "YOLO_OFFLINE": "1",
    "YOLO_AUTOINSTALL": "False",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
_saved_env: dict[str, str | None] = {}
_config_root: list[Path] = []


def pytest_configure(config: pytest.Config) -> None:
    """Before any test module is imported: a private ultralytics/matplotlib config folder, offline switches.

    Importing Lightning imports torchmetrics, which imports matplotlib's font manager (it writes a font
    cache); ultralytics writes its settings on import. Both go to a temporary folder, not ``~``.
    """
    root = Path(tempfile.mkdtemp(prefix="ecowatch-detect-tests-"))
    _config_root.append(root)
    values = {**_OFFLINE_ENV, "YOLO_CONFIG_DIR": str(root / "yolo"), "MPLCONFIGDIR": str(root / "matplotlib")}
    for key, value in values.items():
        _saved_env[key] = os.environ.get(key)
        os.environ[key] = value


def pytest_unconfigure(config: pytest.Config) -> None:
    for key, value in _saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    for root in _config_root:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def offline_ultralytics() -> Path:
    """The session's ``YOLO_CONFIG_DIR`` (ultralytics keeps its files in ``<it>/Ultralytics``)."""
    return Path(os.environ["YOLO_CONFIG_DIR"])


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory, offline_ultralytics: Path) -> Path:
    """A seeded random nano YOLOv8 detector (3 MegaDetector classes) saved by ultralytics."""
    return build_tiny_detector(tmp_path_factory.mktemp("weights") / "tiny.pt", seed=0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(tmp_path / "store" / "results.sqlite")
    yield opened
    opened.dispose()

