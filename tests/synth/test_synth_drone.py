"""Drone mode: large nadir frames, DJI names and metadata, many small animal boxes."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from ecowatch.synth import DumpSpec, generate_dump
from ecowatch.synth.camera import IFD_GPS, TAG_MAKE
from ecowatch.tables import read_deployments


def test_drone_frames_hold_many_small_animals(tmp_path: Path) -> None:
    spec = DumpSpec.preset("drone", n_deployments=1, n_frames=2, image_size=(1200, 900), drone_animals=(25, 40),
                           workers=0)
    summary = generate_dump(tmp_path / "flight", spec)
    coco = json.loads((tmp_path / "flight" / "coco_camera_traps.json").read_text())
    assert summary.n_frames == 2 and len(read_deployments(tmp_path / "flight" / "deployments.csv")) == 1
    for image in coco["images"]:
        assert (image["width"], image["height"]) == (1200, 900)
        assert Path(image["file_name"]).name.startswith("DJI_") and "/DCIM/100MEDIA/" in image["file_name"]
        boxes = [a["bbox"] for a in coco["annotations"] if a["image_id"] == image["id"] and "bbox" in a]
        assert len(boxes) >= 15  # some are hidden under the canopy or cut by the frame edge
        long_sides = sorted(max(w, h) for _, _, w, h in boxes)
        assert 8 <= long_sides[len(long_sides) // 2] <= 70  # small animals (ground sampling ~4 cm/px)
        assert long_sides[-1] <= 90
        for x, y, w, h in boxes:
            assert 0 <= x and 0 <= y and x + w <= 1200 and y + h <= 900
        with Image.open(tmp_path / "flight" / "dump" / image["file_name"]) as im:
            exif = im.getexif()
            gps = exif.get_ifd(IFD_GPS)
            assert exif[TAG_MAKE] == "DJI" and gps[1] in "NS" and gps[6] > 100
            assert b"RelativeAltitude" in im.info["xmp"]
