"""Fixtures of the distributed tests: one torch thread and the generated data."""

from __future__ import annotations

import pytest

from .data import NightlyData, make_data


@pytest.fixture(autouse=True)
def _one_torch_thread(one_thread: None) -> None:
    """Every test here runs torch on one thread (see tests/conftest.py)."""


@pytest.fixture(scope="session")
def nightly_data(tmp_path_factory: pytest.TempPathFactory) -> NightlyData:
    """The generated dump and the tiny classifier trained on it (see :mod:`tests.distributed.data`)."""
    return make_data(tmp_path_factory.mktemp("distributed") / "data")
