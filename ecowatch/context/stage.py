"""The fuse stage: classified detections -> fused, voted, rolled-up observations in the store.

Order of work in :func:`fuse_stage`:

1. resolve the configured classifier as the classify stage does (its version selects the
   ``classifications`` rows; its checkpoint gives the classes and their taxonomy);
2. load the context model (the knowledge-graph artefact) when one is configured;
3. select the dump's animal detections (at least ``classify.min_detection_conf``, not static false
   positives) that have classifications of that version, plus those of the same sequences on
   other dumps (a burst may span a card change);
4. per detection: complete the top-k scores (:func:`~ecowatch.context.fusion.full_probabilities`),
   fetch the context evidence of its deployment's place, the season and the time of day, and
   combine them (:func:`~ecowatch.context.fusion.combine`);
5. per sequence: vote (:func:`~ecowatch.context.fusion.vote_sequence`) and decide (unknown,
   species or roll-up); a detection whose media has no sequence is its own event;
6. write ``observations``, in one transaction that first deletes the dump's earlier fused rows
   (any classifier or context version), so a re-run or a run after a kill never duplicates:

   - level ``media``: one row per media file of the dump with classified animals, labelled with its
     sequence's decision; ``count`` = its animal detections;
   - level ``event``: one row per sequence (``media_id`` NULL, ``sequence_id`` set); ``count`` =
     the most animal detections in one of its frames (individuals per sequence).

   ``observation_type`` is ``animal``; ``taxon_id``/``taxon_rank`` the decided label;
   ``probability`` its score; ``source`` ``classifier``, ``classifier+prior``,
   ``rollup_to_<rank>`` or ``unknown_animal``. Ids are sha1 of (media id or deployment/sequence,
   classifier version, context version, level).

The detector's own observations (``source`` ``detector``, taxon NULL) are left as they are, beside
the fused ones: they record what the detector saw. The report counts one of them per image: a
named animal supersedes the detector's unnamed one on the same image, and deployments with
event-level observations are counted by event (:mod:`ecowatch.report.data`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import sqlalchemy as sa

from ecowatch.config import ClassifyConfig, FuseConfig
from ecowatch.context.fusion import (
    FUSED_SOURCES,
    ContextFactors,
    FusedLabel,
    FusionThresholds,
    FusionWeights,
    Rollup,
    combine,
    decide,
    full_probabilities,
    stack_factors,
    vote_sequence,
)
from ecowatch.context.seasons import season_of, time_of_day
from ecowatch.errors import ConfigError
from ecowatch.store import Store
from ecowatch.store import schema as S

if TYPE_CHECKING:
    from ecowatch.context.graph import KnowledgeGraph
    from ecowatch.context.priors import ContextPriors

log = logging.getLogger(__name__)
_CHUNK = 500


@dataclass
class FuseSummary:
    """What one fuse run did.

    Attributes:
        model_name: the classifier's name.
        model_version: its version (selects the classifications).
        context_version: the context model's version ("" without one).
        detections: classified detections fused.
        prior_applied: detections whose context prior was applied (not gated off).
        media: media-level observations written.
        events: event-level observations written.
        per_source: media-level observations by source.
        seconds: wall time.
    """

    model_name: str
    model_version: str
    context_version: str
    detections: int = 0
    prior_applied: int = 0
    media: int = 0
    events: int = 0
    per_source: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class _Detection:
    detection_id: str
    media_id: str
    dump_id: str
    deployment_id: str | None
    sequence_id: str | None
    timestamp: dt.datetime | None
    unknown_score: float


def thresholds_of(config: FuseConfig) -> FusionThresholds:
    """The named thresholds of a ``fuse`` configuration section."""
    return FusionThresholds(unknown_min_score=config.unknown_min_score, species_min_score=config.species_min_score,
                            rollup_min_score=config.rollup_min_score,
                            min_prior_information_nats=config.min_prior_information_nats,
                            range_outside_factor=config.range_outside_factor)


def fuse_stage(
    store: Store,
    *,
    dump_id: str,
    classify: ClassifyConfig,
    config: FuseConfig,
    run_id: str,
    cache_dir: Path,
    context_path: Path | None = None,
    tracking_uri: str | None = None,
    detector_version: str | None = None,
) -> FuseSummary:
    """Fuse the dump's classified detections into media- and event-level observations (module docstring).

    Args:
        store: the results store (``classifications`` rows from the classify stage).
        dump_id: the dump's catalog name.
        classify: the ``classify`` section (model, ``min_detection_conf``).
        config: the ``fuse`` section (weights and thresholds).
        run_id: the current run, written to ``observations.run_id``.
        cache_dir: the catalog's ``models`` folder (resolves the classifier as classify did).
        context_path: the context-model artefact, or None (no prior: the classifier alone, still
            voted per sequence and rolled up).
        tracking_uri: MLflow tracking URI, for a ``models:/`` classifier.
        detector_version: only detections of this detector version (every version when None).

    Returns:
        Counts of what was written.

    Raises:
        ConfigError: ``classify.model`` is not set.
        ModelNotFoundError: the classifier or the context model cannot be found or loaded.
        InputDataError: classifications name taxa that are not classes of the checkpoint.
    """
    from ecowatch.classify.checkpoint import load_classifier
    from ecowatch.classify.stage import resolve_configured_classifier

    started = time.perf_counter()
    if not classify.model:
        raise ConfigError("the fuse stage needs classify.model (the classifier whose scores it fuses); set it or "
                          "set fuse.enabled: false.")
    resolved = resolve_configured_classifier(classify, cache_dir=cache_dir, tracking_uri=tracking_uri)
    classifier = load_classifier(resolved.path)
    taxonomy = classifier.taxonomy
    priors = graph = None
    if context_path is not None:
        from ecowatch.context.graph import load_knowledge_graph
        from ecowatch.context.priors import ContextPriors

        graph = load_knowledge_graph(context_path)
        priors = ContextPriors(graph, taxonomy)
    summary = FuseSummary(classifier.model_name, resolved.version, graph.version if graph else "")
    detections, scores = _select(store, dump_id=dump_id, model_name=classifier.model_name,
                                 model_version=resolved.version, min_conf=classify.min_detection_conf,
                                 detector_version=detector_version)
    thresholds = thresholds_of(config)
    weights = FusionWeights(config.place_weight, config.activity_weight)
    probs = np.array([full_probabilities(taxonomy.class_ids, *zip(*scores[d.detection_id], strict=True))
                      for d in detections]).reshape(len(detections), taxonomy.num_classes)
    context = None
    if priors is not None and detections:
        context = stack_factors(_factors(store, detections, graph, priors), priors.global_prior)
    fused, applied = combine(probs, context, weights=weights, range_outside_factor=thresholds.range_outside_factor,
                             min_prior_information_nats=thresholds.min_prior_information_nats)
    rows = _rows(detections, fused, applied, Rollup.from_taxonomy(taxonomy), thresholds, dump_id=dump_id,
                 versions=f"{resolved.version}/{summary.context_version}", run_id=run_id)
    _write(store, dump_id, rows)
    summary.detections, summary.prior_applied = len(detections), int(applied.sum())
    summary.media = sum(r["level"] == "media" for r in rows)
    summary.events = sum(r["level"] == "event" for r in rows)
    summary.per_source = dict(sorted(Counter(r["source"] for r in rows if r["level"] == "media").items()))
    summary.seconds = time.perf_counter() - started
    log.info("fuse %s: %d detections (%d with the prior) -> %d media and %d event observations %s", dump_id,
             summary.detections, summary.prior_applied, summary.media, summary.events, summary.per_source)
    return summary


def _select(store: Store, *, dump_id: str, model_name: str, model_version: str, min_conf: float,
            detector_version: str | None) -> tuple[list[_Detection], dict[str, list[tuple[str, float]]]]:
    """The detections to fuse (sorted by id) and their top-k (taxon, score), best first."""
    d, c, m = S.detections, S.classifications, S.media
    sequences = sa.select(m.c.sequence_id).where(m.c.dump_id == dump_id, m.c.sequence_id.is_not(None))
    conditions = [d.c.category == "animal", d.c.static_fp.is_(False), d.c.conf >= min_conf,
                  c.c.model_name == model_name, c.c.model_version == model_version,
                  sa.or_(m.c.dump_id == dump_id, m.c.sequence_id.in_(sequences))]
    if detector_version is not None:
        conditions.append(d.c.detector_version == detector_version)
    stmt = (sa.select(d.c.detection_id, d.c.media_id, m.c.dump_id, m.c.deployment_id, m.c.sequence_id, m.c.timestamp,
                      c.c.rank, c.c.taxon_id, c.c.score, c.c.unknown_score)
            .select_from(d.join(c, c.c.detection_id == d.c.detection_id).join(m, m.c.media_id == d.c.media_id))
            .where(*conditions).order_by(d.c.detection_id, c.c.rank))
    with store.engine.connect() as conn:
        result = conn.execute(stmt).all()
    detections: dict[str, _Detection] = {}
    scores: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for row in result:
        if row.detection_id not in detections:
            detections[row.detection_id] = _Detection(row.detection_id, row.media_id, row.dump_id, row.deployment_id,
                                                      row.sequence_id, row.timestamp, float(row.unknown_score))
        scores[row.detection_id].append((str(row.taxon_id), float(row.score)))
    return list(detections.values()), scores


def _factors(store: Store, detections: list[_Detection], graph: KnowledgeGraph,
             priors: ContextPriors) -> list[ContextFactors | None]:
    """Context evidence per detection (cached per deployment, season and time of day). A site the
    context model has no labels from is known by its region and its deployment's habitat."""
    dep = S.deployments
    ids = sorted({x.deployment_id for x in detections if x.deployment_id})
    with store.engine.connect() as conn:
        known = {r.deployment_id: r for r in conn.execute(
            sa.select(dep.c.deployment_id, dep.c.location_id, dep.c.latitude, dep.c.longitude, dep.c.utc_offset_min,
                      dep.c.habitat)
            .where(dep.c.deployment_id.in_(ids))).all()}
    places = {i: graph.place(deployment_id=i, location_id=r.location_id, latitude=r.latitude, longitude=r.longitude,
                             habitat=r.habitat)
              for i, r in known.items()}
    cache: dict[tuple, ContextFactors] = {}
    out: list[ContextFactors | None] = []
    for x in detections:
        record = known.get(x.deployment_id or "")
        if record is None:  # no deployment: the place is unknown
            out.append(None)
            continue
        season = tod = None
        if x.timestamp is not None:
            season = season_of(x.timestamp.month, record.latitude)
            tod = time_of_day(x.timestamp, latitude=record.latitude, longitude=record.longitude,
                              utc_offset_min=record.utc_offset_min)
        key = (x.deployment_id, season, tod)
        if key not in cache:
            cache[key] = priors.factors(places[x.deployment_id], season=season, time_of_day=tod)
        out.append(cache[key])
    return out


def _observation_id(key: str, versions: str, level: str) -> str:
    return hashlib.sha1(f"{key}/{versions}/fused/{level}".encode()).hexdigest()


def _rows(detections: list[_Detection], fused: np.ndarray, applied: np.ndarray, rollup: Rollup,
          thresholds: FusionThresholds, *, dump_id: str, versions: str, run_id: str) -> list[dict]:
    """Observation rows: one decision per sequence, written per media file (of this dump) and per sequence."""
    events: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, x in enumerate(detections):
        events[(x.deployment_id or "", x.sequence_id) if x.sequence_id else ("", f"media:{x.media_id}")].append(i)
    rows = []
    for (deployment_id, sequence), members in sorted(events.items()):
        mean, unknown = vote_sequence(fused[members], np.array([detections[i].unknown_score for i in members]))
        label = decide(mean, unknown_score=unknown, rollup=rollup, thresholds=thresholds,
                       prior_applied=bool(applied[members].any()))
        per_media = Counter(detections[i].media_id for i in members)
        first = detections[members[0]]
        for media_id, count in sorted(per_media.items()):
            x = next(detections[i] for i in members if detections[i].media_id == media_id)
            if x.dump_id == dump_id:
                rows.append(_row(label, level="media", key=media_id, versions=versions, run_id=run_id,
                                 deployment_id=x.deployment_id, media_id=media_id, sequence_id=x.sequence_id,
                                 count=count))
        if first.sequence_id:
            rows.append(_row(label, level="event", key=f"{deployment_id}/{sequence}", versions=versions, run_id=run_id,
                             deployment_id=first.deployment_id, media_id=None, sequence_id=sequence,
                             count=max(per_media.values())))
    return rows


def _row(label: FusedLabel, *, level: str, key: str, versions: str, run_id: str, deployment_id: str | None,
         media_id: str | None, sequence_id: str | None, count: int) -> dict:
    return {"observation_id": _observation_id(key, versions, level), "level": level, "deployment_id": deployment_id,
            "media_id": media_id, "sequence_id": sequence_id, "observation_type": "animal",
            "taxon_id": label.taxon_id, "taxon_rank": label.rank, "probability": round(label.score, 6),
            "count": int(count), "source": label.source, "run_id": run_id}


def _write(store: Store, dump_id: str, rows: list[dict]) -> None:
    """Replace the dump's fused observations (media rows of its media, event rows of its sequences)."""
    o, m = S.observations, S.media
    dump_media = sa.select(m.c.media_id).where(m.c.dump_id == dump_id)
    dump_sequences = sa.select(m.c.sequence_id).where(m.c.dump_id == dump_id, m.c.sequence_id.is_not(None))
    with store.transaction() as conn:
        conn.execute(sa.delete(o).where(o.c.source.in_(FUSED_SOURCES), o.c.level == "media",
                                        o.c.media_id.in_(dump_media)))
        conn.execute(sa.delete(o).where(o.c.source.in_(FUSED_SOURCES), o.c.level == "event",
                                        o.c.sequence_id.in_(dump_sequences)))
        for start in range(0, len(rows), _CHUNK):
            conn.execute(sa.insert(o), rows[start:start + _CHUNK])
