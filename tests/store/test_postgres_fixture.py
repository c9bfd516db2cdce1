"""The PostgreSQL test server fixture: where it finds the binaries, and skip versus fail without them."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest

from tests.store import postgres_server as pg


def test_finds_debian_binaries_off_path(monkeypatch: pytest.MonkeyPatch) -> None:
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not debian:
        pytest.skip("no Debian PostgreSQL package here (/usr/lib/postgresql/*/bin)")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # Debian's package puts no server program here
    monkeypatch.delenv(pg.BIN_ENV, raising=False)
    found = pg.find_postgres_bindir()
    assert found is not None and (found / "initdb").exists() and (found / "pg_ctl").exists()


def test_explicit_bindir_comes_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in pg.SERVER_PROGRAMS:
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    monkeypatch.setenv(pg.BIN_ENV, str(tmp_path))
    assert pg.find_postgres_bindir() == tmp_path


@pytest.mark.parametrize(("required", "outcome"), [("", pytest.skip.Exception), ("1", pytest.fail.Exception)])
def test_without_binaries_skips_unless_required(monkeypatch: pytest.MonkeyPatch, required: str,
                                                outcome: type[BaseException]) -> None:
    monkeypatch.setattr(pg, "_shared", None)  # as if no server had been started in this session
    monkeypatch.setattr(pg, "find_postgres_bindir", lambda: None)
    monkeypatch.setenv(pg.REQUIRE_ENV, required)
    with pytest.raises(outcome, match="apt-get install postgresql"):
        pg.shared_postgres_server()


def test_network_guard_lets_tests_reach_local_servers_only(network_attempts: list[str]) -> None:
    """tests/conftest.py blocks the network, but not 127.0.0.1 (the test PostgreSQL and MLflow servers)."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(("localhost", server.getsockname()[1]), timeout=5):
            pass
    assert network_attempts == []
    with pytest.raises(OSError, match="network access blocked"), socket.socket() as sock:
        sock.connect(("192.0.2.1", 80))  # TEST-NET-1: never routed
    with pytest.raises(OSError, match="network access blocked"):
        socket.getaddrinfo("example.org", 443)
    assert len(network_attempts) == 2
    network_attempts.clear()  # expected attempts: do not fail this test for them
