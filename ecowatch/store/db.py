"""Opening the results store, schema versioning, transactional writes.

Every write goes through :meth:`Store.transaction`: either all rows of a batch are committed or
none are, so a killed run never leaves half-written rows. Inserts are idempotent
(:meth:`Store.insert_ignore`): writing a row whose primary key exists is a no-op, so re-running a
stage never duplicates rows.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine

from ecowatch.errors import StoreError
from ecowatch.store import schema
from ecowatch.store.schema import SCHEMA_VERSION, metadata

log = logging.getLogger(__name__)

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
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


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

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        with self.engine.begin() as conn:
            yield conn

    def insert_ignore(self, conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert rows, skipping those whose primary key or unique key already exists.

        Args:
            conn: a connection inside a transaction (from :meth:`transaction`).
            table: the target table.
            rows: mappings of column name to value; all rows must have the same keys.

        Returns:
            The number of rows actually inserted.
        """
        if not rows:
            return 0
        if self.dialect == "sqlite":
            stmt = sqlite_dialect.insert(table).on_conflict_do_nothing()
        elif self.dialect == "postgresql":
            stmt = pg_dialect.insert(table).on_conflict_do_nothing()
        else:  # pragma: no cover - other dialects are not supported by open_store
            raise StoreError(f"unsupported database dialect {self.dialect!r}")
        result = conn.execute(stmt, list(rows))
        return max(result.rowcount or 0, 0)

    def start_run(self, kind: str, params: Mapping[str, Any]) -> str:
        """Record the start of a pipeline run and return its id."""
        run_id = uuid.uuid4().hex
        with self.transaction() as conn:
            conn.execute(
                schema.runs.insert().values(
                    run_id=run_id,
                    kind=kind,
                    started_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                    status="running",
                    params_json=json.dumps(dict(params), sort_keys=True, default=str),
                    counts_json="{}",
                )
            )
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
        with self.transaction() as conn:
            conn.execute(
                schema.runs.update()
                .where(schema.runs.c.run_id == run_id)
                .values(
                    finished_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                    status=status,
                    counts_json=json.dumps(dict(counts), sort_keys=True, default=str),
                    mlflow_run_id=mlflow_run_id,
                )
            )

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


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def open_store(location: str | Path) -> Store:
    """Open (and on first use create) the results store.

    Args:
        location: path of a SQLite file or a database URL (see :func:`store_url`).

    Returns:
        The store, with its schema created and its version checked.

    Raises:
        StoreError: the database cannot be reached, or was written by another schema version.
    """
    url = store_url(location)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = sa.create_engine(url, future=True)
    except (sa.exc.ArgumentError, ModuleNotFoundError) as exc:
        raise StoreError(
            f"cannot use results store {url!r}: {exc}. Give a SQLite path or a URL such as "
            "postgresql+psycopg://user:password@host/dbname (PostgreSQL needs `pip install psycopg[binary]`)."
        ) from exc
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _on_sqlite_connect)
    elif engine.dialect.name != "postgresql":
        raise StoreError(f"results store dialect {engine.dialect.name!r} is not supported; use SQLite or PostgreSQL.")
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            row = conn.execute(
                sa.select(schema.schema_info.c.value).where(schema.schema_info.c.key == "schema_version")
            ).scalar_one_or_none()
            if row is None:
                conn.execute(schema.schema_info.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
            elif int(row) != SCHEMA_VERSION:
                raise StoreError(
                    f"results store {url!r} has schema version {row}, this ecowatch writes version "
                    f"{SCHEMA_VERSION}. Use a new store path or migrate the old one."
                )
    except sa.exc.OperationalError as exc:
        raise StoreError(f"cannot open results store {url!r}: {exc.orig}") from exc
    return Store(engine)
