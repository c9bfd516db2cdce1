"""Crops: square windows with context, labelled sources from COCO Camera Traps, the PNG cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ecowatch.classify.crops import (
    CropCache,
    CropGeometry,
    crop_square,
    crop_window,
    read_crop,
    sources_from_coco,
)
from ecowatch.errors import InputDataError

from .data import fake_image


def test_square_window_is_centred_with_context() -> None:
    # a 40x20 px box at (80, 30) in a 200x100 image; padding 0.25 of the longer side on each side
    x0, y0, side, across = crop_window((0.4, 0.3, 0.2, 0.2), 200, 100, 0.25)
    assert side == across == 60  # 40 * (1 + 2 * 0.25), square with the default max_aspect 1
    assert (x0 + side / 2, y0 + side / 2) == (100, 40)  # the box centre


def test_crop_keeps_the_box_and_fills_outside_the_image() -> None:
    image = fake_image(box=(80, 30, 40, 20), background=50, value=200)
    geometry = CropGeometry(crop_size=60, padding=0.25, fill=0)
    crop = crop_square(image, (0.4, 0.3, 0.2, 0.2), geometry)
    assert crop.shape == (60, 60, 3) and crop.dtype == np.uint8
    assert crop[30, 30].tolist() == [200, 200, 200]  # the box is in the middle
    assert crop[30, 5].tolist() == [50, 50, 50]  # context beside it
    corner = crop_square(image, (0.0, 0.0, 0.1, 0.2), geometry)  # a box at the top-left corner
    assert corner[0, 0].tolist() == [0, 0, 0]  # outside the image: the fill value
    assert corner[-1, -1].tolist() == [50, 50, 50]


def test_elongated_window_follows_the_box_up_to_max_aspect() -> None:
    box = (0.4, 0.4, 0.3, 0.1)  # 300 x 100 px in a 1000 x 1000 image
    assert crop_window(box, 1000, 1000, 0.05)[2:] == (330, 330)  # 1: the square
    x0, y0, ww, wh = crop_window(box, 1000, 1000, 0.05, max_aspect=2.0)
    assert (ww, wh) == (330, 165)  # as long as the square, half as high
    assert (x0 + ww / 2, y0 + wh / 2) == pytest.approx((550, 450), abs=0.5)  # centred on the box
    assert crop_window(box, 1000, 1000, 0.05, max_aspect=8.0)[2:] == (330, 130)  # never cuts into the padded box
    assert crop_window((0.4, 0.4, 0.1, 0.3), 1000, 1000, 0.05, max_aspect=2.0)[2:] == (165, 330)  # upright box


def test_elongated_crop_stretches_the_animal_across_the_square() -> None:
    image = fake_image(box=(40, 45, 120, 10), background=50, value=200)  # a long, low animal in 200x100
    box = (0.2, 0.45, 0.6, 0.1)
    rows = {}
    for aspect in (1.0, 3.0):
        crop = crop_square(image, box, CropGeometry(crop_size=64, padding=0.0, max_aspect=aspect))
        assert crop.shape == (64, 64, 3)
        rows[aspect] = int((crop[:, 32, 0] > 125).sum())  # rows of the animal in the middle column
    assert rows[1.0] <= 6 and rows[3.0] >= 2.5 * rows[1.0]  # about three times the pixels across its body
    with pytest.raises(ValueError, match="max_aspect"):
        CropGeometry(max_aspect=0.5)


def test_coco_sources_keep_labelled_animals_only(tiny_dump: Path) -> None:
    coco = json.loads((tiny_dump / "coco_camera_traps.json").read_text())
    sources = sources_from_coco(tiny_dump / "coco_camera_traps.json", tiny_dump / "dump", exclude_taxa=["homo_sapiens"])
    labelled = [a for a in coco["annotations"] if a.get("bbox") and a.get("taxon_id") not in (None, "homo_sapiens")]
    assert len(sources) == len(labelled) > 10
    images = {img["id"]: img for img in coco["images"]}
    first, ann = sources[0], labelled[0]
    img = images[ann["image_id"]]
    x, y, w, h = ann["bbox"]
    assert first.bbox_xywhn == pytest.approx((x / img["width"], y / img["height"], w / img["width"], h / img["height"]))
    assert first.taxon_id == ann["taxon_id"] and first.location_id == img["location"]
    assert first.image_path == tiny_dump / "dump" / img["file_name"] and first.image_path.is_file()


def test_coco_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "labels.json"
    bad.write_text(json.dumps({"images": []}))
    with pytest.raises(InputDataError, match="labels.json: not a COCO Camera Traps file"):
        sources_from_coco(bad, tmp_path)
    with pytest.raises(InputDataError, match="not found"):
        sources_from_coco(tmp_path / "absent.json", tmp_path)


def test_cache_is_built_once_and_keyed_by_geometry(tiny_sources: list, tmp_path: Path) -> None:
    sources = tiny_sources[:6]
    cache = CropCache(tmp_path / "cache", CropGeometry(crop_size=40))
    paths = cache.build(sources)
    assert all(p is not None and p.is_file() for p in paths)
    assert read_crop(paths[0]).shape == (40, 40, 3)
    mtimes = [p.stat().st_mtime_ns for p in paths]
    assert cache.build(sources) == paths  # a second build reuses every crop
    assert [p.stat().st_mtime_ns for p in paths] == mtimes
    other = CropCache(tmp_path / "cache", CropGeometry(crop_size=40, padding=0.3)).build(sources)
    assert set(other).isdisjoint(paths)  # another geometry never reuses a crop
    stretched = CropCache(tmp_path / "cache", CropGeometry(crop_size=40, max_aspect=2.0))
    assert stretched.path("0" * 64, (0.1, 0.1, 0.2, 0.1)) != cache.path("0" * 64, (0.1, 0.1, 0.2, 0.1))


def test_unreadable_image_loses_only_its_crops(tiny_sources: list, tmp_path: Path) -> None:
    from dataclasses import replace

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    sources = [replace(tiny_sources[0], image_path=broken), tiny_sources[1]]
    paths = CropCache(tmp_path / "cache", CropGeometry(crop_size=40)).build(sources)
    assert paths[0] is None and paths[1] is not None
