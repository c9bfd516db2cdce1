"""Tiny, seeded camera-trap-like scenes for the detector tests, and the store rows that name them.

Every function is deterministic: the same arguments write the same bytes.

A scene is a noisy grey-green background with a few coloured ellipses ("animals": red, "people":
green, "vehicles": blue), written with Pillow. :func:`write_yolo_dataset` writes such scenes with
YOLO-format labels (``class cx cy w h``, normalised) for training a nano model.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ecowatch.store import Store
from ecowatch.store import schema as S

BLOB_COLOURS = ((200, 40, 40), (40, 200, 40), (40, 40, 200))  # class 0 animal, 1 person, 2 vehicle


def scene(size: tuple[int, int], *, seed: int) -> tuple[np.ndarray, list[tuple[int, float, float, float, float]]]:
    """An RGB scene and its boxes.

    Args:
        size: (width, height) in pixels.
        seed: random seed.

    Returns:
        ``uint8`` array (height, width, 3) and a list of (class, cx, cy, w, h) normalised boxes.
    """
    rng = np.random.default_rng(seed)
    width, height = size
    base = np.array([90, 110, 80], dtype=np.int16) + rng.integers(-20, 20, 3)
    img = np.clip(base + rng.integers(-25, 25, (height, width, 3)), 0, 255).astype(np.uint8)
    boxes = []
    for _ in range(int(rng.integers(1, 4))):
        cls = int(rng.integers(0, 3))
        bw = int(rng.integers(max(width // 8, 4), max(width // 3, 6)))
        bh = int(rng.integers(max(height // 8, 4), max(height // 3, 6)))
        x0, y0 = int(rng.integers(0, width - bw)), int(rng.integers(0, height - bh))
        yy, xx = np.mgrid[0:bh, 0:bw]
        inside = ((xx - bw / 2) / (bw / 2)) ** 2 + ((yy - bh / 2) / (bh / 2)) ** 2 <= 1.0
        img[y0 : y0 + bh, x0 : x0 + bw][inside] = BLOB_COLOURS[cls]
        boxes.append((cls, (x0 + bw / 2) / width, (y0 + bh / 2) / height, bw / width, bh / height))
    return img, boxes


def write_scene(path: Path, size: tuple[int, int], *, seed: int, mode: str = "RGB", orientation: int | None = None,
                quality: int = 95) -> Path:
    """Write one scene to ``path`` (format from the suffix), optionally converted or EXIF-rotated.

    Args:
        path: target file (``.png`` or ``.jpg``).
        size: (width, height) of the scene as it should be displayed.
        seed: random seed.
        mode: Pillow mode to store (``RGB``, ``L``, ``CMYK``; CMYK needs ``.jpg``).
        orientation: EXIF orientation tag to write. The pixels are stored rotated so that a reader
            honouring the tag displays the same ``size`` scene (6: stored rotated 90 degrees).
        quality: JPEG quality.

    Returns:
        The path written.
    """
    pixels, _ = scene(size, seed=seed)
    image = Image.fromarray(pixels, "RGB")
    exif = Image.Exif()
    if orientation is not None:
        if orientation == 6:  # displayed = stored rotated 90 degrees clockwise
            image = image.transpose(Image.Transpose.ROTATE_90)
        elif orientation == 8:
            image = image.transpose(Image.Transpose.ROTATE_270)
        elif orientation == 3:
            image = image.transpose(Image.Transpose.ROTATE_180)
        exif[0x0112] = orientation
    if mode != "RGB":
        image = image.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = {"quality": quality} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    image.save(path, exif=exif, **kwargs)
    return path


def write_yolo_dataset(root: Path, *, count: int, size: tuple[int, int], seed: int) -> Path:
    """Scenes with YOLO labels under ``root/images/train`` and ``root/labels/train``; returns data.yaml."""
    for i in range(count):
        pixels, boxes = scene(size, seed=seed + i)
        (root / "images" / "train").mkdir(parents=True, exist_ok=True)
        (root / "labels" / "train").mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels, "RGB").save(root / "images" / "train" / f"{i:03d}.png")
        (root / "labels" / "train" / f"{i:03d}.txt").write_text(
            "".join(f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n" for c, cx, cy, w, h in boxes)
        )
    data = root / "data.yaml"
    data.write_text(
        f"path: {root}\ntrain: images/train\nval: images/train\nnames:\n  0: animal\n  1: person\n  2: vehicle\n"
    )
    return data


def add_media(store: Store, *, dump_id: str, root: Path, relpaths: Sequence[str], status: str = "ok",
              media_type: str = "image") -> dict[str, str]:
    """Insert a dump row and minimal media rows (as ingest would) for files under ``root``.

    Returns:
        relpath -> media_id.
    """
    ids = {relpath: hashlib.sha1(f"{dump_id}/{relpath}".encode()).hexdigest() for relpath in relpaths}
    rows = [
        {
            "media_id": ids[relpath], "dump_id": dump_id, "relpath": relpath, "sha256": "0" * 64,
            "size_bytes": 1, "media_type": media_type, "status": status, "timestamp_source": "none",
            "ingest_run_id": "ingest-run", "timestamp": dt.datetime(2024, 1, 1),
        }
        for relpath in relpaths
    ]
    with store.transaction() as conn:
        store.insert_ignore(conn, S.dumps, [{"dump_id": dump_id, "root": str(root)}])
        store.insert_ignore(conn, S.media, rows)
    return ids
