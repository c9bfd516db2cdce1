"""Labelled boxes to an ultralytics dataset: classes, split by location, tiling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from ecowatch.detect.datasets import (
    LabelledBox,
    LabelledImage,
    build_yolo_dataset,
    category_class,
    read_camtrap_dp_boxes,
    read_coco_camera_traps,
    tile_origins,
)
from ecowatch.errors import InputDataError
from ecowatch.synth import DumpSpec, generate_dump
from tests.conftest import SHARED_DATA


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "sample"
    generate_dump(out, DumpSpec.preset("tiny", n_frames=40))
    return out


def _labels(path: Path) -> list[list[float]]:
    return [[float(v) for v in line.split()] for line in path.read_text().splitlines() if line.strip()]


def test_category_names_map_to_megadetector_classes() -> None:
    assert category_class("red_deer") == 0 and category_class("Vulpes vulpes") == 0
    assert category_class("human") == category_class("Person") == 1
    assert category_class("vehicle") == 2
    assert category_class("empty") is None


def test_coco_camera_traps_to_dataset_split_by_location(tiny: Path, tmp_path: Path) -> None:
    coco = json.loads((tiny / "coco_camera_traps.json").read_text())
    images = read_coco_camera_traps(tiny / "coco_camera_traps.json", tiny / "dump")
    assert len(images) == len(coco["images"])  # every generated image has boxes or an empty label
    boxes = sum(len(i.boxes) for i in images)
    assert boxes == sum(1 for a in coco["annotations"] if "bbox" in a)

    dataset = build_yolo_dataset([images], tmp_path / "ds", val_fraction=0.3, seed=1)
    document = yaml.safe_load(dataset.yaml_path.read_text())
    assert document["names"] == {0: "animal", 1: "person", 2: "vehicle"}
    train = {p.name.split("__")[0] for p in (dataset.root / "images" / "train").iterdir()}
    val = {p.name.split("__")[0] for p in (dataset.root / "images" / "val").iterdir()}
    assert val and train and not train & val and val == set(dataset.val_locations)
    written = 0
    for split in ("train", "val"):
        for label in (dataset.root / "labels" / split).glob("*.txt"):
            image = dataset.root / "images" / split / (label.stem + ".JPG".lower())
            assert image.exists() or image.with_suffix(".JPG").exists()
            for cls, cx, cy, w, h in _labels(label):
                assert cls in (0, 1, 2) and 0 <= cx <= 1 and 0 <= cy <= 1 and 0 < w <= 1 and 0 < h <= 1
                written += 1
    assert written == boxes
    assert dataset.counts["train.images"] + dataset.counts["val.images"] == len(images)


def test_same_seed_same_dataset(tiny: Path, tmp_path: Path) -> None:
    images = read_coco_camera_traps(tiny / "coco_camera_traps.json", tiny / "dump")
    a = build_yolo_dataset([images], tmp_path / "a", seed=3, keep_empty=0.5)
    b = build_yolo_dataset([images], tmp_path / "b", seed=3, keep_empty=0.5)
    assert a.counts == b.counts and a.val_locations == b.val_locations
    assert sorted(p.name for p in (a.root / "labels").rglob("*.txt")) == sorted(
        p.name for p in (b.root / "labels").rglob("*.txt"))


@pytest.mark.parametrize("length,tile,overlap", [(4000, 640, 0.2), (3000, 384, 0.2), (640, 640, 0.2), (700, 640, 0.5)])
def test_tile_origins_cover_the_frame_with_the_overlap(length: int, tile: int, overlap: float) -> None:
    starts = tile_origins(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile >= length and starts == sorted(starts)
    for a, b in zip(starts, starts[1:]):
        assert a + tile - b >= overlap * tile - 1  # neighbours overlap at least as asked


def test_large_frames_become_full_resolution_tiles(tmp_path: Path) -> None:
    frame = tmp_path / "frame.jpg"
    Image.fromarray(np.full((800, 1000, 3), 90, np.uint8)).save(frame)
    boxes = (LabelledBox(0, (300.0, 100.0, 40.0, 30.0)),  # inside the first tile only
             LabelledBox(0, (480.0, 600.0, 60.0, 40.0)))  # across the border between tiles
    images = [LabelledImage(frame, 1000, 800, "A", boxes), LabelledImage(frame, 1000, 800, "B", ())]
    dataset = build_yolo_dataset([images], tmp_path / "ds", val_locations=("B",), tile_above=900, tile_size=512,
                                 tile_overlap=0.2, min_visible=0.4, empty_tile_fraction=0.0)
    tiles = sorted((dataset.root / "images" / "train").glob("*.jpg"))
    assert tiles and all(Image.open(t).size == (512, 512) for t in tiles)
    found = {}
    for tile in tiles:
        x0, y0 = (int(v) for v in tile.stem.rsplit("__t", 1)[1].split("_"))
        for _, cx, cy, w, h in _labels(dataset.root / "labels" / "train" / f"{tile.stem}.txt"):
            found.setdefault((x0, y0), []).append((cx * 512 + x0 - w * 256, cy * 512 + y0 - h * 256, w * 512, h * 512))
    # every box is seen whole (to the pixel) in some tile, in frame coordinates
    flat = [b for bs in found.values() for b in bs]
    for box in boxes:
        assert any(np.allclose(b, box.bbox, atol=0.01) for b in flat), (box, flat)
    assert "val.images" not in dataset.counts  # no box-less tiles were asked for


def test_no_labelled_images_or_single_location_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="No labelled images"):
        build_yolo_dataset([[]], tmp_path / "x")
    frame = tmp_path / "f.jpg"
    Image.new("RGB", (64, 48)).save(frame)
    with pytest.raises(InputDataError, match="one location"):
        build_yolo_dataset([[LabelledImage(frame, 64, 48, "A", ())]], tmp_path / "y")


def test_not_coco_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(InputDataError, match="COCO Camera Traps"):
        read_coco_camera_traps(bad, tmp_path)


@pytest.mark.skipif(not (SHARED_DATA / "real" / "camtrap_dp_example").is_dir(),
                    reason=f"{SHARED_DATA / 'real' / 'camtrap_dp_example'} is absent")
def test_camtrap_dp_example_boxes() -> None:
    images = read_camtrap_dp_boxes(SHARED_DATA / "real" / "camtrap_dp_example" / "datapackage.json")
    assert len(images) == 10  # the package's ten local images, each with one mallard box
    for image in images:
        assert (image.width, image.height) == (2048, 1440) and len(image.boxes) == 1
        x, y, w, h = image.boxes[0].bbox
        assert image.boxes[0].cls == 0 and 0 <= x and x + w <= 2048 and 0 <= y and y + h <= 1440
