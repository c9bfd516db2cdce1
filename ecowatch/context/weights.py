"""Fitting the bounded prior weights on validation sites (the safeguard against a misleading prior).

A prior fitted at some sites may not transfer to others, and a classifier's calibration may
already hold part of what the prior says. So the weights of the place/season evidence and of the
time-of-day evidence (:class:`~ecowatch.context.fusion.FusionWeights`, each bounded to
``0..max_weight``) are chosen on labelled crops of *validation sites the prior never saw*: a grid
search that minimises the mean negative log-likelihood of the true class (or maximises macro-F1)
of the fused probabilities. Weight 0 is on the grid, so where the prior does not help on
validation (shuffled priors, a wrong range of sites) the fit returns to the classifier alone.
Ties go to the smaller weights.

:func:`fit_species_threshold` chooses, likewise on validation crops, the smallest species
threshold whose species-rank labels reach a wanted precision with 95 % confidence (the roll-up's
safeguard); told each crop's site, it takes that confidence over sites (a cluster bootstrap), as
crops of one site are not independent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ecowatch.classify.evaluate import classification_report
from ecowatch.context.fusion import ContextFactors, FusedLabel, FusionWeights, combine
from ecowatch.errors import ConfigError, InputDataError

log = logging.getLogger(__name__)

Objective = Literal["nll", "macro_f1"]


@dataclass(frozen=True)
class WeightFit:
    """The outcome of :func:`fit_fusion_weights`.

    Attributes:
        weights: the chosen weights.
        objective: ``nll`` or ``macro_f1``.
        value: the objective at the chosen weights (NLL in nats, or macro-F1 0..1).
        baseline: the objective with both weights 0 (the classifier with the range maps alone).
        n: validation crops used.
    """

    weights: FusionWeights
    objective: str
    value: float
    baseline: float
    n: int


def _score(probs: np.ndarray, labels: np.ndarray, objective: Objective, n_classes: int) -> float:
    if objective == "nll":
        return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None))))
    report = classification_report(probs.argmax(axis=1), labels, [str(i) for i in range(n_classes)])
    return -report.macro_f1  # minimised


def fit_fusion_weights(
    probabilities: np.ndarray,
    labels: np.ndarray,
    context: ContextFactors,
    *,
    range_outside_factor: float,
    min_prior_information_nats: float,
    max_weight: float = 1.0,
    steps: int = 21,
    objective: Objective = "nll",
) -> WeightFit:
    """Grid-search the place and activity weights on validation crops.

    Args:
        probabilities: (N, C) calibrated classifier probabilities of validation crops.
        labels: (N,) true class indices; crops with -1 (not a class) are left out.
        context: their evidence, arrays (N, C) (see :func:`~ecowatch.context.fusion.stack_factors`).
        range_outside_factor: the range-map multiplier used in fusion.
        min_prior_information_nats: the gate used in fusion.
        max_weight: upper bound of each weight (0..1).
        steps: grid points per weight (from 0 to ``max_weight``).
        objective: ``nll`` (mean negative log-likelihood of the true class) or ``macro_f1``.

    Returns:
        The weights and the objective at them and at zero.

    Raises:
        ConfigError: ``max_weight`` outside 0..1, fewer than 2 steps, or an unknown objective.
        InputDataError: no labelled crop of a class, or shapes that do not match.
    """
    if not 0.0 <= max_weight <= 1.0 or steps < 2:
        raise ConfigError(f"weight grid: max_weight {max_weight} must be within 0..1 and steps {steps} >= 2.")
    if objective not in ("nll", "macro_f1"):
        raise ConfigError(f"objective {objective!r} is not one of 'nll', 'macro_f1'.")
    probs = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or len(probs) != len(y):
        raise InputDataError(f"probabilities {probs.shape} and labels {y.shape} do not match: need (N, C) and (N,).")
    keep = y >= 0
    if not keep.any():
        raise InputDataError("no validation crop of a known class to fit the fusion weights on.")
    probs, y = probs[keep], y[keep]
    rows = ContextFactors(context.reference, np.asarray(context.place_log_ratio)[keep],
                          None if context.activity_log_ratio is None else np.asarray(context.activity_log_ratio)[keep],
                          None if context.in_range is None else np.asarray(context.in_range)[keep], context.level)
    grid = np.linspace(0.0, max_weight, steps)
    best: tuple[float, float, FusionWeights] | None = None
    baseline = float("nan")
    for w_place in grid:
        for w_activity in grid:
            weights = FusionWeights(float(w_place), float(w_activity))
            fused, _ = combine(probs, rows, weights=weights, range_outside_factor=range_outside_factor,
                               min_prior_information_nats=min_prior_information_nats)
            value = _score(fused, y, objective, probs.shape[1])
            if w_place == 0 and w_activity == 0:
                baseline = value
            key = (round(value, 9), float(w_place + w_activity))
            if best is None or key < best[:2]:
                best = (key[0], key[1], weights)
    assert best is not None  # the grid has at least 4 points
    sign = -1.0 if objective == "macro_f1" else 1.0
    fit = WeightFit(best[2], objective, sign * best[0], sign * baseline, int(len(y)))
    log.info("fusion weights on %d validation crops: place %.2f, activity %.2f (%s %.4f; classifier alone %.4f)",
             fit.n, fit.weights.place, fit.weights.activity, objective, fit.value, fit.baseline)
    return fit


@dataclass(frozen=True)
class ThresholdFit:
    """The outcome of :func:`fit_species_threshold`.

    Attributes:
        species_min_score: the smallest grid threshold reaching the target precision (1.0 when none does).
        precision: species-rank precision on the fitting crops at that threshold (NaN: no species label).
        share_species: share of the crops labelled at species rank.
        n: crops used.
    """

    species_min_score: float
    precision: float
    share_species: float
    n: int


def wilson_lower_bound(successes: int, n: int, *, z: float = 1.645) -> float:
    """One-sided lower confidence bound of a proportion (Wilson score; z 1.645: 95 %). 0 for n = 0."""
    if n <= 0:
        return 0.0
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float((centre - spread) / (1 + z * z / n))


def cluster_bootstrap_lower_bound(successes: np.ndarray, trials: np.ndarray, *, z: float = 1.645,
                                  resamples: int = 2000, seed: int = 0) -> float:
    """One-sided lower confidence bound of a pooled proportion whose trials come in clusters (sites).

    Crops of one site (one background, one population, bursts of one animal) are not independent
    trials, so the bound resamples whole clusters with replacement (the percentile bootstrap) and
    takes the ``Phi(-z)`` quantile (z 1.645: the 5th percentile, 95 % confidence) of
    ``sum(successes) / sum(trials)``. 0 when there are no trials.

    Args:
        successes: (G,) successes per cluster.
        trials: (G,) trials per cluster.
        z: normal quantile of the one-sided level.
        resamples: bootstrap resamples.
        seed: the resampling seed (the bound is reproducible).
    """
    from statistics import NormalDist

    successes, trials = np.asarray(successes, dtype=np.float64), np.asarray(trials, dtype=np.float64)
    if trials.sum() <= 0:
        return 0.0
    draws = np.random.default_rng(seed).integers(0, len(trials), size=(resamples, len(trials)))
    n = trials[draws].sum(axis=1)
    ratios = np.divide(successes[draws].sum(axis=1), n, out=np.zeros(resamples), where=n > 0)
    return float(np.quantile(ratios, NormalDist().cdf(-z)))


def fit_species_threshold(decide_at: Callable[[float], Sequence[FusedLabel]], truths: Sequence[str], *,
                          target_precision: float = 0.95, confidence_z: float = 1.645,
                          grid: Sequence[float] | None = None, groups: Sequence[str] | None = None) -> ThresholdFit:
    """The smallest ``species_min_score`` whose species-rank labels reach a precision on validation.

    The precision must be reached *with confidence*, so a threshold that is right on a handful of
    labels, or at a few lucky sites, is not chosen: the one-sided lower bound (``confidence_z``
    1.645 = 95 %) of the validation precision must be at least ``target_precision``. With
    ``groups`` (each crop's site) the bound is :func:`cluster_bootstrap_lower_bound` over sites,
    since crops of one site are not independent; without, the Wilson bound over crops.

    Args:
        decide_at: the decisions of the validation crops at a given species threshold (every other
            threshold fixed), e.g. a closure over :func:`~ecowatch.context.fusion.decide`.
        truths: the true taxon id of each crop (species the classifier lacks included: a species
            label on them is wrong).
        target_precision: wanted precision (0..1) of the labels emitted at species rank.
        confidence_z: normal quantile of the lower bound (0 = the plain validation precision).
        grid: thresholds tried, ascending (default 0.50, 0.51, ..., 0.99, 0.995, 0.999).
        groups: the site (or other cluster) of each crop, or None (crops independent).

    Returns:
        The threshold and its validation precision and share of species labels (threshold 1.0
        and precision NaN when no threshold reaches the target).

    Raises:
        InputDataError: ``groups`` does not give one site per crop.
    """
    thresholds = list(grid) if grid is not None else [*np.round(np.arange(0.5, 0.995, 0.01), 2), 0.995, 0.999]
    if groups is not None and len(groups) != len(truths):
        raise InputDataError(f"{len(groups)} groups for {len(truths)} crops: give each crop's site.")
    index = {g: i for i, g in enumerate(sorted(set(groups)))} if groups is not None else {}
    for threshold in thresholds:
        decisions = decide_at(float(threshold))
        labelled = [i for i, d in enumerate(decisions) if d.rank == "species"]
        if not labelled:
            continue
        right_rows = [i for i in labelled if decisions[i].taxon_id == truths[i]]
        if groups is None:
            bound = wilson_lower_bound(len(right_rows), len(labelled), z=confidence_z)
        else:
            trials, successes = np.zeros(len(index)), np.zeros(len(index))
            np.add.at(trials, [index[groups[i]] for i in labelled], 1.0)
            np.add.at(successes, [index[groups[i]] for i in right_rows], 1.0)
            bound = cluster_bootstrap_lower_bound(successes[trials > 0], trials[trials > 0], z=confidence_z)
        if bound >= target_precision:
            return ThresholdFit(float(threshold), len(right_rows) / len(labelled), len(labelled) / len(truths),
                                len(truths))
    return ThresholdFit(1.0, float("nan"), 0.0, len(truths))
