"""Ingest on the real camera-trap images in ../shared/data/real (read in place, never copied).

``speciesnet_test``: 14 JPEGs from google/cameratrapai, four of them deliberately modified
(truncated, CMYK, greyscale, EXIF-rotated). ``md_test_images``: 31 JPEGs from 16 LILA
collections. Their ``labels.csv`` / ``metadata.csv`` give the pixel size as stored, the EXIF
DateTimeOriginal and the camera (make and model) where the file has them.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from ecowatch.ingest import flags as F
from ecowatch.store import Store
from ecowatch.store.schema import media, media_flags

from ..conftest import SHARED_DATA

REAL = SHARED_DATA / "real"
SPECIESNET = REAL / "speciesnet_test"
MD_IMAGES = REAL / "md_test_images"


def require(folder: Path) -> Path:
    if not (folder / "images").is_dir():
        pytest.skip(f"real test images not found at {folder} (they live in ../shared/data/real; see DESIGN.md)")
    return folder


def ingested(store: Store, run_ingest, root: Path, table: str, **config: object) -> tuple[dict, list[dict]]:
    summary = run_ingest(root, dump_id=root.name, **config)
    with store.engine.connect() as conn:
        got = {r["relpath"]: dict(r) | {"flags": {}} for r in conn.execute(sa.select(media)).mappings()}
        by_id = {r["media_id"]: r for r in got.values()}
        for mid, flag, message in conn.execute(sa.select(media_flags)):
            by_id[mid]["flags"][flag] = message
    with open(root / table, newline="", encoding="utf-8") as handle:
        expected = list(csv.DictReader(handle))
    assert summary.files_seen == len(expected) == len(list((root / "images").iterdir()))
    return got, expected


def check_against_table(root: Path, got: dict, expected: list[dict]) -> None:
    """Sizes, EXIF times and cameras agree with the dataset's own table for every file."""
    for rec in expected:
        row = got[f"images/{rec['file']}"]
        stored = (int(rec["width"]), int(rec["height"]))
        displayed = stored[::-1] if row["orientation"] in (5, 6, 7, 8) else stored
        assert (row["width"], row["height"]) == displayed, rec["file"]
        if rec["exif_datetime"]:
            assert row["timestamp"] == dt.datetime.strptime(rec["exif_datetime"], "%Y:%m:%d %H:%M:%S"), rec["file"]
            assert row["timestamp_source"] == "exif_datetimeoriginal"
            assert F.NO_EXIF_TIME not in row["flags"]
        else:
            assert row["timestamp_source"] == "file_mtime" and F.NO_EXIF_TIME in row["flags"], rec["file"]
        camera = " ".join(p for p in (row["camera_make"], row["camera_model"]) if p)
        assert camera == rec["camera"], rec["file"]
        assert row["flags"].keys() <= {F.NO_EXIF_TIME, F.NO_DEPLOYMENT, F.TRUNCATED}
        assert F.NO_DEPLOYMENT in row["flags"]  # no deployments table given
        assert len(row["sha256"]) == 64 and row["size_bytes"] == (root / "images" / rec["file"]).stat().st_size


def test_speciesnet_variants(store: Store, run_ingest) -> None:
    root = require(SPECIESNET)
    got, expected = ingested(store, run_ingest, root, "labels.csv", workers=2)
    check_against_table(root, got, expected)
    status = {rel.removeprefix("images/"): row["status"] for rel, row in got.items()}
    assert status.pop("african_elephants_truncated_file.jpg") == "failed"
    assert set(status.values()) == {"ok"}  # every other file, the modified variants included

    truncated = got["images/african_elephants_truncated_file.jpg"]
    assert "truncated" in truncated["flags"][F.TRUNCATED]
    assert truncated["timestamp"] == dt.datetime(2010, 8, 4, 8, 43, 15)  # header still read

    def facts(name: str) -> tuple:
        row = got[f"images/{name}"]
        return row["width"], row["height"], row["orientation"], row["color_mode"], row["is_greyscale"]

    assert facts("african_elephants.jpg") == (2048, 1536, 1, "RGB", False)
    assert facts("african_elephants_cmyk.jpg") == (2048, 1536, 1, "CMYK", False)
    assert facts("african_elephants_bw.jpg") == (2048, 1536, 1, "L", True)
    # Stored as 1536x2048 portrait with orientation 6: displayed like the original, 2048x1536.
    assert facts("african_elephants_with_exif_orientation.jpg") == (2048, 1536, 6, "RGB", False)


def test_md_test_images(store: Store, run_ingest) -> None:
    root = require(MD_IMAGES)
    got, expected = ingested(store, run_ingest, root, "metadata.csv")
    check_against_table(root, got, expected)
    assert {row["status"] for row in got.values()} == {"ok"}
    assert sum(row["timestamp_source"] == "exif_datetimeoriginal" for row in got.values()) == 24  # README: 24/31
    # Night frames saved as RGB with equal channels are recognised as greyscale.
    assert got["images/wcs_camera_traps_animals_0245_1477.jpg"]["is_greyscale"] is True
    assert got["images/snapshot_kruger_KRU_S1_25_25_R1_KRU_S1_25_R1_IMAG0012.JPG"]["is_greyscale"] is False
