"""Square animal crops with context, their sources (labels or store detections) and their disk cache.

A crop is the square centred on a box whose side is the box's longer side plus ``padding`` of it
on each side (context helps: a tail, the ground, the size of the animal against the scene). Parts
of the square outside the image are filled with a constant grey level. The square is resized to
``crop_size`` pixels (``cv2.INTER_AREA`` when shrinking, bilinear when enlarging): the one
function :func:`crop_square` is used for training (through the cache) and inference, so both see
the same pixels.

With ``max_aspect`` above 1 the window follows an elongated box instead: it is as long as the
square's side but only ``1 / max_aspect`` of it across (never less than the padded box), and it is
stretched to the square crop. A marten's box is about 2.8 times as wide as it is tall, so in the
square window the animal fills a third of the crop's height; at ``max_aspect: 2`` it fills two
thirds, and the throat bib and the forelegs that tell the two martens apart get twice the pixels.
The distortion is the same for training and inference, as every crop goes through
:func:`crop_window`.

Sources of crops:

- :func:`sources_from_coco`: boxes of a COCO Camera Traps file (``bbox`` ``[x, y, w, h]`` in
  absolute pixels; ``location`` and ``deployment_id`` per image; the label is the annotation's or
  its category's ``taxon_id``);
- :func:`sources_from_store`: animal detections in the results store (``bbox_xywhn``).

:class:`CropCache` keeps each crop as a lossless PNG named by a hash of the image content
(sha256), the box and the crop geometry, so a changed image or a changed setting never reuses a
stale crop and a re-run decodes nothing it has already cropped.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import sqlalchemy as sa

from ecowatch.errors import InputDataError
from ecowatch.formats.coco_camera_traps import load_coco_camera_traps
from ecowatch.store import Store
from ecowatch.store import schema as S

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class CropGeometry:
    """How a crop is cut from an image.

    Attributes:
        crop_size: side of the stored crop in pixels.
        padding: context added on each side, as a fraction of the box's longer side (0.15: the
            square's side is 1.3 times the longer side).
        fill: grey level (0-255) of the parts of the square outside the image.
        max_aspect: how elongated the window may be (its longer over its shorter side) before it
            is stretched to the square crop; 1 (the default): a square window, no stretching.
    """

    crop_size: int = 128
    padding: float = 0.15
    fill: int = 0
    max_aspect: float = 1.0

    def __post_init__(self) -> None:
        if not 8 <= self.crop_size <= 1024:
            raise ValueError(f"crop_size {self.crop_size} must be within 8..1024 pixels")
        if not 0.0 <= self.padding <= 2.0:
            raise ValueError(f"padding {self.padding} must be within 0..2 (a fraction of the box's longer side)")
        if not 0 <= self.fill <= 255:
            raise ValueError(f"fill {self.fill} must be a grey level within 0..255")
        if not 1.0 <= self.max_aspect <= 8.0:
            raise ValueError(f"max_aspect {self.max_aspect} must be within 1 (a square window) and 8")


@dataclass(frozen=True)
class CropSource:
    """One box to crop.

    Attributes:
        crop_id: the annotation id (labels) or the detection id (store).
        image_path: absolute path of the image file.
        bbox_xywhn: top-left x, y, width, height, normalised to 0..1 by the image's width and height.
        taxon_id: the label, or None for unlabelled detections.
        location_id: where the camera stood (the unit of the train/val/test split).
        deployment_id: the camera placement.
        image_sha256: the image file's sha256 when known (the store has it), else None (hashed when cached).
        media_id: the media row of a store detection, else "".
    """

    crop_id: str
    image_path: Path
    bbox_xywhn: tuple[float, float, float, float]
    taxon_id: str | None
    location_id: str
    deployment_id: str
    image_sha256: str | None = None
    media_id: str = ""


def crop_window(bbox_xywhn: Sequence[float], width: int, height: int, padding: float,
                max_aspect: float = 1.0) -> tuple[int, int, int, int]:
    """The crop window of a box, in image pixels.

    Its longer side is the box's longer side plus ``padding`` of it on each side; its shorter side
    is the longer divided by ``max_aspect``, or the box's shorter side with the same padding if that
    is more (1: a square), both centred on the box.

    Args:
        bbox_xywhn: top-left x, y, width, height normalised by the image size.
        width: image width in pixels.
        height: image height in pixels.
        padding: context on each side as a fraction of the box's longer side.
        max_aspect: how many times longer than across the window may be (>= 1).

    Returns:
        (x0, y0, window width, window height): top-left corner (may be negative or beyond the
        image) and size, in pixels.
    """
    x, y, w, h = (float(v) for v in bbox_xywhn)
    bw, bh = max(w * width, 1.0), max(h * height, 1.0)
    cx, cy = (x + w / 2) * width, (y + h / 2) * height
    long_side = max(bw, bh)
    side = max(round(long_side * (1.0 + 2.0 * padding)), 2)
    across = max(round(max(side / max_aspect, min(bw, bh) + 2.0 * padding * long_side)), 2)
    across = min(across, side)
    ww, wh = (side, across) if bw >= bh else (across, side)
    return round(cx - ww / 2), round(cy - wh / 2), ww, wh


def crop_square(image: np.ndarray, bbox_xywhn: Sequence[float], geometry: CropGeometry) -> np.ndarray:
    """Cut the crop window of one box (:func:`crop_window`) and resize it to the square ``geometry.crop_size``.

    Args:
        image: ``uint8`` array (height, width, 3), RGB, as displayed.
        bbox_xywhn: the box, top-left x, y, width, height normalised to 0..1.
        geometry: crop size, padding, fill and how elongated the window may be.

    Returns:
        ``uint8`` array (crop_size, crop_size, 3), RGB.
    """
    height, width = image.shape[:2]
    x0, y0, ww, wh = crop_window(bbox_xywhn, width, height, geometry.padding, geometry.max_aspect)
    canvas = np.full((wh, ww, 3), geometry.fill, dtype=np.uint8)
    ix0, iy0 = max(x0, 0), max(y0, 0)
    ix1, iy1 = min(x0 + ww, width), min(y0 + wh, height)
    if ix1 > ix0 and iy1 > iy0:
        canvas[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = image[iy0:iy1, ix0:ix1]
    size = geometry.crop_size
    interpolation = cv2.INTER_AREA if max(ww, wh) > size else cv2.INTER_LINEAR
    return cv2.resize(canvas, (size, size), interpolation=interpolation)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sources_from_coco(
    labels_path: Path,
    images_root: Path,
    *,
    exclude_taxa: Sequence[str] = (),
    min_box_px: float = 0.0,
) -> list[CropSource]:
    """Labelled boxes of a COCO Camera Traps file.

    Args:
        labels_path: the COCO Camera Traps JSON (``images`` with ``file_name``, ``width``,
            ``height``, ``location`` and optionally ``deployment_id``; ``annotations`` with
            ``bbox`` ``[x, y, w, h]`` in absolute pixels and a ``taxon_id`` on the annotation or
            its category).
        images_root: the folder ``file_name`` is relative to.
        exclude_taxa: taxon ids to leave out (e.g. ``homo_sapiens``: people are the detector's
            ``person`` class, not a species to classify).
        min_box_px: leave out boxes whose longer side is shorter than this many pixels.

    Returns:
        One source per box with a taxon id, in file order; boxes without one (empty frames,
        vehicles) are left out.

    Raises:
        InputDataError: the file is missing or not COCO Camera Traps, or an annotation names an
            image that is not in it.
    """
    labels_path = Path(labels_path)
    coco = load_coco_camera_traps(labels_path)
    images, categories, annotations = coco.images, coco.categories, coco.annotations
    excluded = set(exclude_taxa)
    root = Path(images_root)
    out: list[CropSource] = []
    for ann in annotations:
        bbox = ann.get("bbox")
        taxon = ann.get("taxon_id") or categories.get(ann.get("category_id"), {}).get("taxon_id")
        if not bbox or not taxon or taxon in excluded:
            continue
        image = images.get(ann["image_id"])
        if image is None:
            raise InputDataError(f"{labels_path}: annotation {ann.get('id')!r} names image {ann['image_id']!r}, "
                                 "which is not in 'images'.")
        width, height = float(image["width"]), float(image["height"])
        x, y, w, h = (float(v) for v in bbox)
        if max(w, h) < min_box_px:
            continue
        location = str(image.get("location") or image.get("deployment_id") or "")
        out.append(CropSource(
            crop_id=str(ann.get("id", f"{ann['image_id']}#{len(out)}")),
            image_path=root / image["file_name"],
            bbox_xywhn=(x / width, y / height, w / width, h / height),
            taxon_id=str(taxon),
            location_id=location,
            deployment_id=str(image.get("deployment_id") or location),
        ))
    return out


def sources_from_store(
    store: Store,
    *,
    dump_root: Path,
    dump_id: str,
    min_conf: float = 0.0,
    category: str = "animal",
    include_static_fp: bool = False,
    detector_version: str | None = None,
    not_classified_by: str | None = None,
) -> list[CropSource]:
    """Detections of one dump in the results store, as crop sources.

    Args:
        store: the results store.
        dump_root: the dump's folder (media relpaths are relative to it).
        dump_id: the dump's catalog name.
        min_conf: detections below this confidence (0..1) are left out.
        category: detection category to take (``animal``).
        include_static_fp: also take detections flagged as static false positives.
        detector_version: only detections of this detector version (all versions when None).
        not_classified_by: leave out detections that already have ``classifications`` rows of
            this model version.

    Returns:
        Sources sorted by media relpath then detection id (so consecutive crops share images);
        ``taxon_id`` is None; the location is the deployment's location (or "" without one).
    """
    d, m, dep = S.detections, S.media, S.deployments
    conditions = [m.c.dump_id == dump_id, d.c.category == category, d.c.conf >= min_conf]
    if not include_static_fp:
        conditions.append(d.c.static_fp.is_(False))
    if detector_version is not None:
        conditions.append(d.c.detector_version == detector_version)
    if not_classified_by is not None:
        conditions.append(~sa.exists().where(
            S.classifications.c.detection_id == d.c.detection_id,
            S.classifications.c.model_version == not_classified_by,
        ))
    stmt = (
        sa.select(d.c.detection_id, d.c.media_id, d.c.x, d.c.y, d.c.w, d.c.h, m.c.relpath, m.c.sha256,
                  m.c.deployment_id, dep.c.location_id)
        .select_from(d.join(m, d.c.media_id == m.c.media_id).outerjoin(dep, m.c.deployment_id == dep.c.deployment_id))
        .where(*conditions)
        .order_by(m.c.relpath, d.c.detection_id)
    )
    root = Path(dump_root)
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [
        CropSource(
            crop_id=row.detection_id,
            image_path=root / row.relpath,
            bbox_xywhn=(row.x, row.y, row.w, row.h),
            taxon_id=None,
            location_id=row.location_id or "",
            deployment_id=row.deployment_id or "",
            image_sha256=row.sha256,
            media_id=row.media_id,
        )
        for row in rows
    ]


class CropCache:
    """Crops on disk as lossless PNG files, ``<root>/<key[:2]>/<key>.png``.

    The key hashes the image's sha256, the box (rounded to 1e-6) and the geometry.

    Args:
        root: the cache folder (created on first write).
        geometry: how crops are cut.
    """

    def __init__(self, root: Path, geometry: CropGeometry) -> None:
        self.root = Path(root)
        self.geometry = geometry

    def key(self, image_sha256: str, bbox_xywhn: Sequence[float]) -> str:
        """The cache key of one crop."""
        g = self.geometry
        box = ",".join(f"{float(v):.6f}" for v in bbox_xywhn)
        text = f"{image_sha256}|{box}|{g.crop_size}|{g.padding:.6f}|{g.fill}"
        if g.max_aspect != 1.0:  # square crops keep the keys they had before the option existed
            text += f"|{g.max_aspect:.6f}"
        return hashlib.sha1(text.encode()).hexdigest()

    def path(self, image_sha256: str, bbox_xywhn: Sequence[float]) -> Path:
        """Where one crop is (or will be) stored."""
        key = self.key(image_sha256, bbox_xywhn)
        return self.root / key[:2] / f"{key}.png"

    def build(self, sources: Sequence[CropSource], *, workers: int = 0) -> list[Path | None]:
        """Make sure every source's crop is in the cache.

        Images are decoded once for all their boxes; ``workers`` DataLoader processes crop images
        in parallel. A file that cannot be read is logged and its crops get None (training goes
        on without them).

        Args:
            sources: the boxes.
            workers: processes cutting crops (0 = in-process).

        Returns:
            The crop file of each source (same order), None for unreadable images.
        """
        from torch.utils.data import DataLoader

        by_image: dict[Path, list[int]] = defaultdict(list)
        for index, source in enumerate(sources):
            by_image[source.image_path].append(index)
        jobs = [(path, [sources[i] for i in indices]) for path, indices in by_image.items()]
        out: list[Path | None] = [None] * len(sources)
        loader = DataLoader(_CacheJobs(jobs, self), batch_size=None, shuffle=False, num_workers=workers)
        made = 0
        for job_index, (paths, new) in enumerate(loader):
            made += new
            for index, path in zip(by_image[jobs[job_index][0]], paths, strict=True):
                out[index] = Path(path) if path else None
        missing = sum(p is None for p in out)
        log.info("crop cache %s: %d crops (%d new, %d unreadable)", self.root, len(out), made, missing)
        return out

    def crops_of_image(self, image_path: Path, sources: Sequence[CropSource]) -> tuple[list[str], int]:
        """Cache the crops of one image; returns their paths ("" when unreadable) and how many were new."""
        from ecowatch.detect.data import decode_image

        try:
            sha = sources[0].image_sha256 or file_sha256(image_path)
        except OSError as exc:
            log.warning("cannot read %s: %s", image_path, exc)
            return [""] * len(sources), 0
        paths = [self.path(sha, s.bbox_xywhn) for s in sources]
        todo = [i for i, p in enumerate(paths) if not p.is_file()]
        if todo:
            try:
                pixels = decode_image(image_path)
            except Exception as exc:  # noqa: BLE001 - an unreadable image loses its crops; the rest go on
                log.warning("cannot decode %s: %s: %s", image_path, type(exc).__name__, exc)
                return [""] * len(sources), 0
            for i in todo:
                _write_png(paths[i], crop_square(pixels, sources[i].bbox_xywhn, self.geometry))
        return [str(p) for p in paths], len(todo)


class _CacheJobs:
    """Map-style dataset of (image, its sources) jobs for :meth:`CropCache.build`."""

    def __init__(self, jobs: list[tuple[Path, list[CropSource]]], cache: CropCache) -> None:
        self.jobs = jobs
        self.cache = cache

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, index: int) -> tuple[list[str], int]:
        path, sources = self.jobs[index]
        return self.cache.crops_of_image(path, sources)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    """Write atomically (temporary name, then rename): a killed run never leaves half a crop."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - encoding a uint8 array cannot fail
        raise OSError(f"cannot encode crop {path}")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(encoded.tobytes())
    tmp.replace(path)


def read_crop(path: Path) -> np.ndarray:
    """A cached crop as a ``uint8`` RGB array (crop_size, crop_size, 3).

    Raises:
        OSError: the file is missing or not an image.
    """
    data = np.fromfile(str(path), dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot decode cached crop {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

