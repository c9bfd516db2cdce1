"""The fixed location holdout: chosen once, then champion and challenger are evaluated on its crops.

Whole locations are held out (as :mod:`ecowatch.classify.split` does for training): a model
is judged on camera sites it never saw. :func:`choose_holdout` picks them on the first round;
later rounds read them from the state file, so a challenger is compared with the champion on the
same crops, with the same code (:func:`evaluate_checkpoint`, which uses
:func:`ecowatch.classify.evaluate.classification_report`).

Champion and challenger may know different classes (a new species labelled since). The report
is over the union of their classes: a crop of a class a model does not know counts as wrong for
it. Crops of taxa neither model knows (held-out or excluded species) are not evaluated.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecowatch.classify.crops import CropCache, CropSource
from ecowatch.classify.evaluate import ClassificationReport, classification_report
from ecowatch.classify.split import split_locations
from ecowatch.errors import InputDataError
from ecowatch.retrain.labels import LabelledBox

log = logging.getLogger(__name__)


def choose_holdout(labels: Sequence[LabelledBox], *, fraction: float, seed: int) -> tuple[str, ...]:
    """Pick the holdout locations of the first round.

    Whole locations holding about ``fraction`` of the labels, every class present if possible,
    the rest left to training and validation (:func:`ecowatch.classify.split.split_locations`).

    Args:
        labels: the labelled set (excluded taxa already left out).
        fraction: wanted share of labels at holdout locations (0..1).
        seed: seed of the choice.

    Returns:
        The holdout location ids, sorted.

    Raises:
        InputDataError: fewer than 3 locations (holdout, training and validation need one each).
    """
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for label in labels:
        counts[label.location_id][label.taxon_id] += 1
    if len(counts) < 3:
        raise InputDataError(
            f"labels come from {len(counts)} location(s) ({sorted(counts)}); retraining needs at least 3 (a holdout, "
            "a training and a validation location). Label images of more camera locations, or set holdout.locations."
        )
    split = split_locations(counts, val_fraction=fraction, test_fraction=0.0, seed=seed)
    log.info("holdout locations chosen (kept for every later round): %s", split.val)
    return split.val


@dataclass(frozen=True)
class HoldoutEvaluation:
    """A checkpoint's figures on the holdout.

    Attributes:
        checkpoint: the checkpoint file evaluated.
        model_version: its sha256 prefix.
        model_classes: the classes the model knows.
        report: top-1, macro-F1, per-class recall and F1 over the evaluated classes.
        unknown_flagged: share of holdout crops whose unknown-species score is at least 0.5.
    """

    checkpoint: Path
    model_version: str
    model_classes: tuple[str, ...]
    report: ClassificationReport
    unknown_flagged: float

    def metrics(self, prefix: str) -> dict[str, float]:
        """Flat metrics: ``<prefix>.macro_f1``, ``.top1``, ``.recall.<taxon>``, ``.f1.<taxon>`` ..."""
        rep = self.report
        out = {f"{prefix}.macro_f1": rep.macro_f1, f"{prefix}.top1": rep.top1, f"{prefix}.crops": float(rep.n),
               f"{prefix}.unknown_flagged": self.unknown_flagged}
        out.update({f"{prefix}.recall.{c}": v for c, v in rep.recall.items()})
        out.update({f"{prefix}.f1.{c}": v for c, v in rep.f1.items()})
        return {k: float(v) for k, v in out.items() if v == v}

    def to_record(self) -> dict[str, Any]:
        """JSON-ready figures (for the run's ``evaluation.json``)."""
        rep = self.report
        return {"checkpoint": self.checkpoint.name, "model_version": self.model_version,
                "model_classes": list(self.model_classes), "crops": rep.n, "top1": rep.top1,
                "macro_f1": rep.macro_f1, "recall": rep.recall, "f1": rep.f1, "support": rep.support,
                "class_ids": list(rep.class_ids), "confusion": rep.confusion.tolist(),
                "unknown_flagged": self.unknown_flagged}


def evaluate_checkpoint(checkpoint: Path, sources: Sequence[CropSource], *, class_ids: Sequence[str],
                        cache_dir: Path, batch_size: int = 64, workers: int = 0) -> HoldoutEvaluation:
    """Evaluate a standalone classifier checkpoint on labelled crops.

    Each model sees the crops cut with its own preprocessing (crop size, padding, input size,
    contrast), as in the nightly classify stage.

    Args:
        checkpoint: a file written by :func:`ecowatch.classify.checkpoint.save_classifier`.
        sources: the holdout boxes; each ``taxon_id`` must be one of ``class_ids``.
        class_ids: the evaluated classes: the union of the compared models' classes, sorted.
        cache_dir: the crop cache folder.
        batch_size: crops per forward pass.
        workers: processes cutting crops into the cache.

    Returns:
        The figures (a crop whose image cannot be read is left out, for both models alike).

    Raises:
        ModelNotFoundError: the checkpoint cannot be loaded.
        ValueError: a source's taxon, or a class of the model, is not in ``class_ids``.
    """
    import torch

    from ecowatch.classify.checkpoint import load_classifier
    from ecowatch.classify.crops import read_crop
    from ecowatch.classify.transforms import eval_transform

    index = {c: i for i, c in enumerate(class_ids)}
    outside = sorted({s.taxon_id for s in sources} - set(index))  # type: ignore[arg-type]
    if outside:
        raise ValueError(f"holdout crops of {outside} are not among the evaluated classes {list(class_ids)}")
    classifier = load_classifier(checkpoint)
    unknown_classes = sorted(set(classifier.taxonomy.class_ids) - set(index))
    if unknown_classes:
        raise ValueError(f"{checkpoint.name} knows {unknown_classes}, which are not among the evaluated classes "
                         f"{list(class_ids)}; evaluate over the union of the models' classes")
    paths = CropCache(Path(cache_dir), classifier.preprocessing.geometry).build(sources, workers=workers)
    kept = [(s, p) for s, p in zip(sources, paths, strict=True) if p is not None]
    transform = eval_transform(classifier.preprocessing)
    model_to_eval = torch.tensor([index[c] for c in classifier.taxonomy.class_ids])
    predicted, unknown = [], []
    for start in range(0, len(kept), batch_size):
        batch = torch.stack([transform(image=read_crop(p))["image"] for _, p in kept[start:start + batch_size]])
        probs, unknown_scores, _ = classifier.scores(batch)
        predicted.append(model_to_eval[probs.argmax(dim=1)])
        unknown.append(unknown_scores)
    truth = torch.tensor([index[s.taxon_id] for s, _ in kept], dtype=torch.long)  # type: ignore[index]
    pred = torch.cat(predicted) if predicted else torch.zeros(0, dtype=torch.long)
    report = classification_report(pred, truth, class_ids)
    flagged = float((torch.cat(unknown) >= 0.5).double().mean()) if unknown else float("nan")
    log.info("%s on %d holdout crops: top-1 %.3f, macro-F1 %.3f", checkpoint.name, report.n, report.top1,
             report.macro_f1)
    return HoldoutEvaluation(Path(checkpoint), classifier.version, classifier.taxonomy.class_ids, report, flagged)


def resolve_holdout(labels: Sequence[LabelledBox], *, configured: Sequence[str], kept: Sequence[str],
                    fraction: float, seed: int) -> tuple[str, ...]:
    """The holdout of this round: ``holdout.locations`` when configured, else the one kept from the
    first round, else a new choice (:func:`choose_holdout`; the first round).

    Raises:
        InputDataError: a first round with labels from fewer than 3 locations.
    """
    if configured:
        if kept and sorted(configured) != sorted(kept):
            log.warning("holdout.locations %s differ from the holdout of earlier rounds %s: figures of earlier runs "
                        "are not comparable with this run's", list(configured), list(kept))
        return tuple(sorted(configured))
    if kept:
        return tuple(kept)
    return choose_holdout(labels, fraction=fraction, seed=seed)
