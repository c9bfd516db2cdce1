"""Fixtures of the store tests: the same tests on a SQLite file and on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ecowatch.store import Store, open_store
from tests.store.postgres_server import PostgresServer, postgres_server

__all__ = ["postgres_server"]

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Location of a new, empty results store: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "store" / "results.sqlite")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """The store at :func:`store_url`, opened (schema created) and closed after the test."""
    opened = open_store(store_url)
    yield opened
    opened.dispose()
