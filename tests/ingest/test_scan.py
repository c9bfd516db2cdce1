"""Scanning a dump: deterministic order, what is recorded, hidden and OS folders."""

from __future__ import annotations

import os
from pathlib import Path

from ecowatch.config import IngestConfig
from ecowatch.ingest.scan import ScanStats, scan_dump


def touch(root: Path, *relpaths: str) -> None:
    for rel in relpaths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_sorted_recursive_case_insensitive(tmp_path: Path) -> None:
    touch(tmp_path, "b/IMG_0002.JPG", "a/IMG_0001.jpeg", "a/sub/z.Png", "MOV_0001.AVI", "b/IMG_0001.JPG", "c.mp4")
    found = [(f.relpath, f.kind) for f in scan_dump(tmp_path, IngestConfig())]
    assert found == [
        ("MOV_0001.AVI", "video"),
        ("a/IMG_0001.jpeg", "image"),
        ("a/sub/z.Png", "image"),
        ("b/IMG_0001.JPG", "image"),
        ("b/IMG_0002.JPG", "image"),
        ("c.mp4", "video"),
    ]
    assert found == [(f.relpath, f.kind) for f in scan_dump(tmp_path, IngestConfig())]  # stable


def test_hidden_os_folders_and_non_media(tmp_path: Path) -> None:
    touch(tmp_path, "DCIM/100MEDIA/IMG_0001.JPG", "DCIM/100MEDIA/._IMG_0001.JPG", "DCIM/100MEDIA/.DS_Store",
          ".Spotlight-V100/Store-V2/x.jpg", ".Trashes/501/IMG_9.JPG", "System Volume Information/IndexerVolumeGuid.jpg",
          "$RECYCLE.BIN/a.JPG", "DCIM/100MEDIA/.hidden.JPG", "README.txt", "DCIM/100MEDIA/._notes.txt")
    stats = ScanStats()
    found = [(f.relpath, f.kind) for f in scan_dump(tmp_path, IngestConfig(), stats)]
    assert found == [("DCIM/100MEDIA/._IMG_0001.JPG", "appledouble"), ("DCIM/100MEDIA/IMG_0001.JPG", "image")]
    assert (stats.yielded, stats.ignored) == (2, 1)  # README.txt is not card content
    # .DS_Store, ._notes.txt, .hidden.JPG, and four OS folders
    assert stats.hidden_skipped == 7

    shown = {f.relpath for f in scan_dump(tmp_path, IngestConfig(skip_hidden=False))}
    assert {".Trashes/501/IMG_9.JPG", "DCIM/100MEDIA/.hidden.JPG", "$RECYCLE.BIN/a.JPG"} <= shown


def test_configured_extensions(tmp_path: Path) -> None:
    touch(tmp_path, "a.jpg", "b.heic", "c.avi")
    cfg = IngestConfig(image_extensions=(".HEIC",), video_extensions=())
    assert [(f.relpath, f.kind) for f in scan_dump(tmp_path, cfg)] == [("b.heic", "image")]


def test_folder_symlinks_are_not_followed(tmp_path: Path) -> None:
    touch(tmp_path, "a/IMG_0001.JPG")
    os.symlink(tmp_path / "a", tmp_path / "a" / "loop")
    assert [f.relpath for f in scan_dump(tmp_path, IngestConfig())] == ["a/IMG_0001.JPG"]


def test_undecodable_file_names_are_stored_escaped(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/IMG_\xe9.JPG"
    with open(raw, "wb") as handle:
        handle.write(b"x")
    (scanned,) = scan_dump(tmp_path, IngestConfig())
    assert scanned.relpath == "IMG_\\xe9.JPG"
    assert os.path.exists(scanned.path)  # the real name is kept for reading
