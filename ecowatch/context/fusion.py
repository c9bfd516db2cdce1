"""Fusion: classifier scores x context prior -> one label with its score and where it came from.

Modelled on SpeciesNet's ensemble combiner: the decision is one pure function,
:func:`fuse_detection`, with keyword-only arguments and every threshold named
(:class:`FusionThresholds`, set in ``conf/nightly.yaml`` under ``fuse:``), returning
``(label, score, source)`` as a :class:`FusedLabel`. In order:

1. **Unknown.** An open-set score of at least ``unknown_min_score`` (the classifier's 0.5) makes
   the detection an unknown animal: the label is the kingdom all classes share (``animalia``), the
   source ``unknown_animal``. A novel animal never gets a species.
2. **Prior.** The calibrated class probabilities ``p`` are multiplied by the context evidence in
   log space, ``log p'(t) = log p(t) + w_place * log[p(t | place, season) / p_ref(t)]
   + w_activity * log[p(time of day | t) / p(time of day)] + log r(t) - log Z``, where ``p_ref`` is
   the global prior (the classifier's scores are taken as relative to it), ``r(t)`` is 1 inside a
   taxon's range map (or without one) and ``range_outside_factor`` outside, and the bounded
   weights ``w`` in 0..1 are fitted on validation sites (:mod:`~ecowatch.context.weights`).
   Gate: when the context prior ``q(t) ~ p_ref(t) * exp(...)`` is less than
   ``min_prior_information_nats`` away from ``p_ref`` (Kullback-Leibler divergence), the prior says
   nothing here and is not applied: the result is the classifier's, exactly (a uniform prior, no
   context, zero weights). Source: ``classifier+prior`` when applied, else ``classifier``.
3. **Roll-up.** The best species is the label when its probability reaches ``species_min_score``;
   otherwise the probabilities are summed up the taxonomy (genus, family, order, class, phylum,
   kingdom; a rank that groups the classes as the rank below does is skipped) and the first rank
   with a taxon reaching ``rollup_min_score`` gives the label (source ``rollup_to_<rank>``); when
   none does (classes of several kingdoms) the label is None (source ``unknown_animal``).

The classifier stores only its top-k classes per detection; :func:`full_probabilities` spreads
the remaining mass evenly over the other classes (the maximum-entropy completion: nothing is known
about them except that each is at most the k-th score and together they hold the rest).

Sequence level: :func:`vote_sequence` averages the fused probability vectors (and unknown scores)
of every detection of a burst (a linear opinion pool: an animal does not change species between
frames, and frames are not independent evidence), and the same decision runs on the average.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ecowatch.classify.taxonomy import ClassTaxonomy
from ecowatch.errors import ConfigError, InputDataError

SOURCE_CLASSIFIER = "classifier"
SOURCE_CLASSIFIER_PRIOR = "classifier+prior"
SOURCE_UNKNOWN = "unknown_animal"
#: Ranks tried, in order, when no species is confident enough.
ROLLUP_RANKS: tuple[str, ...] = ("genus", "family", "order", "class", "phylum", "kingdom")
FUSED_SOURCES: tuple[str, ...] = (SOURCE_CLASSIFIER, SOURCE_CLASSIFIER_PRIOR, SOURCE_UNKNOWN,
                                  *(f"rollup_to_{rank}" for rank in ROLLUP_RANKS))


@dataclass(frozen=True)
class FusionThresholds:
    """Every threshold of the decision (``fuse:`` in ``conf/nightly.yaml`` documents each).

    Attributes:
        unknown_min_score: open-set score (0..1) from which a detection is an unknown animal.
        species_min_score: fused probability (0..1) a species needs to be the label.
        rollup_min_score: summed probability (0..1) a genus, family, ... needs to be the label.
        min_prior_information_nats: Kullback-Leibler divergence (nats) of the context prior from
            the global prior below which the prior is not applied.
        range_outside_factor: multiplier (0..1] of a species' probability at a place outside its
            range map (1 = range maps ignored).
    """

    unknown_min_score: float = 0.5
    species_min_score: float = 0.9
    rollup_min_score: float = 0.9
    min_prior_information_nats: float = 0.01
    range_outside_factor: float = 0.05

    def __post_init__(self) -> None:
        for name in ("unknown_min_score", "species_min_score", "rollup_min_score"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"fuse.{name} = {value}: a probability threshold must be within 0..1.")
        if self.min_prior_information_nats < 0:
            raise ConfigError(f"fuse.min_prior_information_nats = {self.min_prior_information_nats}: must be >= 0.")
        if not 0.0 < self.range_outside_factor <= 1.0:
            raise ConfigError(f"fuse.range_outside_factor = {self.range_outside_factor}: must be within (0, 1] "
                              "(1 ignores range maps).")


@dataclass(frozen=True)
class FusionWeights:
    """Exponents of the context evidence (0 = ignore it, 1 = Bayes with a calibrated classifier).

    Attributes:
        place: weight of the place/season prior ratio.
        activity: weight of the time-of-day ratio.
    """

    place: float = 1.0
    activity: float = 1.0

    def __post_init__(self) -> None:
        for name in ("place", "activity"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"fusion weight {name} = {value}: weights are bounded to 0..1.")


@dataclass(frozen=True)
class ContextFactors:
    """The context evidence of one detection (or one row per detection), over the classifier's classes.

    Attributes:
        reference: the global prior p_ref(t) the place prior is relative to (sums to 1), shape (..., C).
        place_log_ratio: ``log p(t | place, season) - log p_ref(t)``, shape (..., C).
        activity_log_ratio: ``log p(time of day | t) - log p(time of day)``, or None (no time).
        in_range: 1.0 inside a taxon's range (or without a range map), 0.0 outside, or None
            (no coordinates / no range maps), shape (..., C).
        level: where the place prior comes from: ``site``, ``region`` or ``global``.
    """

    reference: np.ndarray
    place_log_ratio: np.ndarray
    activity_log_ratio: np.ndarray | None = None
    in_range: np.ndarray | None = None
    level: str = "global"


@dataclass(frozen=True)
class FusedLabel:
    """A decision.

    Attributes:
        taxon_id: the label (a taxon id at ``rank``), or None when not even a kingdom is certain.
        rank: the label's rank (``species``, ``genus``, ..., ``kingdom``), or None.
        score: the label's probability (summed over its classes), or the unknown score for an
            unknown animal.
        source: ``classifier``, ``classifier+prior``, ``rollup_to_<rank>`` or ``unknown_animal``.
    """

    taxon_id: str | None
    rank: str | None
    score: float
    source: str


@dataclass(frozen=True)
class Rollup:
    """The classes of a classifier grouped at each rank (made once per taxonomy).

    Attributes:
        class_ids: the classes, in output order.
        class_ranks: the rank of each class.
        levels: for each rank of :data:`ROLLUP_RANKS` that groups classes differently from the rank
            before it, (rank, group taxon ids, 0/1 matrix classes x groups).
        kingdom: the one kingdom all classes share, or None.
    """

    class_ids: tuple[str, ...]
    class_ranks: tuple[str, ...]
    levels: tuple[tuple[str, tuple[str, ...], np.ndarray], ...]
    kingdom: str | None

    @classmethod
    def from_taxonomy(cls, taxonomy: ClassTaxonomy) -> Rollup:
        """Group the classes of ``taxonomy`` at every roll-up rank."""
        levels = []
        n_previous = taxonomy.num_classes
        for rank in ROLLUP_RANKS:  # ranks nest, so the same number of groups means the same grouping
            groups, matrix = taxonomy.group_matrix(rank)
            if len(groups) < n_previous:
                levels.append((rank, groups, matrix))
                n_previous = len(groups)
        kingdoms = {taxonomy.ancestor(c, "kingdom") for c in taxonomy.class_ids}
        kingdom = next(iter(kingdoms)) if len(kingdoms) == 1 and None not in kingdoms else None
        ranks = tuple(taxonomy.taxa[c].rank for c in taxonomy.class_ids)
        return cls(tuple(taxonomy.class_ids), ranks, tuple(levels), kingdom)


def full_probabilities(class_ids: Sequence[str], taxon_ids: Sequence[str], scores: Sequence[float]) -> np.ndarray:
    """A probability vector over all classes from the stored top-k scores.

    The top-k scores are kept exactly; the rest ``1 - sum(top-k)`` (clipped at 0) is spread evenly
    over the other classes (see the module docstring).

    Args:
        class_ids: the classifier's classes, in output order.
        taxon_ids: the top-k taxon ids, best first.
        scores: their calibrated probabilities.

    Returns:
        ``float64`` (C,).

    Raises:
        InputDataError: a taxon that is not a class, a taxon listed twice, or a score outside 0..1.
    """
    index = {c: i for i, c in enumerate(class_ids)}
    probs = np.zeros(len(class_ids), dtype=np.float64)
    known = np.zeros(len(class_ids), dtype=bool)
    for taxon, score in zip(taxon_ids, scores, strict=True):
        if taxon not in index:
            raise InputDataError(f"classification names taxon {taxon!r}, which is not a class of the classifier "
                                 f"({len(class_ids)} classes); use the checkpoint that wrote the classifications.")
        if known[index[taxon]]:
            raise InputDataError(f"taxon {taxon!r} appears twice in one detection's top-k scores.")
        if not 0.0 <= float(score) <= 1.0 + 1e-6:
            raise InputDataError(f"score {score!r} of taxon {taxon!r} is not a probability (0..1).")
        probs[index[taxon]] = float(score)
        known[index[taxon]] = True
    rest = int((~known).sum())
    if rest:
        probs[~known] = max(0.0, 1.0 - float(probs[known].sum())) / rest
    return probs


def combine(probabilities: np.ndarray, context: ContextFactors | None, *, weights: FusionWeights,
            range_outside_factor: float, min_prior_information_nats: float) -> tuple[np.ndarray, np.ndarray]:
    """Classifier probabilities x context evidence in log space (step 2 of the module docstring).

    Args:
        probabilities: (C,) or (N, C) calibrated classifier probabilities.
        context: the evidence with the same shape, or None (no context).
        weights: the bounded weights.
        range_outside_factor: multiplier outside a range map (0..1].
        min_prior_information_nats: the gate's threshold.

    Returns:
        The fused probabilities (same shape; rows where the prior was not applied are the input,
        unchanged) and a boolean array (shape without the class axis): prior applied.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if context is None:
        return p.copy(), np.zeros(p.shape[:-1], dtype=bool)
    log_factor = weights.place * np.asarray(context.place_log_ratio, dtype=np.float64)
    if context.activity_log_ratio is not None:
        log_factor = log_factor + weights.activity * np.asarray(context.activity_log_ratio, dtype=np.float64)
    if context.in_range is not None and range_outside_factor < 1.0:
        log_factor = log_factor + np.where(np.asarray(context.in_range) > 0.5, 0.0, np.log(range_outside_factor))
    log_factor = np.broadcast_to(log_factor, p.shape)
    log_factor = log_factor - log_factor.max(axis=-1, keepdims=True)
    factor = np.exp(log_factor)
    reference = np.broadcast_to(np.asarray(context.reference, dtype=np.float64), p.shape)
    q = reference * factor
    q = q / q.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(q > 0, q * (np.log(q) - np.log(reference)), 0.0).sum(axis=-1)
    applied = kl >= max(min_prior_information_nats, 1e-12)
    fused = p * factor
    total = fused.sum(axis=-1, keepdims=True)
    fused = np.divide(fused, total, out=p.copy(), where=total > 0)
    return np.where(applied[..., None], fused, p), applied


def decide(probabilities: np.ndarray, *, unknown_score: float, rollup: Rollup, thresholds: FusionThresholds,
           prior_applied: bool) -> FusedLabel:
    """The label of one probability vector (steps 1 and 3 of the module docstring).

    Args:
        probabilities: (C,) fused (or classifier) probabilities over ``rollup.class_ids``.
        unknown_score: the open-set score (0..1).
        rollup: the classes grouped by rank.
        thresholds: the named thresholds.
        prior_applied: the context prior changed ``probabilities`` (sets the source).

    Returns:
        The decision.
    """
    if unknown_score >= thresholds.unknown_min_score:
        return FusedLabel(rollup.kingdom, "kingdom" if rollup.kingdom else None, float(unknown_score),
                          SOURCE_UNKNOWN)
    p = np.asarray(probabilities, dtype=np.float64)
    best = int(np.argmax(p))
    if p[best] >= thresholds.species_min_score:
        return FusedLabel(rollup.class_ids[best], rollup.class_ranks[best], float(p[best]),
                          SOURCE_CLASSIFIER_PRIOR if prior_applied else SOURCE_CLASSIFIER)
    for rank, groups, matrix in rollup.levels:
        mass = p @ matrix
        top = int(np.argmax(mass))
        if mass[top] >= thresholds.rollup_min_score:
            return FusedLabel(groups[top], rank, float(min(mass[top], 1.0)), f"rollup_to_{rank}")
    return FusedLabel(None, None, float(p[best]), SOURCE_UNKNOWN)


def fuse_detection(*, probabilities: np.ndarray, unknown_score: float, context: ContextFactors | None,
                   weights: FusionWeights, thresholds: FusionThresholds, rollup: Rollup) -> FusedLabel:
    """The label of one detection: unknown check, prior, roll-up (the module docstring's steps).

    Args:
        probabilities: (C,) calibrated classifier probabilities (e.g. from :func:`full_probabilities`).
        unknown_score: the classifier's open-set score (0..1).
        context: the detection's context evidence, or None (then the classifier decides alone).
        weights: bounded weights of the evidence.
        thresholds: the named thresholds.
        rollup: the classes grouped by rank (:meth:`Rollup.from_taxonomy`).

    Returns:
        ``(label, score, source)`` as a :class:`FusedLabel`.
    """
    fused, applied = combine(probabilities, context, weights=weights,
                             range_outside_factor=thresholds.range_outside_factor,
                             min_prior_information_nats=thresholds.min_prior_information_nats)
    return decide(fused, unknown_score=unknown_score, rollup=rollup, thresholds=thresholds,
                  prior_applied=bool(applied))


def vote_sequence(probabilities: np.ndarray, unknown_scores: np.ndarray) -> tuple[np.ndarray, float]:
    """The pooled evidence of the detections of one sequence (burst).

    Args:
        probabilities: (M, C) fused probabilities of the sequence's detections.
        unknown_scores: (M,) their open-set scores.

    Returns:
        The mean probability vector (C,) and the mean unknown score.

    Raises:
        InputDataError: no detections.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or not len(p):
        raise InputDataError("a sequence vote needs at least one detection's probabilities, shape (M, C).")
    return p.mean(axis=0), float(np.mean(unknown_scores))


def stack_factors(factors: Sequence[ContextFactors | None], reference: np.ndarray) -> ContextFactors:
    """Rows of context evidence as one batch (N, C) for :func:`combine`.

    A missing part of a row is filled so that it has no effect: no context or no place gives a
    zero log ratio, no time a zero activity ratio, no range test "inside".

    Args:
        factors: the evidence of each detection (None: no context).
        reference: (C,) the global prior the batch shares.

    Returns:
        One :class:`ContextFactors` whose arrays are (N, C) (``level`` is ``"mixed"``).
    """
    n_classes = len(reference)
    place = np.zeros((len(factors), n_classes))
    activity = np.zeros((len(factors), n_classes))
    in_range = np.ones((len(factors), n_classes))
    for row, f in enumerate(factors):
        if f is None:
            continue
        place[row] = f.place_log_ratio
        if f.activity_log_ratio is not None:
            activity[row] = f.activity_log_ratio
        if f.in_range is not None:
            in_range[row] = f.in_range
    return ContextFactors(np.asarray(reference, dtype=np.float64), place, activity, in_range, "mixed")
