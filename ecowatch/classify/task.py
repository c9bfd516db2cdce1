"""Lightning tasks in the torchgeo style: a base class whose ``__init__`` calls three hooks.

:class:`BaseTask` saves the hyper-parameters and calls :meth:`~BaseTask.configure_models`,
:meth:`~BaseTask.configure_losses` and :meth:`~BaseTask.configure_metrics`; a task fills in only
those hooks and its steps. The optimiser is AdamW with a one-cycle (warm-up, cosine decay) learning
rate over the run's steps.

:class:`SpeciesClassificationTask` is a torchvision backbone with the taxonomy-aware loss
(:class:`~ecowatch.classify.losses.TaxonomicLoss`) and top-1 / macro-F1 metrics. Its hyper-parameters
are plain values (the taxonomy as a record), so a Lightning checkpoint rebuilds it without the
taxonomy table.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from ecowatch.classify.backbones import build_backbone
from ecowatch.classify.losses import TaxonomicLoss
from ecowatch.classify.taxonomy import ClassTaxonomy

log = logging.getLogger(__name__)


class BaseTask(L.LightningModule, ABC):
    """A LightningModule built from three hooks.

    Args:
        ignore: constructor arguments not to save as hyper-parameters.
    """

    #: metric watched by early stopping / checkpointing, and whether lower or higher is better.
    monitor = "val_loss"
    mode = "min"

    def __init__(self, ignore: list[str] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=ignore)
        self.configure_models()
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
        """The model's raw output."""
        return self.model(x)

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW with a one-cycle schedule over the trainer's estimated number of steps."""
        params = self.hparams
        optimizer = torch.optim.AdamW(self.parameters(), lr=params["lr"], weight_decay=params["weight_decay"])
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=params["lr"], total_steps=total, pct_start=params["warmup_fraction"],
            anneal_strategy="cos", div_factor=10.0, final_div_factor=100.0,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


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
    ) -> None:
        self.taxonomy = ClassTaxonomy.from_record(taxonomy)
        super().__init__()

    def configure_models(self) -> None:
        """The backbone with a head of one output per class."""
        params = self.hparams
        self.model: nn.Module = build_backbone(
            params["backbone"], self.taxonomy.num_classes, pretrained=params["pretrained"],
            weights_dir=params["weights_dir"],
        )

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
        """Loss of one augmented, class-balanced batch."""
        return self._step(batch, self.train_metrics, "train")

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
