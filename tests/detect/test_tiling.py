"""Tiled inference: tile planning, coordinates back to the frame, the merge rule, the stage end to end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import torch
from pydantic import ValidationError
from torch import nn
from torch.utils.data import DataLoader

from ecowatch.config import DetectConfig, TilingConfig
from ecowatch.detect.data import MediaItem, TiledImageDataset, collate_tiled, decode_image, letterbox
from ecowatch.detect.module import DetectorModule, PostprocessConfig
from ecowatch.detect.network import LoadedNetwork
from ecowatch.detect.stage import DetectSummary, detect_stage
from ecowatch.detect.tiling import (
    TileWindow,
    TilingParams,
    axis_starts,
    merge_detections,
    plan_tiles,
    resolve_tiling,
    tiles_for_frame,
)
from ecowatch.detect.writer import StoreDetectionWriter
from ecowatch.errors import ConfigError
from ecowatch.store import Store, open_store
from ecowatch.store import schema as S

from .scenes import add_media, write_scene

# ----------------------------------------------------------------------------------------------- planning

FRAMES = [(4000, 3000), (1280, 720), (641, 640), (700, 500), (640, 640), (100, 2000), (1153, 641)]


@pytest.mark.parametrize("overlap", [0, 1, 128, 320])
@pytest.mark.parametrize("wh", FRAMES, ids=[f"{w}x{h}" for w, h in FRAMES])
def test_tiles_cover_the_frame_exactly_with_the_overlap(wh: tuple[int, int], overlap: int) -> None:
    width, height = wh
    tile = 640
    tiles = plan_tiles(width, height, tile_size=tile, overlap_px=overlap)
    covered = np.zeros((height, width), dtype=np.int32)
    for t in tiles:
        assert 0 <= t.x0 and t.x1 <= width and 0 <= t.y0 and t.y1 <= height  # inside the frame
        assert (t.w, t.h) == (min(tile, width), min(tile, height))  # full-size tiles, no slivers
        covered[t.y0 : t.y1, t.x0 : t.x1] += 1
    assert (covered >= 1).all()  # every pixel is in a tile
    for length, starts in ((width, sorted({t.x0 for t in tiles})), (height, sorted({t.y0 for t in tiles}))):
        size = min(tile, length)
        assert starts[0] == 0 and starts[-1] + size == length
        gaps = np.diff(starts)
        assert (size - gaps >= overlap).all()  # neighbours overlap by at least the overlap
        if len(starts) > 1:
            assert gaps.max() - gaps.min() <= 1  # evenly spread
            assert (len(starts) - 2) * (tile - overlap) + tile < length  # the fewest: one fewer cannot cover
    assert len(tiles) == len({(t.x0, t.y0) for t in tiles})


def test_axis_starts_refuses_an_overlap_as_large_as_the_tile() -> None:
    assert axis_starts(1000, 640, 0) == [0, 360]
    assert axis_starts(640, 640, 100) == [0]
    with pytest.raises(ValueError, match="640 px tiles overlapping by 640 px"):
        axis_starts(1000, 640, 640)


def params(**changes: object) -> TilingParams:
    base = dict(mode="auto", tile_size=640, overlap_px=128, min_side=1280, full_frame_pass=True, merge_iou=0.5,
                border_margin=4.0, fragment_ioa=0.7)
    return TilingParams(**{**base, **changes})  # type: ignore[arg-type]


def test_which_frames_are_tiled() -> None:
    assert tiles_for_frame(1280, 960, params()) == []  # auto: long side not above min_side
    assert len(tiles_for_frame(1281, 960, params())) == 3 * 2
    assert tiles_for_frame(4000, 3000, params(mode="never")) == []
    assert len(tiles_for_frame(1000, 600, params(mode="always"))) == 2
    assert tiles_for_frame(640, 480, params(mode="always")) == []  # one tile would be the whole frame
    assert tiles_for_frame(4000, 3000, params()) == plan_tiles(4000, 3000, tile_size=640, overlap_px=128)


def test_config_defaults_resolve_against_the_network_size() -> None:
    resolved = resolve_tiling(TilingConfig(mode="auto"), 640)
    assert (resolved.mode, resolved.tile_size, resolved.overlap_px, resolved.min_side) == ("auto", 640, 128, 1280)
    resolved = resolve_tiling(TilingConfig(tile_size=1024, overlap=100, min_side_for_tiling=2000), 640)
    assert (resolved.tile_size, resolved.overlap_px, resolved.min_side) == (1024, 100, 2000)
    with pytest.raises(ConfigError, match="overlap 700.0 is 700 px, not smaller than the tile"):
        resolve_tiling(TilingConfig(overlap=700), 640)


def test_camera_conf_never_tiles_and_drone_conf_always_does() -> None:
    from ecowatch.config import load_config

    conf = Path(__file__).resolve().parents[2] / "conf"
    camera = resolve_tiling(load_config(conf / "nightly.yaml").config.detect.tiling, 320)
    assert tiles_for_frame(1280, 720, camera) == [] and tiles_for_frame(4608, 2592, camera) == []
    tiling = load_config(conf / "drone.yaml").config.detect.tiling
    assert (tiling.mode, tiling.overlap, tiling.full_frame_pass) == ("always", 0.2, True)
    assert len(tiles_for_frame(4000, 3000, resolve_tiling(tiling, 320))) > 1
    assert DetectConfig().tiling.mode == "never"  # the library default runs whole frames, as MegaDetector


@pytest.mark.parametrize(("values", "message"), [
    ({"overlap": 1.5}, "neither a fraction below 1 nor whole pixels"),
    ({"overlap": 640, "tile_size": 640}, "not smaller than tile_size"),
    ({"mode": "sometimes"}, "mode"),
    ({"merge_iou": 0}, "merge_iou"),
    ({"tile_size": 16}, "tile_size"),
    ({"tiles": 4}, "tiles"),
])
def test_bad_tiling_values_are_refused(values: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DetectConfig(tiling=values)


# ----------------------------------------------------------------------------------------------- merging

# A 1152x640 frame, two tiles of 640 overlapping by 128 px: A = x 0..640, B = x 512..1152.
FRAME = (1152, 640)
TILES = [TileWindow(0, 0, 640, 640), TileWindow(512, 0, 640, 640)]
A, B, FULL = 0, 1, -1


def merge(boxes: list[tuple[tuple[float, float, float, float], float, int, int]], **changes: object) -> list[int]:
    """Indices kept from (xyxy, conf, class, source) boxes."""
    xyxy = np.array([b[0] for b in boxes], dtype=np.float64).reshape(-1, 4)
    conf = np.array([b[1] for b in boxes], dtype=np.float64)
    cls = np.array([b[2] for b in boxes], dtype=np.int64)
    source = np.array([b[3] for b in boxes], dtype=np.int64)
    return merge_detections(xyxy, conf, cls, source, TILES, frame_wh=FRAME, params=params(**changes),
                            max_det=300).tolist()


def test_small_animal_across_a_tile_border_gives_one_box_from_the_tile_that_saw_it_whole() -> None:
    # a 60 px deer at x 600..660: A sees it cut 2 px before its right border, B sees it whole, the
    # whole-frame pass sees it coarsely; A's piece is the most confident
    boxes = [((600, 100, 638, 130), 0.9, 0, A), ((601, 100, 660, 131), 0.8, 0, B), ((596, 98, 664, 134), 0.4, 0, FULL)]
    assert merge(boxes) == [1]
    # with no border margin, NMS alone keeps A's piece first and, at IoU 0.6 < 0.7, B's box as well
    assert merge(boxes, border_margin=0.0, merge_iou=0.7) == [0, 1]


def test_animal_in_the_overlap_seen_whole_by_both_tiles_is_one_box() -> None:
    boxes = [((550, 300, 590, 330), 0.7, 0, A), ((550.5, 300, 590.5, 330), 0.75, 0, B)]
    assert merge(boxes) == [1]


def test_large_animal_cut_by_both_tiles_is_the_whole_frame_box() -> None:
    # a 500 px animal at x 400..900: A and B each see a piece touching their inner border; the
    # whole-frame pass sees it whole; the pieces are more confident than the whole box
    boxes = [((400, 100, 640, 400), 0.9, 0, A), ((512, 102, 900, 398), 0.85, 0, B), ((398, 99, 903, 401), 0.6, 0, FULL)]
    assert merge(boxes) == [2]
    # no whole-frame pass: the two pieces stay (documented: larger than the overlap needs full_frame_pass)
    assert merge(boxes[:2]) == [0, 1]


def test_distinct_animals_and_classes_are_not_merged() -> None:
    boxes = [
        ((100, 100, 130, 120), 0.9, 0, A),  # two deer side by side in tile A
        ((131, 100, 160, 120), 0.8, 0, A),
        ((700, 300, 760, 360), 0.7, 0, B),  # a person and an animal overlapping in tile B
        ((705, 305, 765, 365), 0.6, 1, B),
        ((1000, 500, 1150, 640), 0.5, 2, B),  # touching the frame's edge: not an inner border, kept
    ]
    assert merge(boxes) == [0, 1, 2, 3, 4]


def test_whole_frame_box_inside_a_tile_is_left_to_the_tile() -> None:
    boxes = [((100, 100, 140, 130), 0.3, 0, FULL), ((900, 200, 1000, 260), 0.6, 0, B)]
    assert merge(boxes) == [1]  # the tile saw that region at full resolution (and found nothing there)
    assert merge([((100, 100, 700, 500), 0.3, 0, FULL)]) == [0]  # crossing the tiles' borders: kept


def test_merge_keeps_max_det_by_confidence() -> None:
    xyxy = np.array([[10.0 * i, 10, 10.0 * i + 8, 18] for i in range(50)])
    conf = np.linspace(0.1, 0.9, 50)
    kept = merge_detections(xyxy, conf, np.zeros(50, np.int64), np.zeros(50, np.int64), TILES, frame_wh=FRAME,
                            params=params(), max_det=5)
    assert kept.tolist() == [49, 48, 47, 46, 45]


# ------------------------------------------------------------------------------ tiles through the module


class ScriptedModule(DetectorModule):
    """The real post-processing around a network replaced by a script: input k gets the boxes given for k."""

    def __init__(self, script: dict[int, list[list[float]]], tiling: TilingParams, imgsz: int) -> None:
        network = LoadedNetwork(model=nn.Identity(), names={0: "animal", 1: "person", 2: "vehicle"}, stride=32,
                                kind="yolo", end2end=False, trained_imgsz=None)
        super().__init__(network, postprocess=PostprocessConfig(0.25, 0.7, 300), tiling=tiling, max_inputs=3)
        self.script = script
        self.seen = 0
        self.chunks: list[int] = []

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for _ in range(images.shape[0]):
            out.append(torch.tensor(self.script.get(self.seen, []), dtype=torch.float32).reshape(-1, 6))
            self.seen += 1
        self.chunks.append(int(images.shape[0]))
        return out


def test_tile_detections_land_at_their_frame_position(tmp_path: Path) -> None:
    # 1600x500 frame, tiles of 640 px letterboxed to 320 (scale 0.5; a 640x500 tile gets 35 px of
    # padding top and bottom), the whole frame letterboxed to 320 (scale 0.2, 110 px padding)
    path = write_scene(tmp_path / "wide.png", (1600, 500), seed=4)
    tiling = params(mode="always", overlap_px=128)
    dataset = TiledImageDataset([MediaItem("m-wide", path)], imgsz=320, params=tiling)
    batch = collate_tiled([dataset[0]])
    assert batch.tiles == [[(0, 0, 640, 500), (480, 0, 640, 500), (960, 0, 640, 500)]]
    assert batch.tile_index.tolist() == [-1, 0, 1, 2] and batch.owner.tolist() == [0, 0, 0, 0]
    # input 0: the whole frame, a box across every tile; inputs 1-3: one box inside each tile
    script = {0: [[100, 120, 300, 180, 0.6, 0]]}
    for k in range(3):
        script[1 + k] = [[10 + 40 * k, 60, 30 + 40 * k, 90, 0.9 - 0.1 * k, 0]]
    module = ScriptedModule(script, tiling, 320)

    (frame,) = module.predict_step(batch, 0)

    assert module.chunks == [3, 1]  # max_inputs per forward pass
    expected = {"full": (500.0, 50.0, 1500.0, 350.0)}
    for k, x0 in enumerate((0, 480, 960)):
        expected[f"{x0},0,640,500"] = (x0 + 2 * (10 + 40 * k), 50.0, x0 + 2 * (30 + 40 * k), 110.0)
    assert frame.tiles == 3 and sorted(frame.tile) == sorted(expected)
    for label, (x1, y1, x2, y2) in expected.items():
        box = frame.bbox_xywhn[frame.tile.index(label)]
        np.testing.assert_allclose(box, [x1 / 1600, y1 / 500, (x2 - x1) / 1600, (y2 - y1) / 500], rtol=0, atol=1e-12)


def test_object_across_a_tile_border_through_the_module_is_one_box(tmp_path: Path) -> None:
    path = write_scene(tmp_path / "wide.png", (1152, 640), seed=5)
    tiling = params(mode="always", full_frame_pass=False)
    batch = collate_tiled([TiledImageDataset([MediaItem("m", path)], imgsz=640, params=tiling)[0]])
    assert batch.tiles == [[(0, 0, 640, 640), (512, 0, 640, 640)]]
    # tile A (input 0) sees the deer cut at its right border, tile B (input 1) sees it whole
    module = ScriptedModule({0: [[600, 100, 640, 130, 0.9, 0]], 1: [[89, 100, 148, 131, 0.8, 0]]}, tiling, 640)

    (frame,) = module.predict_step(batch, 0)

    assert frame.tile == ("512,0,640,640",)
    np.testing.assert_allclose(frame.bbox_xywhn[0], [601 / 1152, 100 / 640, 59 / 1152, 31 / 640], atol=1e-12)


def test_workers_decode_and_cut_tiles_of_several_frames_into_one_batch(tmp_path: Path) -> None:
    paths = [write_scene(tmp_path / f"{i}.png", size, seed=i) for i, size in enumerate([(700, 300), (200, 150)])]
    items = [MediaItem(f"m{i}", p) for i, p in enumerate(paths)] + [MediaItem("gone", tmp_path / "gone.jpg")]
    tiling = params(mode="always", tile_size=320, overlap_px=64)
    loader = DataLoader(TiledImageDataset(items, imgsz=160, params=tiling), batch_size=3, num_workers=2,
                        collate_fn=collate_tiled)

    (batch,) = list(loader)

    # 700x300: whole frame + 3 tiles; 200x150: smaller than a tile, whole frame only; the missing file: nothing
    assert batch.owner.tolist() == [0, 0, 0, 0, 1] and batch.tile_index.tolist() == [-1, 0, 1, 2, -1]
    assert batch.inputs.shape == (5, 3, 160, 160) and batch.errors[2] and batch.tiles[2] == []
    pixels = decode_image(paths[0])
    x0, y0, w, h = batch.windows[2].tolist()
    assert (x0, y0, w, h) == batch.tiles[0][1]
    np.testing.assert_array_equal(batch.inputs[2].permute(1, 2, 0).numpy(),
                                  letterbox(pixels[y0 : y0 + h, x0 : x0 + w], 160))
    np.testing.assert_array_equal(batch.inputs[4].permute(1, 2, 0).numpy(), letterbox(decode_image(paths[1]), 160))


# ------------------------------------------------------------------------------------ the stage, tiled

DUMP_ID = "drone-01"
IMGSZ = 160
TILED_IMAGES = {"f1/a.png": (480, 360), "f1/b.png": (400, 300), "f2/c.png": (520, 240), "f2/d.png": (300, 200)}


def seed(store: Store, root: Path) -> dict[str, str]:
    ids = add_media(store, dump_id=DUMP_ID, root=root, relpaths=list(TILED_IMAGES))
    with store.transaction() as conn:  # the sizes ingest would record
        for relpath, (w, h) in TILED_IMAGES.items():
            conn.execute(S.media.update().where(S.media.c.media_id == ids[relpath]).values(width=w, height=h))
    return ids


@pytest.fixture(scope="module")
def tiled_dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiled-dump")
    for i, (relpath, size) in enumerate(TILED_IMAGES.items()):
        write_scene(root / relpath, size, seed=20 + i)
    return root


def tiled_config(weights: Path, **tiling: object) -> DetectConfig:
    return DetectConfig(detector=str(weights), imgsz=IMGSZ, conf_threshold=0.25, batch_size=16, workers=0, threads=1,
                        tiling=TilingConfig(**{"mode": "auto", **tiling}))


def run_stage(store: Store, root: Path, config: DetectConfig, run_id: str, cache: Path) -> DetectSummary:
    return detect_stage(store, dump_root=root, dump_id=DUMP_ID, config=config, run_id=run_id, cache_dir=cache)


@pytest.fixture(scope="module")
def tiled_clean(tiled_dump: Path, tiny_weights: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, DetectSummary, Path]]:
    cache = tmp_path_factory.mktemp("models")
    store = open_store(tmp_path_factory.mktemp("tiled-clean") / "results.sqlite")
    seed(store, tiled_dump)
    summary = run_stage(store, tiled_dump, tiled_config(tiny_weights), "clean", cache)
    yield store, summary, cache
    store.dispose()


def test_tiled_stage_records_tiles_in_frame_coordinates(tiled_clean: tuple[Store, DetectSummary, Path]) -> None:
    store, summary, _ = tiled_clean
    # auto mode, imgsz 160: frames with a long side above 320 px are tiled (160 px tiles, 32 px overlap)
    assert (summary.media_done, summary.media_tiled) == (4, 3)
    assert summary.detections == store.count(S.detections) > 0
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(S.detections, S.media.c.relpath).join(S.media)).mappings().all()
    labels_seen = set()
    for row in rows:
        w, h = TILED_IMAGES[row["relpath"]]
        planned = {t.label() for t in tiles_for_frame(w, h, resolve_tiling(TilingConfig(mode="auto"), IMGSZ))}
        assert row["tile"] == "full" or row["tile"] in planned
        if row["tile"] != "full":  # a tile's box lies in that tile
            x0, y0, tw, th = (int(v) for v in row["tile"].split(","))
            assert x0 / w - 1e-9 <= row["x"] and row["x"] + row["w"] <= (x0 + tw) / w + 1e-9
            assert y0 / h - 1e-9 <= row["y"] and row["y"] + row["h"] <= (y0 + th) / h + 1e-9
        labels_seen.add(row["tile"])
        assert 0 <= row["x"] and row["x"] + row["w"] <= 1 + 1e-9 and 0 <= row["y"] and row["y"] + row["h"] <= 1 + 1e-9
    assert "full" in labels_seen and len(labels_seen) > 2
    untiled = [r for r in rows if r["relpath"] == "f2/d.png"]
    assert untiled and all(r["tile"] == "full" for r in untiled)


def test_tiled_run_killed_mid_run_resumes_without_duplicates(tiled_clean: tuple[Store, DetectSummary, Path],
                                                              tiled_dump: Path, tiny_weights: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    clean_store, clean_summary, cache = tiled_clean
    store = open_store(tmp_path / "results.sqlite")
    seed(store, tiled_dump)
    real_write = StoreDetectionWriter.write
    calls: list[int] = []

    def dies_on_second_batch(self: StoreDetectionWriter, prediction) -> None:
        calls.append(len(prediction))
        if len(calls) == 2:
            raise RuntimeError("power cut")
        real_write(self, prediction)

    monkeypatch.setattr(StoreDetectionWriter, "write", dies_on_second_batch)
    with pytest.raises(RuntimeError, match="power cut"):
        run_stage(store, tiled_dump, tiled_config(tiny_weights), "killed", cache)
    assert store.count(S.detector_done) == calls[0] == 1  # 13 inputs a frame, 16 per batch: one frame a batch
    monkeypatch.setattr(StoreDetectionWriter, "write", real_write)

    resumed = run_stage(store, tiled_dump, tiled_config(tiny_weights), "resumed", cache)
    again = run_stage(store, tiled_dump, tiled_config(tiny_weights), "again", cache)

    assert (resumed.media_already_done, resumed.media_done) == (1, 3)
    assert (again.media_selected, again.detections) == (0, 0)
    rows = store.snapshot(exclude_columns=("run_id",))["detections"]
    assert rows == clean_store.snapshot(exclude_columns=("run_id",))["detections"]
    store.dispose()


def test_small_frames_in_auto_mode_equal_the_untiled_path(tiled_dump: Path, tiny_weights: Path,
                                                          tmp_path: Path) -> None:
    """Frames below min_side run through the tiled path as one whole-frame input: same rows as mode never.

    Tiled batches stack square inputs, so the untiled run it equals is the one with square padding.
    """
    results = {}
    for mode in ("auto", "never"):
        store = open_store(tmp_path / mode / "results.sqlite")
        seed(store, tiled_dump)
        config = tiled_config(tiny_weights, mode=mode, min_side_for_tiling=1000).model_copy(
            update={"batch_size": 3, "padding": "square"})
        summary = run_stage(store, tiled_dump, config, mode, tmp_path / "models")
        assert summary.media_tiled == 0
        results[mode] = store.snapshot(exclude_columns=("run_id",))["detections"]
        store.dispose()
    auto, never = results["auto"], results["never"]
    assert len(auto) == len(never) > 0
    for a, b in zip(auto, never, strict=True):
        assert a[:3] == b[:3] and a[8:] == b[8:]  # ids, media, category; names, version, tile "full"
        np.testing.assert_allclose(a[3:8], b[3:8], atol=1e-6)  # conf and box
