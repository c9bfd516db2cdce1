"""What a retrain run logs about its comparison: flat metrics and the decision / evaluation files.

Metrics: ``challenger.*`` and ``champion.*`` (``macro_f1``, ``top1``, ``crops``,
``unknown_flagged``, ``recall.<taxon>``, ``f1.<taxon>``; see
:meth:`ecowatch.retrain.holdout.HoldoutEvaluation.metrics`), ``decision.promote`` (1/0) and
``decision.macro_f1_gain``. Files (the run's ``retrain/`` artefacts): ``decision.json`` (the
decision with its reasons and thresholds, the champion version compared with, the holdout
locations, the labels fingerprint, how the challenger started) and ``evaluation.json`` (both
models' figures with confusion matrices).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ecowatch.retrain.holdout import HoldoutEvaluation
from ecowatch.retrain.promotion import PromotionDecision


def comparison_metrics(challenger: HoldoutEvaluation, champion: HoldoutEvaluation | None,
                       decision: PromotionDecision) -> dict[str, float]:
    """The flat metrics of one comparison (see the module docstring)."""
    metrics = {**challenger.metrics("challenger"), "decision.promote": float(decision.promote)}
    if champion is not None:
        metrics.update(champion.metrics("champion"))
    if decision.macro_f1_gain is not None:
        metrics["decision.macro_f1_gain"] = decision.macro_f1_gain
    return metrics


def write_comparison_files(folder: Path, *, decision: PromotionDecision, challenger: HoldoutEvaluation,
                           champion: HoldoutEvaluation | None, champion_version: str | None,
                           holdout_locations: Sequence[str], labels_fingerprint: str, init_mode: str) -> Path:
    """Write ``decision.json`` and ``evaluation.json`` into ``folder`` (created); returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record = {"decision": decision.to_record(), "champion_version": champion_version,
              "holdout_locations": list(holdout_locations), "labels_fingerprint": labels_fingerprint,
              "init": init_mode}
    (folder / "decision.json").write_text(json.dumps(record, indent=1, sort_keys=True))
    evaluation = {"challenger": challenger.to_record(), "champion": champion.to_record() if champion else None}
    (folder / "evaluation.json").write_text(json.dumps(evaluation, indent=1, sort_keys=True))
    return folder
