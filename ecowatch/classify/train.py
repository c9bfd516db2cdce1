"""Training a species classifier end to end: crops, split, fit, calibrate, open-set, evaluate, save, log.

:func:`train_classifier` is what ``ecowatch train classifier`` and the evaluation benchmark call:

1. cut the labelled boxes into the crop cache (:mod:`ecowatch.classify.crops`);
2. split locations into train / val / test (:mod:`ecowatch.classify.split`); held-out species
   (``data.holdout_species``) are no class of the model: their crops at val/test locations are
   the unknown species of the open-set evaluation;
3. fit :class:`~ecowatch.classify.task.SpeciesClassificationTask` with Lightning on class-balanced,
   augmented crops (mixed precision on a GPU, and bf16 on a CPU with bf16 units for dense backbones);
4. fit the temperature and class biases on validation logits (ECE before/after on val and test);
5. choose the unknown-species threshold on validation crops of known species (AUROC on held-out
   species at val and test locations);
6. write the standalone checkpoint (``<models>/classifiers/<name>-<version>.ckpt``), and log
   parameters, metrics, the checkpoint and confusion-matrix PNGs to MLflow, where the checkpoint is
   registered as a new model version with an alias (``challenger``).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ecowatch.classify.backbones import channels_last, cpu_bf16_units, get_backbone
from ecowatch.classify.calibration import (
    calibrated,
    expected_calibration_error,
    fit_bias_corrected_temperature,
    nll,
)
from ecowatch.classify.checkpoint import checkpoint_version, save_classifier
from ecowatch.classify.config import ClassifierTrainingConfig
from ecowatch.classify.crops import CropCache, CropGeometry, CropSource
from ecowatch.classify.evaluate import (
    ClassificationReport,
    auroc_interval,
    classification_report,
    macro_f1_interval,
    write_confusion_png,
)
from ecowatch.classify.openset import (
    OpenSetCalibration,
    OpenSetMethod,
    auroc,
    choose_open_set_method,
    embedding_bank,
    embeddings_and_logits,
    fit_open_set,
    open_set_aurocs,
)
from ecowatch.classify.split import LocationSplit, split_locations
from ecowatch.classify.taxonomy import ClassTaxonomy
from ecowatch.classify.transforms import Preprocessing
from ecowatch.distributed import launch_rank
from ecowatch.errors import InputDataError
from ecowatch.tables import Taxon
from ecowatch.tracking import TrackingTarget, register_model_version, tracked_run

log = logging.getLogger(__name__)
#: site resamples behind the intervals of the evaluation figures
_RESAMPLES = 1000


@dataclass
class SetFigures:
    """Evaluation of one split.

    Attributes:
        report: top-1, macro-F1, per-class recall and F1, confusion matrix, of the calibrated
            predictions (the class the nightly stage ranks first).
        ece_before: expected calibration error of the raw logits (temperature 1, no biases).
        ece_after: with the fitted temperature and class biases.
        nll_before: negative log-likelihood of the raw logits.
        nll_after: calibrated.
        unknown_auroc: AUROC of the unknown score, held-out species (positive) against known
            species crops of the split; NaN without held-out crops there.
        unknown_flagged_known: share of known-species crops called unknown (score >= 0.5).
        unknown_flagged_unknown: share of held-out species crops called unknown.
        unknown_auroc_by_method: the AUROC of each open-set method (``energy``, ``max_logit``,
            ``msp``) on the same crops, whichever the model uses.
        macro_f1_interval: 90 % interval of macro-F1 when the split's sites are resampled (a
            cluster bootstrap, :func:`~ecowatch.classify.evaluate.site_resamples`); NaN without sites.
        unknown_auroc_interval: the same for the unknown AUROC.
    """

    report: ClassificationReport
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    unknown_auroc: float = float("nan")
    unknown_flagged_known: float = float("nan")
    unknown_flagged_unknown: float = float("nan")
    unknown_auroc_by_method: dict[str, float] = field(default_factory=dict)
    macro_f1_interval: tuple[float, float] = (float("nan"), float("nan"))
    unknown_auroc_interval: tuple[float, float] = (float("nan"), float("nan"))


@dataclass
class TrainingResult:
    """What one training run produced.

    Attributes:
        checkpoint: the standalone checkpoint file.
        model_name: the model's name.
        model_version: sha256 prefix of the checkpoint (the ``classifications.model_version``).
        taxonomy: the classes.
        split: the location split.
        crops: crops per split (``train``, ``val``, ``test``, ``unknown_val``, ``unknown_test``).
        temperature: the fitted temperature.
        open_set: the unknown-species calibration.
        val: validation figures.
        test: test figures (None without a test split).
        epochs: epochs run.
        steps: optimiser steps run (the same for one process and for DDP at the same global batch).
        world_size: training processes (DDP ranks).
        train_seconds: wall time of the training loop (validation excluded), of rank 0.
        train_images_per_second: training crops per second of that loop, over all processes.
        seconds: wall time of the whole run.
        mlflow_run_id: the MLflow run, or None without tracking.
        registered_uri: ``models:/<name>/<version>`` of the registered version, or None.
        class_bias: the calibration bias of each class (added after the temperature).
    """

    checkpoint: Path
    model_name: str
    model_version: str
    taxonomy: ClassTaxonomy
    split: LocationSplit
    crops: dict[str, int]
    temperature: float
    open_set: OpenSetCalibration
    val: SetFigures
    test: SetFigures | None
    epochs: int = 0
    steps: int = 0
    world_size: int = 1
    train_seconds: float = 0.0
    train_images_per_second: float = 0.0
    seconds: float = 0.0
    mlflow_run_id: str | None = None
    registered_uri: str | None = None
    class_bias: torch.Tensor | None = None

    def metrics(self) -> dict[str, float]:
        """Flat metrics (as logged to MLflow)."""
        out: dict[str, float] = {
            "temperature": self.temperature,
            "unknown.threshold": self.open_set.threshold,
            "train.epochs": self.epochs,
            "train.steps": self.steps,
            "train.processes": self.world_size,
            "train.seconds": self.train_seconds,
            "train.images_per_s": self.train_images_per_second,
            **{f"crops.{k}": v for k, v in self.crops.items()},
        }
        for name, figures in (("val", self.val), ("test", self.test)):
            if figures is None:
                continue
            rep = figures.report
            out.update({
                f"{name}.top1": rep.top1, f"{name}.macro_f1": rep.macro_f1,
                f"{name}.ece_before": figures.ece_before, f"{name}.ece_after": figures.ece_after,
                f"{name}.nll_before": figures.nll_before, f"{name}.nll_after": figures.nll_after,
                f"{name}.unknown_flagged_known": figures.unknown_flagged_known,
                f"{name}.macro_f1_low": figures.macro_f1_interval[0],
                f"{name}.macro_f1_high": figures.macro_f1_interval[1],
            })
            out.update({f"{name}.recall.{taxon}": value for taxon, value in rep.recall.items()})
            if figures.unknown_auroc == figures.unknown_auroc:  # not NaN
                out[f"{name}.unknown_auroc"] = figures.unknown_auroc
                out[f"{name}.unknown_flagged_unknown"] = figures.unknown_flagged_unknown
                out[f"{name}.unknown_auroc_low"], out[f"{name}.unknown_auroc_high"] = figures.unknown_auroc_interval
                out.update({f"{name}.unknown_auroc.{m}": v for m, v in figures.unknown_auroc_by_method.items()})
        return {k: float(v) for k, v in out.items() if v == v}  # MLflow refuses NaN in some stores


def resolve_precision(precision: str, accelerator: str, backbone: str | None = None) -> str:
    """Lightning precision for a config value: ``auto`` is bf16-mixed on a GPU that has it, 16-mixed on
    other GPUs; on a CPU, bf16-mixed for a backbone that trains faster so
    (:attr:`~ecowatch.classify.backbones.BackboneEntry.cpu_bf16`) on a CPU with bf16 matrix units (AMX
    tiles or AVX512-BF16, :func:`~ecowatch.classify.backbones.cpu_bf16_units`), else 32-true."""
    if precision != "auto":
        return precision
    if accelerator != "cpu" and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if backbone is not None and get_backbone(backbone).cpu_bf16 and cpu_bf16_units():
        return "bf16-mixed"
    return "32-true"


def set_threads(threads: int | None, *, processes: int = 1) -> int:
    """Set torch's CPU threads and return the number set.

    Args:
        threads: threads to use; None shares every core among ``processes`` (at least one each).
        processes: training processes on this machine (DDP on CPU runs one per device).
    """
    count = threads or max(1, (os.cpu_count() or 1) // processes)
    torch.set_num_threads(count)
    return count


def train_classifier(
    config: ClassifierTrainingConfig,
    *,
    sources: Sequence[CropSource],
    taxa: Mapping[str, Taxon],
    models_dir: Path,
    cache_dir: Path,
    tracking: TrackingTarget | None = None,
    progress_bar: bool = False,
    fast_dev_run: bool = False,
    weights_dir: Path | None = None,
    extra_params: Mapping[str, Any] | None = None,
    init_from: Path | None = None,
) -> TrainingResult | None:
    """Train, calibrate, evaluate, save and (optionally) log and register a species classifier.

    With ``train.devices`` x ``train.num_nodes`` > 1 it trains with Lightning's DDP: Lightning
    starts the other processes (or torchrun / SLURM did), every process trains on its share of each
    global batch, and only rank 0 logs to MLflow, calibrates, evaluates and writes the checkpoint.

    Args:
        config: the training configuration (``conf/classifier.yaml``).
        sources: labelled boxes (see :func:`~ecowatch.classify.crops.sources_from_coco`); their
            ``location_id`` decides the split, so sources of several dumps need distinct ids.
        taxa: the taxonomy table (see :func:`ecowatch.tables.read_taxonomy`).
        models_dir: the checkpoint goes to ``<models_dir>/classifiers/``.
        cache_dir: the crop cache folder.
        tracking: the MLflow store, or None for no tracking (and no registration).
        progress_bar: show Lightning's progress bar.
        fast_dev_run: one training and one validation batch (a smoke test): the checkpoint is
            written and logged but not registered.
        weights_dir: folder holding ImageNet weights files (torch hub's cache by default).
        extra_params: more parameters to log (e.g. the data's origin).
        init_from: a standalone checkpoint to fine-tune from (retraining from the champion): all its
            weights when its classes are the new classes, its backbone only otherwise (see
            :func:`ecowatch.classify.task.load_initial_weights`); None: ImageNet or random weights.

    Returns:
        The checkpoint, figures and where it was logged; None in DDP processes other than rank 0.

    Raises:
        InputDataError: no labelled crops, classes missing from the taxonomy, or no class left after
            holding species out.
        ConfigError: a split that cannot be made, or an unregistered backbone.
        TrackingError: MLflow cannot be written.
    """
    import lightning as L

    started = time.perf_counter()
    cfg = config
    L.seed_everything(cfg.train.seed, workers=True, verbose=False)
    set_threads(cfg.train.threads, processes=cfg.train.devices if cfg.train.accelerator == "cpu" or
                not torch.cuda.is_available() else 1)
    rank = launch_rank()
    excluded = set(cfg.data.exclude_taxa)
    sources = [s for s in sources if s.taxon_id and s.taxon_id not in excluded]
    if not sources:
        raise InputDataError("no labelled boxes to train on (after leaving out data.exclude_taxa); check the labels.")
    unknown_taxa = sorted({s.taxon_id for s in sources if s.taxon_id not in taxa})
    if unknown_taxa:
        raise InputDataError(f"labels use taxon ids {unknown_taxa} that are not in the taxonomy table; add them.")
    holdout = set(cfg.data.holdout_species)
    class_ids = sorted({s.taxon_id for s in sources if s.taxon_id not in holdout})  # type: ignore[misc]
    if not class_ids:
        raise InputDataError(f"every labelled species is in data.holdout_species {sorted(holdout)}; nothing to train.")
    missing_holdout = sorted(holdout - {s.taxon_id for s in sources})
    if missing_holdout:
        log.warning("held-out species %s have no labelled crops; they cannot be evaluated", missing_holdout)
    taxonomy = ClassTaxonomy.from_taxa(taxa, class_ids)
    geometry = CropGeometry(cfg.data.crop_size, cfg.data.padding, max_aspect=cfg.data.max_aspect)
    preprocessing = Preprocessing(geometry=geometry, input_size=cfg.data.input_size, autocontrast=cfg.data.autocontrast,
                                  eval_zoom=cfg.data.eval_zoom)
    crops = _cache_crops(sources, CropCache(cache_dir, geometry), workers=cfg.data.cache_workers)
    split = split_crops(crops, class_ids, cfg)
    params = _params(cfg, split, taxonomy, extra_params)

    target = tracking if cfg.tracking.enabled and rank == 0 else None
    with tracked_run(target, experiment=cfg.tracking.experiment, run_name=f"train-{cfg.model.name}",
                     tags={"ecowatch.kind": "train-classifier", "ecowatch.backbone": cfg.model.backbone}) as tracker:
        tracker.log_params(params)
        nodes = _NodeMetrics(tracking if cfg.tracking.enabled else None, tracker.run_id, cfg.tracking.system_metrics_s)
        datamodule, task, timer, trainer = _fit(cfg, crops, taxonomy, split, preprocessing, progress_bar=progress_bar,
                                                fast_dev_run=fast_dev_run, weights_dir=weights_dir, nodes=nodes,
                                                init_from=init_from)
        if trainer.global_rank != 0:  # DDP: the weights are the same on every rank; rank 0 does the rest
            return None
        network = task.model.eval()
        outputs = {name: _outputs(network, datamodule.loader(name), task.device, flip=cfg.model.test_time_flip)
                   for name in datamodule.datasets}
        logits = {name: out[1] for name, out in outputs.items()}
        embeddings = {name: out[0] for name, out in outputs.items()}
        labels = {name: torch.tensor(data.labels, dtype=torch.long) for name, data in datamodule.datasets.items()}
        if not len(labels["val"]):
            raise InputDataError(
                "no validation crops of the model's classes; add labelled locations or change the split."
            )
        temperature, class_bias = fit_bias_corrected_temperature(logits["val"], labels["val"])
        bank = embedding_bank(embeddings["train"], labels["train"], per_class=cfg.open_set.bank_per_class,
                              seed=cfg.train.seed)
        method = _open_set_method(cfg, logits, embeddings, bank)
        open_set = fit_open_set(logits["val"], method=method, known_recall=cfg.open_set.known_recall,
                                known_embeddings=embeddings["val"], bank=bank, k=cfg.open_set.k)
        tracker.set_tags({"ecowatch.open_set_method": open_set.method})  # what open_set.method auto chose
        sites = {name: [c.location_id for c in data.crops] for name, data in datamodule.datasets.items()}
        figures = {name: _figures(logits, embeddings, labels, name, taxonomy, (temperature, class_bias), open_set, bank,
                                  sites=sites, knn_k=cfg.open_set.k) for name in ("val", "test") if len(labels[name])}
        metrics_for_ckpt = {f"{name}.{k}": v for name, f in figures.items()
                            for k, v in (("top1", f.report.top1), ("macro_f1", f.report.macro_f1),
                                         ("ece_after", f.ece_after), ("unknown_auroc", f.unknown_auroc))
                            if v == v}
        checkpoint = _save(models_dir, cfg, network, taxonomy, preprocessing, (temperature, class_bias), open_set,
                           metrics_for_ckpt)
        result = TrainingResult(
            checkpoint=checkpoint, model_name=cfg.model.name, model_version=checkpoint_version(checkpoint),
            taxonomy=taxonomy, split=split, crops={k: len(v) for k, v in datamodule.datasets.items()},
            temperature=temperature, class_bias=class_bias, open_set=open_set, val=figures["val"],
            test=figures.get("test"),
            epochs=trainer.current_epoch, steps=trainer.global_step, world_size=trainer.world_size,
            train_seconds=timer.seconds, train_images_per_second=timer.rate,
            mlflow_run_id=tracker.run_id,
        )
        result.seconds = time.perf_counter() - started
        tracker.log_metrics(result.metrics())
        if tracker.enabled:
            _log_artifacts(tracker, result)
            if cfg.registry.enabled and not fast_dev_run and target is not None:
                registered = register_model_version(
                    target, run_id=tracker.run_id, artifact_path=f"classifier/{checkpoint.name}", name=cfg.model.name,
                    alias=cfg.registry.alias, tags={"model_version": result.model_version,
                                                     "backbone": cfg.model.backbone},
                )
                result.registered_uri = registered.uri
                tracker.set_tags({"ecowatch.registered": registered.uri})
    log.info("classifier %s version %s written to %s", cfg.model.name, result.model_version, checkpoint)
    return result


def _cache_crops(sources: Sequence[CropSource], cache: CropCache, *, workers: int) -> list[Any]:
    from ecowatch.classify.datamodule import LabelledCrop

    paths = cache.build(sources, workers=workers)
    crops = [LabelledCrop(s.crop_id, p, s.taxon_id or "", s.location_id, s.deployment_id)
             for s, p in zip(sources, paths, strict=True) if p is not None]
    if not crops:
        raise InputDataError("none of the labelled images could be read; check the images folder of the labels.")
    return crops


def split_crops(crops: Sequence[Any], class_ids: Sequence[str], cfg: ClassifierTrainingConfig) -> LocationSplit:
    """The location split a training run makes (so evaluations elsewhere can use the same sites).

    Args:
        crops: labelled crops (anything with ``location_id`` and ``taxon_id``).
        class_ids: the model's classes (held-out species count for no class, but their locations
            still take part).
        cfg: the training configuration; its ``data.split`` decides.

    Returns:
        Train, validation and test locations (deterministic for the same crops and config).

    Raises:
        ConfigError: a split that cannot be made.
    """
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    known = set(class_ids)
    for crop in crops:
        counts[crop.location_id]  # every location takes part, even one with held-out species only
        if crop.taxon_id in known:
            counts[crop.location_id][crop.taxon_id] += 1
    s = cfg.data.split
    split = split_locations(counts, val_fraction=s.val_fraction, test_fraction=s.test_fraction, seed=s.seed,
                            val_locations=s.val_locations, test_locations=s.test_locations)
    log.info("location split: train %s, val %s, test %s", split.train, split.val, split.test)
    return split


class _Timer:
    """A Lightning callback timing the training batches (validation excluded)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.images = 0
        self._started = 0.0

    @property
    def rate(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def callback(self) -> Any:
        from lightning.pytorch.callbacks import Callback

        timer = self

        class TrainTimer(Callback):
            def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
                timer._started = time.perf_counter()

            def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                                   batch_idx: int) -> None:
                timer.seconds += time.perf_counter() - timer._started
                timer.images += len(batch[1]) * trainer.world_size  # every rank steps at once

        return TrainTimer()


class _NodeMetrics:
    """A Lightning callback: every machine of the run logs its system metrics into rank 0's MLflow run.

    Rank 0 opened the run; its id reaches the other processes by the strategy's broadcast when the
    fit starts, and each machine's local rank 0 samples that machine (``system/node<N>/...``).
    """

    def __init__(self, tracking: TrackingTarget | None, run_id: str | None, interval_s: float | None) -> None:
        self.tracking, self.run_id, self.interval_s = tracking, run_id, interval_s

    def callback(self) -> Any:
        from lightning.pytorch.callbacks import Callback

        from ecowatch.tracking import SystemMetrics

        owner = self

        class NodeSystemMetrics(Callback):
            monitor: SystemMetrics | None = None

            def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
                run_id = trainer.strategy.broadcast(owner.run_id, src=0)
                if owner.tracking is None or owner.interval_s is None or run_id is None or trainer.local_rank != 0:
                    return
                self.monitor = SystemMetrics(owner.tracking, run_id, node_id=f"node{trainer.node_rank}",
                                             interval_s=owner.interval_s)
                self.monitor.start()

            def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
                if self.monitor is not None:
                    self.monitor.stop()
                    self.monitor = None

            def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
                self.on_fit_end(trainer, pl_module)

        return NodeSystemMetrics()


def _fit(cfg: ClassifierTrainingConfig, crops: Sequence[Any], taxonomy: ClassTaxonomy, split: LocationSplit,
         preprocessing: Preprocessing, *, progress_bar: bool, fast_dev_run: bool,
         weights_dir: Path | None, init_from: Path | None = None, nodes: _NodeMetrics | None = None
         ) -> tuple[Any, Any, _Timer, Any]:
    import lightning as L

    from ecowatch.classify.datamodule import ClassifierDataModule
    from ecowatch.classify.task import SpeciesClassificationTask

    t = cfg.train
    datamodule = ClassifierDataModule(
        crops, taxonomy=taxonomy, split=split, preprocessing=preprocessing, batch_size=t.batch_size // t.world_size,
        workers=t.workers, balance_power=cfg.data.balance_power, seed=t.seed, preload=cfg.data.preload,
        augment_scale=cfg.data.augment_scale,
    )
    datamodule.setup()
    log.info("crops: %s", {k: len(v) for k, v in datamodule.datasets.items()})
    task = SpeciesClassificationTask(
        backbone=cfg.model.backbone, taxonomy=taxonomy.to_record(), pretrained=cfg.model.pretrained, lr=t.lr,
        weight_decay=t.weight_decay, label_smoothing=cfg.model.label_smoothing,
        rank_weights=dict(cfg.model.rank_weights), warmup_fraction=t.warmup_fraction,
        weights_dir=str(weights_dir) if weights_dir else None, init_from=str(init_from) if init_from else None,
    )
    task.time_budget_s = t.max_minutes * 60.0 if t.max_minutes else None
    task.progressive_resize = (t.resize_from, cfg.data.input_size, t.resize_until) if t.resize_from else None
    timer = _Timer()
    strategy = "ddp" if t.strategy == "auto" and t.world_size > 1 else t.strategy
    trainer = L.Trainer(
        accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes, strategy=strategy,
        precision=resolve_precision(t.precision, t.accelerator, cfg.model.backbone),
        max_epochs=t.max_epochs, max_steps=t.max_steps or -1,
        max_time={"minutes": t.max_minutes} if t.max_minutes else None,
        check_val_every_n_epoch=t.val_every_n_epochs, num_sanity_val_steps=0,
        logger=False, enable_checkpointing=False, enable_progress_bar=progress_bar, enable_model_summary=False,
        callbacks=[timer.callback(), *([nodes.callback()] if nodes is not None else [])], fast_dev_run=fast_dev_run,
        deterministic=False,
    )
    trainer.fit(task, datamodule=datamodule)
    return datamodule, task, timer, trainer


@torch.no_grad()
def _outputs(network: torch.nn.Module, loader: Any, device: torch.device, *,
             flip: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Image embeddings (N, D) and raw logits (N, classes) of a loader's crops, on the CPU (with
    ``flip``, each averaged with its mirror image's: the model's ``test_time_flip``)."""
    outputs = [embeddings_and_logits(network, channels_last(images.to(device)), flip=flip) for images, _ in loader]
    if not outputs:  # the shapes from one blank image
        embeddings, logits = embeddings_and_logits(network, torch.zeros(1, 3, 32, 32, device=device))
        return embeddings[:0].cpu(), logits[:0].cpu()
    return torch.cat([e.cpu() for e, _ in outputs]), torch.cat([logits.cpu() for _, logits in outputs])


def _open_set_method(cfg: ClassifierTrainingConfig, logits: Mapping[str, torch.Tensor],
                     embeddings: Mapping[str, torch.Tensor], bank: torch.Tensor) -> OpenSetMethod:
    """The configured open-set method; for ``auto``, the best on held-out species at validation sites."""
    if cfg.open_set.method != "auto":
        return cfg.open_set.method
    unknown = logits.get("unknown_val")
    if unknown is None or not len(unknown):
        log.info("open_set.method auto: no crops of held-out species at validation sites; using knn")
        return "knn"
    method, aurocs = choose_open_set_method(logits["val"], unknown, known_embeddings=embeddings["val"],
                                            unknown_embeddings=embeddings["unknown_val"], bank=bank,
                                            k=cfg.open_set.k)
    log.info("open_set.method auto: %s (validation AUROC of the held-out species: %s)", method,
             ", ".join(f"{m} {v:.3f}" for m, v in aurocs.items()))
    return method


def _figures(logits: Mapping[str, torch.Tensor], embeddings: Mapping[str, torch.Tensor],
             labels: Mapping[str, torch.Tensor], name: str, taxonomy: ClassTaxonomy,
             calibration: tuple[float, torch.Tensor], open_set: OpenSetCalibration, bank: torch.Tensor, *,
             sites: Mapping[str, Sequence[str]] | None = None, knn_k: int = 100) -> SetFigures:
    x, y = logits[name], labels[name]
    calibrated_probs = torch.softmax(calibrated(x, *calibration), dim=1)
    report = classification_report(calibrated_probs.argmax(dim=1), y, taxonomy.class_ids)
    figures = SetFigures(
        report=report,
        ece_before=expected_calibration_error(torch.softmax(x.double(), dim=1), y),
        ece_after=expected_calibration_error(calibrated_probs, y),
        nll_before=nll(x, y), nll_after=nll(x, y, *calibration),
    )
    if sites is not None:
        figures.macro_f1_interval = macro_f1_interval(calibrated_probs.argmax(dim=1).numpy(), y.numpy(), sites[name],
                                                      taxonomy.num_classes, resamples=_RESAMPLES)
    x_emb = embeddings[name]
    known_scores = open_set.unknown_score(x, x_emb)
    figures.unknown_flagged_known = float((known_scores >= 0.5).double().mean())
    unknown, u_emb = logits.get(f"unknown_{name}"), embeddings.get(f"unknown_{name}")
    if unknown is not None and len(unknown):
        unknown_scores = open_set.unknown_score(unknown, u_emb)
        known_raw, unknown_raw = open_set.raw(x, x_emb).numpy(), open_set.raw(unknown, u_emb).numpy()
        figures.unknown_auroc = auroc(known_raw, unknown_raw)
        if sites is not None:
            figures.unknown_auroc_interval = auroc_interval(known_raw, sites[name], unknown_raw,
                                                            sites[f"unknown_{name}"], resamples=_RESAMPLES)
        figures.unknown_flagged_unknown = float((unknown_scores >= 0.5).double().mean())
        k = open_set.k or knn_k  # a logit method's model: knn at the configured k, as open_set.method auto ranked it
        figures.unknown_auroc_by_method = open_set_aurocs(x, unknown, known_embeddings=x_emb,
                                                          unknown_embeddings=u_emb, bank=bank, k=k)
    return figures


def _save(models_dir: Path, cfg: ClassifierTrainingConfig, network: torch.nn.Module, taxonomy: ClassTaxonomy,
          preprocessing: Preprocessing, calibration: tuple[float, torch.Tensor], open_set: OpenSetCalibration,
          metrics: Mapping[str, float]) -> Path:
    """Write the checkpoint as ``<models>/classifiers/<name>-<version>.ckpt`` (named by its own content)."""
    folder = Path(models_dir) / "classifiers"
    staging = folder / f".{cfg.model.name}.{os.getpid()}.ckpt"
    temperature, class_bias = calibration
    save_classifier(staging, network=network.cpu(), model_name=cfg.model.name, backbone=cfg.model.backbone,
                    taxonomy=taxonomy, preprocessing=preprocessing, temperature=temperature, open_set=open_set,
                    metrics=metrics, class_bias=class_bias, test_time_flip=cfg.model.test_time_flip)
    final = folder / f"{cfg.model.name}-{checkpoint_version(staging)}.ckpt"
    staging.replace(final)
    return final


def _params(cfg: ClassifierTrainingConfig, split: LocationSplit, taxonomy: ClassTaxonomy,
            extra: Mapping[str, Any] | None) -> dict[str, Any]:
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else key, sub)
        else:
            flat[prefix] = value

    walk("", cfg.model_dump(mode="json"))
    flat.update({"split.train": ",".join(split.train), "split.val": ",".join(split.val),
                 "split.test": ",".join(split.test), "classes": ",".join(taxonomy.class_ids),
                 # what precision: auto became on this machine (bf16-mixed on a CPU with bf16 units, ...)
                 "train.precision_used": resolve_precision(cfg.train.precision, cfg.train.accelerator,
                                                           cfg.model.backbone),
                 "train.cpu_bf16_units": cpu_bf16_units() or "none"})
    flat.update(extra or {})
    return flat


def _log_artifacts(tracker: Any, result: TrainingResult) -> None:
    tracker.log_artifact(result.checkpoint, "classifier")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, figures in (("val", result.val), ("test", result.test)):
            if figures is not None:
                write_confusion_png(figures.report, folder / f"confusion_{name}.png",
                                    title=f"{result.model_name} {name}: top-1 {figures.report.top1:.3f}, "
                                          f"macro-F1 {figures.report.macro_f1:.3f}")
        summary = {
            "model_name": result.model_name, "model_version": result.model_version,
            "classes": list(result.taxonomy.class_ids), "split": asdict(result.split),
            "temperature": result.temperature, "open_set": result.open_set.summary(),
            "class_bias": dict(zip(result.taxonomy.class_ids, result.class_bias.tolist(), strict=True))
            if result.class_bias is not None else None,
            "metrics": result.metrics(),
            "confusion": {name: f.report.confusion.tolist() for name, f in (("val", result.val), ("test", result.test))
                          if f is not None},
        }
        (folder / "evaluation.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
        tracker.log_artifact(folder, "evaluation")
