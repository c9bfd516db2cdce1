"""Registry of the public camera-trap detectors (timm-style: a name -> everything needed to use it).

Each :class:`DetectorEntry` names where the weights come from (URL, published checksum), under
which licence, at which image size the model was trained, which classes it predicts and which
architecture it is. Code refers to detectors by name (``mdv1000-larch``); the cache path of its
weights follows from the name (see :func:`ecowatch.detect.weights.cache_path`).

Only checkpoints that ``ultralytics`` can load run here (``loadable=True``). Entries for the other
MegaDetector releases are kept so that asking for them gives a clear refusal that says why and
what to use instead, rather than an unpickling traceback.

Where each field comes from (read from stored copies of the public sources, 2025-2026):

- MDv1000 (``mdv1000-*``): URL, architecture, input size and licence ("ILMS", the licence of the
  default inference code) from the release notes, ``agentmorris/MegaDetector``
  ``docs/release-notes/mdv1000-release.md`` ("Introducing MDv1000" table); md5 checksums from
  ``known_models`` in ``megadetector/detection/run_detector.py`` of the same repository. That the
  larch and sorrel checkpoints are Ultralytics checkpoints and redwood/spruce/cedar are not follows
  from the release notes (the MegaDetector package runs redwood, cedar and spruce *without*
  ultralytics, and asks for ``pip install ultralytics`` only for larch and sorrel) and from the
  package's loader, which reads a model type (yolov5 / yolov9 / ultralytics) from each file.
- MDv6 (``mdv6-*``): URL and licence from the PyTorch-Wildlife model zoo table
  (``microsoft/CameraTraps``, "Model Zoo and Release Schedules"); image size from
  ``PytorchWildlife/models/detection/ultralytics_based/megadetectorv6.py`` (``IMAGE_SIZE = 1280`` for
  every version); the architecture size behind "-c"/"-e" from an earlier version of that file,
  whose file names were ``MDV6-yolov10n.pt``, ``MDV6-yolov10x.pt`` and ``MDV6b-rtdetrl.pt``.
  Zenodo publishes per-file md5 sums on the record page, but they could not be read here, so
  the checksums are None (the file is still hashed with sha256 for the detector version).
- MDv5 (``mdv5a``, ``mdv5b``): URL and input size from ``megadetector.md`` and
  ``run_detector.py`` (``image_size: 1280``, ``model_type: yolov5``, md5).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from ecowatch.errors import ModelNotFoundError

#: MegaDetector's class ids as ultralytics numbers them (0-based), shared by MDv5, MDv6, MDv1000.
MEGADETECTOR_CLASS_MAP: Mapping[int, str] = MappingProxyType({0: "animal", 1: "person", 2: "vehicle"})

#: Folder of the weights shipped inside the package (small detectors trained on generated data).
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"

#: Categories the results store accepts in ``detections.category``.
DETECTION_CATEGORIES = frozenset(MEGADETECTOR_CLASS_MAP.values())

ResizeMode = Literal["letterbox", "stretch"]

_MD_RELEASES = "https://github.com/agentmorris/MegaDetector/releases/download"
_MD_NOTES = "https://github.com/agentmorris/MegaDetector/blob/main/docs/release-notes/mdv1000-release.md"
_MD_KNOWN_MODELS = "https://github.com/agentmorris/MegaDetector/blob/main/megadetector/detection/run_detector.py"
_MD_GUIDE = "https://github.com/agentmorris/MegaDetector/blob/main/megadetector.md"
_PW_ZENODO = "https://zenodo.org/records/15398270/files"
_PW_ZOO = "https://microsoft.github.io/CameraTraps/model_zoo/megadetector/"
_PW_MDV6 = (
    "https://github.com/microsoft/CameraTraps/blob/main/"
    "PytorchWildlife/models/detection/ultralytics_based/megadetectorv6.py"
)

_YOLOV5_REFUSAL = (
    "{name} is a YOLOv5 checkpoint trained with the original yolov5 code base: it pickles that "
    "package's classes (models.yolo.Model), which ultralytics cannot unpickle (it raises 'This model is "
    "NOT forwards compatible'). Use an MDv1000 model that ultralytics loads (mdv1000-larch, "
    "mdv1000-sorrel) or an MDv6 model (e.g. mdv6-yolov9-c), or run {name} with MegaDetector's own "
    "package (`pip install megadetector`, `python -m megadetector.detection.run_detector_batch`) and "
    "import its results."
)
_YOLOV9_REFUSAL = (
    "{name} is a YOLOv9 checkpoint of the original (WongKinYiu) yolov9 code base, which MegaDetector's "
    "package runs through the `yolov9pip` package without ultralytics; its pickled classes are not "
    "ultralytics classes, so ultralytics cannot load it. Use mdv1000-larch or mdv1000-sorrel (same "
    "release, ultralytics checkpoints) or an MDv6 model, or run {name} with MegaDetector's own package "
    "(`pip install megadetector`) and import its results."
)


@dataclass(frozen=True)
class DetectorEntry:
    """One registered detector.

    Attributes:
        name: the registry name, lower case (``mdv1000-larch``).
        family: release family (``megadetector-v1000``, ``megadetector-v6``, ``megadetector-v5``).
        architecture: network architecture (``yolo11l``, ``yolov9c``, ``rtdetr-l``, ...).
        url: where the weights are published (``https://``).
        filename: file name of the weights in the cache folder (the upstream name).
        checksum: ``"md5:<hex>"`` or ``"sha256:<hex>"`` as published by the authors, or None where
            no checksum is published (or it could not be verified).
        licence: licence of the weights / their inference code as the authors state it.
        imgsz: native image size in pixels (long side) the model was trained and is run at.
        class_map: class index (0-based, as in the checkpoint) to category name.
        resize_mode: how images are fitted to ``imgsz``: ``letterbox`` (aspect kept, grey padding,
            YOLO models) or ``stretch`` (no padding, RT-DETR as ultralytics runs it).
        loadable: whether ultralytics can load the checkpoint; entries that are not loadable are
            refused with :attr:`refusal`.
        bundled: the weights ship inside the package (:data:`BUNDLED_DIR`); ``url`` then names the
            repository script that reproduces them instead of a download address.
        refusal: why the entry cannot run here and what to use instead (None when loadable).
        sources: public pages the fields were read from.
        notes: fields that could not be verified, and other caveats.
    """

    name: str
    family: str
    architecture: str
    url: str
    filename: str
    checksum: str | None
    licence: str
    imgsz: int
    class_map: Mapping[int, str] = field(default_factory=lambda: MEGADETECTOR_CLASS_MAP)
    resize_mode: ResizeMode = "letterbox"
    loadable: bool = True
    refusal: str | None = None
    bundled: bool = False
    sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


def _mdv1000(tree: str, arch: str, imgsz: int, licence: str, md5: str, *, loadable: bool,
             refusal: str | None = None, notes: tuple[str, ...] = ()) -> DetectorEntry:
    name = f"mdv1000-{tree}"
    return DetectorEntry(
        name=name,
        family="megadetector-v1000",
        architecture=arch,
        url=f"{_MD_RELEASES}/v1000.0/md_v1000.0.0-{tree}.pt",
        filename=f"md_v1000.0.0-{tree}.pt",
        checksum=f"md5:{md5}",
        licence=licence,
        imgsz=imgsz,
        loadable=loadable,
        refusal=refusal.format(name=name) if refusal else None,
        sources=(_MD_NOTES, _MD_KNOWN_MODELS),
        notes=notes,
    )


def _mdv6(version: str, filename: str, arch: str, notes: tuple[str, ...] = (),
          resize_mode: ResizeMode = "letterbox") -> DetectorEntry:
    return DetectorEntry(
        name=f"mdv6-{version}",
        family="megadetector-v6",
        architecture=arch,
        url=f"{_PW_ZENODO}/{filename}?download=1",
        filename=filename,
        checksum=None,
        licence="AGPL-3.0",
        imgsz=1280,
        resize_mode=resize_mode,
        sources=(_PW_ZOO, _PW_MDV6),
        notes=(
            "checksum: none in the PyTorch-Wildlife code or docs; Zenodo lists an md5 per file on the "
            "record page (records/15398270), not verified here",
            "imgsz: PyTorch-Wildlife runs every MDv6 version at 1280; the training size of the '-c' "
            "models is not stated",
            *notes,
        ),
    )


def _mdv5(letter: str, md5: str) -> DetectorEntry:
    name = f"mdv5{letter}"
    return DetectorEntry(
        name=name,
        family="megadetector-v5",
        architecture="yolov5x6",
        url=f"{_MD_RELEASES}/v5.0/md_v5{letter}.0.0.pt",
        filename=f"md_v5{letter}.0.0.pt",
        checksum=f"md5:{md5}",
        licence="GPL-3.0 (YOLOv5 inference code; MegaDetector repository MIT)",
        imgsz=1280,
        loadable=False,
        refusal=_YOLOV5_REFUSAL.format(name=name),
        sources=(_MD_GUIDE, _MD_KNOWN_MODELS),
        notes=(f"a re-release md_v5{letter}.0.1.pt (same network) exists in the same GitHub release",),
    )


_ECOWATCH_SYNTH = DetectorEntry(
    name="ecowatch-synth",
    family="ecowatch",
    architecture="yolo11-c256",
    url="scripts/train_default_detector.py",
    filename="ecowatch-synth-yolo11-c256.pt",
    checksum="sha256:cb66b56eb19e942d16edcdc7f77b9bdbd557ffde67da1ec9358522d3a9c590c2",
    licence="MIT (weights trained by ecowatch on generated data; ultralytics inference code AGPL-3.0)",
    imgsz=320,
    bundled=True,
    sources=("scripts/train_default_detector.py",),
    notes=("the embedded default of the README's demo: a compact YOLO11 trained from scratch on generated "
           "camera-trap frames and drone tiles; it knows generated animals, not real ones. Use a MegaDetector "
           "release on real cards.",),
)

_ENTRIES: tuple[DetectorEntry, ...] = (
    _ECOWATCH_SYNTH,
    _mdv1000("larch", "yolo11l", 640, "AGPL-3.0 (ultralytics inference code; MegaDetector repository MIT)",
             "cab94ebd190c2278e12fb70ffd548b6d", loadable=True),
    _mdv1000("sorrel", "yolo11s", 960, "AGPL-3.0 (ultralytics inference code; MegaDetector repository MIT)",
             "4339a2c8af7a381f18ded7ac2a4df03e", loadable=True,
             notes=("trained at 960 px, larger than YOLO11's default 640",)),
    _mdv1000("redwood", "yolov5x6", 1280, "GPL-3.0 (YOLOv5 inference code; MegaDetector repository MIT)",
             "74474b3aec9cf1a990da38b37ddf9197", loadable=False, refusal=_YOLOV5_REFUSAL),
    _mdv1000("spruce", "yolov5s", 640, "GPL-3.0 (YOLOv5 inference code; MegaDetector repository MIT)",
             "1c9d1d2b3ba54931881471fdd508e6f2", loadable=False, refusal=_YOLOV5_REFUSAL),
    _mdv1000("cedar", "yolov9c", 640, "GPL-3.0 (YOLOv9 inference code; MegaDetector repository MIT)",
             "3d6472c9b95ba687b59ebe255f7c576b", loadable=False, refusal=_YOLOV9_REFUSAL,
             notes=("not loadable: inferred from the release notes and MegaDetector's loader (it runs cedar "
                    "without ultralytics); not confirmed by loading the file, which cannot be downloaded here",)),
    _mdv6("yolov9-c", "MDV6-yolov9-c.pt", "yolov9c"),
    _mdv6("yolov9-e", "MDV6-yolov9-e-1280.pt", "yolov9e"),
    _mdv6("yolov10-c", "MDV6-yolov10-c.pt", "yolov10n",
          notes=("ultralytics 8.4 runs YOLOv10 checkpoints through their one-to-many head with NMS by "
                 "default; this stage does the same, so results match `YOLO(path).predict`",)),
    _mdv6("yolov10-e", "MDV6-yolov10-e-1280.pt", "yolov10x",
          notes=("ultralytics 8.4 runs YOLOv10 checkpoints through their one-to-many head with NMS by "
                 "default; this stage does the same, so results match `YOLO(path).predict`",)),
    _mdv6("rtdetr-c", "MDV6-rtdetr-c.pt", "rtdetr-l", resize_mode="stretch",
          notes=("RT-DETR: images are stretched to imgsz x imgsz (no letterbox) and no NMS is run, as in "
                 "ultralytics' RTDETRPredictor",)),
    _mdv5("a", "ec1d7603ec8cf642d6e0cd008ba2be8c"),
    _mdv5("b", "bc235e73f53c5c95e66ea0d1b2cbf542"),
)

#: Every registered detector by name.
REGISTRY: Mapping[str, DetectorEntry] = MappingProxyType({entry.name: entry for entry in _ENTRIES})


def list_detectors(*, loadable_only: bool = False) -> list[str]:
    """Names of the registered detectors, sorted.

    Args:
        loadable_only: leave out the entries ultralytics cannot load (MDv5, MDv1000 redwood/spruce/cedar).

    Returns:
        Registry names such as ``mdv1000-larch``.
    """
    return sorted(name for name, entry in REGISTRY.items() if entry.loadable or not loadable_only)


def get_detector(name: str, *, registry: Mapping[str, DetectorEntry] | None = None) -> DetectorEntry:
    """The registry entry for a name (case-insensitive; ``md`` and ``mdv`` prefixes are both accepted).

    Args:
        name: a registry name such as ``mdv1000-larch`` or ``MDV6-yolov9-c``.
        registry: the registry to search (the built-in :data:`REGISTRY` by default).

    Returns:
        The entry, which may be one that is not loadable (see :attr:`DetectorEntry.refusal`).

    Raises:
        ModelNotFoundError: no entry has that name; the message lists the closest names.
    """
    table = REGISTRY if registry is None else registry
    key = name.strip().lower()
    if key.startswith("md") and not key.startswith("mdv"):
        key = "mdv" + key[2:]  # md1000-larch -> mdv1000-larch, as MegaDetector's package accepts
    if key in table:
        return table[key]
    close = difflib.get_close_matches(key, list(table), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ModelNotFoundError(
        f"unknown detector {name!r}.{hint} Registered detectors: {', '.join(sorted(table))}. "
        "A local .pt path or an MLflow registry URI (models:/name@alias) is also accepted."
    )

