"""Labelled boxes from any source, merged into one labelled set with a fingerprint.

Every reader of :mod:`ecowatch.retrain.intake` and :mod:`ecowatch.retrain.timelapse` returns
:class:`LabelledBox` records: one labelled animal, either a box (``bbox_xywhn``) or a whole image
(``bbox_xywhn`` None, e.g. station/species folders or a Timelapse species field). Training crops a
box with context; a whole-image label is cropped as the whole frame.

The **fingerprint** of a labelled set is the sha256 of its sorted label lines
``<image_key>|<box rounded to 4 decimals, or "image">|<taxon_id>|<location_id>``, where
``image_key`` is ``<images dataset>/<path relative to it>``: it changes when a label is added,
removed, moved or changes species, and not when files are copied to another machine.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ecowatch.classify.crops import CropSource

log = logging.getLogger(__name__)

#: Decimals of ``bbox_xywhn`` kept in label keys and the fingerprint (1e-4 of the frame: < 1 px at 4K).
BOX_DECIMALS = 4
WHOLE_IMAGE = (0.0, 0.0, 1.0, 1.0)


@dataclass(frozen=True)
class LabelledBox:
    """One labelled animal: a box on an image, or a whole image.

    Attributes:
        label_id: unique within its labelled set (annotation id, observation id or relpath).
        image_path: absolute path of the image file.
        image_key: ``<images dataset>/<POSIX path relative to it>``: names the image the same way
            on every machine (fingerprint, duplicates across sets).
        bbox_xywhn: top-left x, y, width, height normalised to 0..1 by the image size; None for
            a label of the whole image.
        taxon_id: the species (a taxon id of the taxonomy table).
        location_id: where the camera stood (the unit of the holdout and train/val splits).
        deployment_id: the camera placement ("" when unknown).
        source: ``<format>:<labelled set name>``, e.g. ``coco_camera_traps:sample_labels``.
        timestamp: camera-local time ``YYYY-MM-DDTHH:MM:SS`` when the source gives it, else "".
    """

    label_id: str
    image_path: Path
    image_key: str
    bbox_xywhn: tuple[float, float, float, float] | None
    taxon_id: str
    location_id: str
    deployment_id: str
    source: str
    timestamp: str = ""

    @property
    def box_key(self) -> str:
        """The box rounded to :data:`BOX_DECIMALS` (``"image"`` for a whole-image label)."""
        if self.bbox_xywhn is None:
            return "image"
        return ",".join(f"{v:.{BOX_DECIMALS}f}" for v in self.bbox_xywhn)

    @property
    def key(self) -> tuple[str, str]:
        """What a label is about: (image key, box key). Two labels with the same key are duplicates."""
        return self.image_key, self.box_key

    def crop_source(self) -> CropSource:
        """The crop to train or evaluate on (a whole-image label crops the whole frame)."""
        return CropSource(
            crop_id=f"{self.source}/{self.label_id}", image_path=self.image_path,
            bbox_xywhn=self.bbox_xywhn or WHOLE_IMAGE, taxon_id=self.taxon_id,
            location_id=self.location_id, deployment_id=self.deployment_id,
        )


def image_key(dataset: str, image_path: Path, root: Path) -> str:
    """``<dataset>/<POSIX path of image_path relative to root>`` (the absolute path when outside root)."""
    try:
        relative = Path(image_path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        relative = Path(image_path).resolve().as_posix()
    return f"{dataset}/{relative}"


@dataclass(frozen=True)
class MergedLabels:
    """Labelled sets merged into one.

    Attributes:
        labels: the labels, in set order then file order (a later set's label replaced an earlier
            one with the same key).
        replaced: labels replaced by a later set's label of the same box.
        per_source: labels kept per source.
    """

    labels: tuple[LabelledBox, ...]
    replaced: int
    per_source: dict[str, int]


def merge_labels(sets: Iterable[Sequence[LabelledBox]]) -> MergedLabels:
    """Merge labelled sets; on the same box of the same image, the later set wins.

    A later set that labels a box again (a review worklist filled in by people, a corrected
    export) replaces the earlier label, so the same crop never appears twice with two labels.

    Args:
        sets: labelled sets, in the order of the configuration.

    Returns:
        The merged labels.
    """
    by_key: dict[tuple[str, str], LabelledBox] = {}
    replaced = 0
    for labels in sets:
        for label in labels:
            if label.key in by_key:
                replaced += 1
                if by_key[label.key].taxon_id != label.taxon_id:
                    log.info("%s of %s relabelled %s -> %s by %s", label.box_key, label.image_key,
                             by_key[label.key].taxon_id, label.taxon_id, label.source)
                del by_key[label.key]  # re-inserted at the end: the later set's order
            by_key[label.key] = label
    merged = tuple(by_key.values())
    return MergedLabels(merged, replaced, dict(Counter(label.source for label in merged)))


def fingerprint(labels: Iterable[LabelledBox]) -> str:
    """The sha256 (hex) of the labelled set: sorted ``image_key|box|taxon|location`` lines."""
    lines = sorted(f"{b.image_key}|{b.box_key}|{b.taxon_id}|{b.location_id}" for b in labels)
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()
