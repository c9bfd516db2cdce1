"""The review worklist: after a nightly run, the crops most worth a person's label.

:func:`select_worklist` reads a dump's classifications from the results store and scores each
animal detection (one model version):

- ``uncertain``: ``1 - (p1 - p2)``, the gap between the calibrated top-1 and top-2 probabilities
  (1: a coin toss between two species, ~0: sure);
- ``unknown``: the open-set score (>= 0.5: unlike every known species);
- ``disagrees_with_prior``: 1 when an observation of the image that used a context prior (source
  containing ``prior``, e.g. ``classifier+prior``) names another taxon than the classifier's top-1.

``informativeness`` is their weighted sum (weights in ``conf/retrain.yaml``); the ``reason`` is
the largest term. Images a person labelled already (a ``human`` observation, or a label in the
labelled sets) are left out. Ties are broken by detection id, so the same store gives the same list.

:func:`write_worklist` writes it as a Timelapse-layout CSV (:mod:`ecowatch.retrain.timelapse`):
one row per image (by default), ``Species`` empty for people to fill in, the box in
``BboxX..BboxHeight``. The filled-in file reads back as a labelled set of format ``timelapse_csv``.
"""

from __future__ import annotations

import csv
import logging
import os
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

import sqlalchemy as sa

from ecowatch.retrain import timelapse as T
from ecowatch.store import Store
from ecowatch.store import schema as S
from ecowatch.tables import Taxon

log = logging.getLogger(__name__)

REASONS = ("uncertain", "unknown", "disagrees_with_prior")
#: Columns of the worklist CSV, in order (Timelapse's File, RelativePath, DateTime first).
COLUMNS = (T.FILE, T.RELATIVE_PATH, T.DATETIME, "Species", *T.BBOX_COLUMNS, T.LOCATION, T.DEPLOYMENT,
           T.DETECTION_ID, "Predicted", "PredictedScore", "UnknownScore", "PriorTaxon", "Reason", "Informativeness")


@dataclass(frozen=True)
class WorklistWeights:
    """Weights of the informativeness terms (see the module docstring), each >= 0."""

    uncertainty: float = 1.0
    unknown: float = 1.0
    prior: float = 1.0


@dataclass(frozen=True)
class WorklistRow:
    """One crop to review.

    Attributes:
        detection_id: the detection.
        media_id: its media row.
        relpath: the image, POSIX path relative to the dump root.
        timestamp: camera-local time ``YYYY-MM-DD HH:MM:SS`` ("" when unknown).
        deployment_id: its deployment ("" when none).
        location_id: its location ("" when none).
        bbox_xywhn: the box, normalised top-left x, y, width, height.
        predicted: the classifier's top-1 taxon id.
        predicted_score: its calibrated probability (0..1).
        unknown_score: the open-set score (0..1).
        prior_taxon: the taxon of the image's prior-based observation ("" when none).
        informativeness: the weighted score.
        reason: the largest term: one of :data:`REASONS`.
    """

    detection_id: str
    media_id: str
    relpath: str
    timestamp: str
    deployment_id: str
    location_id: str
    bbox_xywhn: tuple[float, float, float, float]
    predicted: str
    predicted_score: float
    unknown_score: float
    prior_taxon: str
    informativeness: float
    reason: str


def latest_model_version(store: Store, *, dump_id: str, model_name: str) -> str | None:
    """The version of ``model_name`` whose classifications of the dump were written last (None: none)."""
    c, d, m, r = S.classifications, S.detections, S.media, S.runs
    stmt = (sa.select(c.c.model_version, sa.func.max(r.c.started_at).label("last"), sa.func.count().label("n"))
            .select_from(c.join(d, c.c.detection_id == d.c.detection_id).join(m, d.c.media_id == m.c.media_id)
                         .outerjoin(r, c.c.run_id == r.c.run_id))
            .where(m.c.dump_id == dump_id, c.c.model_name == model_name, c.c.rank == 1)
            .group_by(c.c.model_version))
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    if not rows:
        return None
    return max(rows, key=lambda row: (row.last is not None, row.last or 0, row.n, row.model_version)).model_version


def select_worklist(
    store: Store,
    *,
    dump_id: str,
    model_name: str,
    model_version: str | None = None,
    size: int = 200,
    weights: WorklistWeights = WorklistWeights(),
    min_detection_conf: float = 0.2,
    one_per_image: bool = True,
    max_per_deployment: int | None = None,
    exclude_relpaths: Collection[str] = (),
) -> list[WorklistRow]:
    """The ``size`` most informative classified animal detections of a dump.

    Args:
        store: the results store.
        dump_id: the dump's catalog name.
        model_name: the classifier's model name.
        model_version: its version; None: the one whose classifications were written last.
        size: rows wanted.
        weights: weights of the three terms.
        min_detection_conf: detections below this confidence (0..1) are left out, as are static
            false positives.
        one_per_image: keep only the most informative box of each image.
        max_per_deployment: at most this many rows per deployment (None: no cap).
        exclude_relpaths: images (relpaths) already labelled in the labelled sets.

    Returns:
        Rows, most informative first ([] when the dump has no classifications of the model).
    """
    version = model_version or latest_model_version(store, dump_id=dump_id, model_name=model_name)
    if version is None:
        log.warning("worklist %s: no classifications of %s in the store; run the nightly classify stage first",
                    dump_id, model_name)
        return []
    c, d, m, dep, o = S.classifications, S.detections, S.media, S.deployments, S.observations
    c2 = c.alias("second")
    stmt = (
        sa.select(d.c.detection_id, d.c.media_id, d.c.x, d.c.y, d.c.w, d.c.h, m.c.relpath, m.c.timestamp,
                  m.c.deployment_id, dep.c.location_id, c.c.taxon_id, c.c.score, c.c.unknown_score,
                  c2.c.score.label("second_score"))
        .select_from(
            d.join(m, d.c.media_id == m.c.media_id)
            .join(c, sa.and_(c.c.detection_id == d.c.detection_id, c.c.rank == 1))
            .outerjoin(c2, sa.and_(c2.c.detection_id == d.c.detection_id, c2.c.rank == 2,
                                   c2.c.model_name == model_name, c2.c.model_version == version))
            .outerjoin(dep, m.c.deployment_id == dep.c.deployment_id))
        .where(m.c.dump_id == dump_id, d.c.category == "animal", d.c.conf >= min_detection_conf,
               d.c.static_fp.is_(False), c.c.model_name == model_name, c.c.model_version == version,
               ~sa.exists().where(o.c.media_id == d.c.media_id, o.c.source == "human"))
    )
    priors = (sa.select(o.c.media_id, o.c.taxon_id).join(m, o.c.media_id == m.c.media_id)
              .where(m.c.dump_id == dump_id, o.c.source.contains("prior"), o.c.taxon_id.is_not(None)))
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
        prior_of = dict(conn.execute(priors).all())
    excluded = set(exclude_relpaths)
    scored = []
    for row in rows:
        if row.relpath in excluded:
            continue
        prior = prior_of.get(row.media_id) or ""
        terms = {"uncertain": weights.uncertainty * (1.0 - (row.score - (row.second_score or 0.0))),
                 "unknown": weights.unknown * row.unknown_score,
                 "disagrees_with_prior": weights.prior * float(bool(prior) and prior != row.taxon_id)}
        reason = max(REASONS, key=lambda name: (terms[name], -REASONS.index(name)))
        scored.append(WorklistRow(
            detection_id=row.detection_id, media_id=row.media_id, relpath=row.relpath,
            timestamp=row.timestamp.strftime("%Y-%m-%d %H:%M:%S") if row.timestamp else "",
            deployment_id=row.deployment_id or "", location_id=row.location_id or "",
            bbox_xywhn=(row.x, row.y, row.w, row.h), predicted=row.taxon_id, predicted_score=row.score,
            unknown_score=row.unknown_score, prior_taxon=prior, informativeness=sum(terms.values()), reason=reason,
        ))
    scored.sort(key=lambda r: (-r.informativeness, r.detection_id))
    chosen: list[WorklistRow] = []
    images: set[str] = set()
    per_deployment: Counter[str] = Counter()
    for row in scored:
        if len(chosen) >= size:
            break
        if one_per_image and row.media_id in images:
            continue
        if max_per_deployment is not None and per_deployment[row.deployment_id] >= max_per_deployment:
            continue
        chosen.append(row)
        images.add(row.media_id)
        per_deployment[row.deployment_id] += 1
    log.info("worklist %s (%s %s): %d of %d classified detections; reasons %s", dump_id, model_name, version,
             len(chosen), len(scored), dict(Counter(r.reason for r in chosen)))
    return chosen


def write_worklist(rows: Sequence[WorklistRow], path: Path, *, taxa: Mapping[str, Taxon] | None = None) -> Path:
    """Write a worklist as a Timelapse-layout CSV (atomically).

    ``RelativePath`` uses ``\\`` as Timelapse writes it; ``Predicted`` is the scientific name
    (from ``taxa``, else the taxon id), so a reviewer who agrees can copy it into ``Species``.

    Args:
        rows: the rows, in order.
        path: the CSV file to write (its folder is created).
        taxa: the taxonomy table for scientific names.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in rows:
            folder, _, name = row.relpath.rpartition("/")
            taxon = (taxa or {}).get(row.predicted)
            writer.writerow([
                name, str(PureWindowsPath(*folder.split("/"))) if folder else "", row.timestamp, "",
                *(f"{v:.6f}" for v in row.bbox_xywhn), row.location_id, row.deployment_id, row.detection_id,
                taxon.scientific_name if taxon else row.predicted, f"{row.predicted_score:.4f}",
                f"{row.unknown_score:.4f}", row.prior_taxon, row.reason, f"{row.informativeness:.4f}",
            ])
    tmp.replace(path)
    return path
