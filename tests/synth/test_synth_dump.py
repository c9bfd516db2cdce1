"""The tiny synthetic dump: files, tables, COCO ground truth, EXIF, broken files, realism checks."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from PIL import Image
from shapely.geometry import Point, shape

from ecowatch.errors import ConfigError
from ecowatch.synth import DumpSpec, generate_dump
from ecowatch.synth.camera import IFD_EXIF, IFD_GPS, TAG_BODY_SERIAL, TAG_DATETIME_ORIGINAL, TAG_MAKE, TAG_MODEL
from ecowatch.tables import DEPLOYMENT_COLUMNS, read_deployments, read_taxonomy


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("synth") / "tiny"
    summary = generate_dump(out, DumpSpec.preset("tiny"))
    coco = json.loads((out / "coco_camera_traps.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    return out, summary, coco, manifest


def _annotations(coco: dict) -> dict[str, list[dict]]:
    by_image: dict[str, list[dict]] = defaultdict(list)
    for ann in coco["annotations"]:
        by_image[ann["image_id"]].append(ann)
    return by_image


def test_layout_and_tables_are_readable(tiny) -> None:
    out, summary, coco, manifest = tiny
    for name in ("deployments.csv", "taxonomy.csv", "coco_camera_traps.json", "regions.geojson",
                 "range_maps.gpkg", "manifest.json"):
        assert (out / name).is_file(), name
    assert (out / "deployments.csv").read_text().splitlines()[0] == ",".join(DEPLOYMENT_COLUMNS)
    deployments = read_deployments(out / "deployments.csv")
    taxa = read_taxonomy(out / "taxonomy.csv")
    assert len(deployments) == 4
    species = {t.taxon_id for t in taxa.values() if t.rank == "species"}
    assert len(species) >= 11  # 14 mammals + human
    assert {c["taxon_id"] for c in coco["categories"] if c["taxon_id"]} <= species
    assert summary.n_frames == len(coco["images"]) and 60 <= summary.n_frames <= 100
    assert manifest["counts"]["frames"] == summary.n_frames


def test_deployments_reuse_a_location_move_a_camera_and_span_regions(tiny) -> None:
    out, _, _, _ = tiny
    deployments = read_deployments(out / "deployments.csv")
    locations = Counter(d.location_id for d in deployments)
    assert max(locations.values()) == 2  # a serviced location
    serials = defaultdict(set)
    for d in deployments:
        serials[d.camera_serial].add(d.location_id)
    assert any(len(locs) == 2 for locs in serials.values())  # a unit moved between locations
    latitudes = sorted({round(d.latitude) for d in deployments})
    assert latitudes[-1] - latitudes[0] >= 3  # regions far apart
    regions = json.loads((out / "regions.geojson").read_text())["features"]
    assert len(regions) == 3
    for d in deployments:
        assert any(shape(f["geometry"]).contains(Point(d.longitude, d.latitude)) for f in regions)


def test_card_folders_mix_deployment_ids_and_labels_with_real_layouts(tiny) -> None:
    out, _, _, _ = tiny
    cards = {p.name for p in (out / "dump").iterdir()}
    ids = {d.deployment_id for d in read_deployments(out / "deployments.csv")}
    assert cards & ids and any(c.startswith("SD_") for c in cards)
    folders = {p.relative_to(out / "dump").parts[2] for p in (out / "dump").rglob("*.JPG")}
    assert any(f.startswith("101") for f in folders)  # rollover
    suffixes = {f[3:] for f in folders}
    assert len(suffixes) >= 3  # several makes


def test_every_coco_image_exists_with_its_size_and_boxes_inside(tiny) -> None:
    out, _, coco, _ = tiny
    by_image = _annotations(coco)
    categories = {c["id"]: c for c in coco["categories"]}
    assert categories[0]["name"] == "empty"
    for image in coco["images"]:
        path = out / "dump" / image["file_name"]
        with Image.open(path) as im:
            assert im.size == (image["width"], image["height"])
        anns = by_image[image["id"]]
        assert anns, image["id"]
        for ann in anns:
            if ann["category_id"] == 0:
                assert len(anns) == 1 and "bbox" not in ann
                continue
            x, y, w, h = ann["bbox"]
            assert w > 0 and h > 0 and x >= 0 and y >= 0
            assert x + w <= image["width"] and y + h <= image["height"]
            assert ann["taxon_id"] == categories[ann["category_id"]]["taxon_id"]


def test_empty_share_people_and_bursts_are_realistic(tiny) -> None:
    _, summary, coco, _ = tiny
    assert 0.3 <= summary.n_empty / summary.n_frames <= 0.65
    assert summary.n_people > 0 and summary.n_animals > 0
    sequences = Counter(image["seq_id"] for image in coco["images"])
    assert max(sequences.values()) >= 3  # bursts
    for image in coco["images"]:
        assert 0 <= image["frame_num"] < image["seq_num_frames"] <= 5


def test_exif_matches_ground_truth_except_clock_resets(tiny) -> None:
    out, _, coco, manifest = tiny
    deployments = {d.deployment_id: d for d in read_deployments(out / "deployments.csv")}
    reset = {b["path"]: b for b in manifest["broken_files"] if b["kind"] == "clock_reset"}
    assert reset
    seen_gps = seen_no_gps = seen_no_exif = 0
    for image in coco["images"]:
        with Image.open(out / "dump" / image["file_name"]) as im:
            exif = im.getexif()
        dep = deployments[image["deployment_id"]]
        if not exif:
            seen_no_exif += 1
            assert dep.camera_make == "Suntek"
            continue
        sub = exif.get_ifd(IFD_EXIF)
        written = (exif[TAG_MAKE], exif[TAG_MODEL], sub[TAG_BODY_SERIAL])
        assert written == (dep.camera_make, dep.camera_model, dep.camera_serial)
        stamp = dt.datetime.strptime(sub[TAG_DATETIME_ORIGINAL], "%Y:%m:%d %H:%M:%S")
        truth = dt.datetime.strptime(image["datetime"], "%Y-%m-%d %H:%M:%S")
        if image["file_name"] in reset:
            assert stamp.year == 2000 and stamp < truth
            assert dep.contains(truth) and not dep.contains(stamp)
        else:
            assert stamp == truth and dep.contains(truth)
        gps = exif.get_ifd(IFD_GPS)
        if gps:
            seen_gps += 1
            lat = gps[2][0] + gps[2][1] / 60 + gps[2][2] / 3600
            assert abs(lat - dep.latitude) < 0.01
        else:
            seen_no_gps += 1
    assert seen_gps and seen_no_gps and seen_no_exif


def test_broken_files_exist_and_are_broken_as_stated(tiny) -> None:
    import cv2

    out, summary, coco, manifest = tiny
    kinds = {b["kind"] for b in manifest["broken_files"]}
    assert {"zero_byte", "truncated", "not_an_image", "appledouble", "video", "clock_reset"} <= kinds
    coco_files = {image["file_name"] for image in coco["images"]}
    for item in manifest["broken_files"]:
        path = out / "dump" / item["path"]
        assert path.is_file(), item
        data = path.read_bytes()
        if item["kind"] == "clock_reset":
            assert item["path"] in coco_files
            continue
        assert item["path"] not in coco_files  # ground truth of broken files is in the manifest only
        if item["kind"] == "zero_byte":
            assert data == b"" and path.suffix == ".JPG"
        elif item["kind"] == "truncated":
            assert data[:2] == b"\xff\xd8" and not data.endswith(b"\xff\xd9")
            with pytest.raises(OSError), Image.open(path) as im:
                im.load()
        elif item["kind"] == "not_an_image":
            assert path.suffix == ".JPG" and data[:2] != b"\xff\xd8"
            with pytest.raises(OSError):
                Image.open(path)
        elif item["kind"] == "appledouble":
            assert path.name.startswith("._") and data[:4] == b"\x00\x05\x16\x07"
            assert (path.parent / path.name[2:]).is_file()
        elif item["kind"] == "video":
            assert path.suffix == ".AVI" and data[:4] == b"RIFF" and data[8:12] == b"AVI "
            capture = cv2.VideoCapture(str(path))
            ok, frame = capture.read()
            capture.release()
            assert ok and frame.shape[0] > 0
    assert summary.n_broken_files == len(manifest["broken_files"])


def test_night_frames_are_greyscale_and_day_frames_colour(tiny) -> None:
    out, _, coco, _ = tiny
    grey = colour = single = 0
    for image in coco["images"]:
        with Image.open(out / "dump" / image["file_name"]) as im:
            if im.mode == "L":
                single += 1
                continue
            rgb = np.asarray(im.convert("RGB")).astype(int)
        spread = np.abs(rgb[..., 0] - rgb[..., 1]).mean() + np.abs(rgb[..., 1] - rgb[..., 2]).mean()
        if spread < 1.0:
            grey += 1
        else:
            colour += 1
            assert spread > 4.0
    assert grey > 0 and colour > 0 and grey > single >= 0


def test_background_is_fixed_within_a_deployment_and_differs_between(tiny) -> None:
    out, _, coco, _ = tiny
    by_image = _annotations(coco)
    empties: dict[tuple[str, bool], list[np.ndarray]] = defaultdict(list)
    for image in coco["images"]:
        if by_image[image["id"]][0]["category_id"] == 0:
            with Image.open(out / "dump" / image["file_name"]) as im:
                rgb = np.asarray(im.convert("RGB").resize((96, 54)), float)[6:-6]  # without the data bars
            night = float(np.abs(rgb[..., 0] - rgb[..., 2]).mean()) < 1.0
            empties[(image["deployment_id"], night)].append(rgb.mean(axis=2))
    medians = {}
    for key, frames in empties.items():
        if len(frames) >= 3:
            medians[key] = np.median(frames, axis=0)
            for frame in frames:  # every empty frame looks like its deployment's day (or night) median
                assert np.corrcoef(frame.ravel(), medians[key].ravel())[0, 1] > 0.8, key
    location = {d.deployment_id: d.location_id for d in read_deployments(out / "deployments.csv")}
    days = sorted(key for key in medians if not key[1])
    pairs = [(a, b) for i, a in enumerate(days) for b in days[i + 1:]]
    assert any(location[a[0]] != location[b[0]] for a, b in pairs)
    for a, b in pairs:
        similarity = np.corrcoef(medians[a].ravel(), medians[b].ravel())[0, 1]
        if location[a[0]] == location[b[0]]:  # serviced camera: the same place, re-framed slightly
            assert similarity > 0.6, (a, b)
        else:  # different places look different
            assert similarity < 0.8, (a, b)


def test_species_stay_inside_their_range_maps(tiny) -> None:
    out, _, coco, _ = tiny
    ranges = gpd.read_file(out / "range_maps.gpkg", layer="range_maps").set_index("taxon_id")
    assert ranges.crs.to_epsg() == 4326 and len(ranges) >= 10
    deployments = {d.deployment_id: d for d in read_deployments(out / "deployments.csv")}
    images = {image["id"]: image for image in coco["images"]}
    for ann in coco["annotations"]:
        taxon = ann.get("taxon_id")
        if taxon in ranges.index:
            dep = deployments[images[ann["image_id"]]["deployment_id"]]
            assert ranges.loc[taxon, "geometry"].contains(Point(dep.longitude, dep.latitude)), taxon


def test_existing_output_is_not_overwritten_silently(tiny, tmp_path: Path) -> None:
    out, _, _, _ = tiny
    with pytest.raises(ConfigError, match="overwrite"):
        generate_dump(out, DumpSpec.preset("tiny"))
    target = tmp_path / "again"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    (target / "dump").mkdir()
    (target / "dump" / "stale.JPG").write_bytes(b"old")
    generate_dump(target, DumpSpec.preset("tiny", n_frames=20, include_broken_files=False), overwrite=True)
    assert (target / "notes.txt").read_text() == "keep me"
    assert not (target / "dump" / "stale.JPG").exists()
