"""Evaluation figures of a species classifier: top-1, macro-F1, per-class recall, confusion, look-alikes.

Macro-F1 averages the F1 of the classes that have crops in the evaluated set (a class without test
crops has no recall to measure); predictions of any class count. Look-alike pairs (two species told
apart by one trait, e.g. red and fallow deer) get their own figures: each one's recall and how
often it is taken for the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass(frozen=True)
class ClassificationReport:
    """Figures of one evaluated set.

    Attributes:
        class_ids: taxon ids of the confusion matrix rows/columns.
        confusion: ``int64`` (classes, classes): rows are true classes, columns predictions.
        n: crops evaluated.
        top1: share of crops whose top-1 class is right.
        macro_f1: mean F1 over classes with crops.
        recall: per class id with crops, the share of its crops predicted right.
        f1: per class id with crops, its F1.
        support: per class id, its number of crops.
    """

    class_ids: tuple[str, ...]
    confusion: np.ndarray
    n: int
    top1: float
    macro_f1: float
    recall: dict[str, float]
    f1: dict[str, float]
    support: dict[str, int]


@dataclass(frozen=True)
class PairReport:
    """Figures of a look-alike pair (a, b) on crops of a or b.

    Attributes:
        a: taxon id of the first species.
        b: taxon id of the second species.
        n_a: crops of a.
        n_b: crops of b.
        recall_a: share of a's crops predicted a.
        recall_b: share of b's crops predicted b.
        a_as_b: share of a's crops predicted b.
        b_as_a: share of b's crops predicted a.
        pair_f1: mean of a's and b's F1 (over all predictions).
    """

    a: str
    b: str
    n_a: int
    n_b: int
    recall_a: float
    recall_b: float
    a_as_b: float
    b_as_a: float
    pair_f1: float


def classification_report(predicted: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray,
                          class_ids: Sequence[str]) -> ClassificationReport:
    """Figures from top-1 predictions.

    Args:
        predicted: (N,) predicted class indices.
        labels: (N,) true class indices.
        class_ids: taxon id of each index.

    Returns:
        The report.
    """
    pred = np.asarray(predicted, dtype=np.int64)
    true = np.asarray(labels, dtype=np.int64)
    n_classes = len(class_ids)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (true, pred), 1)
    support = confusion.sum(axis=1)
    predicted_count = confusion.sum(axis=0)
    tp = np.diag(confusion)
    recall, f1 = {}, {}
    for k, class_id in enumerate(class_ids):
        if support[k] == 0:
            continue
        r = tp[k] / support[k]
        p = tp[k] / predicted_count[k] if predicted_count[k] else 0.0
        recall[class_id] = float(r)
        f1[class_id] = float(2 * p * r / (p + r)) if p + r > 0 else 0.0
    n = int(len(true))
    return ClassificationReport(
        class_ids=tuple(class_ids),
        confusion=confusion,
        n=n,
        top1=float(tp.sum() / n) if n else float("nan"),
        macro_f1=float(np.mean(list(f1.values()))) if f1 else float("nan"),
        recall=recall,
        f1=f1,
        support={c: int(s) for c, s in zip(class_ids, support, strict=True)},
    )


def pair_report(report: ClassificationReport, a: str, b: str) -> PairReport:
    """Figures of one look-alike pair from a report.

    Raises:
        KeyError: ``a`` or ``b`` is not a class of the report.
    """
    ia, ib = report.class_ids.index(a), report.class_ids.index(b)
    row_a, row_b = report.confusion[ia], report.confusion[ib]
    n_a, n_b = int(row_a.sum()), int(row_b.sum())

    def share(count: int, total: int) -> float:
        return float(count / total) if total else float("nan")

    f1s = [report.f1[c] for c in (a, b) if c in report.f1]
    return PairReport(
        a=a, b=b, n_a=n_a, n_b=n_b,
        recall_a=share(int(row_a[ia]), n_a), recall_b=share(int(row_b[ib]), n_b),
        a_as_b=share(int(row_a[ib]), n_a), b_as_a=share(int(row_b[ia]), n_b),
        pair_f1=float(np.mean(f1s)) if f1s else float("nan"),
    )


def write_confusion_png(report: ClassificationReport, path: Path, *, names: Sequence[str] | None = None,
                        title: str = "") -> Path:
    """Draw the confusion matrix (rows normalised to recall, counts written in cells) as a PNG.

    Args:
        report: the figures.
        path: the PNG to write.
        names: labels of the classes (the class ids by default).
        title: figure title.

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = list(names or report.class_ids)
    counts = report.confusion
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=np.float64), where=rows > 0)
    size = 2.0 + 0.45 * len(labels)
    figure = Figure(figsize=(size + 1.5, size))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if counts[i, j]:
                axes.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                          color="white" if share[i, j] > 0.5 else "black")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of true class")
    axes.set_title(title or f"confusion (n={report.n}, top-1 {report.top1:.3f}, macro-F1 {report.macro_f1:.3f})",
                   fontsize=9)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def macro_f1_of_confusions(confusions: np.ndarray) -> np.ndarray:
    """Macro-F1 of each confusion matrix (true x predicted) of a stack (..., C, C).

    Classes with no crops are left out of the mean, as in :func:`classification_report`.
    """
    confusions = np.asarray(confusions, dtype=np.float64)
    tp = np.diagonal(confusions, axis1=-2, axis2=-1)
    support, predicted = confusions.sum(axis=-1), confusions.sum(axis=-2)
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros(tp.shape), where=support + predicted > 0)
    present = support > 0
    return (f1 * present).sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


def site_resamples(sites: Sequence[str], *, resamples: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A cluster bootstrap over sites: each item's site index and how often each site is drawn.

    Crops of one site share a background, a population and bursts of one animal, so they are not
    independent; resampling whole sites with replacement shows how much a figure depends on which
    sites happen to be in the evaluated split.

    Args:
        sites: the site (location) of each item.
        resamples: bootstrap resamples.
        seed: the resampling seed (intervals are reproducible).

    Returns:
        (N,) site index of each item and (resamples, G) multiplicity of each of the G sites.
    """
    names = sorted(set(sites))
    index = {s: i for i, s in enumerate(names)}
    draws = np.random.default_rng(seed).integers(0, len(names), size=(resamples, len(names)))
    counts = np.stack([np.bincount(d, minlength=len(names)) for d in draws]) if len(names) else np.zeros((resamples, 0))
    return np.array([index[s] for s in sites], dtype=np.int64), counts.astype(np.float64)


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1.0 - tail))


def _resampled_macro_f1(predictions: Sequence[np.ndarray], labels: np.ndarray, sites: Sequence[str],
                        n_classes: int, resamples: int, seed: int) -> list[np.ndarray] | None:
    """Macro-F1 of each prediction in each site resample (the same resamples for all); None without labels."""
    labels = np.asarray(labels, dtype=np.int64)
    known = labels >= 0
    if not known.any():
        return None
    site, counts = site_resamples([s for s, k in zip(sites, known, strict=True) if k], resamples=resamples, seed=seed)
    cells = labels[known] * n_classes
    out = []
    for predicted in predictions:
        per_site = np.zeros((counts.shape[1], n_classes * n_classes))
        np.add.at(per_site, (site, cells + np.asarray(predicted, dtype=np.int64)[known]), 1.0)
        out.append(macro_f1_of_confusions((counts @ per_site).reshape(-1, n_classes, n_classes)))
    return out


def macro_f1_interval(predicted: np.ndarray, labels: np.ndarray, sites: Sequence[str], n_classes: int, *,
                      level: float = 0.9, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of macro-F1 over resampled sites (:func:`site_resamples`).

    Args:
        predicted: (N,) predicted class indices.
        labels: (N,) true class indices (items with -1, not a class, are left out).
        sites: the site of each item.
        n_classes: the classes.
        level: the interval's coverage (0.9: the 5th to the 95th percentile).
        resamples: bootstrap resamples.
        seed: the resampling seed.

    Returns:
        (low, high); NaN without labelled items.
    """
    figures = _resampled_macro_f1([predicted], labels, sites, n_classes, resamples, seed)
    return (float("nan"), float("nan")) if figures is None else _interval(figures[0], level)


def macro_f1_gain_interval(base: np.ndarray, other: np.ndarray, labels: np.ndarray, sites: Sequence[str],
                           n_classes: int, *, level: float = 0.9, resamples: int = 2000,
                           seed: int = 0) -> tuple[float, float]:
    """Percentile interval of ``macro-F1(other) - macro-F1(base)`` over resampled sites, both predictions
    scored on the same resamples (arguments as :func:`macro_f1_interval`)."""
    figures = _resampled_macro_f1([other, base], labels, sites, n_classes, resamples, seed)
    return (float("nan"), float("nan")) if figures is None else _interval(figures[0] - figures[1], level)


def auroc_interval(known_scores: np.ndarray, known_sites: Sequence[str], unknown_scores: np.ndarray,
                   unknown_sites: Sequence[str], *, level: float = 0.9, resamples: int = 2000,
                   seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the AUROC of telling unknown (positive) from known items by score, over
    resampled sites (a site's known and unknown items are drawn together; ties count half).

    Returns:
        (low, high); NaN when either group is empty.
    """
    known, unknown = np.asarray(known_scores, dtype=np.float64), np.asarray(unknown_scores, dtype=np.float64)
    if not len(known) or not len(unknown):
        return float("nan"), float("nan")
    site, counts = site_resamples([*known_sites, *unknown_sites], resamples=resamples, seed=seed)
    site_known, site_unknown = site[:len(known)], site[len(known):]
    order = np.argsort(known, kind="stable")
    sorted_known = known[order]
    below = np.searchsorted(sorted_known, unknown, side="left")  # known items scored lower than each unknown one
    upto = np.searchsorted(sorted_known, unknown, side="right")
    values = []
    for start in range(0, len(counts), 250):  # (chunk, N) weight matrices stay small
        chunk = counts[start:start + 250]
        w_known = chunk[:, site_known[order]]
        cumulative = np.concatenate([np.zeros((len(chunk), 1)), np.cumsum(w_known, axis=1)], axis=1)
        w_unknown = chunk[:, site_unknown]
        wins = cumulative[:, below] + 0.5 * (cumulative[:, upto] - cumulative[:, below])
        pairs = w_known.sum(axis=1) * w_unknown.sum(axis=1)
        values.append(np.divide((w_unknown * wins).sum(axis=1), pairs, out=np.full(len(chunk), np.nan),
                                where=pairs > 0))
    values_all = np.concatenate(values)
    values_all = values_all[~np.isnan(values_all)]  # resamples that drew no site with both kinds of items
    return _interval(values_all, level) if len(values_all) else (float("nan"), float("nan"))
