"""Training and fine-tuning a detector with ultralytics, tracked in ecowatch's MLflow run.

ultralytics does the training (its trainer, losses, augmentation, validation). ecowatch decides
what it is trained on (:mod:`ecowatch.detect.datasets`), sets the CPU threads deliberately
(ultralytics pins training on CPU to ``cpu_count - 1`` threads, which is one on a two-core
machine), keeps ultralytics' own MLflow callback off (its settings are project-local, see
:mod:`ecowatch.detect.yolo_env`) and logs per-epoch metrics, the weights and the dataset summary to
*its* run, then registers the weights in the MLflow model registry.

Architectures: an ultralytics model name (``yolo11n.yaml`` trains from scratch, a ``.pt`` file
fine-tunes), or one of :data:`ARCHITECTURES`, compact variants of ultralytics' own YOLO11
configuration (same layers, fewer channels) for training on a CPU.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ecowatch.detect.datasets import YoloDataset
from ecowatch.detect.yolo_env import prepare_ultralytics, set_torch_threads
from ecowatch.errors import ConfigError
from ecowatch.tracking import RegisteredVersion, TrackingTarget, register_model_version, tracked_run

log = logging.getLogger(__name__)

#: Compact YOLO11 variants: ``name -> (ultralytics base config, depth, width, max channels)``.
ARCHITECTURES: Mapping[str, tuple[str, float, float, int]] = {
    # ~0.64 M parameters: trains at ~15-20 images/s on two CPU cores at 384 px.
    "yolo11-c256": ("yolo11n.yaml", 0.33, 0.25, 256),
    # ~1.6 M parameters.
    "yolo11-c512": ("yolo11n.yaml", 0.50, 0.25, 512),
}


@dataclass(frozen=True)
class TrainSettings:
    """How a detector is trained.

    Attributes:
        architecture: a key of :data:`ARCHITECTURES`, an ultralytics model YAML name (from scratch)
            or a ``.pt`` checkpoint (fine-tuning).
        imgsz: training image size (the model's native size afterwards).
        epochs: passes over the training images.
        batch: images per step.
        workers: DataLoader processes.
        device: ``cpu``, ``0``, ``0,1`` ... (ultralytics device string).
        threads: torch CPU threads during training (None = every core).
        seed: ultralytics' seed (deterministic mode on).
        close_mosaic: last epochs trained without mosaic augmentation.
        cache: cache decoded images in RAM (``ram``), on disk (``disk``) or not (``none``).
        patience: epochs without validation improvement before stopping early.
        lr0: initial learning rate (None = ultralytics' default for the optimiser).
        extra: any other ultralytics training argument.
    """

    architecture: str = "yolo11-c256"
    imgsz: int = 384
    epochs: int = 12
    batch: int = 16
    workers: int = 2
    device: str = "cpu"
    threads: int | None = None
    seed: int = 0
    close_mosaic: int = 2
    cache: str = "ram"
    patience: int = 100
    lr0: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainedDetector:
    """What :func:`train_detector` produced.

    Attributes:
        weights: the best checkpoint (by ultralytics' validation fitness).
        last: the last checkpoint.
        metrics: final validation metrics (precision, recall, mAP50, mAP50-95).
        epochs_run: epochs trained (fewer than asked when stopped early).
        seconds: training wall time.
        mlflow_run_id: the MLflow run, or None without tracking.
        registered: the model registry version, or None.
    """

    weights: Path
    last: Path
    metrics: dict[str, float]
    epochs_run: int
    seconds: float
    mlflow_run_id: str | None
    registered: RegisteredVersion | None


def architecture_yaml(name: str, out_dir: Path) -> str:
    """The model to hand ultralytics: a derived YAML for :data:`ARCHITECTURES`, else ``name``.

    The derived file is ultralytics' own configuration with its scaling constants replaced, written
    next to the run (nothing is copied into this repository).
    """
    if name not in ARCHITECTURES:
        if name.endswith((".yaml", ".yml", ".pt")):
            return name
        raise ConfigError(f"unknown detector architecture {name!r}; choose one of {sorted(ARCHITECTURES)}, an "
                          "ultralytics model YAML (yolo11n.yaml) or a .pt checkpoint to fine-tune.")
    from ultralytics.nn.tasks import yaml_model_load

    base, depth, width, max_channels = ARCHITECTURES[name]
    document = dict(yaml_model_load(base))
    scale = document.get("scale") or "n"
    document["scales"] = {scale: [depth, width, max_channels]}
    for key in ("scale", "yaml_file", "ch"):
        document.pop(key, None)
    out_dir.mkdir(parents=True, exist_ok=True)
    # ultralytics reads the scale letter from the file name (``yolo11n``), so keep it there.
    path = out_dir / f"{Path(base).stem}-{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return str(path)


def _epoch_metrics(results_csv: Path) -> list[dict[str, float]]:
    if not results_csv.is_file():
        return []
    with open(results_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for row in rows:
        clean: dict[str, float] = {}
        for key, value in row.items():
            key = key.strip()
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(number):
                clean[key.replace("(B)", "").replace(":", ".").replace("/", ".")] = number
        out.append(clean)
    return out


def train_detector(
    dataset: YoloDataset,
    out_dir: str | Path,
    *,
    settings: TrainSettings = TrainSettings(),
    tracking: TrackingTarget | None = None,
    experiment: str = "ecowatch-train-detector",
    register_as: str | None = None,
    alias: str | None = None,
    run_name: str | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainedDetector:
    """Train (or fine-tune) a detector on a dataset written by :func:`build_yolo_dataset`.

    Args:
        dataset: the ultralytics dataset.
        out_dir: folder of the training run (ultralytics writes ``<out_dir>/weights/best.pt``).
        settings: architecture and training hyper-parameters.
        tracking: MLflow store to log to, or None.
        experiment: MLflow experiment name.
        register_as: register the best weights under this model name (needs ``tracking``).
        alias: alias for the registered version (``champion``, ``challenger``).
        run_name: MLflow run name.
        on_epoch: called after every epoch with its number and metrics.

    Raises:
        ConfigError: unknown architecture, or registration asked without tracking.
    """
    if register_as and tracking is None:
        raise ConfigError("registering the detector needs MLflow tracking; enable tracking or drop register_as.")
    out = Path(out_dir).resolve()
    prepare_ultralytics(None, threads=settings.threads)
    from ultralytics import YOLO

    model_source = architecture_yaml(settings.architecture, out / "config")
    threads = settings.threads or os.cpu_count() or 1
    params = {"architecture": settings.architecture, "model_source": Path(model_source).name,
              "imgsz": settings.imgsz, "epochs": settings.epochs, "batch": settings.batch,
              "workers": settings.workers, "device": settings.device, "threads": threads, "seed": settings.seed,
              "close_mosaic": settings.close_mosaic, "cache": settings.cache, "patience": settings.patience,
              "lr0": settings.lr0, "dataset": str(dataset.yaml_path), "val_locations": ",".join(dataset.val_locations),
              **{f"dataset.{k}": v for k, v in dataset.counts.items()},
              **{f"extra.{k}": v for k, v in settings.extra.items()}}
    started = time.perf_counter()
    with tracked_run(tracking, experiment=experiment, run_name=run_name or f"detector-{settings.architecture}",
                     tags={"ecowatch.kind": "train-detector"}) as tracker:
        tracker.log_params(params)
        model = YOLO(model_source, task="detect")

        def _threads(_trainer: Any) -> None:  # after ultralytics' select_device pinned them
            set_torch_threads(threads)

        def _epoch_end(trainer: Any) -> None:
            metrics = {k.replace("(B)", "").replace("/", "."): float(v) for k, v in trainer.metrics.items()}
            losses = trainer.label_loss_items(trainer.tloss, prefix="train") if trainer.tloss is not None else {}
            metrics.update({k.replace("/", "."): float(v) for k, v in losses.items()})
            tracker.log_metrics(metrics, step=trainer.epoch + 1)
            if on_epoch is not None:
                on_epoch(trainer.epoch + 1, metrics)

        model.add_callback("on_pretrain_routine_end", _threads)
        model.add_callback("on_train_start", _threads)
        model.add_callback("on_fit_epoch_end", _epoch_end)
        args: dict[str, Any] = dict(data=str(dataset.yaml_path), imgsz=settings.imgsz, epochs=settings.epochs,
                                    batch=settings.batch, workers=settings.workers, device=settings.device,
                                    seed=settings.seed, deterministic=True, close_mosaic=settings.close_mosaic,
                                    cache=False if settings.cache == "none" else settings.cache,
                                    patience=settings.patience, project=str(out.parent), name=out.name,
                                    exist_ok=True, plots=False, verbose=False, amp=settings.device != "cpu")
        if settings.lr0 is not None:
            args["lr0"] = settings.lr0
        args.update(settings.extra)
        model.train(**args)
        weights_dir = out / "weights"
        best, last = weights_dir / "best.pt", weights_dir / "last.pt"
        epochs = _epoch_metrics(out / "results.csv")
        final = epochs[-1] if epochs else {}
        metrics = {k.removeprefix("metrics."): v for k, v in final.items() if k.startswith("metrics.")}
        seconds = time.perf_counter() - started
        tracker.log_metrics({"train.seconds": seconds, "train.epochs_run": float(len(epochs))})
        registered = None
        if tracker.enabled:
            tracker.log_artifact(best if best.is_file() else last, "weights")
            if (out / "results.csv").is_file():
                tracker.log_artifact(out / "results.csv")
            tracker.log_artifact(dataset.root / "summary.json", "dataset")
            if register_as:
                source = best if best.is_file() else last
                registered = register_model_version(
                    tracking, run_id=tracker.run_id, artifact_path=f"weights/{source.name}", name=register_as,
                    alias=alias, tags={"architecture": settings.architecture, "imgsz": settings.imgsz},
                    description=f"ecowatch detector ({settings.architecture}, {settings.imgsz} px)")
        return TrainedDetector(best if best.is_file() else last, last, metrics, len(epochs), seconds,
                               tracker.run_id, registered)
