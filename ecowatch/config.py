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
from typing import Literal, TypeVar

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


class TilingConfig(_Strict):
    """Tiled inference for frames much larger than the network input (drone surveys).

    A 4000x3000 drone frame letterboxed to 640 px shrinks a 30 px deer to 5 px. A tiled frame is
    cut into overlapping square tiles; each tile is one network input (letterboxed to the network
    input size), and the tiles of several frames share forward passes. Boxes come back in
    ``bbox_xywhn`` of the whole frame, with ``detections.tile`` = ``"x0,y0,w,h"`` (the tile, in
    pixels of the frame) or ``"full"`` (the whole-frame pass). How boxes of different tiles and of
    the whole-frame pass are merged is :func:`ecowatch.detect.tiling.merge_detections`:

    1. a tile box within ``border_margin`` of an inner border of its tile (the object may be cut)
       is dropped when another tile contains it clear of that tile's inner borders (that tile saw
       the object whole, or a larger part of it);
    2. a whole-frame box that a tile contains clear of its inner borders is dropped (the tile saw
       that region at higher resolution);
    3. a cut tile box lying mostly (``fragment_ioa``) inside a same-class whole-frame box that
       crosses the cutting border is dropped (a piece of a large animal the whole frame saw whole);
    4. class-wise NMS at ``merge_iou`` over what is left, highest confidence first; then the
       ``max_det`` most confident.

    Attributes:
        mode: ``auto`` tiles frames whose long side exceeds ``min_side_for_tiling``; ``always``
            tiles every frame larger than one tile; ``never`` runs every frame whole (letterboxed
            to the network input size, exactly as ultralytics' predict does).
        min_side_for_tiling: in ``auto`` mode, frames whose long side in pixels exceeds this are
            tiled; None = twice the network input size (``detect.imgsz``).
        tile_size: side of a square tile in pixels of the original frame; None = the network input
            size (tiles then run at the frame's full resolution; a larger tile is scaled down).
        overlap: overlap of neighbouring tiles: a fraction of ``tile_size`` when below 1, else
            whole pixels. Tiles are spread evenly over the frame, so the actual overlap is at least
            this. Make it larger than the longest animal that should be seen whole by some tile.
        full_frame_pass: also run the whole frame, letterboxed, for animals larger than a tile.
        merge_iou: intersection over union (0..1) above which the lower-scoring of two boxes of
            the same class from different tiles (or a tile and the whole frame) is dropped.
        border_margin: pixels of the frame; a box edge this close to an inner tile border counts
            as cut by that border.
        fragment_ioa: fraction (0..1) of a cut tile box's area that must lie inside a same-class
            whole-frame box crossing that border for the tile box to be dropped as a fragment.
    """

    mode: Literal["auto", "always", "never"] = "never"
    min_side_for_tiling: int | None = Field(None, ge=32, le=100_000)
    tile_size: int | None = Field(None, ge=32, le=16_384)
    overlap: float = Field(0.2, ge=0.0, le=16_384)
    full_frame_pass: bool = True
    merge_iou: float = Field(0.5, gt=0.0, le=1.0)
    border_margin: float = Field(4.0, ge=0.0, le=1024)
    fragment_ioa: float = Field(0.7, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _overlap_fits(self) -> TilingConfig:
        if self.overlap >= 1 and self.overlap != int(self.overlap):
            raise ValueError(
                f"overlap {self.overlap} is neither a fraction below 1 nor whole pixels; "
                f"use e.g. 0.2 (of tile_size) or {int(self.overlap)} (pixels)"
            )
        if self.tile_size is not None and self.overlap >= 1 and self.overlap >= self.tile_size:
            raise ValueError(
                f"overlap {int(self.overlap)} px is not smaller than tile_size {self.tile_size} px; "
                f"use at most {self.tile_size // 2} px or a fraction such as 0.2"
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
        padding: ``minimal`` pads each batch only to the smallest rectangle whose sides are multiples
            of the network's stride (ultralytics' ``predict`` default, ``rect``): a 16:9 frame at 640 px
            is a 640x384 input; ``square`` pads every image to ``imgsz`` x ``imgsz``. Ignored for
            RT-DETR (stretched to the square) and for tiled runs.
        batch_size: images per forward pass (and per store transaction).
        workers: DataLoader processes that decode and letterbox images in parallel (0 = in-process).
        accelerator: ``auto`` (a GPU when present), ``cpu`` or ``gpu``.
        devices: prediction processes per machine: one per GPU, or CPU processes sharing the cores.
            More than one (or ``num_nodes`` > 1) runs detection, and classification after it, with
            Lightning's DDP: each process predicts a disjoint share of the images into its own shard
            and rank 0 merges the shards into the store (see :mod:`ecowatch.shards`). Under torchrun
            or SLURM the launcher's process count is used instead.
        num_nodes: machines taking part (Lightning's ``num_nodes``; see docs/cluster.md).
        half: run the network in fp16 on a GPU (ignored on CPU, where fp16 is slow and inexact).
        threads: torch CPU threads for the forward pass, per process; None = this machine's cores
            shared among its processes (``os.cpu_count() // devices``).
        allow_download: fetch registry weights from their published URL when they are not in the
            cache yet. Off by default: nothing reaches the network unless asked; a missing file is
            then an error that names the cache path to put it in and the URL to get it from.
        observation_threshold: confidence (0..1) from which a box makes its image an animal, human or
            vehicle observation of the detector (MegaDetector's suggested threshold for its
            models, 0.2); every box down to ``conf_threshold`` is still stored and exported.
        static_fp: flagging of static false positives after detection (:class:`StaticFPConfig`).
        tiling: tiled inference for large frames (:class:`TilingConfig`). In a tiled run
            ``batch_size`` counts network inputs (tiles and whole frames) per forward pass.
    """

    detector: str = Field("mdv1000-larch", min_length=1)
    imgsz: int | None = Field(None, ge=32, le=8192, multiple_of=32)
    conf_threshold: float = Field(0.005, ge=0.0, le=1.0)
    iou_threshold: float = Field(0.7, ge=0.0, le=1.0)
    max_det: int = Field(300, ge=1, le=999)
    agnostic_nms: bool = False
    padding: Literal["minimal", "square"] = "minimal"
    batch_size: int = Field(8, ge=1, le=1024)
    workers: int = Field(2, ge=0, le=256)
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    devices: int = Field(1, ge=1, le=1024)
    num_nodes: int = Field(1, ge=1, le=1024)
    half: bool = True
    threads: int | None = Field(None, ge=1, le=1024)
    allow_download: bool = False
    observation_threshold: float = Field(0.2, ge=0.0, le=1.0)
    static_fp: StaticFPConfig = StaticFPConfig()
    tiling: TilingConfig = TilingConfig()


class ClassifyConfig(_Strict):
    """Which species classifier names the animals the detector found, and how it runs.

    Attributes:
        model: a classifier checkpoint written by ``ecowatch train classifier`` (a path, absolute
            or relative to the catalog's ``models`` folder) or an MLflow model registry URI
            (``models:/<name>@<alias>`` or ``models:/<name>/<version>``), or a bundled classifier's
            name (``ecowatch-species-synth``); None: no classifier, the classify stage is skipped.
        fallback: the classifier to use while ``model`` is a registry URI that the registry does not
            hold yet (no such model or alias, e.g. ``@champion`` before the first ``ecowatch retrain``);
            a logged warning says so. Never used when the registry cannot be reached. None: such
            a ``model`` is an error.
        min_detection_conf: only animal detections with at least this confidence (0..1) are
            classified (lower ones are mostly empty frames, and cost time).
        top_k: taxon scores recorded per detection (rank 1 = best; at most the model's classes).
        batch_size: crops per forward pass (and per store transaction).
        workers: DataLoader processes that decode images and cut crops (0 = in-process).
        accelerator: ``auto`` (a GPU when present), ``cpu`` or ``gpu``.
        half: run in 16-bit mixed precision on a GPU (bf16 where supported; ignored on CPU).
        threads: torch CPU threads, per process; None = this machine's cores shared among its processes.

    In a nightly run the classifier runs in the detect stage's processes (``detect.devices`` x
    ``detect.num_nodes``, or torchrun / SLURM): they are started once, for both stages.
    """

    model: str | None = Field(None, min_length=1)
    fallback: str | None = Field(None, min_length=1)
    min_detection_conf: float = Field(0.2, ge=0.0, le=1.0)
    top_k: int = Field(5, ge=1, le=100)
    batch_size: int = Field(64, ge=1, le=4096)
    workers: int = Field(2, ge=0, le=256)
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    half: bool = True
    threads: int | None = Field(None, ge=1, le=1024)


class FuseConfig(_Strict):
    """The context fuser: classifier scores x place/season/time prior -> labelled observations.

    The stage (:func:`ecowatch.context.fuse_stage`) runs after classify when a classifier is
    configured; the decision is :func:`ecowatch.context.fusion.fuse_detection`, whose module
    docstring explains each threshold.

    Attributes:
        enabled: run the fuse stage (when ``classify.model`` is set).
        context: catalog name of the context-model artefact (a knowledge-graph JSON built by
            ``ecowatch train context``); None: no prior (labels from the classifier
            alone, still rolled up and voted per sequence).
        place_weight: exponent (0..1) of the place/season prior ratio; fitted on validation sites
            by ``bench/fusion.py`` (0 = ignore the place, 1 = full Bayes).
        activity_weight: exponent (0..1) of the time-of-day ratio; fitted likewise.
        min_prior_information_nats: the prior is applied only where it differs from the global
            prior by at least this Kullback-Leibler divergence (nats); else the classifier decides.
        range_outside_factor: multiplier (0..1] of a species' probability outside its range map
            (a soft geofence; 1 ignores range maps).
        unknown_min_score: open-set score (0..1) from which a detection is an unknown animal.
        species_min_score: fused probability (0..1) a species needs to be the label.
        rollup_min_score: summed probability (0..1) a genus, family, ... needs to be the label.
    """

    enabled: bool = True
    context: str | None = Field(None, min_length=1)
    place_weight: float = Field(1.0, ge=0.0, le=1.0)
    activity_weight: float = Field(1.0, ge=0.0, le=1.0)
    min_prior_information_nats: float = Field(0.01, ge=0.0)
    range_outside_factor: float = Field(0.05, gt=0.0, le=1.0)
    unknown_min_score: float = Field(0.5, ge=0.0, le=1.0)
    species_min_score: float = Field(0.9, ge=0.0, le=1.0)
    rollup_min_score: float = Field(0.9, ge=0.0, le=1.0)


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


class ReportConfig(_Strict):
    """The HTML report (:func:`ecowatch.report.build_report`): what it computes and how.

    Attributes:
        title: the report's heading.
        scope: ``dump`` reports on the configured dump only (``<reports>/report-<dump>.html``);
            ``store`` on every dump in the results store (``<reports>/report-store.html``).
        event_gap_min: records of one taxon at one deployment less than this many minutes apart
            form one independent event (camtrapR ``minDeltaTime``; 30 is the usual choice).
        event_rule: what the gap is measured from: ``last_record`` (the previous record) or
            ``last_independent`` (the first record of the event); see
            :func:`ecowatch.analysis.independent_events`.
        occasion_length_days: calendar days per sampling occasion of the detection histories
            (the "occasions detected / surveyed" column of the species table).
        outage_gap_days: a gap longer than this many days between a camera's images is shown as a
            possible outage on the effort calendar (:func:`ecowatch.analysis.detect_outages`);
            None turns the detection off. Choose it well above the longest quiet spell of a
            working camera.
        subtract_outages: remove those gaps from the effort (trap-nights, RAI, occupancy,
            accumulation). Off by default: without time-lapse images a quiet camera and a dead one
            look the same, and camtrapR's standard numbers use the deployment windows.
        bootstrap_samples: bootstrap samples of each activity-overlap confidence interval (0 = no
            interval; a 95 % interval needs at least 40). Kept small so the report stays fast.
        min_activity_records: a taxon needs at least this many independent events for an activity
            curve and for the overlap table.
        overlap_max_taxa: the overlap table covers at most this many taxa (those with the most
            events), i.e. ``n * (n - 1) / 2`` pairs.
        accumulation_unit: sampling unit of the species accumulation curve: ``deployment`` or
            ``day`` (a camera-day with effort).
        uncertain_probability: observations with a probability below this (0..1) are listed as
            uncertain in the data-quality section.
        gallery_thumb_px: longest side, in pixels, of each gallery thumbnail.
        regions: catalog name of a ``geojson`` / ``geopackage`` dataset of region polygons drawn
            under the deployment map (deployments coloured by region); None for none.
        seed: seed of every random choice (bootstrap samples).
    """

    title: str = Field("Camera-trap report", min_length=1)
    scope: Literal["dump", "store"] = "dump"
    event_gap_min: float = Field(30.0, ge=0)
    event_rule: Literal["last_record", "last_independent"] = "last_record"
    occasion_length_days: int = Field(7, ge=1, le=366)
    outage_gap_days: float | None = Field(7.0, gt=0)
    subtract_outages: bool = False
    bootstrap_samples: int = Field(200, ge=0, le=100_000)
    min_activity_records: int = Field(10, ge=2)
    overlap_max_taxa: int = Field(8, ge=2, le=100)
    accumulation_unit: Literal["deployment", "day"] = "deployment"
    uncertain_probability: float = Field(0.5, ge=0.0, le=1.0)
    gallery_thumb_px: int = Field(256, ge=32, le=2048)
    regions: str | None = None
    seed: int = 0


class RunConfig(_Strict):
    """A whole run configuration file."""

    catalog: str = "data_catalog/catalog.yaml"
    datasets: DatasetNames = DatasetNames()
    ingest: IngestConfig = IngestConfig()
    detect: DetectConfig = DetectConfig()
    classify: ClassifyConfig = ClassifyConfig()
    fuse: FuseConfig = FuseConfig()
    tracking: TrackingConfig = TrackingConfig()
    report: ReportConfig = ReportConfig()


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
    config, catalog, source = load_validated(path, RunConfig, overrides=overrides)
    return LoadedConfig(config, catalog, source)


ModelT = TypeVar("ModelT", bound=BaseModel)


def load_validated(path: str | Path, model: type[ModelT], *, overrides: dict[str, object] | None = None
                   ) -> tuple[ModelT, Catalog, Path]:
    """Read a configuration file into ``model``, apply dotted overrides, load the catalog it names.

    ``model`` needs a ``catalog`` path (relative to the project root, the folder holding
    ``conf/``) and a ``datasets`` section of catalog names (None for an unused one); every name
    must be in the catalog. Shared by the run configuration and the training configurations.

    Returns:
        The validated configuration, its catalog and the resolved file path.

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
        config = model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(str(source), exc)) from exc
    catalog_path = Path(config.catalog)
    catalog = load_catalog(catalog_path if catalog_path.is_absolute() else source.parent.parent / catalog_path)
    for field, name in config.datasets.model_dump().items():
        if name is not None and name not in catalog:
            raise ConfigError(
                f"{source}: datasets.{field}: {name!r} is not in the catalog {catalog.source}. "
                f"Known datasets: {', '.join(catalog.names)}."
            )
    return config, catalog, source
