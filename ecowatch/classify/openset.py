"""Open-set ("unknown species") scores: energy, max-logit or MSP, with a threshold chosen on validation.

A crop of a species the model was never trained on still gets a softmax over the known classes. Its
raw logits, though, tend to be lower: the **energy** score ``-logsumexp(logits)`` (Liu et al., 2020)
and the **max-logit** score ``-max(logits)`` (Hendrycks et al., 2022) are higher for unfamiliar
inputs; so is the baseline ``-max(softmax(logits))`` (**msp**, Hendrycks & Gimpel, 2017). All are
computed from the raw (un-tempered) logits.

The threshold ``tau`` is chosen on validation crops of *known* species only, so no unknown species
are needed to fit it: ``tau`` is the ``known_recall`` quantile of their raw scores (0.95: 95 % of
known-species crops at new sites stay "known").

What the store records is ``unknown_score = sigmoid((raw - tau) / scale)``, in 0..1 and exactly
0.5 at the threshold, with ``scale`` the robust spread (IQR / 1.349) of the validation scores. It
is monotone in the raw score (AUROC is unchanged) and lets the fuse stage compare with 0.5 without
knowing the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch

OpenSetMethod = Literal["energy", "max_logit", "msp"]
OPEN_SET_METHODS: tuple[str, ...] = ("energy", "max_logit", "msp")

#: The unknown score at the threshold.
UNKNOWN_AT_THRESHOLD = 0.5


def raw_open_set_score(logits: torch.Tensor, method: OpenSetMethod) -> torch.Tensor:
    """Higher means less like any known class.

    Args:
        logits: (N, classes) raw logits.
        method: ``energy`` (``-logsumexp``), ``max_logit`` (``-max``) or ``msp`` (``-max softmax``).

    Returns:
        (N,) ``float64`` scores.

    Raises:
        ValueError: an unknown method.
    """
    x = logits.detach().double()
    if method == "energy":
        return -torch.logsumexp(x, dim=1)
    if method == "max_logit":
        return -x.max(dim=1).values
    if method == "msp":
        return -torch.softmax(x, dim=1).max(dim=1).values
    raise ValueError(f"open-set method {method!r} is not one of {OPEN_SET_METHODS}")


@dataclass(frozen=True)
class OpenSetCalibration:
    """How raw logits become an unknown score.

    Attributes:
        method: ``energy``, ``max_logit`` or ``msp``.
        threshold: raw score above which a crop is called unknown.
        scale: spread of the raw scores (the sigmoid's width).
        known_recall: share of known validation crops below the threshold when it was chosen.
    """

    method: OpenSetMethod
    threshold: float
    scale: float
    known_recall: float

    def raw(self, logits: torch.Tensor) -> torch.Tensor:
        """(N,) raw scores."""
        return raw_open_set_score(logits, self.method)

    def unknown_score(self, logits: torch.Tensor) -> torch.Tensor:
        """(N,) scores in 0..1; at or above 0.5 the crop is called unknown."""
        return torch.sigmoid((self.raw(logits) - self.threshold) / self.scale)

    def to_record(self) -> dict[str, Any]:
        """Plain dict for checkpoints."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> OpenSetCalibration:
        """Rebuild from :meth:`to_record` output."""
        return cls(**dict(record))


def fit_open_set(known_logits: torch.Tensor, *, method: OpenSetMethod = "energy",
                 known_recall: float = 0.95) -> OpenSetCalibration:
    """Choose the threshold on validation crops of known species.

    Args:
        known_logits: (N, classes) raw logits of validation crops of the model's classes.
        method: ``energy``, ``max_logit`` or ``msp``.
        known_recall: share (0..1, exclusive) of those crops to keep as known.

    Returns:
        The calibration.

    Raises:
        ValueError: no crops, or ``known_recall`` outside (0, 1).
    """
    if not 0.0 < known_recall < 1.0:
        raise ValueError(f"known_recall {known_recall} must be within (0, 1)")
    if not len(known_logits):
        raise ValueError("no validation crops of known species to choose an unknown-species threshold on")
    raw = raw_open_set_score(known_logits, method).numpy()
    threshold = float(np.quantile(raw, known_recall))
    q25, q75 = np.quantile(raw, [0.25, 0.75])
    scale = max(float(q75 - q25) / 1.349, 1e-3)
    return OpenSetCalibration(method, threshold, scale, float(known_recall))


def auroc(known_scores: torch.Tensor | np.ndarray, unknown_scores: torch.Tensor | np.ndarray) -> float:
    """Area under the ROC curve of telling unknown (positive) from known crops by score.

    Returns:
        AUROC in 0..1 (ties count half); NaN when either group is empty.
    """
    known = np.asarray(known_scores, dtype=np.float64)
    unknown = np.asarray(unknown_scores, dtype=np.float64)
    if not len(known) or not len(unknown):
        return float("nan")
    scores = np.concatenate([known, unknown])
    ranks = _average_ranks(scores)
    rank_sum = ranks[len(known):].sum()
    n_pos, n_neg = len(unknown), len(known)
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their average rank (the Mann-Whitney U convention)."""
    from scipy.stats import rankdata

    return rankdata(values, method="average")
