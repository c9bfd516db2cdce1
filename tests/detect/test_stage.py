"""The detect stage end to end: parity with ultralytics' own predict, selection, flags, resume without duplicates."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from ecowatch.config import DetectConfig
from ecowatch.detect.stage import DetectSummary, detect_stage
from ecowatch.detect.writer import DETECT_UNREADABLE, StoreDetectionWriter
from ecowatch.store import Store, open_store
from ecowatch.store import schema as S

from .scenes import add_media, write_scene

DUMP_ID = "card-01"
IMGSZ = 160
CONF = 0.25
IOU = 0.7
# Parity tolerance with ultralytics' YOLO(path).predict on the same weights and files.
BOX_TOL = 1e-3  # bbox_xywhn, normalised units
CONF_TOL = 1e-3

# relpath -> (width, height, extra write_scene arguments); all decode identically with Pillow and OpenCV.
IMAGES = {
    "cam1/a.png": (160, 160, {}),
    "cam1/b.png": (200, 120, {}),
    "cam1/c.png": (90, 150, {}),
    "cam2/d.jpg": (320, 240, {}),
    "cam2/e.png": (161, 97, {}),
    "cam2/grey.png": (120, 90, {"mode": "L"}),
    "cam2/rotated.jpg": (140, 100, {"orientation": 6}),
}
BROKEN = "cam2/broken.jpg"  # status ok at ingest, unreadable now


@dataclass
class Scenario:
    root: Path
    ids: dict[str, str]
    config: DetectConfig
    cache_dir: Path


def make_dump(root: Path) -> None:
    for seed, (relpath, (w, h, extra)) in enumerate(IMAGES.items()):
        write_scene(root / relpath, (w, h), seed=seed, **extra)
    (root / BROKEN).write_bytes(b"\xff\xd8\xff\xe0 cut short")


def seed_store(store: Store, root: Path) -> dict[str, str]:
    ids = add_media(store, dump_id=DUMP_ID, root=root, relpaths=[*IMAGES, BROKEN])
    add_media(store, dump_id=DUMP_ID, root=root, relpaths=["cam1/failed.jpg"], status="failed")
    add_media(store, dump_id=DUMP_ID, root=root, relpaths=["cam1/clip.mp4"], status="skipped", media_type="video")
    add_media(store, dump_id="other-card", root=root, relpaths=["cam1/a.png"])
    return ids


def run(store: Store, scenario: Scenario, run_id: str) -> DetectSummary:
    return detect_stage(store, dump_root=scenario.root, dump_id=DUMP_ID, config=scenario.config, run_id=run_id,
                        cache_dir=scenario.cache_dir)


def detection_rows(store: Store) -> list[tuple]:
    return store.snapshot(exclude_columns=("run_id",))["detections"]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, tiny_weights: Path) -> Scenario:
    root = tmp_path_factory.mktemp("dump")
    make_dump(root)
    config = DetectConfig(detector=str(tiny_weights), imgsz=IMGSZ, conf_threshold=CONF, iou_threshold=IOU,
                          batch_size=3, workers=2, threads=2, padding="square")
    return Scenario(root, {}, config, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def clean(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, DetectSummary]]:
    """One uninterrupted run over the dump (shared by the tests that only read its results)."""
    store = open_store(tmp_path_factory.mktemp("clean") / "results.sqlite")
    scenario.ids.update(seed_store(store, scenario.root))
    summary = run(store, scenario, "clean-run")
    yield store, summary
    store.dispose()


def test_summary_counts_and_selection(clean: tuple[Store, DetectSummary], scenario: Scenario) -> None:
    store, summary = clean
    assert summary.media_selected == len(IMAGES) + 1  # ok images of this dump; not failed, video, other dump
    assert (summary.media_done, summary.media_failed, summary.media_already_done) == (len(IMAGES), 1, 0)
    assert summary.detections == store.count(S.detections) > 0
    assert sum(summary.per_category.values()) == summary.detections
    assert summary.imgsz == IMGSZ and summary.threads == 2 and summary.accelerator == "cpu"
    assert summary.detector_source == "path" and len(summary.detector_version) == 16
    done = {r[0] for r in store.snapshot()["detector_done"]}
    assert done == {scenario.ids[p] for p in IMAGES}


def rows_by_media(store: Store) -> dict[str, list[dict]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(S.detections)).mappings().all()
    out: dict[str, list[dict]] = {}
    for row in rows:
        out.setdefault(row["media_id"], []).append(dict(row))
    return out


def assert_matches_ultralytics(ours: dict[str, list[dict]], results: list, media_ids: list[str],
                               *, clip: bool = False) -> int:
    """Every stored detection equals one of ultralytics' within the tolerances, and the counts agree.

    Returns:
        The number of detections compared.
    """
    checked = 0
    for media_id, result in zip(media_ids, results, strict=True):
        mine = sorted(ours.get(media_id, []), key=lambda r: int(r["detection_id"].rsplit(":", 1)[1]))
        xyxyn = result.boxes.xyxyn.numpy().astype(float)
        if clip:  # ultralytics' RT-DETR predictor leaves boxes overhanging the image; the stage clips them
            xyxyn = xyxyn.clip(0.0, 1.0)
        theirs = [(result.names[int(c)], float(p), (x1, y1, x2 - x1, y2 - y1))
                  for (x1, y1, x2, y2), p, c in zip(xyxyn, result.boxes.conf.numpy(), result.boxes.cls.numpy())]
        assert len(mine) == len(theirs) > 0, result.path
        assert [r["conf"] for r in mine] == sorted((r["conf"] for r in mine), reverse=True)  # index = rank
        unmatched = list(theirs)
        for row in mine:
            box = np.array([row["x"], row["y"], row["w"], row["h"]])
            assert (box >= 0).all() and box[0] + box[2] <= 1 + 1e-9 and box[1] + box[3] <= 1 + 1e-9
            match = next((t for t in unmatched if t[0] == row["category"] and abs(t[1] - row["conf"]) <= CONF_TOL
                          and np.abs(np.array(t[2]) - box).max() <= BOX_TOL), None)
            assert match is not None, f"{result.path}: no ultralytics detection matches {row}"
            unmatched.remove(match)
            checked += 1
    return checked


def test_parity_with_ultralytics_predict(clean: tuple[Store, DetectSummary], scenario: Scenario,
                                         tiny_weights: Path) -> None:
    from ultralytics import YOLO

    store, _ = clean
    ours = rows_by_media(store)
    relpaths = list(IMAGES)
    results = YOLO(str(tiny_weights)).predict([str(scenario.root / p) for p in relpaths], imgsz=IMGSZ, conf=CONF,
                                              iou=IOU, rect=False, verbose=False, device="cpu")
    checked = assert_matches_ultralytics(ours, results, [scenario.ids[p] for p in relpaths])
    assert checked == store.count(S.detections)
    # ultralytics' default (rect=True, minimal padding) gives the same boxes when no padding is needed
    square = YOLO(str(tiny_weights)).predict(str(scenario.root / "cam1/a.png"), imgsz=IMGSZ, conf=CONF, iou=IOU,
                                             verbose=False, device="cpu")
    assert assert_matches_ultralytics(ours, square, [scenario.ids["cam1/a.png"]]) > 0


def test_minimal_padding_equals_ultralytics_default_predict(scenario: Scenario, tiny_weights: Path,
                                                            tmp_path: Path) -> None:
    """The default (``padding: minimal``) equals ultralytics' ``predict`` with its defaults (``rect``).

    One image per batch for the mixed shapes (ultralytics pads each image on its own), and a batch of
    four frames of one shape (the camera-trap case: one stride-aligned rectangle for the batch).
    """
    from ultralytics import YOLO

    same = tmp_path / "same"
    for i in range(4):
        write_scene(same / f"cam/{i}.png", (200, 120), seed=10 + i)
    cases = [(scenario.root, list(IMAGES), 1), (same, [f"cam/{i}.png" for i in range(4)], 4)]
    model = YOLO(str(tiny_weights))
    for k, (root, relpaths, batch_size) in enumerate(cases):
        store = open_store(tmp_path / f"results-{k}.sqlite")
        ids = add_media(store, dump_id=DUMP_ID, root=root, relpaths=relpaths)
        config = scenario.config.model_copy(update={"padding": "minimal", "batch_size": batch_size})
        summary = detect_stage(store, dump_root=root, dump_id=DUMP_ID, config=config, run_id=f"minimal-{k}",
                               cache_dir=scenario.cache_dir)
        # a list of files is one ultralytics batch (square padding when the shapes differ): one call per batch
        results = [r for i in range(0, len(relpaths), batch_size)
                   for r in model.predict([str(root / p) for p in relpaths[i : i + batch_size]], imgsz=IMGSZ,
                                          conf=CONF, iou=IOU, verbose=False, device="cpu")]
        checked = assert_matches_ultralytics(rows_by_media(store), results, [ids[p] for p in relpaths])
        assert checked == summary.detections == store.count(S.detections) > 0
        store.dispose()


# YOLO26 and YOLOv10 carry a one-to-one (NMS-free) head beside the one-to-many head; ultralytics 8.4's
# predict runs the one-to-many head with NMS (nms=None), and so does the stage.
ARCHITECTURES = {  # model yaml, scale stem, ultralytics class
    "yolo26n": ("26/yolo26.yaml", "yolo26n", "YOLO"),
    "yolov10n": ("v10/yolov10n.yaml", "yolov10n", "YOLO"),
    "rtdetr-l": ("rt-detr/rtdetr-l.yaml", "rtdetr-l", "RTDETR"),
}


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_parity_for_other_architectures(arch: str, scenario: Scenario, tmp_path: Path) -> None:
    """YOLO26, YOLOv10 (as MDv6-yolov10-*) and RT-DETR (as MDv6-rtdetr-c, stretched input, no NMS) match too."""
    import ultralytics

    from .tiny_model import build_tiny_detector

    family, scale, cls = ARCHITECTURES[arch]
    weights = build_tiny_detector(tmp_path / f"{scale}.pt", family=family, scale=scale)
    relpaths = ["cam1/b.png", "cam1/c.png", "cam2/rotated.jpg"]
    store = open_store(tmp_path / "results.sqlite")
    ids = seed_store(store, scenario.root)
    config = scenario.config.model_copy(update={"detector": str(weights), "workers": 0})
    with store.transaction() as conn:  # only three images: keep the test small
        conn.execute(S.media.update().where(S.media.c.relpath.not_in(relpaths)).values(status="failed"))
    summary = detect_stage(store, dump_root=scenario.root, dump_id=DUMP_ID, config=config, run_id=arch,
                           cache_dir=scenario.cache_dir)
    results = getattr(ultralytics, cls)(str(weights)).predict(
        [str(scenario.root / p) for p in relpaths], imgsz=IMGSZ, conf=CONF, iou=IOU, rect=False, verbose=False,
        device="cpu")
    checked = assert_matches_ultralytics(rows_by_media(store), results, [ids[p] for p in relpaths],
                                         clip=cls == "RTDETR")
    assert checked == summary.detections == store.count(S.detections)
    store.dispose()


def test_unreadable_file_is_flagged_not_done_and_retried(clean: tuple[Store, DetectSummary],
                                                         scenario: Scenario) -> None:
    store, _ = clean
    broken = scenario.ids[BROKEN]
    with store.engine.connect() as conn:
        flags = conn.execute(sa.select(S.media_flags.c.flag, S.media_flags.c.message)
                             .where(S.media_flags.c.media_id == broken)).all()
    assert [f for f, _ in flags] == [DETECT_UNREADABLE] and "could not decode" in flags[0][1]
    before = store.snapshot(exclude_columns=("run_id",))

    again = run(store, scenario, "second-run")  # idempotent: only the broken file is tried again

    assert (again.media_selected, again.media_already_done, again.media_done) == (1, len(IMAGES), 0)
    assert again.detections == 0 and again.media_failed == 1
    assert store.snapshot(exclude_columns=("run_id",)) == before


def test_resume_after_losing_half_the_rows_equals_a_clean_run(clean: tuple[Store, DetectSummary],
                                                              scenario: Scenario, tmp_path: Path) -> None:
    clean_store, _ = clean
    store = open_store(tmp_path / "results.sqlite")
    seed_store(store, scenario.root)
    first = run(store, scenario, "run-1")
    lost = sorted(scenario.ids[p] for p in IMAGES)[::2]  # as if the run had died before these batches
    with store.transaction() as conn:
        conn.execute(S.detections.delete().where(S.detections.c.media_id.in_(lost)))
        conn.execute(S.detector_done.delete().where(S.detector_done.c.media_id.in_(lost)))

    second = run(store, scenario, "run-2")

    assert second.media_selected == len(lost) + 1 and second.media_done == len(lost)  # + the broken file
    assert second.detections == sum(1 for row in detection_rows(clean_store) if row[1] in lost) > 0
    assert first.detections == len(detection_rows(clean_store))
    assert detection_rows(store) == detection_rows(clean_store)  # no duplicates, nothing missing
    assert store.snapshot(exclude_columns=("run_id",))["detector_done"] == \
        clean_store.snapshot(exclude_columns=("run_id",))["detector_done"]
    store.dispose()


def test_nothing_pending_does_not_load_the_detector(clean: tuple[Store, DetectSummary], scenario: Scenario,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ecowatch.detect.stage as stage

    store = open_store(tmp_path / "results.sqlite")
    add_media(store, dump_id=DUMP_ID, root=scenario.root, relpaths=["cam1/a.png"])
    first = run(store, scenario, "run-1")
    monkeypatch.setattr(stage, "load_network", lambda *a, **k: pytest.fail("the detector was loaded"))

    again = run(store, scenario, "run-2")

    assert (first.media_done, again.media_selected, again.media_already_done, again.detections) == (1, 0, 1, 0)
    assert again.detector_version == first.detector_version and again.imgsz == IMGSZ
    store.dispose()


def test_killed_mid_run_resumes_without_duplicates(clean: tuple[Store, DetectSummary], scenario: Scenario,
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_store, _ = clean
    store = open_store(tmp_path / "results.sqlite")
    seed_store(store, scenario.root)
    real_write = StoreDetectionWriter.write
    calls = []

    def dies_on_second_batch(self: StoreDetectionWriter, prediction) -> None:
        calls.append(len(prediction))
        if len(calls) == 2:
            raise RuntimeError("power cut")
        real_write(self, prediction)

    monkeypatch.setattr(StoreDetectionWriter, "write", dies_on_second_batch)
    with pytest.raises(RuntimeError, match="power cut"):
        run(store, scenario, "killed")
    assert store.count(S.detector_done) == calls[0]  # exactly the first batch was committed
    monkeypatch.setattr(StoreDetectionWriter, "write", real_write)

    resumed = run(store, scenario, "resumed")

    assert resumed.media_already_done == calls[0]
    assert detection_rows(store) == detection_rows(clean_store)
    store.dispose()
