"""Labelled boxes (COCO Camera Traps, Camtrap DP) to an ultralytics detection dataset.

ultralytics trains from a folder of images and a parallel folder of label files (one line
``class cx cy w h`` per box, normalised) named in a dataset YAML. :func:`build_yolo_dataset` writes
that layout from one or more labelled sources:

- classes are MegaDetector's (0 animal, 1 person, 2 vehicle); every labelled taxon except people
  is an animal, COCO ``empty`` images become negatives (an empty label file), and images whose
  labels carry no boxes at all (image-level species labels) are left out, since their boxes are
  unknown;
- the split is by location (deployments of one place never straddle train and validation), so
  the validation figures are those of unseen places;
- frames larger than ``tile_above`` pixels (drone frames), when asked, are cut into overlapping square tiles
  at full resolution, as the tiled detect stage sees them; a box enters a tile when at least
  ``min_visible`` of it lies inside;
- images are linked (hard link, else symbolic link, else copied) rather than re-encoded; tiles
  are written as JPEG.

The output is deterministic for the same sources and seed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image, ImageOps

from ecowatch.detect.registry import MEGADETECTOR_CLASS_MAP
from ecowatch.errors import InputDataError
from ecowatch.formats.coco_camera_traps import load_coco_camera_traps

log = logging.getLogger(__name__)

CLASS_IDS = {name: idx for idx, name in MEGADETECTOR_CLASS_MAP.items()}
PERSON_NAMES = frozenset({"human", "person", "people", "homo sapiens", "homo_sapiens"})
VEHICLE_NAMES = frozenset({"vehicle", "car", "truck", "motorcycle", "bicycle"})
EMPTY_NAMES = frozenset({"empty", "blank", "nothing"})


@dataclass(frozen=True)
class LabelledBox:
    """One box: class index and ``[x, y, w, h]`` in absolute pixels of the image as stored."""

    cls: int
    bbox: tuple[float, float, float, float]


@dataclass(frozen=True)
class LabelledImage:
    """One image with every box it holds (``boxes == ()`` for a verified empty image)."""

    path: Path
    width: int
    height: int
    location: str
    boxes: tuple[LabelledBox, ...]


@dataclass(frozen=True)
class YoloDataset:
    """What :func:`build_yolo_dataset` wrote.

    Attributes:
        yaml_path: the dataset YAML to pass to ultralytics (``data=``).
        root: the dataset folder.
        counts: images and boxes per split and class (``train.images``, ``val.animal``, ...).
        val_locations: the locations held out for validation.
    """

    yaml_path: Path
    root: Path
    counts: dict[str, int] = field(default_factory=dict)
    val_locations: tuple[str, ...] = ()


def category_class(name: str) -> int | None:
    """Detector class of a label name (None for ``empty``)."""
    key = name.strip().lower()
    if key in EMPTY_NAMES:
        return None
    if key in PERSON_NAMES:
        return CLASS_IDS["person"]
    if key in VEHICLE_NAMES:
        return CLASS_IDS["vehicle"]
    return CLASS_IDS["animal"]


def read_coco_camera_traps(coco_path: str | Path, images_root: str | Path) -> list[LabelledImage]:
    """Images and boxes of a COCO Camera Traps file.

    Args:
        coco_path: the JSON file.
        images_root: folder the images' ``file_name`` is relative to.

    Returns:
        One entry per image with boxes or a verified ``empty`` label; images with only
        image-level (box-less) animal labels, and images missing on disk, are skipped (logged).

    Raises:
        InputDataError: the file is not COCO Camera Traps JSON.
    """
    coco_path, images_root = Path(coco_path), Path(images_root)
    coco = load_coco_camera_traps(coco_path)
    images, annotations = list(coco.images.values()), coco.annotations
    names = {c["id"]: str(c.get("species_key") or c.get("name", "")) for c in coco.categories.values()}
    by_image: dict[Any, list[dict[str, Any]]] = {}
    for ann in annotations:
        by_image.setdefault(ann["image_id"], []).append(ann)
    out: list[LabelledImage] = []
    skipped: Counter[str] = Counter()
    for image in images:
        anns = by_image.get(image["id"], [])
        boxes, boxless_animal = [], False
        for ann in anns:
            cls = category_class(names.get(ann["category_id"], ""))
            if cls is None:
                continue
            if "bbox" not in ann:
                boxless_animal = True
                continue
            x, y, w, h = (float(v) for v in ann["bbox"])
            if w > 0 and h > 0:
                boxes.append(LabelledBox(cls, (x, y, w, h)))
        if not anns:
            skipped["unlabelled"] += 1
            continue
        if boxless_animal and not boxes:
            skipped["labels without boxes"] += 1
            continue
        path = images_root / image["file_name"]
        if not path.is_file():
            skipped["missing file"] += 1
            continue
        out.append(LabelledImage(path, int(image["width"]), int(image["height"]),
                                 str(image.get("location") or image.get("deployment_id") or "unknown"), tuple(boxes)))
    if skipped:
        log.info("%s: skipped %s", coco_path, dict(skipped))
    return out


def read_camtrap_dp_boxes(package_path: str | Path) -> list[LabelledImage]:
    """Images and boxes of a Camtrap DP package whose media files lie beside it.

    Media with a box on at least one observation give their boxes (``bboxX/Y/Width/Height`` are
    normalised); media whose observations are all ``blank`` are negatives; others are skipped.
    """
    from ecowatch.formats.camtrap_dp_read import read_camtrap_dp

    package = read_camtrap_dp(package_path)
    base = Path(package.path).parent
    deployments = package.deployments.set_index("deployment_id")
    location = deployments["location_id"] if "location_id" in deployments else deployments.index.to_series()
    observations = package.observations
    out: list[LabelledImage] = []
    for media in package.media.itertuples(index=False):
        candidates = [base / str(media.file_path), base / "media" / str(media.file_name)]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            continue
        rows = observations[observations["media_id"] == media.media_id]
        if rows.empty:
            continue
        with Image.open(path) as im:
            width, height = ImageOps.exif_transpose(im).size
        boxes, unknown = [], False
        for obs in rows.itertuples(index=False):
            kind = str(obs.observation_type)
            if kind == "blank":
                continue
            cls = CLASS_IDS["person"] if kind == "human" else CLASS_IDS["vehicle"] if kind == "vehicle" else CLASS_IDS["animal"]
            bbox = [getattr(obs, name, None) for name in ("bbox_x", "bbox_y", "bbox_width", "bbox_height")]
            if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in bbox):
                unknown = True
                continue
            x, y, w, h = (float(v) for v in bbox)
            boxes.append(LabelledBox(cls, (x * width, y * height, w * width, h * height)))
        if unknown and not boxes:
            continue
        out.append(LabelledImage(path, width, height, str(location.get(media.deployment_id, media.deployment_id)),
                                 tuple(boxes)))
    return out


def tile_origins(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles of ``tile`` pixels covering ``length`` with at least ``overlap`` (fraction)."""
    if length <= tile:
        return [0]
    stride = max(1, int(tile * (1.0 - overlap)))
    n = int(np.ceil((length - tile) / stride)) + 1
    return [int(round(i * (length - tile) / (n - 1))) for i in range(n)]


def _clip_to_tile(box: LabelledBox, x0: int, y0: int, size: int, min_visible: float) -> LabelledBox | None:
    x, y, w, h = box.bbox
    left, top = max(x, x0), max(y, y0)
    right, bottom = min(x + w, x0 + size), min(y + h, y0 + size)
    if right <= left or bottom <= top:
        return None
    if (right - left) * (bottom - top) < min_visible * w * h:
        return None
    return LabelledBox(box.cls, (left - x0, top - y0, right - left, bottom - top))


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        try:
            dst.symlink_to(src.resolve())
        except OSError:
            shutil.copy2(src, dst)


def _label_lines(boxes: tuple[LabelledBox, ...], width: int, height: int) -> list[str]:
    lines = []
    for box in boxes:
        x, y, w, h = box.bbox
        x, y = max(0.0, x), max(0.0, y)
        w, h = min(w, width - x), min(h, height - y)
        if w <= 1 or h <= 1:
            continue
        lines.append(f"{box.cls} {(x + w / 2) / width:.6f} {(y + h / 2) / height:.6f} {w / width:.6f} {h / height:.6f}")
    return lines


def build_yolo_dataset(
    sources: list[list[LabelledImage]],
    out_dir: str | Path,
    *,
    val_fraction: float = 0.2,
    val_locations: tuple[str, ...] | None = None,
    seed: int = 0,
    keep_empty: float = 1.0,
    tile_above: int | None = None,
    tile_size: int = 640,
    tile_overlap: float = 0.2,
    min_visible: float = 0.4,
    max_tiles_per_image: int | None = None,
    empty_tile_fraction: float = 0.1,
) -> YoloDataset:
    """Write an ultralytics dataset (images, labels, ``dataset.yaml``) from labelled images.

    Args:
        sources: labelled images, e.g. from :func:`read_coco_camera_traps` (one list per source).
        out_dir: the dataset folder (replaced if it exists).
        val_fraction: share of locations held out for validation (at least one).
        val_locations: the validation locations, instead of a seeded draw.
        seed: seed of the location draw and of the sub-sampling.
        keep_empty: share of empty (negative) whole images kept.
        tile_above: frames with a side longer than this many pixels are tiled (drone frames); None:
            no tiling (camera-trap frames are letterboxed whole, as the detect stage runs them).
        tile_size: tile side in pixels of the original frame.
        tile_overlap: overlap of neighbouring tiles (fraction of the tile).
        min_visible: share of a box's area that must lie in a tile for the tile to hold it.
        max_tiles_per_image: most tiles with boxes kept per frame (seeded draw); None = all.
        empty_tile_fraction: tiles without boxes kept, as a share of the tiles with boxes.

    Raises:
        InputDataError: no labelled images, or a single location (nothing to hold out).
    """
    images = [image for source in sources for image in source]
    if not images:
        raise InputDataError("No labelled images to build a detector dataset from.")
    rng = np.random.default_rng(seed)
    locations = sorted({image.location for image in images})
    if val_locations is None:
        if len(locations) < 2:
            raise InputDataError(f"All labelled images come from one location ({locations[0]!r}); a split by "
                                 "location needs at least two.")
        n_val = max(1, int(round(val_fraction * len(locations))))
        val_locations = tuple(sorted(rng.choice(locations, size=n_val, replace=False).tolist()))
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    for split in ("train", "val"):
        (out / "images" / split).mkdir(parents=True)
        (out / "labels" / split).mkdir(parents=True)
    counts: Counter[str] = Counter()
    for image in images:
        split = "val" if image.location in val_locations else "train"
        stem = _safe_name(f"{image.location}__{image.path.parent.name}__{image.path.stem}")
        if tile_above is not None and max(image.width, image.height) > tile_above:
            _write_tiles(image, out, split, stem, rng, counts, tile_size=tile_size, overlap=tile_overlap,
                         min_visible=min_visible, max_tiles=max_tiles_per_image, empty_share=empty_tile_fraction)
            continue
        if not image.boxes and rng.random() >= keep_empty:
            continue
        dst = out / "images" / split / f"{stem}{image.path.suffix.lower()}"
        _link(image.path, dst)
        (out / "labels" / split / f"{stem}.txt").write_text(
            "\n".join(_label_lines(image.boxes, image.width, image.height)), encoding="utf-8")
        _count(counts, split, image.boxes)
    document = {"path": str(out.resolve()), "train": "images/train", "val": "images/val",
                "names": dict(MEGADETECTOR_CLASS_MAP)}
    yaml_path = out / "dataset.yaml"
    yaml_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    summary = {"val_locations": list(val_locations), "counts": dict(sorted(counts.items()))}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return YoloDataset(yaml_path, out, dict(sorted(counts.items())), tuple(val_locations))


def _count(counts: Counter[str], split: str, boxes: tuple[LabelledBox, ...]) -> None:
    counts[f"{split}.images"] += 1
    counts[f"{split}.empty_images"] += int(not boxes)
    for box in boxes:
        counts[f"{split}.{MEGADETECTOR_CLASS_MAP[box.cls]}"] += 1


def _write_tiles(image: LabelledImage, out: Path, split: str, stem: str, rng: np.random.Generator,
                 counts: Counter[str], *, tile_size: int, overlap: float, min_visible: float,
                 max_tiles: int | None, empty_share: float) -> None:
    with Image.open(image.path) as im:
        frame = ImageOps.exif_transpose(im).convert("RGB")
    with_boxes, empty = [], []
    for y0 in tile_origins(frame.height, tile_size, overlap):
        for x0 in tile_origins(frame.width, tile_size, overlap):
            boxes = tuple(b for b in (_clip_to_tile(box, x0, y0, tile_size, min_visible) for box in image.boxes) if b)
            (with_boxes if boxes else empty).append((x0, y0, boxes))
    if max_tiles is not None and len(with_boxes) > max_tiles:
        keep = sorted(rng.choice(len(with_boxes), size=max_tiles, replace=False).tolist())
        with_boxes = [with_boxes[i] for i in keep]
    n_empty = min(len(empty), int(round(empty_share * len(with_boxes))))
    if n_empty:
        keep = sorted(rng.choice(len(empty), size=n_empty, replace=False).tolist())
        empty = [empty[i] for i in keep]
    else:
        empty = []
    for x0, y0, boxes in with_boxes + empty:
        name = f"{stem}__t{x0}_{y0}"
        tile = frame.crop((x0, y0, x0 + tile_size, y0 + tile_size))
        tile.save(out / "images" / split / f"{name}.jpg", quality=92)
        (out / "labels" / split / f"{name}.txt").write_text(
            "\n".join(_label_lines(boxes, tile.width, tile.height)), encoding="utf-8")
        _count(counts, split, boxes)
