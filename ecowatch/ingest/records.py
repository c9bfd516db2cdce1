"""Store reads and writes of the ingest stage: deployments, dumps, media rows and their flags.

All lookups are bounded: they take the keys of one batch and query them with ``IN (...)`` in
chunks, so memory never grows with the size of the store or of the dump.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ecowatch.store import Store
from ecowatch.store import schema as S
from ecowatch.tables import Deployment

# Keys per ``IN (...)`` query: far below SQLite's and PostgreSQL's bound-parameter limits.
IN_CHUNK = 500


@dataclass(frozen=True)
class MediaRef:
    """A media row named by another (e.g. the original of a duplicate)."""

    media_id: str
    dump_id: str
    relpath: str


def media_id_for(dump_id: str, relpath: str) -> str:
    """The deterministic media id: sha1 hex (40 chars) of ``'<dump_id>/<relpath>'`` in UTF-8."""
    return hashlib.sha1(f"{dump_id}/{relpath}".encode()).hexdigest()


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]


def _deployment_row(deployment: Deployment) -> dict[str, Any]:
    row = asdict(deployment)
    return {c.name: row[c.name] for c in S.deployments.columns}


def upsert_deployments(store: Store, deployments: Sequence[Deployment]) -> int:
    """Insert new deployments and update changed ones (a corrected table updates rows).

    Args:
        store: the results store.
        deployments: the deployments table.

    Returns:
        The number of rows inserted or updated.
    """
    rows = {d.deployment_id: _deployment_row(d) for d in deployments}
    if not rows:
        return 0
    table = S.deployments
    changed = 0
    with store.transaction() as conn:
        existing: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(sorted(rows)):
            for rec in conn.execute(sa.select(table).where(table.c.deployment_id.in_(chunk))).mappings():
                existing[rec["deployment_id"]] = dict(rec)
        for dep_id in sorted(rows):
            row = rows[dep_id]
            if dep_id not in existing:  # insert-ignore: another process may have inserted it meanwhile
                changed += store.insert_ignore(conn, table, [row])
            elif existing[dep_id] != row:
                conn.execute(table.update().where(table.c.deployment_id == dep_id).values(**row))
                changed += 1
    return changed


def upsert_dump(store: Store, dump_id: str, root: Path) -> None:
    """Record a dump and the absolute path it was last ingested from."""
    table = S.dumps
    with store.transaction() as conn:
        found = conn.execute(sa.select(table.c.root).where(table.c.dump_id == dump_id)).scalar_one_or_none()
        if found is None:  # insert-ignore: parallel runs on a new store may record the dump at once
            store.insert_ignore(conn, table, [{"dump_id": dump_id, "root": str(root)}])
        elif found != str(root):
            conn.execute(table.update().where(table.c.dump_id == dump_id).values(root=str(root)))


def known_relpaths(store: Store, dump_id: str, relpaths: Sequence[str]) -> set[str]:
    """The relpaths among ``relpaths`` that the store already holds for this dump."""
    found: set[str] = set()
    if not relpaths:
        return found
    media = S.media
    with store.engine.connect() as conn:
        for chunk in _chunks(list(relpaths)):
            stmt = sa.select(media.c.relpath).where(media.c.dump_id == dump_id, media.c.relpath.in_(chunk))
            found.update(conn.execute(stmt).scalars())
    return found


def first_by_sha256(store: Store, digests: Iterable[str]) -> dict[str, MediaRef]:
    """For each digest already in the store, its first media row by ``(dump_id, relpath)``."""
    wanted = sorted({d for d in digests if d})
    found: dict[str, MediaRef] = {}
    media = S.media
    with store.engine.connect() as conn:
        for chunk in _chunks(wanted):
            stmt = sa.select(media.c.sha256, media.c.media_id, media.c.dump_id, media.c.relpath).where(
                media.c.sha256.in_(chunk)
            )
            for digest, mid, dump, rel in conn.execute(stmt):
                ref = MediaRef(mid, dump, rel)
                if digest not in found or (dump, rel) < (found[digest].dump_id, found[digest].relpath):
                    found[digest] = ref
    return found


def write_batch(store: Store, media_rows: Sequence[dict[str, Any]], flag_rows: Sequence[dict[str, Any]]) -> int:
    """Write one batch of media rows and their flags in one transaction, skipping existing rows.

    Returns:
        The number of media rows actually inserted.
    """
    with store.transaction() as conn:
        inserted = store.insert_ignore(conn, S.media, media_rows)
        store.insert_ignore(conn, S.media_flags, flag_rows)
    return inserted


def dump_deployment_ids(store: Store, dump_id: str) -> list[str]:
    """The deployments that media of a dump are assigned to, sorted."""
    media = S.media
    stmt = (
        sa.select(media.c.deployment_id)
        .where(media.c.dump_id == dump_id, media.c.deployment_id.is_not(None))
        .distinct()
        .order_by(media.c.deployment_id)
    )
    with store.engine.connect() as conn:
        return list(conn.execute(stmt).scalars())
