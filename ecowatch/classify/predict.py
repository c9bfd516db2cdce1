"""Batched inference on store detections: crops in DataLoader workers, a Lightning ``predict_step``.

:class:`DetectionCropDataset` cuts the crop of each detection exactly as training did
(:func:`~ecowatch.classify.crops.crop_square` then
:func:`~ecowatch.classify.transforms.eval_transform`); consecutive detections of one image decode
it once. Every sample carries its detection id, so scores are matched to detections by id, never
by position. An image that cannot be decoded any more gives a sample with the error text; the
writer flags its media row and the batch goes on.

:class:`ClassifierModule` runs a loaded :class:`~ecowatch.classify.checkpoint.SpeciesClassifier`
and returns, per detection, the top-k taxon ids with calibrated probabilities and the
unknown-species score.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import Dataset

from ecowatch.classify.backbones import channels_last
from ecowatch.classify.checkpoint import SpeciesClassifier, score_batch
from ecowatch.classify.crops import CropSource, crop_square
from ecowatch.classify.transforms import Preprocessing, eval_transform

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CropSample:
    """One detection's network input.

    Attributes:
        image: ``float32`` tensor (3, S, S), normalised.
        detection_id: the detection's id.
        media_id: its media row.
        error: why the image could not be decoded (then ``image`` is zeros), or None.
    """

    image: torch.Tensor
    detection_id: str
    media_id: str
    error: str | None


@dataclass
class CropBatch:
    """Stacked samples (a dataclass, so Lightning moves ``images`` to the device)."""

    images: torch.Tensor
    detection_ids: list[str]
    media_ids: list[str]
    errors: list[str | None]


@dataclass(frozen=True)
class DetectionScores:
    """The classification of one detection.

    Attributes:
        detection_id: the detection's id.
        media_id: its media row.
        taxon_ids: top-k taxon ids, best first.
        scores: their calibrated probabilities (0..1).
        unknown_score: open-set score (0..1; >= 0.5 means unlike any known class).
        error: decode error (then no scores), or None.
    """

    detection_id: str
    media_id: str
    taxon_ids: tuple[str, ...]
    scores: tuple[float, ...]
    unknown_score: float
    error: str | None = None


class DetectionCropDataset(Dataset[CropSample]):
    """Crops of detections as normalised input tensors.

    Args:
        sources: the detections (sorted by image, so consecutive ones share decodes).
        preprocessing: the checkpoint's preprocessing.
    """

    def __init__(self, sources: Sequence[CropSource], preprocessing: Preprocessing) -> None:
        self.sources = list(sources)
        self.preprocessing = preprocessing
        self.transform = eval_transform(preprocessing)
        self._last: tuple[Path, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.sources)

    def _pixels(self, path: Path) -> np.ndarray:
        from ecowatch.detect.data import decode_image

        if self._last is None or self._last[0] != path:
            self._last = (path, decode_image(path))
        return self._last[1]

    def __getitem__(self, index: int) -> CropSample:
        source = self.sources[index]
        try:
            pixels = self._pixels(source.image_path)
        except Exception as exc:  # noqa: BLE001 - a decode failure becomes a flag on this image; the batch goes on
            log.warning("cannot decode %s (detection %s): %s: %s", source.image_path, source.crop_id,
                        type(exc).__name__, exc)
            size = self.preprocessing.input_size
            return CropSample(torch.zeros(3, size, size), source.crop_id, source.media_id,
                              f"{type(exc).__name__}: {exc}")
        crop = crop_square(pixels, source.bbox_xywhn, self.preprocessing.geometry)
        return CropSample(self.transform(image=crop)["image"], source.crop_id, source.media_id, None)


def collate_crops(samples: Sequence[CropSample]) -> CropBatch:
    """Stack samples into a :class:`CropBatch` (the DataLoader's ``collate_fn``)."""
    return CropBatch(
        images=torch.stack([s.image for s in samples]),
        detection_ids=[s.detection_id for s in samples],
        media_ids=[s.media_id for s in samples],
        errors=[s.error for s in samples],
    )


class ClassifierModule(L.LightningModule):
    """A loaded classifier whose ``predict_step`` returns top-k scores per detection id.

    Args:
        classifier: the loaded checkpoint.
        top_k: classes kept per detection (at most the number of classes).
    """

    def __init__(self, classifier: SpeciesClassifier, *, top_k: int) -> None:
        super().__init__()
        self.network = classifier.network
        self.class_ids = classifier.taxonomy.class_ids
        self.temperature = classifier.temperature
        self.class_bias = classifier.class_bias
        self.open_set = classifier.open_set
        self.test_time_flip = classifier.test_time_flip
        self.top_k = max(1, min(top_k, len(self.class_ids)))

    def on_predict_start(self) -> None:
        """Evaluation mode; channels-last memory (:func:`~ecowatch.classify.backbones.channels_last`)."""
        self.network.eval()
        self.network.to(memory_format=torch.channels_last)
        if self.open_set.bank is not None:  # the knn score's bank on the network's device
            self.open_set = replace(self.open_set, bank=self.open_set.bank.to(self.device))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Raw logits (N, classes) in ``float32``."""
        return self.network(channels_last(images)).float()

    def predict_step(self, batch: CropBatch, batch_idx: int, dataloader_idx: int = 0) -> list[DetectionScores]:
        """Top-k calibrated probabilities and the unknown score of every detection of a batch."""
        probs, unknown_scores, _ = score_batch(self.network, batch.images, temperature=self.temperature,
                                               class_bias=self.class_bias, open_set=self.open_set,
                                               flip=self.test_time_flip)
        top = probs.topk(self.top_k, dim=1)
        unknown = unknown_scores.cpu().tolist()
        values, indices = top.values.cpu().tolist(), top.indices.cpu().tolist()
        out = []
        for row, (detection_id, media_id, error) in enumerate(zip(batch.detection_ids, batch.media_ids, batch.errors,
                                                                  strict=True)):
            if error is not None:
                out.append(DetectionScores(detection_id, media_id, (), (), 0.0, error))
                continue
            out.append(DetectionScores(detection_id, media_id, tuple(self.class_ids[i] for i in indices[row]),
                                       tuple(float(v) for v in values[row]), float(unknown[row])))
        return out
