"""Grouping a deployment's frames into sequences (bursts / events) by time.

Frames of one deployment, ordered by ``(timestamp, dump_id, relpath)``, belong to the same
sequence while each lies at most ``gap_s`` seconds after the previous one. A sequence's id is
``<deployment_id>:<ISO time of its first frame>``; ``sequence_frame`` counts from 1.

Only readable images with an EXIF time take part (status ``ok``, ``timestamp_source``
``exif_*``): a file modification time says when the card was copied, and grouping by it would
merge unrelated frames. Other media keep ``sequence_id`` NULL.

The whole deployment is recomputed on every run (also frames from earlier dumps, since a
sequence may span a card change), streaming through the rows in pages of ``batch_size``
(keyset pagination) and writing only rows whose values change. A run killed during this step
is repaired by the next one.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import sqlalchemy as sa

from ecowatch.ingest.exif import EXIF_TIME_SOURCES
from ecowatch.store import Store
from ecowatch.store import schema as S

log = logging.getLogger(__name__)


def sequence_id_for(deployment_id: str, first_timestamp: dt.datetime) -> str:
    """The id of a sequence: ``<deployment_id>:<first timestamp, ISO 8601>``."""
    return f"{deployment_id}:{first_timestamp.isoformat()}"


def assign_sequences(store: Store, deployment_id: str, *, gap_s: float, batch_size: int) -> int:
    """Recompute ``sequence_id`` and ``sequence_frame`` for every eligible frame of a deployment.

    Args:
        store: the results store.
        deployment_id: the deployment to regroup.
        gap_s: the largest gap in seconds between consecutive frames of one sequence (> 0).
        batch_size: rows read and updated per transaction.

    Returns:
        The number of sequences of the deployment.
    """
    media = S.media
    order = (media.c.timestamp, media.c.dump_id, media.c.relpath)
    base = (
        sa.select(media.c.media_id, *order, media.c.sequence_id, media.c.sequence_frame)
        .where(
            media.c.deployment_id == deployment_id,
            media.c.status == "ok",
            media.c.media_type == "image",
            media.c.timestamp.is_not(None),
            media.c.timestamp_source.in_(EXIF_TIME_SOURCES),
        )
        .order_by(*order)
        .limit(batch_size)
    )
    update = (
        media.update()
        .where(media.c.media_id == sa.bindparam("b_media_id"))
        .values(sequence_id=sa.bindparam("b_sequence_id"), sequence_frame=sa.bindparam("b_sequence_frame"))
    )
    gap = dt.timedelta(seconds=gap_s)
    sequences, changed = 0, 0
    previous: dt.datetime | None = None
    current_id, frame = "", 0
    last_key: tuple[Any, ...] | None = None
    while True:
        stmt = base if last_key is None else base.where(sa.tuple_(*order) > sa.tuple_(*last_key))
        with store.engine.connect() as conn:
            page = conn.execute(stmt).all()
        if not page:
            break
        updates = []
        for media_id, stamp, dump_id, relpath, old_id, old_frame in page:
            if previous is None or stamp - previous > gap:
                current_id, frame = sequence_id_for(deployment_id, stamp), 0
                sequences += 1
            frame += 1
            previous = stamp
            if (old_id, old_frame) != (current_id, frame):
                updates.append({"b_media_id": media_id, "b_sequence_id": current_id, "b_sequence_frame": frame})
        if updates:
            with store.transaction() as conn:
                conn.execute(update, updates)
            changed += len(updates)
        last_key = tuple(page[-1][1:4])
    log.debug("deployment %s: %d sequences, %d rows updated", deployment_id, sequences, changed)
    return sequences
