"""Detector accuracy against ground-truth boxes: matching, precision-recall, operating points.

Boxes are matched per image and class the way COCO and PASCAL VOC do it: detections in
descending confidence, each taking the unmatched ground-truth box of the same class with the
highest IoU if that IoU is at least ``iou``; a detection that finds none is a false positive, a
ground-truth box left unmatched is a miss. Sweeping the confidence threshold over the matched
list gives precision and recall at every threshold; :func:`operating_point` picks the threshold
with the most recall at a required precision. Image-level figures (does the image hold an
animal?) are what a reviewer sorting images experiences, and are given beside the box-level ones.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from ecowatch.detect.datasets import category_class
from ecowatch.detect.registry import MEGADETECTOR_CLASS_MAP
from ecowatch.formats.coco_camera_traps import load_coco_camera_traps
from ecowatch.store import Store
from ecowatch.store import schema as S

Box = tuple[float, float, float, float]  # x, y, w, h in pixels


@dataclass
class TruthImage:
    """Ground truth of one image: boxes per category, in pixels."""

    file_name: str
    width: int
    height: int
    boxes: dict[str, list[Box]] = field(default_factory=dict)


@dataclass(frozen=True)
class Curve:
    """Precision and recall at every confidence threshold (descending).

    Attributes:
        thresholds: confidences, descending.
        precision: precision when keeping detections at or above each threshold.
        recall: recall at each threshold.
        n_truth: ground-truth boxes (or images) of the class.
    """

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    n_truth: int

    def at(self, threshold: float) -> tuple[float, float]:
        """(precision, recall) keeping detections with confidence >= threshold."""
        keep = np.nonzero(self.thresholds >= threshold)[0]
        if not len(keep):
            return 1.0, 0.0
        i = keep[-1]
        return float(self.precision[i]), float(self.recall[i])


@dataclass(frozen=True)
class OperatingPoint:
    """The threshold with the most recall at a required precision (None fields: never reached)."""

    min_precision: float
    threshold: float | None
    precision: float | None
    recall: float | None


def read_truth(coco_path: str | Path) -> dict[str, TruthImage]:
    """Ground-truth boxes of a COCO Camera Traps file by image ``file_name``, per detector category."""
    coco = load_coco_camera_traps(coco_path)
    names = {c["id"]: str(c.get("species_key") or c.get("name", "")) for c in coco.categories.values()}
    out = {img["file_name"]: TruthImage(img["file_name"], int(img["width"]), int(img["height"]))
           for img in coco.images.values()}
    by_id = {img_id: img["file_name"] for img_id, img in coco.images.items()}
    for ann in coco.annotations:
        cls = category_class(names.get(ann["category_id"], ""))
        if cls is None or "bbox" not in ann:
            continue
        category = MEGADETECTOR_CLASS_MAP[cls]
        out[by_id[ann["image_id"]]].boxes.setdefault(category, []).append(tuple(float(v) for v in ann["bbox"]))
    return out


def read_predictions(store: Store, *, dump_id: str, detector_version: str,
                     include_static_fp: bool = False) -> dict[str, list[tuple[str, float, Box]]]:
    """Stored detections of a dump by media relpath: (category, conf, box in display pixels)."""
    m, d = S.media, S.detections
    query = (sa.select(m.c.relpath, m.c.width, m.c.height, d.c.category, d.c.conf, d.c.x, d.c.y, d.c.w, d.c.h,
                       d.c.static_fp)
             .join(d, d.c.media_id == m.c.media_id)
             .where(m.c.dump_id == dump_id, d.c.detector_version == detector_version))
    out: dict[str, list[tuple[str, float, Box]]] = defaultdict(list)
    with store.engine.connect() as conn:
        for relpath, width, height, category, conf, x, y, w, h, static_fp in conn.execute(query):
            if static_fp and not include_static_fp:
                continue
            out[relpath].append((category, float(conf), (x * width, y * height, w * width, h * height)))
    return out


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``x, y, w, h`` boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def box_curve(truth: dict[str, TruthImage], predictions: dict[str, list[tuple[str, float, Box]]], *,
              category: str = "animal", iou_threshold: float = 0.5,
              truth_filter=None) -> Curve:
    """Box-level precision-recall of one category over the images of ``truth``.

    Args:
        truth: ground truth by file name (images without an entry are not scored).
        predictions: detections by file name.
        category: ``animal``, ``person`` or ``vehicle``.
        iou_threshold: least IoU of a match.
        truth_filter: ``f(box, image) -> bool`` restricting the ground truth scored (e.g. small
            animals); a detection matching a box left out is neither a hit nor a false positive.
    """
    scores: list[float] = []
    hits: list[int] = []
    n_truth = 0
    for name, image in truth.items():
        gts = image.boxes.get(category, [])
        scored = [truth_filter is None or truth_filter(box, image) for box in gts]
        n_truth += sum(scored)
        taken = [False] * len(gts)
        preds = sorted((p for p in predictions.get(name, []) if p[0] == category), key=lambda p: -p[1])
        for _, conf, box in preds:
            best, best_iou = -1, iou_threshold
            for j, gt in enumerate(gts):
                if not taken[j]:
                    value = iou(box, gt)
                    if value >= best_iou:
                        best, best_iou = j, value
            if best >= 0:
                taken[best] = True
                if not scored[best]:
                    continue  # matched a box outside the scored subset: ignored
                hits.append(1)
            else:
                if truth_filter is not None and not truth_filter(box, image):
                    continue  # an unmatched detection outside the subset (e.g. a large box): not scored
                hits.append(0)
            scores.append(conf)
    return _curve(np.asarray(scores), np.asarray(hits), n_truth)


def image_curve(truth: dict[str, TruthImage], predictions: dict[str, list[tuple[str, float, Box]]], *,
                category: str = "animal") -> Curve:
    """Image-level precision-recall: an image is positive when it holds a box of the category."""
    scores, hits, n_truth = [], [], 0
    for name, image in truth.items():
        positive = bool(image.boxes.get(category))
        n_truth += positive
        confs = [conf for cat, conf, _ in predictions.get(name, []) if cat == category]
        if confs:
            scores.append(max(confs))
            hits.append(int(positive))
    return _curve(np.asarray(scores), np.asarray(hits), n_truth)


def _curve(scores: np.ndarray, hits: np.ndarray, n_truth: int) -> Curve:
    order = np.argsort(-scores, kind="stable")
    scores, hits = scores[order], hits[order]
    tp = np.cumsum(hits)
    fp = np.cumsum(1 - hits)
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / max(n_truth, 1)
    return Curve(scores, precision, recall, n_truth)


def operating_point(curve: Curve, *, min_precision: float) -> OperatingPoint:
    """The lowest threshold (most recall) whose precision is at least ``min_precision``."""
    ok = np.nonzero(curve.precision >= min_precision)[0]
    if not len(ok):
        return OperatingPoint(min_precision, None, None, None)
    # only a threshold where the score changes is a real cut
    best = max(ok, key=lambda i: (curve.recall[i], -i))
    threshold = float(curve.thresholds[best])
    precision, recall = curve.at(threshold)
    return OperatingPoint(min_precision, threshold, precision, recall)
