"""Lightning tasks in the torchgeo style: a base class whose ``__init__`` calls three hooks.

:class:`BaseTask` saves the hyper-parameters and calls :meth:`~BaseTask.configure_models`,
:meth:`~BaseTask.configure_losses` and :meth:`~BaseTask.configure_metrics`; a task fills in only
those hooks and its steps. The optimiser is AdamW with a one-cycle (warm-up, cosine decay) learning
rate over the run's steps (or its time budget, when that ends first). Optionally the training
batches are resized progressively (small early, full size for the last part of the run, as FFCV's
ResNet recipes do): :meth:`BaseTask.train_input_size`.

:class:`SpeciesClassificationTask` is a torchvision backbone with the taxonomy-aware loss
(:class:`~ecowatch.classify.losses.TaxonomicLoss`) and top-1 / macro-F1 metrics. Its hyper-parameters
are plain values (the taxonomy as a record), so a Lightning checkpoint rebuilds it without the
taxonomy table.
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from ecowatch.classify.backbones import build_backbone, channels_last
from ecowatch.classify.losses import TaxonomicLoss
from ecowatch.classify.taxonomy import ClassTaxonomy
from ecowatch.errors import ConfigError

log = logging.getLogger(__name__)


class BaseTask(L.LightningModule, ABC):
    """A LightningModule built from three hooks.

    Args:
        ignore: constructor arguments not to save as hyper-parameters.
    """

    #: metric watched by early stopping / checkpointing, and whether lower or higher is better.
    monitor = "val_loss"
    mode = "min"
    #: training time budget in seconds (set by whoever builds the trainer with that ``max_time``), or None
    time_budget_s: float | None = None
    #: progressive resizing: (start side, full side, share of the run at which full size is reached), or None
    progressive_resize: tuple[int, int, float] | None = None
    _train_started: float | None = None
    _total_steps: int | None = None
    _logged_size: int | None = None

    def __init__(self, ignore: list[str] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=ignore)
        self.configure_models()
        if isinstance(getattr(self, "model", None), nn.Module):
            self.model.to(memory_format=torch.channels_last)  # see forward
        self.configure_losses()
        self.configure_metrics()

    @abstractmethod
    def configure_models(self) -> None:
        """Create ``self.model``."""

    def configure_losses(self) -> None:
        """Create the loss (``self.criterion``)."""

    def configure_metrics(self) -> None:
        """Create the metrics (``self.train_metrics``, ``self.val_metrics``, ``self.test_metrics``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The model's raw output (images in channels-last memory, as the weights: see
        :func:`~ecowatch.classify.backbones.channels_last`)."""
        return self.model(channels_last(x))

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW with a one-cycle schedule over the run's steps, or over its time budget if that ends first.

        With :attr:`time_budget_s` set (one process only), the schedule's progress is the larger of
        the share of steps done and the share of the time budget spent, so a run stopped by its
        time limit still ends with the learning rate annealed (as ultralytics' ``time`` does).
        """
        params = self.hparams
        optimizer = torch.optim.AdamW(self.parameters(), lr=params["lr"], weight_decay=params["weight_decay"])
        self._total_steps = max(int(self.trainer.estimated_stepping_batches), 1)
        warmup = params["warmup_fraction"]

        def factor(step: int) -> float:
            return one_cycle_factor(self.progress(step), warmup=warmup)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def progress(self, step: int) -> float:
        """How far the run is (0..1) after ``step`` optimiser steps: the share of the steps, or of
        the time budget when that is further (one process only: ranks must agree)."""
        progress = step / max(self._total_steps or int(self.trainer.estimated_stepping_batches), 1)
        budget = self.time_budget_s if self.trainer.world_size == 1 else None
        if budget and self._train_started is not None:
            progress = max(progress, (time.monotonic() - self._train_started) / budget)
        return min(progress, 1.0)

    def train_input_size(self, progress: float) -> int | None:
        """The side training batches are resized to at ``progress`` of the run, or None (as loaded).

        With :attr:`progressive_resize` ``(start, full, until)`` the side grows linearly from
        ``start`` to ``full`` over the first ``until`` of the run, rounded down to a multiple of 8
        px (few distinct shapes: oneDNN and cuDNN plan per shape), and is ``full`` from then on.
        """
        if self.progressive_resize is None:
            return None
        start, full, until = self.progressive_resize
        side = start + (full - start) * min(progress / until, 1.0)
        return full if side >= full else max(start, int(side) // 8 * 8)

    def resize_for_training(self, images: torch.Tensor) -> torch.Tensor:
        """Training images at :meth:`train_input_size` of the current step (antialiased bilinear)."""
        side = self.train_input_size(self.progress(self.global_step))
        if side is None or side == images.shape[-1]:
            return images
        if side != self._logged_size:
            log.info("progressive resizing: training at %d px from step %d", side, self.global_step)
            self._logged_size = side
        return torch.nn.functional.interpolate(images, size=(side, side), mode="bilinear", antialias=True,
                                               align_corners=False)

    def on_train_start(self) -> None:
        """Start the clock of the time-budgeted schedule."""
        self._train_started = time.monotonic()


def one_cycle_factor(progress: float, *, warmup: float, div: float = 10.0, final_div: float = 100.0) -> float:
    """The one-cycle learning-rate multiplier (of the peak rate) at ``progress`` (0..1) of the run.

    Cosine warm-up from ``1/div`` to 1 over the first ``warmup`` of the run, then cosine decay to
    ``1/(div*final_div)``: the shape of ``torch.optim.lr_scheduler.OneCycleLR(anneal_strategy="cos")``.
    """
    start, end = 1.0 / div, 1.0 / (div * final_div)
    if progress < warmup:
        return 1.0 + (start - 1.0) * (1.0 + math.cos(math.pi * progress / warmup)) / 2.0
    rest = (progress - warmup) / max(1.0 - warmup, 1e-12)
    return end + (1.0 - end) * (1.0 + math.cos(math.pi * rest)) / 2.0


class SpeciesClassificationTask(BaseTask):
    """Species classification of animal crops.

    Args:
        backbone: a registered backbone name (see :mod:`ecowatch.classify.backbones`).
        taxonomy: the classes and their ancestors, as :meth:`ClassTaxonomy.to_record` gives it.
        pretrained: start from ImageNet weights found in the torch hub cache (never downloaded).
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        label_smoothing: label smoothing of the species cross-entropy.
        rank_weights: weight of the genus/family/... terms of the loss.
        warmup_fraction: share of the steps spent warming the learning rate up.
        weights_dir: folder holding ImageNet weights files (torch hub's cache by default).
        init_from: a standalone classifier checkpoint to fine-tune from (see
            :func:`load_initial_weights`): all its weights when its classes are these classes in this
            order, its backbone only (a new head) otherwise; None: ImageNet or random weights.
    """

    monitor = "val_f1"
    mode = "max"

    def __init__(
        self,
        *,
        backbone: str,
        taxonomy: Mapping[str, Any],
        pretrained: bool = True,
        lr: float = 2e-3,
        weight_decay: float = 0.05,
        label_smoothing: float = 0.1,
        rank_weights: Mapping[str, float] | None = None,
        warmup_fraction: float = 0.1,
        weights_dir: str | None = None,
        init_from: str | None = None,
    ) -> None:
        self.taxonomy = ClassTaxonomy.from_record(taxonomy)
        super().__init__()

    def configure_models(self) -> None:
        """The backbone with a head of one output per class (initialised from ``init_from`` when given)."""
        params = self.hparams
        self.model: nn.Module = build_backbone(
            params["backbone"], self.taxonomy.num_classes,
            pretrained=params["pretrained"] and not params.get("init_from"), weights_dir=params["weights_dir"],
        )
        if params.get("init_from"):
            mode = load_initial_weights(self.model, params["init_from"], backbone=params["backbone"],
                                        class_ids=self.taxonomy.class_ids)
            log.info("fine-tuning from %s (%s weights)", params["init_from"], mode)

    def configure_losses(self) -> None:
        """Species cross-entropy plus the coarser ranks' terms."""
        params = self.hparams
        self.criterion = TaxonomicLoss(self.taxonomy, rank_weights=params["rank_weights"],
                                       label_smoothing=params["label_smoothing"])

    def configure_metrics(self) -> None:
        """Top-1 accuracy (micro) and macro-F1 for each stage."""
        n = self.taxonomy.num_classes
        metrics = MetricCollection({
            "acc": MulticlassAccuracy(num_classes=n, average="micro"),
            "f1": MulticlassF1Score(num_classes=n, average="macro"),
        })
        self.train_metrics = metrics.clone(prefix="train_")
        self.val_metrics = metrics.clone(prefix="val_")
        self.test_metrics = metrics.clone(prefix="test_")

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], metrics: MetricCollection, stage: str) -> torch.Tensor:
        images, target = batch
        logits = self(images)
        loss = self.criterion(logits, target)
        metrics.update(logits.detach().float(), target)
        self.log(f"{stage}_loss", loss, prog_bar=stage != "test", batch_size=len(target))
        self.log_dict(metrics, batch_size=len(target), prog_bar=stage == "val")
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Loss of one augmented, class-balanced batch (progressively resized: :meth:`resize_for_training`)."""
        images, target = batch
        return self._step((self.resize_for_training(images), target), self.train_metrics, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Loss and metrics on validation crops."""
        self._step(batch, self.val_metrics, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Loss and metrics on test crops."""
        self._step(batch, self.test_metrics, "test")

    def on_train_epoch_end(self) -> None:
        """Log the epoch's figures (and the last validation's) to the Python log."""
        figures = {k: float(v) for k, v in self.trainer.callback_metrics.items() if k.startswith(("train_", "val_"))}
        log.info("epoch %d: %s", self.current_epoch + 1, ", ".join(f"{k} {v:.3f}" for k, v in sorted(figures.items())))

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """Raw logits (batch, classes) in ``float32``."""
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        return self(images).float()


def load_initial_weights(network: nn.Module, checkpoint: str | Path, *, backbone: str,
                         class_ids: Sequence[str]) -> str:
    """Initialise a freshly built network from a standalone classifier checkpoint, to fine-tune it.

    Args:
        network: a network from :func:`~ecowatch.classify.backbones.build_backbone`.
        checkpoint: a file written by :func:`~ecowatch.classify.checkpoint.save_classifier`.
        backbone: the network's backbone name; the checkpoint's must be the same.
        class_ids: the network's classes, in output order.

    Returns:
        ``full`` when the checkpoint has the same classes in the same order (every weight copied),
        ``backbone`` otherwise (every weight but the last linear layer, the classification head).

    Raises:
        ModelNotFoundError: the checkpoint cannot be loaded.
        ConfigError: the checkpoint's backbone is another one.
    """
    from ecowatch.classify.checkpoint import load_classifier

    source = load_classifier(Path(checkpoint))
    if source.backbone != backbone:
        raise ConfigError(f"cannot fine-tune a {backbone} from {checkpoint}, a {source.backbone}; train from scratch "
                          f"or set model.backbone to {source.backbone}.")
    state = source.network.state_dict()
    if tuple(source.taxonomy.class_ids) == tuple(class_ids):
        network.load_state_dict(state)
        return "full"
    head = [name for name, module in network.named_modules() if isinstance(module, nn.Linear)][-1]
    network.load_state_dict({k: v for k, v in state.items() if not k.startswith(f"{head}.")}, strict=False)
    return "backbone"
