"""Fixtures of the detector tests: an offline ultralytics, a tiny seeded detector, a store, a dump.

Every test runs with the network blocked and ultralytics' settings in a temporary
``YOLO_CONFIG_DIR`` (tests/conftest.py), never in ``~/.config``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecowatch.store import Store, open_store

from .tiny_model import build_tiny_detector


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

