"""Fixtures of the tracking tests: the store tests' throw-away PostgreSQL server (one per session)."""

from __future__ import annotations

from tests.store.postgres_server import postgres_server

__all__ = ["postgres_server"]
