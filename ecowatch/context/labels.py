"""Labelled observations that the knowledge graph learns from.

Two sources give the same :class:`LabelledObservation` records (one per labelled frame and taxon):

- :func:`observations_from_coco`: a COCO Camera Traps file (``images`` with ``location``,
  ``deployment_id``, ``datetime`` in camera-local time, ``seq_id``; ``annotations`` with a
  ``taxon_id`` on the annotation or on its category);
- :func:`observations_from_store`: the results store's observations made by people (``source``
  ``human`` by default): media-level rows take their media file's time and sequence, event-level
  rows the earliest time of their event's media.

Frames of one burst are not independent sightings; the graph counts *events* (one per
location, event id and taxon) and keeps the largest number of individuals seen in one frame.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from ecowatch.errors import InputDataError
from ecowatch.formats.coco_camera_traps import load_coco_camera_traps
from ecowatch.store import Store
from ecowatch.store import schema as S

log = logging.getLogger(__name__)

#: Observation sources whose taxa are taken as labels by default (people's identifications).
LABEL_SOURCES: tuple[str, ...] = ("human",)


@dataclass(frozen=True)
class LabelledObservation:
    """One taxon seen in one frame (or one event) at one place.

    Attributes:
        taxon_id: the label (a taxon id; any rank, though priors use species-rank labels).
        location_id: where the camera stood.
        deployment_id: the camera placement ("" when unknown).
        event_id: the burst/sequence the frame belongs to (the frame's own id when there is none).
        timestamp: camera-local time of the frame (or the event's start), None when unknown.
        individuals: individuals of this taxon in the frame (boxes), at least 1.
    """

    taxon_id: str
    location_id: str
    deployment_id: str
    event_id: str
    timestamp: dt.datetime | None
    individuals: int = 1


def _parse_time(value: object) -> dt.datetime | None:
    if not value:
        return None
    try:
        stamp = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp.replace(tzinfo=None)


def observations_from_coco(path: Path, *, exclude_taxa: Sequence[str] = (),
                           prefix: str = "") -> list[LabelledObservation]:
    """Labelled frames of a COCO Camera Traps file.

    Args:
        path: the COCO Camera Traps JSON.
        exclude_taxa: taxon ids to leave out (e.g. ``homo_sapiens``).
        prefix: prepended to location, deployment and event ids (to pool several dumps whose
            ids repeat, e.g. ``"seed1/"``).

    Returns:
        One observation per (image, taxon) with at least one annotation, sorted by location,
        event and time; ``individuals`` counts that taxon's annotations on the image.

    Raises:
        InputDataError: the file is missing or not COCO Camera Traps, or an image has no location.
    """
    path = Path(path)
    coco = load_coco_camera_traps(path)
    images, categories, annotations = coco.images, coco.categories, coco.annotations
    excluded = set(exclude_taxa)
    per_image: Counter[tuple[object, str]] = Counter()
    for ann in annotations:
        taxon = ann.get("taxon_id") or categories.get(ann.get("category_id"), {}).get("taxon_id")
        if taxon and taxon not in excluded:
            per_image[(ann["image_id"], str(taxon))] += 1
    out = []
    for (image_id, taxon), count in per_image.items():
        image = images.get(image_id)
        if image is None:
            raise InputDataError(f"{path}: an annotation names image {image_id!r}, which is not in 'images'.")
        location = str(image.get("location") or "")
        if not location:
            raise InputDataError(f"{path}: image {image_id!r} has no 'location'; every labelled image needs one "
                                 "(COCO Camera Traps 'location' field) for the knowledge graph.")
        deployment = str(image.get("deployment_id") or "")
        event = str(image.get("seq_id") or image_id)
        out.append(LabelledObservation(taxon, prefix + location, prefix + deployment if deployment else "",
                                       prefix + event, _parse_time(image.get("datetime")), count))
    out.sort(key=lambda o: (o.location_id, o.event_id, o.timestamp or dt.datetime.min, o.taxon_id))
    log.info("%s: %d labelled frame/taxon pairs", path, len(out))
    return out


def observations_from_store(store: Store, *, sources: Sequence[str] = LABEL_SOURCES) -> list[LabelledObservation]:
    """Animal observations with a taxon made by the given sources (people, by default).

    Args:
        store: the results store.
        sources: ``observations.source`` values taken as labels.

    Returns:
        One observation per row (media-level rows at their media's time; event-level rows at the
        earliest time of their event's media, or None), sorted like :func:`observations_from_coco`.
        Rows without a deployment are left out (their place is unknown).
    """
    o, m, dep = S.observations, S.media, S.deployments
    starts = (sa.select(m.c.deployment_id, m.c.sequence_id, sa.func.min(m.c.timestamp).label("start"))
              .where(m.c.sequence_id.is_not(None)).group_by(m.c.deployment_id, m.c.sequence_id).subquery())
    stmt = (
        sa.select(o.c.observation_id, o.c.level, o.c.taxon_id, o.c.count, o.c.deployment_id, o.c.sequence_id,
                  dep.c.location_id, m.c.timestamp, starts.c.start)
        .select_from(o.join(dep, dep.c.deployment_id == o.c.deployment_id)
                     .outerjoin(m, m.c.media_id == o.c.media_id)
                     .outerjoin(starts, sa.and_(starts.c.deployment_id == o.c.deployment_id,
                                                starts.c.sequence_id == o.c.sequence_id)))
        .where(o.c.source.in_(list(sources)), o.c.observation_type == "animal", o.c.taxon_id.is_not(None),
               o.c.taxon_id != "")
    )
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    out = []
    for row in rows:
        stamp = row.timestamp if row.level == "media" else row.start
        event = row.sequence_id or row.observation_id
        out.append(LabelledObservation(str(row.taxon_id), str(row.location_id), str(row.deployment_id), str(event),
                                       stamp, max(int(row.count or 1), 1)))
    out.sort(key=lambda x: (x.location_id, x.event_id, x.timestamp or dt.datetime.min, x.taxon_id))
    return out
