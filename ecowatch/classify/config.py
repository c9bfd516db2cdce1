"""Training configuration of the species classifier (``conf/classifier.yaml``), validated on load.

Like the run configuration (:mod:`ecowatch.config`), it names datasets by their catalog names and
never holds data paths; an unknown key, a wrong type or an out-of-range value is a
:class:`~ecowatch.errors.ConfigError` that names the file, the key and the problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ecowatch.catalog import Catalog
from ecowatch.classify.backbones import BACKBONES
from ecowatch.config import load_validated
from ecowatch.tables import RANKS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassifierDatasets(_Strict):
    """Catalog names of what training reads and writes.

    Attributes:
        images: the folder the labels' ``file_name`` entries are relative to (an SD-card dump).
        labels: COCO Camera Traps labels (boxes with taxon ids, ``location`` per image).
        taxonomy: the taxonomy table (kingdom to species).
        models: where the checkpoint is written (``<models>/classifiers/<model_name>.ckpt``) and the
            crop cache kept (``<models>/crop_cache``).
        tracking: the MLflow tracking store.
    """

    images: str = "sample_dump"
    labels: str = "sample_labels"
    taxonomy: str = "sample_taxonomy"
    models: str = "models"
    tracking: str = "mlflow_tracking"


class SplitConfig(_Strict):
    """The location split (whole locations go to one of train, val, test).

    Attributes:
        val_fraction: wanted share of crops at validation locations.
        test_fraction: wanted share at test locations (0: no test split).
        seed: seed of the split.
        val_locations: locations forced into validation (the rest is split at random).
        test_locations: locations forced into test.
    """

    val_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    test_fraction: float = Field(0.2, ge=0.0, lt=1.0)
    seed: int = 0
    val_locations: tuple[str, ...] = ()
    test_locations: tuple[str, ...] = ()


class DataConfig(_Strict):
    """Crops, classes and sampling.

    Attributes:
        crop_size: side in pixels of the cached crops.
        input_size: side in pixels of the network input (at most ``crop_size``).
        padding: context around each box, as a fraction of its longer side on each side.
        max_aspect: how elongated the crop window may follow an elongated box before it is
            stretched to the square crop (1: square windows; see :mod:`ecowatch.classify.crops`).
        autocontrast: stretch each crop's grey levels (1st..99th percentile) before the network.
        min_box_px: leave out labelled boxes whose longer side is below this many pixels.
        exclude_taxa: taxon ids never used (people are the detector's class, not a species).
        holdout_species: taxon ids left out of training and validation classes; their crops are
            the "unknown species" of the open-set evaluation.
        balance_power: class balancing of training draws (0 = as in the data, 1 = all classes
            equally often).
        augment_scale: area range of the training random resized crop.
        eval_zoom: share of the crop's side shown at evaluation and inference (the centre; see
            :class:`~ecowatch.classify.transforms.Preprocessing`); about the square root of the
            mean of ``augment_scale`` shows animals at the size training saw them.
        cache_workers: processes cutting crops into the cache.
        preload: keep decoded crops in memory during training.
    """

    crop_size: int = Field(128, ge=16, le=1024)
    input_size: int = Field(112, ge=16, le=1024)
    padding: float = Field(0.15, ge=0.0, le=2.0)
    max_aspect: float = Field(1.0, ge=1.0, le=8.0)
    autocontrast: bool = True
    min_box_px: float = Field(0.0, ge=0.0)
    exclude_taxa: tuple[str, ...] = ("homo_sapiens",)
    holdout_species: tuple[str, ...] = ()
    balance_power: float = Field(0.5, ge=0.0, le=1.0)
    augment_scale: tuple[float, float] = (0.55, 1.0)
    eval_zoom: float = Field(1.0, ge=0.5, le=1.0)
    cache_workers: int = Field(2, ge=0, le=256)
    preload: bool = True
    split: SplitConfig = SplitConfig()

    @model_validator(mode="after")
    def _sizes(self) -> DataConfig:
        if self.input_size > self.crop_size:
            raise ValueError(f"input_size ({self.input_size}) must not exceed crop_size ({self.crop_size})")
        low, high = self.augment_scale
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"augment_scale {self.augment_scale} must satisfy 0 < min <= max <= 1")
        return self


class ModelConfig(_Strict):
    """The network and its loss.

    Attributes:
        name: model name recorded with every classification and registered in MLflow.
        backbone: a registered torchvision backbone (see :mod:`ecowatch.classify.backbones`).
        pretrained: start from ImageNet weights when their file is in the torch hub cache (never
            downloaded; otherwise random weights and a warning).
        label_smoothing: label smoothing of the species cross-entropy.
        rank_weights: weight of the loss at coarser ranks (probabilities summed over the species
            below each taxon).
        test_time_flip: score every crop together with its mirror image and average the two (logits
            and embeddings), at evaluation and in the nightly stage; the calibration, the unknown
            threshold and the figures are fitted and measured so, and the checkpoint records it.
            Twice the network's work per crop.
    """

    name: str = Field("ecowatch-species", min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    backbone: str = "resnet18"
    pretrained: bool = True
    label_smoothing: float = Field(0.1, ge=0.0, lt=1.0)
    rank_weights: dict[str, float] = Field(default_factory=lambda: {"genus": 0.5, "family": 0.25})
    test_time_flip: bool = False

    @field_validator("backbone")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value not in BACKBONES:
            raise ValueError(f"backbone {value!r} is not registered; choose one of {sorted(BACKBONES)}")
        return value

    @field_validator("rank_weights")
    @classmethod
    def _ranks(cls, value: dict[str, float]) -> dict[str, float]:
        for rank, weight in value.items():
            if rank not in RANKS[:-1]:
                raise ValueError(f"rank {rank!r} is not one of {list(RANKS[:-1])}")
            if weight < 0:
                raise ValueError(f"rank weight {rank}={weight} must be >= 0")
        return value


class TrainConfig(_Strict):
    """The optimisation.

    Attributes:
        max_epochs: epochs (one epoch = as many class-balanced draws as training crops).
        max_steps: stop after this many optimiser steps (None: no limit; for smoke tests).
        max_minutes: stop training after this many minutes (None: no limit). In one process the
            learning-rate schedule then follows whichever runs out first, the epochs or the minutes,
            so a time-limited run still ends annealed; with DDP it follows the steps.
        batch_size: crops per optimiser step, over all processes (the global batch): with
            ``devices`` x ``num_nodes`` processes each takes an equal share, so the same
            configuration optimises the same way on one device or many. Must divide evenly.
        lr: peak learning rate (one-cycle schedule).
        weight_decay: AdamW weight decay.
        warmup_fraction: share of the steps spent warming up.
        workers: DataLoader processes (0 = in-process).
        accelerator: ``auto`` (a GPU when present), ``cpu`` or ``gpu``.
        devices: devices of that accelerator per node; on CPU, processes (each with its share of
            the cores unless ``threads`` is set).
        num_nodes: machines (SLURM or torchrun sets the ranks; see docs/cluster.md).
        strategy: Lightning strategy; ``auto`` is ``ddp`` (one process per device, gradients
            all-reduced; ``gloo`` on CPU, ``nccl`` on GPUs) when more than one process trains.
        precision: ``auto`` (bf16-mixed on a GPU that has it, else 16-mixed on a GPU; on a CPU
            bf16-mixed for a dense backbone when the CPU has AMX tiles or AVX512-BF16, else 32-true) or a Lightning
            precision.
        threads: torch CPU threads (None: every core).
        seed: seed of weights, sampling and augmentation.
        val_every_n_epochs: validate every this many epochs.
        resize_from: progressive resizing (FFCV's ResNet recipes): training batches start at this
            side (px) and grow linearly, in steps of 8 px, to ``data.input_size`` by
            ``resize_until`` of the run (the schedule's progress: steps or time budget, whichever
            is further), then stay there; early steps cost less, so a time budget fits more
            epochs, and the last part of the run is at the size validation and inference use.
            None: every batch at ``data.input_size``.
        resize_until: share of the run (0..1] after which batches are at full size.
    """

    max_epochs: int = Field(30, ge=1, le=10_000)
    max_steps: int | None = Field(None, ge=1)
    max_minutes: float | None = Field(None, gt=0)
    batch_size: int = Field(64, ge=2, le=4096)
    lr: float = Field(2e-3, gt=0, le=1.0)
    weight_decay: float = Field(0.05, ge=0)
    warmup_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    workers: int = Field(2, ge=0, le=256)
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    devices: int = Field(1, ge=1, le=1024)
    num_nodes: int = Field(1, ge=1, le=4096)
    strategy: Literal["auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true"] = "auto"
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed"] = "auto"
    threads: int | None = Field(None, ge=1, le=1024)
    seed: int = 0
    val_every_n_epochs: int = Field(5, ge=1)
    resize_from: int | None = Field(None, ge=16, le=1024)
    resize_until: float = Field(0.75, gt=0.0, le=1.0)

    @property
    def world_size(self) -> int:
        """Training processes: ``devices`` x ``num_nodes``."""
        return self.devices * self.num_nodes

    @model_validator(mode="after")
    def _batch_divides(self) -> TrainConfig:
        if self.batch_size % self.world_size:
            raise ValueError(
                f"train.batch_size {self.batch_size} (the global batch) does not divide among "
                f"{self.world_size} processes (devices {self.devices} x num_nodes {self.num_nodes}); "
                f"use a multiple of {self.world_size}, e.g. {self.batch_size // self.world_size * self.world_size or self.world_size}"
            )
        return self


class OpenSetConfig(_Strict):
    """Unknown-species scoring.

    Attributes:
        method: ``knn`` (``-cos`` of the image embedding to its k-th nearest training crop),
            ``energy`` (``-logsumexp(logits)``), ``max_logit`` (``-max(logits)``), ``msp``
            (``-max(softmax(logits))``), or ``auto``: the one with the highest AUROC on validation
            crops of the species held out of training (``data.holdout_species``; ``knn`` when none
            are held out). The training run reports the AUROC of all of them when species are
            held out.
        known_recall: share of known-species validation crops kept as known by the threshold.
        k: the neighbour of the ``knn`` score.
        bank_per_class: training crops per class whose embeddings the checkpoint keeps for ``knn``
            (float16; 400 x 13 classes x 576 dimensions is 6 MB).
    """

    method: Literal["knn", "energy", "max_logit", "msp", "auto"] = "knn"
    known_recall: float = Field(0.95, gt=0.0, lt=1.0)
    k: int = Field(100, ge=1)
    bank_per_class: int = Field(400, ge=1)


class RegistryConfig(_Strict):
    """MLflow model registry.

    Attributes:
        enabled: register the checkpoint as a new model version (needs tracking on).
        alias: alias set on the new version (``challenger``; promotion to ``champion`` is a
            separate, deliberate step).
    """

    enabled: bool = True
    alias: str | None = Field("challenger", pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")


class TrackingConfig(_Strict):
    """MLflow experiment of training runs.

    Attributes:
        experiment: the MLflow experiment.
        enabled: log the run (rank 0 only).
        system_metrics_s: seconds between samples of each machine's CPU, memory, disk, network
            and GPU use, logged to the run as ``system/node<N>/...`` by every machine of a
            distributed run; None: not logged.
    """

    experiment: str = Field("ecowatch-classifier", min_length=1)
    enabled: bool = True
    system_metrics_s: float | None = Field(10.0, gt=0)


class ClassifierTrainingConfig(_Strict):
    """A whole ``conf/classifier.yaml``."""

    catalog: str = "data_catalog/catalog.yaml"
    datasets: ClassifierDatasets = ClassifierDatasets()
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    open_set: OpenSetConfig = OpenSetConfig()
    registry: RegistryConfig = RegistryConfig()
    tracking: TrackingConfig = TrackingConfig()

    @model_validator(mode="after")
    def _holdout(self) -> ClassifierTrainingConfig:
        both = sorted(set(self.data.holdout_species) & set(self.data.exclude_taxa))
        if both:
            raise ValueError(f"{both} are in both data.holdout_species and data.exclude_taxa; keep each in one")
        if self.train.resize_from is not None and self.train.resize_from >= self.data.input_size:
            raise ValueError(f"train.resize_from {self.train.resize_from} must be below data.input_size "
                             f"{self.data.input_size} (it is where progressive resizing starts); unset it to train "
                             f"every batch at full size")
        return self


class LoadedClassifierConfig:
    """A validated training configuration with its catalog."""

    def __init__(self, config: ClassifierTrainingConfig, catalog: Catalog, source: Path) -> None:
        self.config = config
        self.catalog = catalog
        self.source = source


def load_classifier_config(path: str | Path, *, overrides: dict[str, object] | None = None) -> LoadedClassifierConfig:
    """Load and validate ``conf/classifier.yaml`` and the catalog it names.

    Args:
        path: the configuration file; its ``catalog`` is relative to the project root (the folder
            holding ``conf/``).
        overrides: dotted keys to override, e.g. ``{"train.max_epochs": 2}``.

    Returns:
        The configuration and its catalog.

    Raises:
        ConfigError: unreadable YAML, an unknown key, a wrong type or value, or a dataset name the
            catalog does not know.
        CatalogError: the catalog itself is invalid.
    """
    config, catalog, source = load_validated(path, ClassifierTrainingConfig, overrides=overrides)
    return LoadedClassifierConfig(config, catalog, source)
