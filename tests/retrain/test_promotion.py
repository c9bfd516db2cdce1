"""The promotion rule: a pure function with named thresholds that says why."""

from __future__ import annotations

import numpy as np
import pytest

from ecowatch.classify.evaluate import classification_report
from ecowatch.retrain.promotion import decide_promotion

CLASSES = ("a", "b", "c")


def report(correct: dict[str, int], per_class: int = 20):
    """A report over ``per_class`` crops of each class, ``correct[c]`` of them right (the rest: the next class)."""
    truth, pred = [], []
    for i, c in enumerate(CLASSES):
        truth += [i] * per_class
        pred += [i] * correct[c] + [(i + 1) % len(CLASSES)] * (per_class - correct[c])
    return classification_report(np.array(pred), np.array(truth), CLASSES)


RULE = dict(min_macro_f1_gain=0.02, max_class_recall_drop=0.10, min_holdout_crops=20)


def test_first_model_becomes_champion() -> None:
    decision = decide_promotion(challenger=report({"a": 10, "b": 10, "c": 10}), champion=None, **RULE)
    assert decision.promote and decision.champion_macro_f1 is None
    assert "no champion yet" in decision.reasons[0]


def test_better_challenger_is_promoted_with_its_evidence() -> None:
    champion, challenger = report({"a": 14, "b": 14, "c": 14}), report({"a": 18, "b": 16, "c": 13})
    decision = decide_promotion(challenger=challenger, champion=champion, **RULE)
    assert decision.promote
    assert decision.macro_f1_gain == pytest.approx(challenger.macro_f1 - champion.macro_f1)
    assert decision.macro_f1_gain > 0.02
    assert decision.recall_drops == pytest.approx({"a": -0.2, "b": -0.1, "c": 0.05})
    assert any("gains at least 0.020" in r for r in decision.reasons)
    assert any("largest drop: c 0.050" in r for r in decision.reasons)
    record = decision.to_record()
    assert record["promote"] is True and record["min_macro_f1_gain"] == 0.02 and record["holdout_crops"] == 60


def test_small_gain_is_not_enough() -> None:
    decision = decide_promotion(challenger=report({"a": 15, "b": 14, "c": 14}),
                                champion=report({"a": 14, "b": 14, "c": 14}), **{**RULE, "min_macro_f1_gain": 0.05})
    assert not decision.promote and "does not gain the required 0.050" in decision.reasons[0]


def test_a_class_that_loses_too_much_recall_blocks_promotion() -> None:
    # macro-F1 rises a lot, but class c collapses
    decision = decide_promotion(challenger=report({"a": 20, "b": 20, "c": 9}),
                                champion=report({"a": 12, "b": 12, "c": 13}), **RULE)
    assert decision.macro_f1_gain > 0.02 and not decision.promote
    assert decision.reasons[0] == ("recall of c falls by 0.200 (0.650 -> 0.450), more than the tolerated 0.100")


def test_too_few_holdout_crops_promote_nothing() -> None:
    decision = decide_promotion(challenger=report({"a": 5, "b": 5, "c": 5}, per_class=5), champion=None,
                                **{**RULE, "min_holdout_crops": 20})
    assert not decision.promote and "fewer than the 20 needed" in decision.reasons[0]


def test_reports_must_cover_the_same_crops() -> None:
    with pytest.raises(ValueError, match="same holdout crops"):
        decide_promotion(challenger=report({"a": 5, "b": 5, "c": 5}), champion=report({"a": 5, "b": 5, "c": 5}, 10),
                         **RULE)
