"""Run configuration: ``conf/*.yaml`` says how to run (thresholds, model choices, datasets by
catalog name). It never holds paths to data: those live in the data catalog.

Validated on load with pydantic: an unknown key, a wrong type or an out-of-range value is a
:class:`ConfigError` naming the file, the key and the problem; a dataset name that the catalog
does not know is an error naming both.

Example (``conf/nightly.yaml``)::

    catalog: data_catalog/catalog.yaml
    datasets:
      dump: sample_dump
      deployments: sample_deployments
      store: results_store
      tracking: mlflow_tracking
    ingest:
      sequence_gap_s: 10
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ecowatch.catalog import Catalog, format_validation_error, load_catalog, read_yaml
from ecowatch.errors import ConfigError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mov", ".mts", ".m4v", ".mkv", ".wmv")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IngestConfig(_Strict):
    """How a dump is scanned and its media grouped.

    Attributes:
        sequence_gap_s: frames of one deployment closer than this many seconds form one
            sequence (burst/event).
        clock_tolerance_h: a timestamp more than this many hours outside its deployment window
            is flagged ``clock_outside_deployment``.
        workers: processes that hash and decode files in parallel (0 = in-process).
        batch_size: files written to the store per transaction.
        image_extensions: file name endings treated as images (case-insensitive).
        video_extensions: file name endings treated as video (recorded, not decoded).
        skip_hidden: skip files and folders whose name starts with '.' (OS metadata) except
            AppleDouble ``._*`` files next to media, which are recorded as not images.
    """

    sequence_gap_s: float = Field(10.0, gt=0)
    clock_tolerance_h: float = Field(24.0, ge=0)
    workers: int = Field(2, ge=0, le=256)
    batch_size: int = Field(256, ge=1, le=100_000)
    image_extensions: tuple[str, ...] = IMAGE_EXTENSIONS
    video_extensions: tuple[str, ...] = VIDEO_EXTENSIONS
    skip_hidden: bool = True

    @field_validator("image_extensions", "video_extensions")
    @classmethod
    def _dotted_lowercase(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for ext in value:
            if not ext.startswith("."):
                raise ValueError(f"extension {ext!r} must start with '.' (e.g. '.jpg')")
        return tuple(ext.lower() for ext in value)


class StaticFPConfig(_Strict):
    """Flagging static false positives: boxes that recur at the same place across many frames.

    Rocks, branches, fence posts and timestamp overlays are detected again and again at nearly the
    same position by a fixed camera. :func:`ecowatch.detect.static_fp.flag_static_false_positives`
    groups, per deployment and category, boxes that overlap (IoU) a cluster's leading box, and sets
    ``detections.static_fp`` on every member of a group seen in enough different frames. Nothing is
    deleted: flagged boxes stay in the store and exports leave them out unless asked.

    Attributes:
        enabled: run the flagging. When off, the function clears the flags of the detections it is
            given (the flags always reflect the configuration last applied).
        iou_threshold: intersection over union (0..1, exclusive of 0) at or above which two boxes are
            "at the same place". Static objects jitter by a few pixels between frames; 0.85 is the
            value MegaDetector's repeat-detection elimination suggests.
        min_occurrences: a group must be seen in at least this many different frames (images) of
            the deployment to be flagged.
        min_fraction: and in at least this fraction (0..1) of the deployment's frames that the
            detector version processed in the dump. With ``min_occurrences`` it keeps an animal that
            rests in front of the camera for one burst from being flagged.
        max_box_area: only boxes covering at most this fraction (0..1) of the image area
            (``w * h`` of ``bbox_xywhn``) are candidates. Static false positives are parts of the
            scene (usually small); large boxes overlap each other by chance (two close-up animals
            filling the frame have a high IoU) and are left alone.
        min_conf: only boxes with a confidence at or above this (0..1) are candidates.
        max_conf: only boxes with a confidence at or below this (0..1) are candidates; lower it to
            protect confident detections from ever being flagged.
    """

    enabled: bool = True
    iou_threshold: float = Field(0.85, gt=0.0, le=1.0)
    min_occurrences: int = Field(10, ge=2)
    min_fraction: float = Field(0.1, ge=0.0, le=1.0)
    max_box_area: float = Field(0.2, gt=0.0, le=1.0)
    min_conf: float = Field(0.0, ge=0.0, le=1.0)
    max_conf: float = Field(1.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _conf_range(self) -> StaticFPConfig:
        if self.min_conf > self.max_conf:
            raise ValueError(
                f"min_conf ({self.min_conf}) is above max_conf ({self.max_conf}); "
                "give a range with min_conf <= max_conf"
            )
        return self


class DetectConfig(_Strict):
    """Which detector finds animals, people and vehicles in the images, and how it runs.

    Attributes:
        detector: a registry name (``mdv1000-larch``, ``mdv6-yolov9-c``, ...; see
            :mod:`ecowatch.detect.registry`), a path to an ultralytics ``.pt`` checkpoint (absolute,
            or relative to the catalog's ``models`` folder), or an MLflow model registry URI
            (``models:/<name>@<alias>`` or ``models:/<name>/<version>``).
        imgsz: network input size in pixels (a multiple of 32), or None for the detector's native
            size (its registry entry, else the size it was trained at).
        conf_threshold: detections below this confidence (0..1) are not stored. MegaDetector's batch
            output keeps everything down to 0.005 and leaves thresholds to later steps; so does this
            default.
        iou_threshold: intersection over union (0..1) above which NMS drops the lower-scoring of two
            boxes of the same class (ultralytics' predict default, 0.7).
        max_det: most detections kept per image (at most 999: the index is part of the detection id).
        agnostic_nms: run NMS across classes (an animal box can suppress an overlapping person box).
        batch_size: images per forward pass (and per store transaction).
        workers: DataLoader processes that decode and letterbox images in parallel (0 = in-process).
        accelerator: ``auto`` (a GPU when present), ``cpu`` or ``gpu``.
        devices: number of devices of that accelerator to use (1 in-process).
        half: run the network in fp16 on a GPU (ignored on CPU, where fp16 is slow and inexact).
        threads: torch CPU threads for the forward pass; None = every core (``os.cpu_count()``).
        allow_download: fetch registry weights from their published URL when they are not in the
            cache yet. Off by default: nothing reaches the network unless asked; a missing file is
            then an error that names the cache path to put it in and the URL to get it from.
        static_fp: flagging of static false positives after detection (:class:`StaticFPConfig`).
    """

    detector: str = Field("mdv1000-larch", min_length=1)
    imgsz: int | None = Field(None, ge=32, le=8192, multiple_of=32)
    conf_threshold: float = Field(0.005, ge=0.0, le=1.0)
    iou_threshold: float = Field(0.7, ge=0.0, le=1.0)
    max_det: int = Field(300, ge=1, le=999)
    agnostic_nms: bool = False
    batch_size: int = Field(8, ge=1, le=1024)
    workers: int = Field(2, ge=0, le=256)
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    devices: int = Field(1, ge=1, le=1024)
    half: bool = True
    threads: int | None = Field(None, ge=1, le=1024)
    allow_download: bool = False
    static_fp: StaticFPConfig = StaticFPConfig()


class DatasetNames(_Strict):
    """Catalog names of the datasets a run reads and writes."""

    dump: str = "sample_dump"
    deployments: str | None = "sample_deployments"  # None: media are recorded without deployments
    taxonomy: str | None = "sample_taxonomy"
    labels: str | None = "sample_labels"
    store: str = "results_store"
    tracking: str = "mlflow_tracking"
    models: str = "models"
    exports: str = "exports"
    reports: str = "reports"


class TrackingConfig(_Strict):
    """MLflow tracking: experiment name; the store itself is the catalog's ``tracking`` dataset."""

    experiment: str = Field("ecowatch-nightly", min_length=1)
    enabled: bool = True


class RunConfig(_Strict):
    """A whole run configuration file."""

    catalog: str = "data_catalog/catalog.yaml"
    datasets: DatasetNames = DatasetNames()
    ingest: IngestConfig = IngestConfig()
    detect: DetectConfig = DetectConfig()
    tracking: TrackingConfig = TrackingConfig()


class LoadedConfig:
    """A validated run configuration together with its catalog."""

    def __init__(self, config: RunConfig, catalog: Catalog, source: Path | None) -> None:
        self.config = config
        self.catalog = catalog
        self.source = source


def load_config(path: str | Path, *, overrides: dict[str, object] | None = None) -> LoadedConfig:
    """Load and validate a run configuration and the catalog it names.

    Args:
        path: a ``conf/*.yaml`` file. Its ``catalog`` path is relative to the project root
            (the folder that holds ``conf/``).
        overrides: dotted keys to override, e.g. ``{"ingest.workers": 0}``.

    Returns:
        The configuration and its loaded catalog.

    Raises:
        ConfigError: unreadable YAML, an unknown key, a wrong type or value, or a dataset name
            that is not in the catalog.
        CatalogError: the catalog itself is invalid.
    """
    source = Path(path).resolve()
    raw = read_yaml(source, ConfigError)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level, got {type(raw).__name__}.")
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {dotted!r}: {part!r} is not a section.")
        node[leaf] = value
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(str(source), exc)) from exc
    root = source.parent.parent
    catalog_path = Path(config.catalog)
    catalog = load_catalog(catalog_path if catalog_path.is_absolute() else root / catalog_path)
    for field, name in config.datasets.model_dump().items():
        if name is not None and name not in catalog:
            raise ConfigError(
                f"{source}: datasets.{field}: {name!r} is not in the catalog {catalog.source}. "
                f"Known datasets: {', '.join(catalog.names)}."
            )
    return LoadedConfig(config, catalog, source)
