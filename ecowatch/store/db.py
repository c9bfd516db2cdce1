"""Opening the results store, schema versioning, transactional writes.

Every write goes through :meth:`Store.transaction` (or :meth:`Store.run_in_transaction`):
either all rows of a batch are committed or none are, so a killed run never leaves half-written
rows. Inserts are idempotent (:meth:`Store.insert_ignore`): writing a row whose primary key
exists is a no-op, so re-running a stage never duplicates rows.

The store is a SQLite file by default and a PostgreSQL database for shared use
(``postgresql+psycopg://user@host:5432/dbname``). On PostgreSQL several processes, on one
machine or many, may write at once:

- overlapping idempotent batches end with each row exactly once (``INSERT ... ON CONFLICT DO
  NOTHING``), and :meth:`Store.insert_ignore` writes rows in primary-key order, so two writers
  of overlapping batches take their row locks in the same order and cannot deadlock;
- a transaction that PostgreSQL aborts anyway (deadlock or serialization failure, e.g. between
  updates written in different orders) is retried by :meth:`Store.run_in_transaction`, a bounded
  number of times, before a :class:`~ecowatch.errors.StoreError` says so;
- the schema of a new database is created once, under an advisory lock, however many processes
  open it at the same moment.

A :class:`Store` holds a connection pool: open one per process (after a fork or in a spawned
worker), never pass an open store to another process.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine

from ecowatch.errors import StoreError
from ecowatch.store import schema
from ecowatch.store.schema import SCHEMA_VERSION, metadata

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Attempts of :meth:`Store.run_in_transaction` before a write conflict becomes a StoreError.
WRITE_ATTEMPTS = 6
#: First pause between attempts, in seconds; doubled after each conflict (with jitter), capped below.
RETRY_BASE_DELAY_S = 0.05
RETRY_MAX_DELAY_S = 2.0
# PostgreSQL aborts a transaction with these SQLSTATEs when it conflicts with a concurrent one;
# re-running the whole transaction is the documented remedy.
_CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
# Key of the advisory lock that serialises schema creation between processes opening one database.
_SCHEMA_LOCK_KEY = 0x65636F77  # "ecow"
# Pauses between retries only spread concurrent writers apart; they never change what is written.
_jitter = random.Random()

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",  # readers never block the writer; a killed writer loses no committed batch
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)


def store_url(location: str | Path) -> str:
    """Turn a path or a URL into an SQLAlchemy URL.

    Args:
        location: a filesystem path (a SQLite file, created if absent) or a database URL
            (``sqlite:///...``, ``postgresql+psycopg://user@host/db``).

    Returns:
        The SQLAlchemy URL.
    """
    text = str(location)
    if "://" in text:
        scheme, rest = text.split("://", 1)
        if scheme in ("postgresql", "postgres"):  # SQLAlchemy would pick psycopg2; ecowatch ships psycopg 3
            return f"postgresql+psycopg://{rest}"
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def _safe_url(url: str) -> str:
    """The URL with its password masked, for messages and logs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def is_write_conflict(exc: BaseException) -> bool:
    """Whether a database error is a conflict with a concurrent writer that a re-run resolves.

    Args:
        exc: any exception.

    Returns:
        True for PostgreSQL deadlocks and serialization failures (SQLSTATE 40P01, 40001) and for
        SQLite's "database is locked" (SQLITE_BUSY / SQLITE_LOCKED, after its busy timeout).
    """
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in _CONFLICT_SQLSTATES:
        return True
    name = getattr(orig, "sqlite_errorname", "") or ""
    return name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED")


@dataclass(frozen=True)
class RunRecord:
    """One row of the ``runs`` table."""

    run_id: str
    kind: str
    started_at: dt.datetime
    status: str


class Store:
    """A handle on the results database.

    Use :func:`open_store` to get one; it creates the schema on a new database and refuses a
    database written by an incompatible schema version.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    @property
    def url(self) -> str:
        """The database URL, password masked."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, rolled back on error.

        A ``with`` block cannot be replayed, so a transaction that the database aborts because
        of a concurrent writer (see :func:`is_write_conflict`) is rolled back and reported as a
        :class:`StoreError`; use :meth:`run_in_transaction` where such conflicts can happen
        (concurrent updates) to have it retried. Batches written only with
        :meth:`insert_ignore` do not conflict.

        Yields:
            The connection.

        Raises:
            StoreError: the database aborted the transaction because of a concurrent writer.
        """
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.DBAPIError as exc:
            if is_write_conflict(exc):
                raise StoreError(
                    f"a write to the results store {self.url} conflicted with another process and was rolled "
                    f"back, nothing of this batch was written ({_reason(exc)}). Run the step again (it resumes), "
                    "or write it with Store.run_in_transaction, which retries."
                ) from exc
            raise

    def run_in_transaction(self, work: Callable[[Connection], T], *, attempts: int = WRITE_ATTEMPTS) -> T:
        """Run ``work(conn)`` in one transaction, re-running it when a concurrent writer aborts it.

        PostgreSQL aborts one of two transactions that deadlock or cannot be serialised; the fix
        is to run the aborted one again. ``work`` is therefore called again from the start, in a
        new transaction, after a short growing pause: it must do all its reads and writes through
        ``conn`` and have no other side effects.

        Args:
            work: a function of the connection; its return value is returned.
            attempts: how many times to try before giving up (at least 1).

        Returns:
            What ``work`` returned on the attempt that committed.

        Raises:
            StoreError: every attempt conflicted with a concurrent writer.
            ValueError: ``attempts`` is below 1.
        """
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        for attempt in range(1, attempts + 1):
            try:
                with self.engine.begin() as conn:
                    return work(conn)
            except sa.exc.DBAPIError as exc:
                if not is_write_conflict(exc):
                    raise
                if attempt == attempts:
                    raise StoreError(
                        f"a write to the results store {self.url} conflicted with concurrent writers "
                        f"{attempts} times in a row and was rolled back each time ({_reason(exc)}). "
                        "Nothing of this batch was written; run the step again (it resumes), or run fewer "
                        "writers at once."
                    ) from exc
                delay = min(RETRY_MAX_DELAY_S, RETRY_BASE_DELAY_S * 2 ** (attempt - 1)) * _jitter.uniform(0.5, 1.5)
                log.info("write conflict with a concurrent writer (%s); retrying in %.2f s (attempt %d of %d)",
                         _reason(exc), delay, attempt + 1, attempts)
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def insert_ignore(self, conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert rows, skipping those whose primary key or unique key already exists.

        Rows are written in primary-key order: concurrent writers of overlapping batches then
        lock the same rows in the same order and never deadlock on PostgreSQL.

        Args:
            conn: a connection inside a transaction (from :meth:`transaction`).
            table: the target table (every ecowatch table has a primary key).
            rows: mappings of column name to value; all rows must have the same keys.

        Returns:
            The number of rows actually inserted.
        """
        if not rows:
            return 0
        keys = [c.name for c in table.primary_key.columns]
        if all(k in rows[0] for k in keys):
            rows = sorted(rows, key=lambda row: tuple(_sort_key(row[k]) for k in keys))
        if self.dialect == "sqlite":
            result = conn.execute(sqlite_dialect.insert(table).on_conflict_do_nothing(), list(rows))
            return max(result.rowcount or 0, 0)
        if self.dialect == "postgresql":
            # psycopg reports no row count for a batch: count the rows RETURNING gives back, which
            # are the inserted ones only (skipped rows return nothing)
            returned = pg_dialect.insert(table).on_conflict_do_nothing().returning(*table.primary_key.columns)
            return len(conn.execute(returned, list(rows)).all())
        raise StoreError(f"unsupported database dialect {self.dialect!r}")  # pragma: no cover - refused by open_store

    def start_run(self, kind: str, params: Mapping[str, Any]) -> str:
        """Record the start of a pipeline run and return its id."""
        run_id = uuid.uuid4().hex
        stmt = schema.runs.insert().values(
            run_id=run_id,
            kind=kind,
            started_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
            status="running",
            params_json=json.dumps(dict(params), sort_keys=True, default=str),
            counts_json="{}",
        )
        self.run_in_transaction(lambda conn: conn.execute(stmt))
        return run_id

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        counts: Mapping[str, Any],
        mlflow_run_id: str | None = None,
    ) -> None:
        """Record the end of a run with its counts (and the MLflow run that tracked it)."""
        stmt = (
            schema.runs.update()
            .where(schema.runs.c.run_id == run_id)
            .values(
                finished_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                status=status,
                counts_json=json.dumps(dict(counts), sort_keys=True, default=str),
                mlflow_run_id=mlflow_run_id,
            )
        )
        self.run_in_transaction(lambda conn: conn.execute(stmt))

    def count(self, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
        """Number of rows of a table matching optional conditions."""
        with self.engine.connect() as conn:
            stmt = sa.select(sa.func.count()).select_from(table)
            for condition in where:
                stmt = stmt.where(condition)
            return int(conn.execute(stmt).scalar_one())

    def snapshot(self, *, exclude_columns: Iterable[str] = ()) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every data table, sorted, for comparing two stores.

        Args:
            exclude_columns: column names to leave out (run ids differ between runs).

        Returns:
            Table name to the sorted list of row tuples. The ``runs`` table is left out.
        """
        excluded = set(exclude_columns)
        out: dict[str, list[tuple[Any, ...]]] = {}
        with self.engine.connect() as conn:
            for table in metadata.sorted_tables:
                if table.name in ("runs", "schema_info"):
                    continue
                cols = [c for c in table.columns if c.name not in excluded]
                rows = conn.execute(sa.select(*cols)).all()
                out[table.name] = sorted((tuple(r) for r in rows), key=repr)
        return out

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _sort_key(value: Any) -> tuple[bool, Any]:
    """Sort key of one primary-key value (None first, then the values)."""
    return (value is not None, value)


def _reason(exc: sa.exc.DBAPIError) -> str:
    """The first line of the driver's message."""
    text = str(exc.orig).strip()
    return text.splitlines()[0] if text else type(exc.orig).__name__


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def open_store(location: str | Path) -> Store:
    """Open (and on first use create) the results store.

    Args:
        location: path of a SQLite file or a database URL (see :func:`store_url`), e.g.
            ``postgresql+psycopg://ecowatch:secret@db.example.org:5432/ecowatch``. Without a
            password in the URL, libpq's ``PGPASSWORD`` or ``~/.pgpass`` supply it.

    Returns:
        The store, with its schema created and its version checked.

    Raises:
        StoreError: the URL is not usable, the database cannot be reached, or it was written by
            another schema version.
    """
    url = store_url(location)
    shown = _safe_url(url)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        dialect = sa.engine.make_url(url).get_backend_name()
        options: dict[str, Any] = {"future": True}
        if dialect == "postgresql":
            # a shared server may drop idle connections between the stages of a long night
            options.update(pool_pre_ping=True, connect_args={"application_name": "ecowatch"})
        engine = sa.create_engine(url, **options)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ModuleNotFoundError) as exc:
        raise StoreError(
            f"cannot use results store {shown!r}: {exc}. Give a SQLite path or a URL such as "
            "postgresql+psycopg://user:password@host:5432/dbname (PostgreSQL needs `pip install psycopg[binary]`)."
        ) from exc
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _on_sqlite_connect)
    elif engine.dialect.name != "postgresql":
        raise StoreError(f"results store dialect {engine.dialect.name!r} is not supported; use SQLite or PostgreSQL.")
    try:
        _create_schema(Store(engine), shown)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        hint = (
            " Check the host, port, user and password, that the server accepts connections from this machine "
            "(pg_hba.conf), and that the database exists (createdb -O USER DBNAME)."
            if engine.dialect.name == "postgresql"
            else ""
        )
        raise StoreError(f"cannot open results store {shown!r}: {_reason(exc)}.{hint}") from exc
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        raise StoreError(
            f"cannot create the schema of results store {shown!r}: {_reason(exc)}. The database user needs the "
            "right to create tables in it (GRANT CREATE ON SCHEMA public TO USER) on first use."
        ) from exc
    except StoreError:
        engine.dispose()
        raise
    return Store(engine)


def _create_schema(store: Store, shown_url: str) -> None:
    """Create or check the schema, also when other processes open the same new store at once."""
    store.run_in_transaction(lambda conn: _create_or_check_schema(conn, shown_url))


def _create_or_check_schema(conn: Connection, shown_url: str) -> None:
    """Create the tables of a new store and record its schema version, or check the version.

    A store that has every table is only read. Processes that open a new store at the same
    moment create its schema one after the other (the later ones find it there): on PostgreSQL
    under a transaction-scoped advisory lock, on SQLite by taking the database's write lock first
    (``BEGIN IMMEDIATE``; the Python driver would otherwise run each ``CREATE TABLE`` outside any
    transaction).
    """
    if not set(metadata.tables) <= set(sa.inspect(conn).get_table_names()):
        _lock_schema(conn)
        metadata.create_all(conn)
    version = _schema_version(conn)
    if version is None:
        insert = sqlite_dialect.insert if conn.dialect.name == "sqlite" else pg_dialect.insert
        conn.execute(
            insert(schema.schema_info)
            .values(key="schema_version", value=str(SCHEMA_VERSION))
            .on_conflict_do_nothing()
        )
        version = _schema_version(conn)
    if version == "1":  # the only change since: deployments.habitat
        _lock_schema(conn)
        version = _schema_version(conn)  # another process may have migrated it meanwhile
        if version == "1":
            if "habitat" not in {c["name"] for c in sa.inspect(conn).get_columns("deployments")}:
                conn.exec_driver_sql("ALTER TABLE deployments ADD COLUMN habitat TEXT NOT NULL DEFAULT ''")
            conn.execute(schema.schema_info.update().where(schema.schema_info.c.key == "schema_version")
                         .values(value=str(SCHEMA_VERSION)))
            log.info("results store %s migrated from schema version 1 to %d (deployments.habitat)", shown_url,
                     SCHEMA_VERSION)
            version = str(SCHEMA_VERSION)
    if version is not None and int(version) != SCHEMA_VERSION:
        raise StoreError(
            f"results store {shown_url!r} has schema version {version}, this ecowatch writes version "
            f"{SCHEMA_VERSION}. Use a new store path or migrate the old one."
        )


def _lock_schema(conn: Connection) -> None:
    """Hold the schema until the transaction ends: a PostgreSQL advisory lock, SQLite's write lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _schema_version(conn: Connection) -> str | None:
    """The schema version recorded in a store, or None for a new one."""
    return conn.execute(
        sa.select(schema.schema_info.c.value).where(schema.schema_info.c.key == "schema_version")
    ).scalar_one_or_none()
