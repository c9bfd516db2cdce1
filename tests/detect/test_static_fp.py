"""Static false positives: a rock detected in most frames is flagged, moving animals are not."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ecowatch.config import DetectConfig, StaticFPConfig
from ecowatch.detect.static_fp import box_iou, flag_static_false_positives
from ecowatch.store import Store

from .fake_store import DETECTOR_VERSION, FakeBox, add_dump, add_media, static_flags

DUMP = "dump-sfp"
ROCK = (0.60, 0.70, 0.08, 0.06)  # bbox_xywhn of the rock; area 0.0048 of the image
N_FRAMES = 50


def _rock(i: int) -> FakeBox:
    """The rock in frame i: jittered by up to 0.001 (a pixel or two), confidence varying."""
    dx = ((i * 7) % 5 - 2) * 0.0005
    dy = ((i // 5) % 5 - 2) * 0.0005
    return FakeBox("animal", 0.30 + 0.004 * (i % 25), ROCK[0] + dx, ROCK[1] + dy, ROCK[2], ROCK[3])


def _walker(i: int) -> FakeBox:
    """A genuine animal walking across the frame."""
    return FakeBox("animal", 0.9, 0.01 + 0.015 * i, 0.30 + 0.005 * i, 0.20, 0.15)


def _build(store: Store) -> dict[str, set[str]]:
    """Deployment A: rock in 40 of 50 frames, a walking animal in every frame, a large static box in 40
    frames (over the area limit), a person at the rock's place in 3 frames. Deployment B: the same
    rock position in 5 frames only, an animal resting for 8 frames, a walking animal. One frame
    without a deployment that has the rock box too.

    Returns:
        Detection ids by role: ``rock``, ``other_a``, ``b``, ``unassigned``.
    """
    add_dump(store, DUMP, deployments=("dep-a", "dep-b"))
    roles: dict[str, set[str]] = {"rock": set(), "other_a": set(), "b": set(), "unassigned": set()}
    for i in range(N_FRAMES):
        boxes = [_walker(i)]
        if i % 5 != 4:  # 40 of 50 frames
            boxes.append(_rock(i))
            boxes.append(FakeBox("animal", 0.2, 0.1, 0.1, 0.6, 0.5))  # area 0.3 > max_box_area
        if i in (3, 17, 30):
            boxes.append(FakeBox("person", 0.25, *ROCK))
        media_id = add_media(store, DUMP, f"dep-a/IMG_{i:04d}.JPG", deployment_id="dep-a", index=i, boxes=boxes)
        for rank, box in enumerate(sorted(boxes, key=lambda b: -b.conf)):
            det_id = f"{media_id}:{DETECTOR_VERSION}:{rank}"
            is_rock = box.category == "animal" and box.w == ROCK[2] and box.h == ROCK[3]
            roles["rock" if is_rock else "other_a"].add(det_id)
    for i in range(N_FRAMES):
        boxes = [_walker(i)]
        if i < 5:
            boxes.append(_rock(i))
        if 20 <= i < 28:
            boxes.append(FakeBox("animal", 0.8, 0.3, 0.5, 0.1, 0.08))  # resting for one burst
        media_id = add_media(store, DUMP, f"dep-b/IMG_{i:04d}.JPG", deployment_id="dep-b", index=i, boxes=boxes)
        roles["b"].update(f"{media_id}:{DETECTOR_VERSION}:{rank}" for rank in range(len(boxes)))
    media_id = add_media(store, DUMP, "loose/IMG_0001.JPG", deployment_id=None, boxes=[_rock(0)])
    roles["unassigned"].add(f"{media_id}:{DETECTOR_VERSION}:0")
    return roles


@pytest.fixture
def roles(store: Store) -> dict[str, set[str]]:
    return _build(store)


def _flagged(store: Store) -> set[str]:
    return {det_id for det_id, flag in static_flags(store).items() if flag}


def test_only_rock_boxes_flagged(store: Store, roles: dict[str, set[str]]) -> None:
    summary = flag_static_false_positives(store, dump_id=DUMP, detector_version=DETECTOR_VERSION,
                                          config=StaticFPConfig())

    assert len(roles["rock"]) == 40
    assert _flagged(store) == roles["rock"]
    assert summary.flagged == summary.newly_flagged == 40
    assert summary.unflagged == 0
    assert summary.frames_per_deployment == {"dep-a": 50, "dep-b": 50}
    assert summary.flagged_per_deployment == {"dep-a": 40}
    assert len(summary.clusters) == 1
    cluster = summary.clusters[0]
    assert (cluster.deployment_id, cluster.category, cluster.frames, cluster.detections) == ("dep-a", "animal", 40, 40)
    assert box_iou(cluster.bbox_xywhn, ROCK) > 0.95
    # every box of the other deployment and the unassigned frame stays unflagged
    flags = static_flags(store)
    assert not any(flags[d] for d in roles["b"] | roles["unassigned"] | roles["other_a"])


def test_rerun_is_idempotent(store: Store, roles: dict[str, set[str]]) -> None:
    config = StaticFPConfig()
    first = flag_static_false_positives(store, dump_id=DUMP, detector_version=DETECTOR_VERSION, config=config)
    before = static_flags(store)
    second = flag_static_false_positives(store, dump_id=DUMP, detector_version=DETECTOR_VERSION, config=config)

    assert static_flags(store) == before
    assert (second.newly_flagged, second.unflagged) == (0, 0)
    assert second.flagged == first.flagged == 40
    assert second.clusters == first.clusters


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"min_occurrences": 41}, "rock seen in 40 frames < 41"),
        ({"min_fraction": 0.9}, "40 / 50 = 0.8 of the frames < 0.9"),
        ({"max_box_area": 0.004}, "rock area 0.0048 > 0.004"),
        ({"max_conf": 0.25}, "rock confidences 0.30..0.40 above max_conf"),
        ({"min_conf": 0.5}, "rock confidences 0.30..0.40 below min_conf"),
        ({"iou_threshold": 0.99}, "the jitter splits the rock into 20 groups of 2 frames"),
        ({"enabled": False}, "disabled clears every flag"),
    ],
)
def test_thresholds_respected_and_unflag(store: Store, roles: dict[str, set[str]], change: dict, why: str) -> None:
    flag_static_false_positives(store, dump_id=DUMP, detector_version=DETECTOR_VERSION, config=StaticFPConfig())
    assert _flagged(store) == roles["rock"]

    summary = flag_static_false_positives(store, dump_id=DUMP, detector_version=DETECTOR_VERSION,
                                          config=StaticFPConfig(**change))

    assert _flagged(store) == set(), why
    assert summary.unflagged == 40 and summary.flagged == 0


def test_looser_thresholds_flag_other_deployment(store: Store, roles: dict[str, set[str]]) -> None:
    """Deployment B's rock (5 frames) and resting animal (8 frames) qualify only when asked for 5."""
    flag_static_false_positives(store, dump_id=DUMP, detector_version=DETECTOR_VERSION,
                                config=StaticFPConfig(min_occurrences=5, min_fraction=0.0))
    flagged = _flagged(store)
    assert roles["rock"] <= flagged
    assert len(flagged & roles["b"]) == 5 + 8
    assert not flagged & roles["unassigned"]


def test_other_dump_and_version_untouched(store: Store, roles: dict[str, set[str]]) -> None:
    summary = flag_static_false_positives(store, dump_id="no-such-dump", detector_version=DETECTOR_VERSION,
                                          config=StaticFPConfig())
    assert summary.detections == 0 and summary.flagged == 0
    summary = flag_static_false_positives(store, dump_id=DUMP, detector_version="other-version",
                                          config=StaticFPConfig())
    assert summary.detections == 0
    assert _flagged(store) == set()


def test_box_iou() -> None:
    assert box_iou((0.0, 0.0, 0.5, 0.5), (0.0, 0.0, 0.5, 0.5)) == pytest.approx(1.0)
    assert box_iou((0.0, 0.0, 0.5, 0.5), (0.25, 0.0, 0.5, 0.5)) == pytest.approx(1 / 3)
    assert box_iou((0.0, 0.0, 0.1, 0.1), (0.5, 0.5, 0.1, 0.1)) == 0.0
    assert box_iou((0.0, 0.0, 0.0, 0.1), (0.0, 0.0, 0.0, 0.1)) == 0.0


def test_config_nested_and_validated() -> None:
    assert DetectConfig().static_fp == StaticFPConfig()
    assert DetectConfig.model_validate({"static_fp": {"min_occurrences": 20}}).static_fp.min_occurrences == 20
    with pytest.raises(ValidationError, match="min_conf"):
        StaticFPConfig(min_conf=0.6, max_conf=0.5)
    with pytest.raises(ValidationError):
        StaticFPConfig(iou_threshold=0.0)
    with pytest.raises(ValidationError):
        DetectConfig.model_validate({"static_fp": {"min_frames": 3}})  # unknown key


@pytest.mark.parametrize("iou_threshold", [0.3, 0.6, 0.85])
def test_index_finds_what_brute_force_finds(iou_threshold: float) -> None:
    """The size/grid index never misses a leader that a scan of all leaders would pick."""
    import random

    from ecowatch.detect.static_fp import _Box, _cluster_boxes

    rng = random.Random(1)
    boxes = []
    for i in range(600):
        if i % 3 == 0:
            w, h = 0.05 * (1 + rng.random()), 0.04 * (1 + rng.random())
            x, y = 0.5 + rng.uniform(-0.01, 0.01), 0.5 + rng.uniform(-0.01, 0.01)
        else:
            w, h = rng.uniform(0.001, 0.5), rng.uniform(0.001, 0.5)
            x, y = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
        boxes.append(_Box(f"d{i:03d}", f"m{i}", round(rng.random(), 2), x, y, w, h))

    leaders: list[_Box] = []
    expected: list[list[str]] = []
    for box in sorted(boxes, key=lambda b: (-b.conf, b.detection_id)):
        ious = [box_iou((box.x, box.y, box.w, box.h), (lb.x, lb.y, lb.w, lb.h)) for lb in leaders]
        best = max(range(len(ious)), key=lambda k: (ious[k], -k), default=-1)
        if best >= 0 and ious[best] >= iou_threshold:
            expected[best].append(box.detection_id)
        else:
            leaders.append(box)
            expected.append([box.detection_id])

    got = [[b.detection_id for b in members] for members in _cluster_boxes(boxes, iou_threshold=iou_threshold)]
    assert got == expected
