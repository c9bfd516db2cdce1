"""The promotion rule: a challenger replaces the champion only if it is better on the same holdout.

:func:`decide_promotion` is one pure function with keyword-only, named thresholds (from
``conf/retrain.yaml``'s ``promotion`` section). It returns a :class:`PromotionDecision` with every
reason, for and against, so the decision logged to MLflow says why.

The rule, on the fixed location holdout (both models' figures over the same crops and classes):

1. at least ``min_holdout_crops`` crops, else nothing is promoted (the figures would be noise);
2. no champion yet: the challenger is promoted (the first model becomes champion);
3. the challenger's macro-F1 must exceed the champion's by at least ``min_macro_f1_gain``;
4. no class with holdout crops may lose more than ``max_class_recall_drop`` of recall.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ecowatch.classify.evaluate import ClassificationReport


@dataclass(frozen=True)
class PromotionDecision:
    """Whether the challenger is promoted, and why.

    Attributes:
        promote: the decision.
        reasons: one sentence per rule checked (the failing ones first when not promoted).
        challenger_macro_f1: the challenger's holdout macro-F1.
        champion_macro_f1: the champion's (None without a champion).
        macro_f1_gain: challenger minus champion (None without a champion).
        recall_drops: per class with holdout crops, champion recall minus challenger recall
            (positive: the challenger is worse on it).
        min_macro_f1_gain: the required gain.
        max_class_recall_drop: the tolerated per-class recall drop.
        holdout_crops: crops the figures come from.
    """

    promote: bool
    reasons: tuple[str, ...]
    challenger_macro_f1: float
    champion_macro_f1: float | None
    macro_f1_gain: float | None
    recall_drops: dict[str, float] = field(default_factory=dict)
    min_macro_f1_gain: float = 0.0
    max_class_recall_drop: float = 0.0
    holdout_crops: int = 0

    def to_record(self) -> dict[str, Any]:
        """JSON-ready record (as logged in ``decision.json``)."""
        record = asdict(self)
        record["reasons"] = list(self.reasons)
        return record


def decide_promotion(
    *,
    challenger: ClassificationReport,
    champion: ClassificationReport | None,
    min_macro_f1_gain: float,
    max_class_recall_drop: float,
    min_holdout_crops: int,
) -> PromotionDecision:
    """Decide whether the challenger replaces the champion (see the module docstring).

    Args:
        challenger: the challenger's figures on the holdout.
        champion: the champion's figures on the same crops and classes; None without a champion.
        min_macro_f1_gain: required macro-F1 gain, absolute (0.02: two points).
        max_class_recall_drop: tolerated recall loss of any one class, absolute (0.10).
        min_holdout_crops: fewer holdout crops and nothing is promoted.

    Returns:
        The decision with its reasons.

    Raises:
        ValueError: the two reports are not over the same classes and crops.
    """
    if champion is not None and (champion.class_ids != challenger.class_ids or champion.support != challenger.support):
        raise ValueError("champion and challenger must be evaluated on the same holdout crops and classes")
    ch = challenger.macro_f1
    common = dict(challenger_macro_f1=ch, min_macro_f1_gain=min_macro_f1_gain,
                  max_class_recall_drop=max_class_recall_drop, holdout_crops=challenger.n)
    if challenger.n < min_holdout_crops:
        return PromotionDecision(False, (
            f"the holdout has {challenger.n} crops, fewer than the {min_holdout_crops} needed for a comparison; "
            "label more crops at the holdout locations",), champion_macro_f1=champion.macro_f1 if champion else None,
            macro_f1_gain=None, **common)
    if ch != ch:  # NaN: no class with holdout crops
        return PromotionDecision(False, ("the challenger has no macro-F1 on the holdout (no crops of its classes)",),
                                 champion_macro_f1=champion.macro_f1 if champion else None, macro_f1_gain=None,
                                 **common)
    if champion is None:
        return PromotionDecision(True, (f"no champion yet: the challenger (holdout macro-F1 {ch:.3f}) becomes the "
                                        "champion",), champion_macro_f1=None, macro_f1_gain=None, **common)
    cp = champion.macro_f1 if champion.macro_f1 == champion.macro_f1 else 0.0
    gain = ch - cp
    drops = {c: champion.recall[c] - challenger.recall.get(c, 0.0) for c in sorted(champion.recall)}
    against, for_ = [], []
    if gain < min_macro_f1_gain:
        against.append(f"macro-F1 {cp:.3f} -> {ch:.3f} ({gain:+.3f}) does not gain the required "
                       f"{min_macro_f1_gain:.3f}")
    else:
        for_.append(f"macro-F1 {cp:.3f} -> {ch:.3f} ({gain:+.3f}) gains at least {min_macro_f1_gain:.3f}")
    losers = {c: d for c, d in drops.items() if d > max_class_recall_drop + 1e-12}
    for taxon, drop in sorted(losers.items(), key=lambda item: -item[1]):
        against.append(f"recall of {taxon} falls by {drop:.3f} ({champion.recall[taxon]:.3f} -> "
                       f"{challenger.recall.get(taxon, 0.0):.3f}), more than the tolerated {max_class_recall_drop:.3f}")
    if not losers:
        worst = max(drops.items(), key=lambda item: item[1], default=("-", 0.0))
        for_.append(f"no class loses more than {max_class_recall_drop:.3f} recall (largest drop: {worst[0]} "
                    f"{max(worst[1], 0.0):.3f})")
    return PromotionDecision(not against, tuple(against + for_), champion_macro_f1=cp, macro_f1_gain=gain,
                             recall_drops=drops, **common)
