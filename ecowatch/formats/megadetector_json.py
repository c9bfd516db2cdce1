"""Export of one dump's detections as a MegaDetector batch-output file, format 1.6 (for Timelapse).

Format: https://lila.science/megadetector-output-format (validator:
``megadetector.postprocessing.validate_batch_results``). What this writes:

- ``info``: ``format_version`` ``"1.6"`` (a string), ``detector`` (the detector name),
  ``detection_completion_time`` (``YYYY-MM-DD HH:MM:SS``, UTC, when the last detect run of these
  images finished), ``detector_metadata`` (``megadetector_version``: the detector version, and the
  recommended ``typical_detection_threshold`` / ``conservative_detection_threshold``), and with
  classifications ``classifier`` (``name/version``) and ``classification_completion_time``.
- ``detection_categories``: ``"1"`` animal, ``"2"`` person, ``"3"`` vehicle (``"0"`` is informally
  reserved for empty).
- ``classification_categories`` (``"0"``, ``"1"``, ... over the taxon ids that occur, sorted) and,
  with a taxonomy, ``classification_category_descriptions``: the lineage of lower-case scientific
  names from kingdom down, joined by ``;``; the category names are then common names (scientific
  names where a taxon has none) instead of taxon ids.
- ``images``: one entry per image of the dump (sorted by path; videos are left out since the
  detector does not process them), ``file`` = the path relative to the dump root.
  A processed image has ``detections`` (possibly empty): ``category``, ``conf`` (0..1, 4 decimals),
  ``bbox`` = ``bbox_xywhn`` ``[x_min, y_min, width, height]`` normalised to the image (4 decimals,
  clipped to the image), and ``classifications`` ``[[class_id, score], ...]`` by descending score.
  An image that failed (at ingest, or that the detector could not read, or that this detector
  version has not processed yet) has a ``failure`` string with the reason and ``detections: null``.

Boxes flagged ``static_fp`` are left out unless ``include_static_fp`` is set.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from ecowatch.errors import InputDataError, StoreError
from ecowatch.store import Store
from ecowatch.store import schema as S
from ecowatch.tables import Taxon

log = logging.getLogger(__name__)

FORMAT_VERSION = "1.6"

#: MegaDetector category ids of the detection categories (``"0"`` is informally "empty").
DETECTION_CATEGORIES: dict[str, str] = {"animal": "1", "person": "2", "vehicle": "3"}

#: Confidence that downstream tools (Timelapse) offer as the default threshold; the value
#: MegaDetector recommends for its v5 and later detectors.
TYPICAL_DETECTION_THRESHOLD = 0.2

#: A lower confidence that keeps almost every animal at the cost of more false positives.
CONSERVATIVE_DETECTION_THRESHOLD = 0.05

#: Decimals written for confidences, scores and normalised coordinates.
DECIMALS = 4

#: Failure string prefix MegaDetector uses for an image that could not be read.
FAILURE_IMAGE_ACCESS = "image access failure"

#: Flag of an image the detect stage could not decode (``ecowatch.detect.writer.DETECT_UNREADABLE``;
#: not imported from there, as that module imports Lightning).
_DETECT_UNREADABLE = "detect_unreadable"

_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_VIDEO = "video"


@dataclass(frozen=True)
class _Detection:
    detection_id: str
    media_id: str
    category: str
    conf: float
    bbox_xywhn: tuple[float, float, float, float]


def _round(value: float) -> float:
    return round(float(value), DECIMALS)


def _clip_bbox(x: float, y: float, w: float, h: float) -> list[float]:
    """A ``bbox_xywhn`` clipped to the image: 0 <= x, y <= 1 and x + w, y + h <= 1."""
    x0, y0 = min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0)
    x1, y1 = min(max(x + w, x0), 1.0), min(max(y + h, y0), 1.0)
    return [_round(x0), _round(y0), _round(x1 - x0), _round(y1 - y0)]


def taxon_lineage(taxon_id: str, taxonomy: Mapping[str, Taxon]) -> str:
    """The ``;``-joined lower-case scientific names from the kingdom down to a taxon.

    Raises:
        InputDataError: the taxon (or one of its parents) is not in the taxonomy.
    """
    names: list[str] = []
    seen: set[str] = set()
    current = taxon_id
    while current:
        if current not in taxonomy:
            raise InputDataError(
                f"taxon id {current!r} (lineage of {taxon_id!r}) is not in the taxonomy given; "
                "pass the taxonomy the classifier was trained with."
            )
        if current in seen:
            raise InputDataError(f"the taxonomy has a parent cycle through {current!r}.")
        seen.add(current)
        taxon = taxonomy[current]
        names.append(taxon.scientific_name.strip().lower())
        current = taxon.parent_id
    return ";".join(reversed(names))


def _completion_time(conn: sa.Connection, run_ids: set[str], dump_id: str) -> str:
    """When the last of some runs finished (UTC).

    Without a recorded finish (a dump no detector has processed yet), the time the dump's ingest
    last finished (or started) stands in, so one store always exports the same bytes; the clock
    is the last resort, for a store whose runs table lost those rows.
    """
    finished = None
    if run_ids:
        finished = conn.execute(
            sa.select(sa.func.max(S.runs.c.finished_at)).where(S.runs.c.run_id.in_(sorted(run_ids)))
        ).scalar_one_or_none()
    if finished is None:
        ingest_runs = sa.select(S.media.c.ingest_run_id).where(S.media.c.dump_id == dump_id).distinct()
        finished = conn.execute(
            sa.select(sa.func.max(sa.func.coalesce(S.runs.c.finished_at, S.runs.c.started_at)))
            .where(S.runs.c.run_id.in_(ingest_runs))
        ).scalar_one_or_none()
    if finished is None:
        finished = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return finished.strftime(_TIME_FORMAT)


#: ids per IN list: keeps a query under SQLite's bound-parameter limit
_IN_LIST_CHUNK = 500


def _pick_detector_version(conn: sa.Connection, dump_id: str, detector_version: str | None) -> str | None:
    versions = sorted(conn.execute(
        sa.select(S.detector_done.c.detector_version).distinct()
        .join(S.media, S.media.c.media_id == S.detector_done.c.media_id)
        .where(S.media.c.dump_id == dump_id)
    ).scalars())
    if detector_version is not None:
        if detector_version not in versions:
            raise StoreError(
                f"dump {dump_id!r} has no images processed by detector version {detector_version!r}; "
                f"versions in the store: {versions or 'none'}."
            )
        return detector_version
    if len(versions) > 1:
        raise StoreError(
            f"dump {dump_id!r} was processed by several detector versions {versions}; "
            "pass detector_version= to choose one."
        )
    return versions[0] if versions else None


def _models_of(conn: sa.Connection, detection_ids: list[str]) -> list[tuple[str, str]]:
    """The (model name, version) pairs with classifications of some detections."""
    models: set[tuple[str, str]] = set()
    for start in range(0, len(detection_ids), _IN_LIST_CHUNK):
        models.update((row[0], row[1]) for row in conn.execute(
            sa.select(S.classifications.c.model_name, S.classifications.c.model_version).distinct()
            .where(S.classifications.c.detection_id.in_(detection_ids[start:start + _IN_LIST_CHUNK]))))
    return sorted(models)


def _pick_classifier(conn: sa.Connection, detection_ids: list[str]) -> tuple[str, str] | None:
    if not detection_ids:
        return None
    models = _models_of(conn, detection_ids)
    if len(models) > 1:
        raise StoreError(
            f"detections were classified by several models {models}; choose one: classifier=(name, version), or "
            "`ecowatch export megadetector --classifier NAME/VERSION`."
        )
    return models[0] if models else None  # type: ignore[return-value]


def _atomic_write_json(payload: dict, out_path: Path) -> None:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=1, ensure_ascii=False)
            handle.write("\n")
        os.replace(tmp_name, out_path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def export_megadetector_json(
    store: Store,
    out_path: str | Path,
    *,
    dump_id: str,
    detector_version: str | None = None,
    include_classifications: bool = True,
    taxonomy: Mapping[str, Taxon] | None = None,
    include_static_fp: bool = False,
    classifier: tuple[str, str] | None = None,
    typical_detection_threshold: float = TYPICAL_DETECTION_THRESHOLD,
    conservative_detection_threshold: float = CONSERVATIVE_DETECTION_THRESHOLD,
) -> Path:
    """Write one dump's detections (and classifications) as a MegaDetector 1.6 batch-output JSON file.

    See the module docstring for the file's content. The file is written atomically (a temporary
    file renamed into place), and its content depends only on the store (and the export time when
    no detect run recorded its finish).

    Args:
        store: the results store.
        out_path: the ``.json`` file to write; its folder is created.
        dump_id: the dump's catalog name; ``file`` paths are relative to its root, which is where
            Timelapse expects the file (or the folder the paths are relative to).
        detector_version: the detector version to export; None: the only version that processed
            images of the dump.
        include_classifications: add the classifier's top-k to each detection.
        taxonomy: taxa by id (:func:`ecowatch.tables.read_taxonomy`): common names as category
            names and lineages as ``classification_category_descriptions``.
        include_static_fp: keep boxes flagged as static false positives (left out by default).
        classifier: ``(model_name, model_version)`` whose classifications to export; None: the
            only model that classified these detections.
        typical_detection_threshold: default confidence threshold recommended to Timelapse (0..1).
        conservative_detection_threshold: lower recommended threshold (0..1).

    Returns:
        The path written.

    Raises:
        StoreError: the dump has no media, was processed by several detector versions (or its
            detections classified by several models) and none was chosen, the chosen one is not in
            the store, a detection has a category other than animal/person/vehicle, or the store
            cannot be read.
        InputDataError: a classified taxon is not in the given taxonomy.
        ValueError: a threshold is outside 0..1.
    """
    for name, value in (("typical_detection_threshold", typical_detection_threshold),
                        ("conservative_detection_threshold", conservative_detection_threshold)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be within 0..1, got {value}.")
    out_path = Path(out_path)
    try:
        payload = _build(store, dump_id=dump_id, detector_version=detector_version,
                         include_classifications=include_classifications, taxonomy=taxonomy,
                         include_static_fp=include_static_fp, classifier=classifier,
                         thresholds=(typical_detection_threshold, conservative_detection_threshold))
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot read dump {dump_id!r} from the results store: {exc}") from exc
    _atomic_write_json(payload, out_path)
    log.info("wrote MegaDetector %s file %s: %d images", FORMAT_VERSION, out_path, len(payload["images"]))
    return out_path


def _build(
    store: Store,
    *,
    dump_id: str,
    detector_version: str | None,
    include_classifications: bool,
    taxonomy: Mapping[str, Taxon] | None,
    include_static_fp: bool,
    classifier: tuple[str, str] | None,
    thresholds: tuple[float, float],
) -> dict:
    med, det, done = S.media, S.detections, S.detector_done
    with store.engine.connect() as conn:
        media_rows = conn.execute(
            sa.select(med.c.media_id, med.c.relpath, med.c.status, med.c.media_type)
            .where(med.c.dump_id == dump_id).order_by(med.c.relpath)
        ).all()
        if not media_rows:
            raise StoreError(f"dump {dump_id!r} has no media in the results store; ingest it first.")
        version = _pick_detector_version(conn, dump_id, detector_version)
        flags: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for media_id, flag, message in conn.execute(
            sa.select(S.media_flags.c.media_id, S.media_flags.c.flag, S.media_flags.c.message)
            .join(med, med.c.media_id == S.media_flags.c.media_id)
            .where(med.c.dump_id == dump_id).order_by(S.media_flags.c.media_id, S.media_flags.c.flag)
        ):
            flags[media_id].append((flag, message))
        done_rows = conn.execute(
            sa.select(done.c.media_id, done.c.run_id).join(med, med.c.media_id == done.c.media_id)
            .where(med.c.dump_id == dump_id, done.c.detector_version == version)
        ).all()
        processed = {r.media_id for r in done_rows}
        detector_name = version or "unknown"
        detections: dict[str, list[_Detection]] = defaultdict(list)
        if version is not None:
            stmt = (sa.select(det.c.detection_id, det.c.media_id, det.c.category, det.c.conf, det.c.x, det.c.y,
                              det.c.w, det.c.h, det.c.detector_name)
                    .join(med, med.c.media_id == det.c.media_id)
                    .where(med.c.dump_id == dump_id, det.c.detector_version == version))
            if not include_static_fp:
                stmt = stmt.where(det.c.static_fp.is_(False))
            names = set()
            for r in conn.execute(stmt):
                if r.category not in DETECTION_CATEGORIES:
                    raise StoreError(
                        f"detection {r.detection_id} has category {r.category!r}; the MegaDetector format "
                        f"knows {sorted(DETECTION_CATEGORIES)}."
                    )
                names.add(r.detector_name)
                detections[r.media_id].append(
                    _Detection(r.detection_id, r.media_id, r.category, float(r.conf), (r.x, r.y, r.w, r.h)))
            detector_name = ",".join(sorted(names)) or detector_name
        info: dict = {
            "format_version": FORMAT_VERSION,
            "detector": detector_name,
            "detection_completion_time": _completion_time(conn, {r.run_id for r in done_rows}, dump_id),
            "detector_metadata": {
                "megadetector_version": version or "unknown",
                "typical_detection_threshold": thresholds[0],
                "conservative_detection_threshold": thresholds[1],
            },
        }
        payload: dict = {"info": info, "detection_categories": {v: k for k, v in DETECTION_CATEGORIES.items()}}
        scores: dict[str, list[tuple[str, float]]] = {}
        if include_classifications:
            ids = sorted(d.detection_id for dets in detections.values() for d in dets)
            model = classifier or _pick_classifier(conn, ids)
            if model is not None:
                scores, class_runs = _read_scores(conn, ids, model)
                if ids and not scores:
                    raise StoreError(f"no detection of dump {dump_id!r} was classified by {model[0]}/{model[1]}; "
                                     f"models in the store for it: {_models_of(conn, ids) or 'none'}.")
                info["classifier"] = f"{model[0]}/{model[1]}"
                info["classification_completion_time"] = _completion_time(conn, class_runs, dump_id)
    if scores:
        taxa = sorted({taxon for top in scores.values() for taxon, _ in top})
        class_ids = {taxon: str(i) for i, taxon in enumerate(taxa)}
        payload["classification_categories"] = {class_ids[t]: _display_name(t, taxonomy) for t in taxa}
        if taxonomy is not None:
            payload["classification_category_descriptions"] = {class_ids[t]: taxon_lineage(t, taxonomy) for t in taxa}
    else:
        class_ids = {}
    images = []
    skipped = 0
    for row in media_rows:
        if row.media_type == _VIDEO or (row.status != "failed" and row.media_type != "image"):
            skipped += 1
            continue
        entry: dict = {"file": row.relpath}
        failure = _failure(row, flags.get(row.media_id, []), row.media_id in processed, version)
        if failure is not None:
            entry["failure"] = failure
            entry["detections"] = None
        else:
            entry["detections"] = [_detection_entry(d, scores.get(d.detection_id), class_ids)
                                   for d in sorted(detections[row.media_id], key=lambda d: (-d.conf, d.detection_id))]
        images.append(entry)
    if skipped:
        log.info("MegaDetector export of %s: %d media that are not images (videos, other files) left out",
                 dump_id, skipped)
    payload["images"] = images
    return payload


def _read_scores(conn: sa.Connection, ids: list[str], model: tuple[str, str]) -> tuple[
    dict[str, list[tuple[str, float]]], set[str]
]:
    cls = S.classifications
    by_detection: dict[str, list[tuple[int, str, float]]] = defaultdict(list)
    run_ids: set[str] = set()
    for start in range(0, len(ids), _IN_LIST_CHUNK):
        for r in conn.execute(
            sa.select(cls.c.detection_id, cls.c.rank, cls.c.taxon_id, cls.c.score, cls.c.run_id)
            .where(cls.c.detection_id.in_(ids[start:start + _IN_LIST_CHUNK]), cls.c.model_name == model[0],
                   cls.c.model_version == model[1])
        ):
            by_detection[r.detection_id].append((r.rank, r.taxon_id, float(r.score)))
            run_ids.add(r.run_id)
    ordered = {det_id: [(taxon, score) for _, taxon, score in sorted(rows, key=lambda t: (-t[2], t[0]))]
               for det_id, rows in by_detection.items()}
    return ordered, run_ids


def _display_name(taxon_id: str, taxonomy: Mapping[str, Taxon] | None) -> str:
    if taxonomy is None or taxon_id not in taxonomy:
        return taxon_id
    taxon = taxonomy[taxon_id]
    return taxon.common_name.strip() or taxon.scientific_name.strip() or taxon_id


def _failure(row: sa.Row, flags: list[tuple[str, str]], processed: bool, version: str | None) -> str | None:
    """The reason an image has no detections, or None when the detector processed it."""
    if row.status == "failed":
        reasons = "; ".join(f"{flag}: {message}" for flag, message in flags) or "failed at ingest"
        return f"{FAILURE_IMAGE_ACCESS}: {reasons}"
    if processed:
        return None
    unreadable = [message for flag, message in flags if flag == _DETECT_UNREADABLE]
    if unreadable:
        return f"{FAILURE_IMAGE_ACCESS}: {_DETECT_UNREADABLE}: " + "; ".join(unreadable)
    return f"not processed by detector version {version or '(none)'}"


def _detection_entry(d: _Detection, top: list[tuple[str, float]] | None, class_ids: Mapping[str, str]) -> dict:
    entry: dict = {
        "category": DETECTION_CATEGORIES[d.category],
        "conf": _round(d.conf),
        "bbox": _clip_bbox(*d.bbox_xywhn),
    }
    if top:
        entry["classifications"] = [[class_ids[taxon], _round(score)] for taxon, score in top]
    return entry
