"""Read-only queries over the results store used by pipelines and reports."""

from __future__ import annotations

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
