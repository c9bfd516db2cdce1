"""Media-level observations from the detector alone (before any species is named).

Until a classifier and the context fuser name species, what the detector saw is already what
reviewers of MegaDetector output work from: per image, which of animal / person / vehicle is in
it and how many, or that it is blank. :func:`write_detector_observations` records exactly that:

- one observation per image and category with at least one box at or above ``threshold`` that is
  not a static false positive: ``observation_type`` ``animal``, ``human`` (Camtrap DP's word for
  the detector's ``person``) or ``vehicle``, ``count`` the number of such boxes, ``probability``
  the highest confidence, ``taxon_id`` NULL (Homo sapiens for ``human``), ``source`` ``detector``;
- one ``blank`` observation (probability ``1 - max conf`` of any box) for each image the detector
  processed that has none;
- ``observation_id`` = sha1 of (media id, detector version, type), so the rows are the same
  whichever run writes them.

The set is recomputed for the dump and detector version on every call (it depends on the
threshold and on the static false-positive flags): the rows of this source for the dump are
replaced in one transaction, so a re-run never duplicates and a changed threshold never leaves
stale rows.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ecowatch.store import Store
from ecowatch.store import schema as S
from ecowatch.tables import taxon_id_for

SOURCE = "detector"
OBSERVATION_TYPE = {"animal": "animal", "person": "human", "vehicle": "vehicle"}
HUMAN_TAXON = taxon_id_for("Homo sapiens")


def superseded_unnamed_ids(observations: Iterable[Mapping[str, Any]]) -> set[str]:
    """Ids of the detector's unnamed animal observations that a named one replaces.

    The detector records "an animal" per image before the classifier and the fuser name it; once
    an animal observation of the same media file names a taxon, the unnamed media-level one
    describes the same animal, and counting or exporting both would count it twice. Reports and
    exports leave these out (they stay in the store).

    Args:
        observations: rows with ``observation_id``, ``level``, ``observation_type``, ``media_id``
            and ``taxon_id`` (None, NaN or "" when unnamed).

    Returns:
        The ``observation_id`` of each superseded row.
    """
    rows = list(observations)
    animal = [r for r in rows if r["observation_type"] == "animal" and r["level"] == "media"]
    named_media = {r["media_id"] for r in animal if _named(r["taxon_id"])}
    return {r["observation_id"] for r in animal if not _named(r["taxon_id"]) and r["media_id"] in named_media}


def _named(taxon_id: object) -> bool:
    return isinstance(taxon_id, str) and taxon_id != ""


@dataclass
class DetectorObservationSummary:
    """What :func:`write_detector_observations` wrote.

    Attributes:
        media: images with a detector_done row for the version.
        per_type: observations per ``observation_type`` (``blank`` included).
    """

    media: int = 0
    per_type: dict[str, int] = field(default_factory=dict)


def _observation_id(media_id: str, detector_version: str, kind: str) -> str:
    return hashlib.sha1(f"{media_id}/{detector_version}/{SOURCE}/{kind}".encode()).hexdigest()


def write_detector_observations(
    store: Store, *, dump_id: str, detector_version: str, threshold: float, run_id: str
) -> DetectorObservationSummary:
    """Replace the dump's ``detector`` observations with those of a detector version.

    Args:
        store: the results store.
        dump_id: the dump's catalog name.
        detector_version: the detector version whose boxes count.
        threshold: the confidence from which a box counts (MegaDetector suggests 0.2 for its models).
        run_id: the current run.

    Returns:
        Counts of the rows written.
    """
    m, d, done = S.media, S.detections, S.detector_done
    with store.engine.connect() as conn:
        frames = conn.execute(
            sa.select(m.c.media_id, m.c.deployment_id, m.c.sequence_id)
            .join(done, sa.and_(done.c.media_id == m.c.media_id, done.c.detector_version == detector_version))
            .where(m.c.dump_id == dump_id)
            .order_by(m.c.media_id)
        ).all()
        boxes = conn.execute(
            sa.select(d.c.media_id, d.c.category, d.c.conf, d.c.static_fp)
            .join(m, m.c.media_id == d.c.media_id)
            .where(m.c.dump_id == dump_id, d.c.detector_version == detector_version)
        ).all()
    counted: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    best: dict[str, float] = defaultdict(float)
    for media_id, category, conf, static_fp in boxes:
        best[media_id] = max(best[media_id], conf)
        if conf >= threshold and not static_fp and category in OBSERVATION_TYPE:
            counted[media_id][category].append(conf)
    rows = []
    per_type: dict[str, int] = defaultdict(int)
    for media_id, deployment_id, sequence_id in frames:
        found = counted.get(media_id)
        kinds = (
            [(OBSERVATION_TYPE[c], len(v), max(v)) for c, v in sorted(found.items())]
            if found else [("blank", None, 1.0 - best.get(media_id, 0.0))]
        )
        for kind, count, probability in kinds:
            rows.append({
                "observation_id": _observation_id(media_id, detector_version, kind),
                "level": "media",
                "deployment_id": deployment_id,
                "media_id": media_id,
                "sequence_id": sequence_id,
                "observation_type": kind,
                "taxon_id": HUMAN_TAXON if kind == "human" else None,
                "taxon_rank": "species" if kind == "human" else None,
                "probability": round(float(probability), 6),
                "count": count,
                "source": SOURCE,
                "run_id": run_id,
            })
            per_type[kind] += 1
    dump_media = sa.select(m.c.media_id).where(m.c.dump_id == dump_id)
    with store.transaction() as conn:
        conn.execute(sa.delete(S.observations).where(S.observations.c.source == SOURCE,
                                                     S.observations.c.media_id.in_(dump_media)))
        for start in range(0, len(rows), 500):
            conn.execute(sa.insert(S.observations), rows[start:start + 500])
    return DetectorObservationSummary(len(frames), dict(sorted(per_type.items())))
