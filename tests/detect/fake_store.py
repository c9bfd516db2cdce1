"""Rows for a small results store, written straight into the tables (no images, no detector run).

Used by the static-false-positive and MegaDetector-export tests: they need stores with chosen
boxes, failures and classifications, which the real ingest and detect stages would only produce
from real images and a trained detector.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from ecowatch.store import Store
from ecowatch.store import schema as S

RUN_ID = "test-run"
DETECTOR_NAME = "tiny-test"
DETECTOR_VERSION = "0123456789abcdef"
T0 = dt.datetime(2026, 5, 1, 6, 0, 0)


@dataclass(frozen=True)
class FakeBox:
    """One detection to write: category, confidence and ``bbox_xywhn``."""

    category: str
    conf: float
    x: float
    y: float
    w: float
    h: float


def media_id_of(dump_id: str, relpath: str) -> str:
    """A deterministic media id (the real ingest hashes the same natural key)."""
    return hashlib.sha1(f"{dump_id}/{relpath}".encode()).hexdigest()


def add_dump(store: Store, dump_id: str, root: str = "/dumps/test", deployments: Sequence[str] = ()) -> None:
    """Write a dump, its deployments and one finished detect run."""
    with store.transaction() as conn:
        conn.execute(S.runs.insert().values(run_id=RUN_ID, kind="detect", started_at=T0,
                                            finished_at=T0 + dt.timedelta(hours=1), status="finished",
                                            params_json="{}", counts_json="{}"))
        conn.execute(S.dumps.insert().values(dump_id=dump_id, root=root))
        for dep in deployments:
            conn.execute(S.deployments.insert().values(
                deployment_id=dep, location_id=f"loc-{dep}", location_name=dep, latitude=52.0, longitude=5.0,
                start=T0 - dt.timedelta(days=10), end=T0 + dt.timedelta(days=10), utc_offset_min=60))


def add_media(
    store: Store,
    dump_id: str,
    relpath: str,
    *,
    deployment_id: str | None,
    index: int = 0,
    boxes: Sequence[FakeBox] | None = (),
    status: str = "ok",
    media_type: str = "image",
    flags: Sequence[tuple[str, str]] = (),
    detected: bool = True,
) -> str:
    """Write one media row with its flags, detections (by descending conf) and ``detector_done`` row.

    Returns:
        The media id.
    """
    media_id = media_id_of(dump_id, relpath)
    with store.transaction() as conn:
        conn.execute(S.media.insert().values(
            media_id=media_id, dump_id=dump_id, relpath=relpath, deployment_id=deployment_id,
            sha256=hashlib.sha256(relpath.encode()).hexdigest(), size_bytes=1000, media_type=media_type,
            status=status, width=1920 if status == "ok" else None, height=1080 if status == "ok" else None,
            timestamp=T0 + dt.timedelta(minutes=index), timestamp_source="exif_datetimeoriginal",
            ingest_run_id=RUN_ID))
        for flag, message in flags:
            conn.execute(S.media_flags.insert().values(media_id=media_id, flag=flag, message=message))
        if status == "ok" and detected:
            ordered = sorted(boxes or (), key=lambda b: -b.conf)
            for rank, box in enumerate(ordered):
                conn.execute(S.detections.insert().values(
                    detection_id=f"{media_id}:{DETECTOR_VERSION}:{rank}", media_id=media_id, category=box.category,
                    conf=box.conf, x=box.x, y=box.y, w=box.w, h=box.h, detector_name=DETECTOR_NAME,
                    detector_version=DETECTOR_VERSION, tile="full", static_fp=False, run_id=RUN_ID))
            conn.execute(S.detector_done.insert().values(media_id=media_id, detector_version=DETECTOR_VERSION,
                                                         run_id=RUN_ID))
    return media_id


def add_classifications(
    store: Store, detection_id: str, scores: Sequence[tuple[str, float]], *, model: str = "tiny-clf",
    version: str = "v1",
) -> None:
    """Write top-k classifications (taxon id, score) of one detection, ranked as given."""
    with store.transaction() as conn:
        for rank, (taxon_id, score) in enumerate(scores, start=1):
            conn.execute(S.classifications.insert().values(
                detection_id=detection_id, model_name=model, model_version=version, rank=rank, taxon_id=taxon_id,
                score=score, temperature=1.0, unknown_score=0.0, run_id=RUN_ID))


def static_flags(store: Store) -> dict[str, bool]:
    """``static_fp`` of every detection by detection id."""
    with store.engine.connect() as conn:
        rows = conn.execute(S.detections.select().with_only_columns(S.detections.c.detection_id,
                                                                     S.detections.c.static_fp)).all()
    return {det_id: bool(flag) for det_id, flag in rows}
