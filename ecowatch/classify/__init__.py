"""The classify stage and its training: a fine-grained species classifier over animal crops.

Modules:

- :mod:`~ecowatch.classify.taxonomy`: the classes and their ancestors (carried by checkpoints).
- :mod:`~ecowatch.classify.crops`: square crops with context from COCO Camera Traps boxes or store
  detections, and their disk cache.
- :mod:`~ecowatch.classify.transforms`: preprocessing and albumentations pipelines.
- :mod:`~ecowatch.classify.split`, :mod:`~ecowatch.classify.datamodule`: location-disjoint splits,
  class-balanced sampling, the LightningDataModule.
- :mod:`~ecowatch.classify.backbones`, :mod:`~ecowatch.classify.losses`, :mod:`~ecowatch.classify.task`:
  torchvision backbones, the taxonomy-aware loss, the torchgeo-style Lightning task.
- :mod:`~ecowatch.classify.calibration`, :mod:`~ecowatch.classify.openset`,
  :mod:`~ecowatch.classify.evaluate`: temperature scaling and ECE, unknown-species scores,
  evaluation figures.
- :mod:`~ecowatch.classify.checkpoint`: standalone checkpoints and their loader.
- :mod:`~ecowatch.classify.config`, :mod:`~ecowatch.classify.train`: ``conf/classifier.yaml`` and
  :func:`train_classifier` (the command is ``ecowatch train classifier``, in ``pipelines/train.py``).
- :mod:`~ecowatch.classify.predict`, :mod:`~ecowatch.classify.writer`, :mod:`~ecowatch.classify.stage`:
  batched inference on store detections and :func:`classify_stage`, the stage pipelines call.

Importing this package imports neither torch nor Lightning; the names below load on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ecowatch.classify.checkpoint import SpeciesClassifier, load_classifier, save_classifier
    from ecowatch.classify.stage import ClassifySummary, classify_stage, resolve_classifier
    from ecowatch.classify.train import TrainingResult, train_classifier

__all__ = [
    "ClassifySummary",
    "SpeciesClassifier",
    "TrainingResult",
    "classify_stage",
    "load_classifier",
    "resolve_classifier",
    "save_classifier",
    "train_classifier",
]

_LAZY = {
    "SpeciesClassifier": "ecowatch.classify.checkpoint",
    "load_classifier": "ecowatch.classify.checkpoint",
    "save_classifier": "ecowatch.classify.checkpoint",
    "ClassifySummary": "ecowatch.classify.stage",
    "classify_stage": "ecowatch.classify.stage",
    "resolve_classifier": "ecowatch.classify.stage",
    "TrainingResult": "ecowatch.classify.train",
    "train_classifier": "ecowatch.classify.train",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
