"""Detector and classifier rows for an ingested generated dump, written from its ground truth.

The nightly run's detect and classify stages need model weights; these tests are about the
report, so a "perfect" detector (the COCO Camera Traps truth boxes, seeded confidences) writes
the rows those stages write, in their documented format:

- ``detections``: one per truth box (category animal / person / vehicle), ``bbox_xywhn``;
- ``observations`` from the detector (``source = "detector"``, media level): per image and type
  (animal / human / vehicle) the box count and highest confidence, ``taxon_id`` NULL (Homo sapiens
  for humans), and ``blank`` for an image without boxes;
- with ``classify=True`` also ``classifications`` (top-1) and one ``classifier`` observation per
  animal image naming the truth taxon (probabilities seeded; a few are made low on purpose).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from ecowatch.ingest.records import media_id_for
from ecowatch.store import Store
from ecowatch.store import schema as S

DETECTOR = ("tiny-truth-detector", "0.1")
CLASSIFIER = ("tiny-truth-classifier", "2026.1")


def _id(*parts: str) -> str:
    return hashlib.sha1("/".join(parts).encode()).hexdigest()


def write_fake_results(store: Store, *, dump_id: str, coco_path: Path, run_id: str, classify: bool,
                       seed: int = 0) -> dict[str, int]:
    """Write detector (and classifier) rows for the dump's truth boxes; returns row counts."""
    coco = json.loads(Path(coco_path).read_text())
    sizes = {img["id"]: (img["width"], img["height"]) for img in coco["images"]}
    rng = np.random.default_rng(seed)
    with store.engine.connect() as conn:
        known = dict(conn.execute(sa.select(S.media.c.media_id, S.media.c.deployment_id)
                                  .where(S.media.c.dump_id == dump_id, S.media.c.status == "ok")).all())
    boxes = defaultdict(list)
    for ann in sorted(coco["annotations"], key=lambda a: a["id"]):
        if "bbox" in ann:
            boxes[ann["image_id"]].append(ann)
    detections, observations, classifications = [], [], []
    for image_id in sorted(sizes):
        media_id = media_id_for(dump_id, image_id)
        if media_id not in known:
            continue
        width, height = sizes[image_id]
        per_type: dict[str, list[float]] = defaultdict(list)
        named: dict[str, float] = {}
        for index, ann in enumerate(boxes.get(image_id, [])):
            taxon = ann.get("taxon_id")
            category = "person" if taxon == "homo_sapiens" else "animal" if taxon else "vehicle"
            conf = float(np.round(rng.uniform(0.55, 0.99), 3))
            x, y, w, h = ann["bbox"]
            det_id = f"{media_id}:{DETECTOR[1]}:{index}"
            detections.append({"detection_id": det_id, "media_id": media_id, "category": category, "conf": conf,
                               "x": x / width, "y": y / height, "w": w / width, "h": h / height,
                               "detector_name": DETECTOR[0], "detector_version": DETECTOR[1], "tile": "full",
                               "static_fp": False, "run_id": run_id})
            kind = {"person": "human", "animal": "animal", "vehicle": "vehicle"}[category]
            per_type[kind].append(conf)
            if classify and category == "animal":
                score = float(np.round(rng.uniform(0.3, 0.99), 3))
                classifications.append({"detection_id": det_id, "model_name": CLASSIFIER[0],
                                        "model_version": CLASSIFIER[1], "rank": 1, "taxon_id": taxon, "score": score,
                                        "temperature": 1.0, "unknown_score": 0.01, "run_id": run_id})
                named[taxon] = max(named.get(taxon, 0.0), score)
        common = {"level": "media", "deployment_id": known[media_id], "media_id": media_id, "sequence_id": None,
                  "run_id": run_id}
        for kind, confs in sorted(per_type.items()):
            observations.append({**common, "observation_id": _id(media_id, "detector", kind), "observation_type": kind,
                                 "taxon_id": "homo_sapiens" if kind == "human" else None,
                                 "taxon_rank": "species" if kind == "human" else None,
                                 "probability": max(confs), "count": len(confs), "source": "detector"})
        if not per_type:
            observations.append({**common, "observation_id": _id(media_id, "detector", "blank"),
                                 "observation_type": "blank", "taxon_id": None, "taxon_rank": None,
                                 "probability": 0.97, "count": None, "source": "detector"})
        for taxon, score in sorted(named.items()):
            observations.append({**common, "observation_id": _id(media_id, "classifier", taxon),
                                 "observation_type": "animal", "taxon_id": taxon, "taxon_rank": "species",
                                 "probability": score, "count": 1, "source": "classifier"})
    with store.transaction() as conn:
        store.insert_ignore(conn, S.detections, detections)
        store.insert_ignore(conn, S.classifications, classifications)
        store.insert_ignore(conn, S.observations, observations)
    return {"detections": len(detections), "observations": len(observations),
            "classifications": len(classifications)}
