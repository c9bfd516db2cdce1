"""Gallery: the best crop of each taxon, cut from the local image file and inlined as base64 JPEG.

For every label of the species table, its media-level animal observations are tried in order of
decreasing probability (the box's confidence when the observation has none); the first whose box
lies on a readable image under its dump's root folder gives the crop. The box of an observation
is the detection with the same id (Camtrap DP imports), else the most confident detection of the
same category on the same image that is not a static false positive.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image, ImageOps, UnidentifiedImageError

from ecowatch.report.data import UNCLASSIFIED, ReportData, superseded_unnamed
from ecowatch.report.sections import taxon_name
from ecowatch.tables import Taxon

log = logging.getLogger(__name__)

_CATEGORY = {"animal": "animal", "human": "person", "vehicle": "vehicle"}
_MAX_TRIES = 25  # candidate images tried per taxon before giving up
_PAD = 0.1  # crop margin, as a fraction of the box size on each side


@dataclass(frozen=True)
class GalleryItem:
    """One taxon's best crop.

    Attributes:
        image: base64 JPEG thumbnail.
        probability: the observation's probability (or the box confidence when it has none).
    """

    taxon_id: str
    name: str
    image: str
    probability: float
    deployment_id: str
    relpath: str
    source: str


@dataclass(frozen=True)
class GallerySection:
    """Crops, and the taxa that have none (with why)."""

    items: tuple[GalleryItem, ...]
    not_local: tuple[str, ...]
    no_box: tuple[str, ...]
    note: str


def gallery_section(data: ReportData, labels: Sequence[str], taxonomy: Mapping[str, Taxon] | None, *,
                    thumb_px: int) -> GallerySection:  # fmt: skip
    """Best crop per label (taxon id or :data:`UNCLASSIFIED`), in the order given.

    Args:
        data: the report data (observations, detections, media, dump roots).
        labels: the labels to show, e.g. the species table's order.
        taxonomy: display names.
        thumb_px: longest side of a thumbnail, pixels.

    Returns:
        :class:`GallerySection`; a taxon whose boxes all lie on images that are not on this machine
        (URLs, a dump moved elsewhere) is listed in ``not_local``.
    """
    candidates = _candidates(data)
    items, not_local, no_box = [], [], []
    for label in labels:
        rows = candidates[candidates["label_"] == label]
        name = taxon_name(label, taxonomy).display
        if rows.empty:
            no_box.append(name)
            continue
        item = None
        for row in rows.head(_MAX_TRIES).itertuples():
            path = _local_path(data.dump_roots.get(row.dump_id, ""), row.relpath)
            image = _crop(path, (row.x, row.y, row.w, row.h), thumb_px) if path is not None else None
            if image is not None:
                item = GalleryItem(label, name, image, float(row.score_), str(row.deployment_id), str(row.relpath),
                                   str(row.source))  # fmt: skip
                break
        if item is None:
            not_local.append(name)
        else:
            items.append(item)
    if items:
        note = ""
    elif not_local:
        note = "Nothing to show: the images with boxes are not on this machine (URLs, or the dump was moved)."
    else:
        note = "Nothing to show: no animal observation has a detection box yet."
    return GallerySection(tuple(items), tuple(not_local), tuple(no_box), note)


def _candidates(data: ReportData) -> pd.DataFrame:
    """Media-level animal observations with a box, best first, labelled like the records."""
    obs = data.observations
    obs = obs[(obs["level"] == "media") & (obs["observation_type"] == "animal") & obs["media_id"].notna()]
    obs = obs[~superseded_unnamed(obs)].copy()
    det = data.detections
    box_cols = ["x", "y", "w", "h", "conf"]
    same_id = det.set_index("detection_id")[box_cols]
    by_id = same_id.reindex(obs["observation_id"]).set_axis(obs.index)
    usable = det[~det["static_fp"].astype(bool)].sort_values(["conf", "detection_id"], ascending=[False, True])
    best = usable.drop_duplicates(["media_id", "category"]).set_index(["media_id", "category"])[box_cols]
    keys = pd.MultiIndex.from_arrays([obs["media_id"], obs["observation_type"].map(_CATEGORY)])
    by_media = best.reindex(keys).set_axis(obs.index) if len(obs) else by_id
    boxes = by_id.fillna(by_media)
    obs = obs.join(boxes)
    obs = obs[obs["w"].notna() & (obs["w"] > 0) & (obs["h"] > 0)]
    obs["label_"] = obs["taxon_id"].where(obs["taxon_id"].notna() & (obs["taxon_id"] != ""), UNCLASSIFIED)
    obs["score_"] = obs["probability"].astype(float).fillna(obs["conf"].astype(float))
    return obs.sort_values(["score_", "conf", "observation_id"], ascending=[False, False, True], kind="stable")


def _local_path(root: str, relpath: object) -> Path | None:
    if not isinstance(relpath, str) or not relpath or "://" in relpath or not root:
        return None
    path = Path(root) / relpath
    return path if path.is_file() else None


def _crop(path: Path, box_xywhn: tuple[float, float, float, float], thumb_px: int) -> str | None:
    """The box (with a margin) cut from the image as a base64 JPEG thumbnail; None if unreadable."""
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        log.info("gallery: cannot read %s: %s", path, exc)
        return None
    width, height = image.size
    x, y, w, h = box_xywhn
    left, top = max(0.0, (x - _PAD * w) * width), max(0.0, (y - _PAD * h) * height)
    right, bottom = min(float(width), (x + w * (1 + _PAD)) * width), min(float(height), (y + h * (1 + _PAD)) * height)
    if right - left < 2 or bottom - top < 2:
        return None
    crop = image.crop((int(left), int(top), int(round(right)), int(round(bottom))))
    crop.thumbnail((thumb_px, thumb_px))
    buffer = io.BytesIO()
    crop.save(buffer, format="JPEG", quality=85)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
