"""A tiny hand-made results store for the report's unit tests (seeded, a few dozen rows).

Two deployments at two locations; 12 images (6 written as real JPEG files under the dump root,
so the gallery can crop them); media-level observations of two named taxa and of an unclassified
animal; one low-probability and one genus-level observation; one flagged file; a run row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ecowatch.ingest.records import media_id_for, upsert_deployments, upsert_dump
from ecowatch.store import Store, open_store
from ecowatch.store import schema as S
from ecowatch.tables import Deployment, Taxon

DUMP = "tiny_dump"
T0 = dt.datetime(2026, 3, 1, 12, 0, 0)


def taxonomy(common_fox: str = "red fox") -> dict[str, Taxon]:
    """Taxa of the tiny store (common names as given)."""
    return {
        "vulpes_vulpes": Taxon("vulpes_vulpes", "Vulpes vulpes", "species", "vulpes", common_fox),
        "vulpes": Taxon("vulpes", "Vulpes", "genus", "", "foxes"),
        "meles_meles": Taxon("meles_meles", "Meles meles", "species", "", "European badger"),
    }


@dataclass
class TinyStore:
    """The store and what was written into it."""

    store: Store
    root: Path
    deployments: list[Deployment]
    media_ids: dict[str, str] = field(default_factory=dict)  # relpath -> media id


def _jpeg(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=(60, 80, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="JPEG", quality=80)


def build_tiny_store(tmp: Path, *, location_name: str = "Oak Wood", deployment_id: str = "D1",
                     fox_name: str = "red fox", write_images: bool = True, flag_message: str = "empty file",
                     relpath_prefix: str = "") -> TinyStore:  # fmt: skip
    """Write the tiny store under ``tmp`` (``tmp/store.sqlite``, images under ``tmp/dump``)."""
    root = tmp / "dump"
    root.mkdir(parents=True, exist_ok=True)
    store = open_store(tmp / "store.sqlite")
    deps = [
        Deployment(deployment_id, "L1", location_name, 51.0, 4.0, T0, T0 + dt.timedelta(days=10), 60,
                   camera_id="C1", setup_notes="notes"),
        Deployment("D2", "L2", "Birch Hill", 51.1, 4.2, T0, T0 + dt.timedelta(days=10), 60, camera_id="C2"),
    ]  # fmt: skip
    upsert_deployments(store, deps)
    upsert_dump(store, DUMP, root)
    run_id = store.start_run("nightly", {"dump": DUMP})
    tiny = TinyStore(store, root, deps)
    # (relpath, deployment, hours after T0, observation (type, taxon, rank, probability) or None, box or None)
    plan = [
        ("a/IMG_0001.JPG", deployment_id, 1.0, ("animal", "vulpes_vulpes", "species", 0.95), (0.2, 0.2, 0.4, 0.5)),
        ("a/IMG_0002.JPG", deployment_id, 1.1, ("animal", "vulpes_vulpes", "species", 0.90), (0.1, 0.1, 0.3, 0.3)),
        ("a/IMG_0003.JPG", deployment_id, 30.0, ("animal", "vulpes_vulpes", "species", 0.40), (0.3, 0.3, 0.2, 0.2)),
        ("a/IMG_0004.JPG", deployment_id, 55.0, ("animal", "meles_meles", "species", 0.80), (0.5, 0.5, 0.4, 0.4)),
        ("a/IMG_0005.JPG", deployment_id, 80.0, ("animal", None, None, 0.70), (0.0, 0.0, 0.5, 0.5)),
        ("a/IMG_0006.JPG", deployment_id, 200.0, ("blank", None, None, 0.99), None),
        ("b/IMG_0001.JPG", "D2", 2.0, ("animal", "vulpes_vulpes", "species", 0.85), None),
        ("b/IMG_0002.JPG", "D2", 26.0, ("animal", "vulpes", "genus", 0.60), None),
        ("b/IMG_0003.JPG", "D2", 50.0, ("animal", "meles_meles", "species", 0.75), None),
        ("b/IMG_0004.JPG", "D2", 74.5, ("animal", "meles_meles", "species", 0.92), None),
        ("b/IMG_0005.JPG", "D2", 300.0, ("unknown", None, None, None), None),  # outside the window (> 10 days)
        ("b/IMG_0006.JPG", "D2", 100.0, None, None),  # flagged, no observation
    ]
    media_rows, obs_rows, det_rows, flag_rows = [], [], [], []
    for index, (relpath, dep, hours, obs, box) in enumerate(plan):
        relpath = relpath_prefix + relpath
        media_id = media_id_for(DUMP, relpath)
        tiny.media_ids[relpath] = media_id
        if write_images and relpath.startswith("a/"):
            _jpeg(root / relpath, index)
        media_rows.append({"media_id": media_id, "dump_id": DUMP, "relpath": relpath, "deployment_id": dep,
                           "sha256": hashlib.sha256(relpath.encode()).hexdigest(), "size_bytes": 1000,
                           "media_type": "image", "status": "failed" if obs is None else "ok", "width": 80,
                           "height": 60, "timestamp": T0 + dt.timedelta(hours=hours),
                           "timestamp_source": "exif_datetimeoriginal", "ingest_run_id": run_id})
        if obs is None:
            flag_rows.append({"media_id": media_id, "flag": "zero_byte", "message": flag_message})
            continue
        kind, taxon, rank, probability = obs
        obs_id = hashlib.sha1(f"{relpath}/obs".encode()).hexdigest()
        obs_rows.append({"observation_id": obs_id, "level": "media", "deployment_id": dep, "media_id": media_id,
                         "sequence_id": None, "observation_type": kind, "taxon_id": taxon, "taxon_rank": rank,
                         "probability": probability, "count": 1,
                         "source": "detector" if taxon is None else "classifier", "run_id": run_id})
        if box is not None:
            det_rows.append({"detection_id": f"{media_id}:v1:0", "media_id": media_id, "category": "animal",
                             "conf": 0.9, "x": box[0], "y": box[1], "w": box[2], "h": box[3],
                             "detector_name": "tinydet", "detector_version": "v1", "tile": "full",
                             "static_fp": False, "run_id": run_id})
    with store.transaction() as conn:
        store.insert_ignore(conn, S.media, media_rows)
        store.insert_ignore(conn, S.media_flags, flag_rows)
        store.insert_ignore(conn, S.detections, det_rows)
        store.insert_ignore(conn, S.observations, obs_rows)
    store.finish_run(run_id, status="finished", counts={}, mlflow_run_id="mlflow-run-123")
    return tiny
