"""Read-only queries over the results store used by pipelines and reports."""

from __future__ import annotations

import csv
from pathlib import Path

import sqlalchemy as sa

from ecowatch.store.db import Store
from ecowatch.store.schema import media, media_flags


def media_per_deployment(store: Store, dump_id: str) -> dict[str, int]:
    """Media of one dump counted per deployment id (``"(none)"`` for unassigned media)."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(media.c.deployment_id, sa.func.count())
            .where(media.c.dump_id == dump_id)
            .group_by(media.c.deployment_id)
        ).all()
    return {(dep or "(none)"): int(n) for dep, n in sorted(rows, key=lambda r: r[0] or "")}


def flag_counts(store: Store, dump_id: str) -> dict[str, int]:
    """Media flags of one dump counted per flag."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(media_flags.c.flag, sa.func.count())
            .join(media, media.c.media_id == media_flags.c.media_id)
            .where(media.c.dump_id == dump_id)
            .group_by(media_flags.c.flag)
        ).all()
    return {flag: int(n) for flag, n in sorted(rows)}


def write_flagged_media_csv(store: Store, dump_id: str, path: Path) -> int:
    """Write every flagged media of a dump as CSV (relpath, status, flag, message).

    Args:
        store: the results store.
        dump_id: the dump's catalog name.
        path: the CSV file to write (its folder must exist).

    Returns:
        The number of rows written.
    """
    stmt = (
        sa.select(media.c.relpath, media.c.status, media_flags.c.flag, media_flags.c.message)
        .join(media_flags, media_flags.c.media_id == media.c.media_id)
        .where(media.c.dump_id == dump_id)
        .order_by(media.c.relpath, media_flags.c.flag)
    )
    count = 0
    with store.engine.connect() as conn, path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["relpath", "status", "flag", "message"])
        for row in conn.execute(stmt):
            writer.writerow(row)
            count += 1
    return count
