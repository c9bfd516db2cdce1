"""A throw-away PostgreSQL server for tests: ``initdb`` into a temporary folder, ``pg_ctl start``.

The session fixture :func:`postgres_server` starts one cluster for the whole test session,
listening on 127.0.0.1 on a free port (and on a Unix socket in its own folder), and removes it at
the end. Each test that needs a fresh store asks it for a new database
(:meth:`PostgresServer.new_database`), which costs a few tens of milliseconds.

Where the binaries are looked for, in order: ``$ECOWATCH_PG_BIN`` (a folder), the folder of
``initdb`` on ``PATH``, ``pg_config --bindir``, Debian's ``/usr/lib/postgresql/<version>/bin``
(Debian's ``postgresql`` package does not put the server on ``PATH``) and RHEL's
``/usr/pgsql-<version>/bin``, newest version first.

``initdb`` refuses to run as root. Run as root (CI, containers), the cluster is created and run
by the unprivileged ``postgres`` account (made by Debian's package; ``nobody`` otherwise)
through ``runuser``; the cluster folder is made in the system temporary folder and handed to that
account, since pytest's own temporary folders are private to root.

Without binaries the tests that use the server are skipped with the reason, except when
``ECOWATCH_REQUIRE_POSTGRES=1`` (set by ``.ci/run``): then they fail, so CI cannot silently run
the SQLite half only.
"""

from __future__ import annotations

import atexit
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REQUIRE_ENV = "ECOWATCH_REQUIRE_POSTGRES"
BIN_ENV = "ECOWATCH_PG_BIN"
SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
SUPERUSER = "ecowatch"  # the cluster's superuser (initdb -U); trust authentication, local only
START_TIMEOUT_S = 60
# Throw-away cluster: durability off (nothing to recover), small memory (shared CPU machines),
# deadlocks detected after 100 ms instead of 1 s (the retry tests provoke some).
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "'16MB'",
    "max_connections": "60",
    "deadlock_timeout": "'100ms'",
    "timezone": "'UTC'",
    "log_min_messages": "'warning'",
}


def _has_server(folder: Path) -> bool:
    return all(os.access(folder / name, os.X_OK) for name in SERVER_PROGRAMS)


def _version_key(folder: Path) -> tuple[int, ...]:
    digits = "".join(ch if ch.isdigit() else " " for ch in folder.parent.name)
    return tuple(int(part) for part in digits.split()) or (0,)


def find_postgres_bindir() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, or None (see the module docstring)."""
    candidates: list[Path] = []
    if os.environ.get(BIN_ENV):
        candidates.append(Path(os.environ[BIN_ENV]))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip():
            candidates.append(Path(done.stdout.strip()))
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"):
        found = [Path(p) for p in sorted(map(str, Path("/").glob(pattern.lstrip("/"))))]
        candidates.extend(sorted(found, key=_version_key, reverse=True))
    return next((folder for folder in candidates if _has_server(folder)), None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_account() -> pwd.struct_passwd | None:
    """The account that runs the server: None for the current user, or an unprivileged one as root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a 'postgres' nor a 'nobody' account exists to run initdb as")


@dataclass
class PostgresServer:
    """A running throw-away cluster.

    Attributes:
        bindir: folder of the server programs.
        root: temporary folder holding the data folder, the socket and the log.
        port: TCP port on 127.0.0.1.
        version: the server's version line.
    """

    bindir: Path
    root: Path
    port: int
    version: str
    _account: pwd.struct_passwd | None = field(default=None, repr=False)
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of a database of this server (psycopg 3 driver)."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "t") -> str:
        """Create an empty database and return its URL."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\' LC_COLLATE \'C\' '
                         "LC_CTYPE 'C'")
        return self.url(name)

    def _run(self, *args: str, timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        command = [str(a) for a in args]
        if self._account is not None:
            command = ["runuser", "-u", self._account.pw_name, "--", *command]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout,
                              cwd=self.root, env=env)

    @classmethod
    def start(cls, bindir: Path) -> PostgresServer:
        """Create a cluster in a new temporary folder and start it.

        Raises:
            RuntimeError: initdb or the server failed; the message holds their output.
        """
        account = _server_account()
        # as root, in /tmp: the server account must reach the folder ($TMPDIR may be private to root)
        root = Path(tempfile.mkdtemp(prefix="ecowatch-pg-", dir="/tmp" if account is not None else None))
        if account is not None:
            os.chown(root, account.pw_uid, account.pw_gid)
        version = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True,
                                 check=False).stdout.strip()
        server = cls(bindir, root, 0, version, account)
        try:
            done = server._run(bindir / "initdb", "-D", server.data_dir, "-U", SUPERUSER, "--auth=trust",
                               "--encoding=UTF8", "--locale=C", "--no-sync")
            if done.returncode != 0:
                raise RuntimeError(f"initdb failed ({version}):\n{done.stdout}{done.stderr}")
            settings = "\n".join(f"{k} = {v}" for k, v in SERVER_SETTINGS.items())
            with (server.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
                conf.write(f"\n# ecowatch tests\n{settings}\nunix_socket_directories = '{root}'\n")
            errors = []
            for _ in range(3):  # another process may take the free port before the server binds it
                server.port = _free_port()
                done = server._run(bindir / "pg_ctl", "-D", server.data_dir, "-l", server.log_file, "-w",
                                   "-t", str(START_TIMEOUT_S), "-o", f"-p {server.port}", "start",
                                   timeout=START_TIMEOUT_S + 10)
                if done.returncode == 0:
                    break
                errors.append(done.stdout + done.stderr + server._log_tail())
            else:
                raise RuntimeError(f"the PostgreSQL server did not start ({version}):\n" + "\n".join(errors))
        except BaseException:
            server.stop()
            raise
        return server

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server (immediately: nothing in it is kept) and remove its folder."""
        if not self.root.exists():
            return
        if (self.data_dir / "postmaster.pid").exists():
            self._run(self.bindir / "pg_ctl", "-D", self.data_dir, "-m", "immediate", "-w", "stop")
            deadline = time.monotonic() + 10
            while (self.data_dir / "postmaster.pid").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        shutil.rmtree(self.root, ignore_errors=True)


_shared: PostgresServer | None = None


def shared_postgres_server() -> PostgresServer:
    """The session's server, started on first use; skips or fails the test when there is none."""
    global _shared
    if _shared is not None:
        return _shared
    bindir = find_postgres_bindir()
    if bindir is None:
        reason = (
            "no PostgreSQL server binaries (initdb, pg_ctl, postgres) on PATH, in /usr/lib/postgresql/*/bin "
            f"or in ${BIN_ENV}: install PostgreSQL (Debian: apt-get install postgresql, as .ci/run does) to run "
            "the PostgreSQL store tests"
        )
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    try:
        _shared = PostgresServer.start(bindir)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"PostgreSQL binaries found in {bindir}, but no test server could be started: {exc}",
                    pytrace=False)
    atexit.register(_shared.stop)  # also when the session is interrupted
    return _shared


def stop_shared_postgres_server() -> None:
    """Stop the session's server if one was started."""
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session (see the module docstring); import it into a conftest."""
    yield shared_postgres_server()
    stop_shared_postgres_server()
