"""Flagging static false positives: boxes that recur at the same place across many frames.

A fixed camera sees the same rock, branch, fence post or timestamp overlay in frame after frame,
and a detector may report it as an animal each time. This is MegaDetector's "repeat detection
elimination" idea made automatic and non-destructive: no box is deleted, its
``detections.static_fp`` column is set, and exports and reports leave flagged boxes out.

Method, for one dump and one detector version, within each deployment and category:

1. Candidates are boxes whose confidence lies in ``[min_conf, max_conf]`` and whose area
   (``w * h`` of ``bbox_xywhn``) is at most ``max_box_area``.
2. Leader clustering: candidates are visited in a fixed order (descending confidence, then
   detection id); each joins the existing cluster whose leader (its first, most confident box)
   it overlaps most with IoU >= ``iou_threshold``, or else leads a new cluster. Leaders are indexed
   by the size level of their sides and a grid of their centres with cells of that size; IoU >= t
   bounds a matching leader's sides to ``[t w, w / t]`` and its centre offset to
   ``w (1 + 1/t) / 2 - t w``, so a box looks at a few cells only and the work grows with the
   number of boxes times the few leaders of similar size and position, not with its square.
3. A cluster seen in at least ``min_occurrences`` different frames, and in at least
   ``min_fraction`` of the deployment's frames processed by the detector version in the dump, is
   static: all its boxes are flagged. A moving animal does not qualify: its boxes overlap only
   those of a few neighbouring frames.

The result depends only on the detections and the configuration, never on the flags already
set: every run recomputes all flags of the dump's detections of that version and writes only
the ones that change, so re-running is a no-op and changed thresholds un-flag boxes that no longer
qualify. Media without a deployment are never flagged (frames from different cameras cannot be
compared).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from ecowatch.config import StaticFPConfig
from ecowatch.errors import StoreError
from ecowatch.store import Store
from ecowatch.store import schema as S

log = logging.getLogger(__name__)

#: Smallest box side (normalised) the size levels of the leader index tell apart.
_MIN_SIDE = 1e-6

@dataclass(frozen=True)
class StaticCluster:
    """A group of boxes flagged as one static false positive.

    Attributes:
        deployment_id: the deployment (one camera placement) the boxes belong to.
        category: detection category (``animal``, ``person``, ``vehicle``).
        bbox_xywhn: the leader box (the most confident member), normalised top-left x, y, w, h.
        frames: number of different frames (media) with a member box.
        detections: number of member boxes.
    """

    deployment_id: str
    category: str
    bbox_xywhn: tuple[float, float, float, float]
    frames: int
    detections: int


@dataclass
class StaticFPSummary:
    """What :func:`flag_static_false_positives` did.

    Attributes:
        dump_id: the dump's catalog name.
        detector_version: the detector version whose detections were examined.
        enabled: whether flagging was enabled (when not, every flag was cleared).
        detections: detections of the dump and version examined.
        candidates: those within the confidence range and area limit, in a deployment.
        flagged: detections flagged as static after the run.
        newly_flagged: detections flagged by this run that were not flagged before.
        unflagged: detections whose flag this run cleared.
        frames_per_deployment: frames (media processed by the version) per deployment id.
        flagged_per_deployment: flagged detections per deployment id.
        clusters: the static clusters found, sorted by deployment, category and position.
    """

    dump_id: str
    detector_version: str
    enabled: bool
    detections: int = 0
    candidates: int = 0
    flagged: int = 0
    newly_flagged: int = 0
    unflagged: int = 0
    frames_per_deployment: dict[str, int] = field(default_factory=dict)
    flagged_per_deployment: dict[str, int] = field(default_factory=dict)
    clusters: list[StaticCluster] = field(default_factory=list)


@dataclass(frozen=True)
class _Box:
    detection_id: str
    media_id: str
    conf: float
    x: float
    y: float
    w: float
    h: float


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two ``bbox_xywhn`` boxes (top-left x, y, width, height).

    Returns:
        IoU in 0..1 (0 when either box has no area).
    """
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = min(ax + aw, bx + bw) - max(ax, bx)
    iy = min(ay + ah, by + bh) - max(ay, by)
    if ix <= 0.0 or iy <= 0.0:
        return 0.0
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0.0 else 0.0


def _level(side: float) -> int:
    """Size level of a box side: sides in ``[2**k, 2**(k+1))`` have level k."""
    return math.floor(math.log2(max(side, _MIN_SIDE)))


def _key(box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """Index key of a leader: size levels of w and h, and its centre's cell in a grid of that size."""
    x, y, w, h = box
    lw, lh = _level(w), _level(h)
    return lw, lh, math.floor((x + w / 2.0) / 2.0**lw), math.floor((y + h / 2.0) / 2.0**lh)


def _candidate_keys(box: tuple[float, float, float, float], t: float) -> list[tuple[int, int, int, int]]:
    """Every index key where a leader with IoU >= t with ``box`` can be.

    IoU >= t bounds a leader's width to ``[t w, w / t]`` (the intersection is at least ``t w`` and at
    most the leader's width wide, and at most ``w`` wide) and the offset of the centres to
    ``(w + w / t) / 2 - t w``; likewise for heights and y. Each size level has cells as large as its
    sides, so a box looks at a few cells of one or two levels per axis.
    """
    x, y, w, h = box
    cx, cy = x + w / 2.0, y + h / 2.0
    reach = max(0.5 + 0.5 / t - t, 0.0)
    keys = []
    for lw in range(_level(t * w * (1 - 1e-9)), _level(w / t * (1 + 1e-9)) + 1):
        cw, rx = 2.0**lw, w * reach + 1e-12
        xs = range(math.floor((cx - rx) / cw), math.floor((cx + rx) / cw) + 1)
        for lh in range(_level(t * h * (1 - 1e-9)), _level(h / t * (1 + 1e-9)) + 1):
            ch, ry = 2.0**lh, h * reach + 1e-12
            ys = range(math.floor((cy - ry) / ch), math.floor((cy + ry) / ch) + 1)
            keys.extend((lw, lh, gx, gy) for gx in xs for gy in ys)
    return keys


def _cluster_boxes(boxes: Sequence[_Box], *, iou_threshold: float) -> list[list[_Box]]:
    """Leader clustering of boxes of one deployment and category (see the module docstring).

    Args:
        boxes: candidate boxes, in any order (they are sorted here).
        iou_threshold: IoU (0..1] at or above which a box joins a leader's cluster.

    Returns:
        Clusters as lists of boxes, the leader first, in the order the leaders were met.
    """
    ordered = sorted(boxes, key=lambda b: (-b.conf, b.detection_id))
    clusters: list[list[_Box]] = []
    leaders: list[tuple[float, float, float, float]] = []
    index: dict[tuple[int, int, int, int], list[int]] = defaultdict(list)
    for box in ordered:
        xywh = (box.x, box.y, box.w, box.h)
        best, best_iou = -1, -1.0
        for key in _candidate_keys(xywh, iou_threshold):
            for leader in index.get(key, ()):
                iou = box_iou(xywh, leaders[leader])
                if iou >= iou_threshold and (iou > best_iou or (iou == best_iou and leader < best)):
                    best, best_iou = leader, iou
        if best >= 0:
            clusters[best].append(box)
        else:
            index[_key(xywh)].append(len(leaders))
            leaders.append(xywh)
            clusters.append([box])
    return clusters


def _load(store: Store, dump_id: str, detector_version: str) -> tuple[
    dict[str, bool], dict[tuple[str, str], list[_Box]], dict[str, int], int
]:
    """Current flags by detection id, candidates by (deployment, category), frames per deployment."""
    det, med = S.detections, S.media
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(det.c.detection_id, det.c.media_id, det.c.category, det.c.conf, det.c.x, det.c.y,
                      det.c.w, det.c.h, det.c.static_fp, med.c.deployment_id)
            .join(med, med.c.media_id == det.c.media_id)
            .where(med.c.dump_id == dump_id, det.c.detector_version == detector_version)
        ).all()
        frame_rows = conn.execute(
            sa.select(med.c.deployment_id, sa.func.count())
            .join(S.detector_done, S.detector_done.c.media_id == med.c.media_id)
            .where(med.c.dump_id == dump_id, S.detector_done.c.detector_version == detector_version,
                   med.c.deployment_id.is_not(None))
            .group_by(med.c.deployment_id)
        ).all()
    current = {r.detection_id: bool(r.static_fp) for r in rows}
    frames = {dep: int(n) for dep, n in sorted(frame_rows)}
    groups: dict[tuple[str, str], list[_Box]] = defaultdict(list)
    for r in rows:
        if r.deployment_id is None:
            continue
        groups[(r.deployment_id, r.category)].append(_Box(r.detection_id, r.media_id, float(r.conf),
                                                          float(r.x), float(r.y), float(r.w), float(r.h)))
    return current, groups, frames, len(rows)


def flag_static_false_positives(
    store: Store, *, dump_id: str, detector_version: str, config: StaticFPConfig
) -> StaticFPSummary:
    """Set ``detections.static_fp`` on boxes that recur at the same place in many frames of a deployment.

    Every detection of the dump made by the detector version gets its flag recomputed from the
    detections and ``config`` alone (see the module docstring), and only flags that change are
    written, in one transaction. Deterministic and idempotent; never deletes a row.

    Args:
        store: the results store.
        dump_id: the dump's catalog name (``media.dump_id``).
        detector_version: the ``detections.detector_version`` whose boxes are examined; frames are the
            dump's media with a ``detector_done`` row for that version.
        config: thresholds (:class:`~ecowatch.config.StaticFPConfig`). When ``config.enabled`` is
            False every flag of these detections is cleared.

    Returns:
        Counts, frames and flagged boxes per deployment, and the static clusters found.

    Raises:
        StoreError: the store cannot be read or the flags cannot be written (nothing is changed then).
    """
    try:
        current, groups, frames, total = _load(store, dump_id, detector_version)
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot read the detections of dump {dump_id!r} ({detector_version}): {exc}") from exc
    summary = StaticFPSummary(dump_id, detector_version, config.enabled, detections=total,
                              frames_per_deployment=dict(frames))
    wanted: set[str] = set()
    if config.enabled:
        area_limit = config.max_box_area
        for (deployment_id, category), boxes in sorted(groups.items()):
            candidates = [b for b in boxes
                          if config.min_conf <= b.conf <= config.max_conf and b.w * b.h <= area_limit]
            summary.candidates += len(candidates)
            n_frames = frames.get(deployment_id, 0)
            needed = max(config.min_occurrences, math.ceil(config.min_fraction * n_frames))
            for members in _cluster_boxes(candidates, iou_threshold=config.iou_threshold):
                seen = len({b.media_id for b in members})
                if seen < needed:
                    continue
                wanted.update(b.detection_id for b in members)
                lead = members[0]
                summary.clusters.append(StaticCluster(deployment_id, category, (lead.x, lead.y, lead.w, lead.h),
                                                      seen, len(members)))
                summary.flagged_per_deployment[deployment_id] = (
                    summary.flagged_per_deployment.get(deployment_id, 0) + len(members))
    summary.clusters.sort(key=lambda c: (c.deployment_id, c.category, c.bbox_xywhn))
    changes = sorted((det_id, det_id in wanted) for det_id, flag in current.items() if flag != (det_id in wanted))
    summary.flagged = len(wanted)
    summary.newly_flagged = sum(1 for _, flag in changes if flag)
    summary.unflagged = sum(1 for _, flag in changes if not flag)
    if changes:
        stmt = (S.detections.update()
                .where(S.detections.c.detection_id == sa.bindparam("b_id"))
                .values(static_fp=sa.bindparam("b_flag")))
        try:
            with store.transaction() as conn:
                conn.execute(stmt, [{"b_id": det_id, "b_flag": flag} for det_id, flag in changes])
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot write static_fp flags of dump {dump_id!r} ({detector_version}): {exc}") from exc
    log.info("static false positives in %s (%s): %d of %d detections flagged in %d clusters (+%d, -%d)",
             dump_id, detector_version, summary.flagged, total, len(summary.clusters),
             summary.newly_flagged, summary.unflagged)
    return summary
