"""The detect stage: ultralytics detectors (MegaDetector MDv1000/MDv6, or your own) over ingested images.

Modules:

- :mod:`~ecowatch.detect.registry`: the public camera-trap detectors by name (URL, checksum, licence,
  image size, class map), including the refused ones and why.
- :mod:`~ecowatch.detect.weights`: a detector spec (registry name, path, ``models:/`` URI) to a
  verified local weights file and its version.
- :mod:`~ecowatch.detect.data`: decoding and letterboxing images of media rows (DataLoader workers),
  or cutting large frames into tiles.
- :mod:`~ecowatch.detect.tiling`: which tiles cover a large (drone) frame, and how the boxes of its
  tiles and of the whole-frame pass merge into one set.
- :mod:`~ecowatch.detect.network`, :mod:`~ecowatch.detect.module`: the ultralytics network as a
  LightningModule whose ``predict_step`` returns ``bbox_xywhn`` detections per media id.
- :mod:`~ecowatch.detect.writer`: one store transaction per batch, deterministic ids.
- :mod:`~ecowatch.detect.stage`: :func:`detect_stage`, the stage function pipelines call.

Importing this package imports neither ultralytics nor Lightning; the heavy names below load on
first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ecowatch.detect.registry import REGISTRY, DetectorEntry, get_detector, list_detectors
from ecowatch.detect.static_fp import StaticFPSummary, flag_static_false_positives
from ecowatch.detect.weights import ResolvedDetector, resolve_detector

if TYPE_CHECKING:
    from ecowatch.detect.stage import DetectSummary, detect_stage

__all__ = [
    "REGISTRY",
    "DetectSummary",
    "DetectorEntry",
    "ResolvedDetector",
    "StaticFPSummary",
    "detect_stage",
    "flag_static_false_positives",
    "get_detector",
    "list_detectors",
    "resolve_detector",
]

_LAZY = {"DetectSummary": "ecowatch.detect.stage", "detect_stage": "ecowatch.detect.stage"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
