"""Writing classifications to the results store, one transaction per batch.

Each classified detection gets ``top_k`` rows in ``classifications`` (rank 1 = best), keyed by
(detection id, model name, model version, rank), with the calibrated probability, the temperature
and the unknown-species score. Inserts ignore existing keys, and the stage selects only detections
without rows of the model version, so a killed run resumes at the first uncommitted batch and a
re-run adds nothing. Every classified detection has at least one row, so the rows themselves are
the "done" bookkeeping: no separate table is needed.

A detection whose image can no longer be decoded gets no rows and a ``classify_unreadable`` flag on
its media row; the next run tries it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lightning.pytorch.callbacks import BasePredictionWriter

from ecowatch.classify.predict import DetectionScores
from ecowatch.store import Store
from ecowatch.store import schema as S

#: Flag put on a media row whose file cannot be decoded by the classify stage.
CLASSIFY_UNREADABLE = "classify_unreadable"


@dataclass
class ClassifyCounts:
    """What the writer has written so far.

    Attributes:
        detections_done: detections that received classification rows.
        detections_failed: detections whose image could not be decoded (media flagged).
        rows: ``classifications`` rows inserted.
        batches: batches committed.
        unknown: detections whose unknown score is at or above 0.5.
    """

    detections_done: int = 0
    detections_failed: int = 0
    rows: int = 0
    batches: int = 0
    unknown: int = 0


class StoreClassificationWriter(BasePredictionWriter):
    """Writes each predicted batch into the store (``write_on_batch_end``).

    Args:
        store: the results store.
        model_name: recorded in ``classifications.model_name``.
        model_version: recorded in ``classifications.model_version``.
        temperature: the calibration temperature recorded with every row.
        run_id: the pipeline run writing the rows.
    """

    def __init__(self, store: Store, *, model_name: str, model_version: str, temperature: float, run_id: str) -> None:
        super().__init__(write_interval="batch")
        self.store = store
        self.model_name = model_name
        self.model_version = model_version
        self.temperature = float(temperature)
        self.run_id = run_id
        self.counts = ClassifyCounts()

    def write_on_batch_end(
        self,
        trainer: Any,
        pl_module: Any,
        prediction: Sequence[DetectionScores],
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Insert one batch's rows and flags in one transaction."""
        self.write(prediction)

    def write(self, prediction: Sequence[DetectionScores]) -> None:
        """Insert the rows of some detections in one transaction (also usable without a Trainer)."""
        rows: list[dict[str, Any]] = []
        flags: dict[str, dict[str, Any]] = {}
        done = failed = unknown = 0
        for item in prediction:
            if item.error is not None:
                flags[item.media_id] = {"media_id": item.media_id, "flag": CLASSIFY_UNREADABLE,
                                        "message": f"the classify stage could not decode the file: {item.error}"}
                failed += 1
                continue
            done += 1
            unknown += item.unknown_score >= 0.5
            for rank, (taxon_id, score) in enumerate(zip(item.taxon_ids, item.scores, strict=True), start=1):
                rows.append({
                    "detection_id": item.detection_id, "model_name": self.model_name,
                    "model_version": self.model_version, "rank": rank, "taxon_id": taxon_id, "score": score,
                    "temperature": self.temperature, "unknown_score": item.unknown_score, "run_id": self.run_id,
                })
        with self.store.transaction() as conn:
            inserted = self.store.insert_ignore(conn, S.classifications, rows)
            self.store.insert_ignore(conn, S.media_flags, list(flags.values()))
        self.counts.batches += 1
        self.counts.detections_done += done
        self.counts.detections_failed += failed
        self.counts.rows += inserted
        self.counts.unknown += unknown
