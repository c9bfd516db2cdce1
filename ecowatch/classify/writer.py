"""Writing classifications to the results store, one transaction per batch.

Each classified detection gets ``top_k`` rows in ``classifications`` (rank 1 = best), keyed by
(detection id, model name, model version, rank), with the calibrated probability, the temperature
and the unknown-species score. Inserts ignore existing keys, and the stage selects only detections
without rows of the model version, so a killed run resumes at the first uncommitted batch and a
re-run adds nothing. Every classified detection has at least one row, so the rows themselves are
the "done" bookkeeping: no separate table is needed.

A detection whose image can no longer be decoded gets no rows and a ``classify_unreadable`` flag on
its media row; the next run tries it again.

In a distributed run (several processes, see :mod:`ecowatch.distributed`) the same rows go to
the process's shard instead, one line per batch, and rank 0 merges every shard into the store
when prediction ends (:class:`~ecowatch.shards.ShardSink`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ecowatch.classify.predict import DetectionScores
from ecowatch.shards import ShardRecord, ShardSink
from ecowatch.store import Store
from ecowatch.store import schema as S
from ecowatch.store_writer import StoreBatchWriter

#: Flag put on a media row whose file cannot be decoded by the classify stage.
CLASSIFY_UNREADABLE = "classify_unreadable"

#: The tables a classification batch fills, parents first.
CLASSIFY_TABLES = (S.classifications, S.media_flags)


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


class StoreClassificationWriter(StoreBatchWriter):
    """Writes each predicted batch into the store (``write_on_batch_end``), or into a shard.

    Args:
        store: the results store.
        model_name: recorded in ``classifications.model_name``.
        model_version: recorded in ``classifications.model_version``.
        temperature: the calibration temperature recorded with every row.
        run_id: the pipeline run writing the rows.
        shards: in a distributed run, this process's shard: batches are appended to it, and when
            prediction ends rank 0 merges every process's shard into the store (then ``counts``
            of rank 0 are those of the whole run). None: each batch is committed to the store.
    """

    def __init__(self, store: Store, *, model_name: str, model_version: str, temperature: float, run_id: str,
                 shards: ShardSink | None = None) -> None:
        super().__init__(store, tables=CLASSIFY_TABLES, counted=S.classifications, run_id=run_id, shards=shards)
        self.model_name = model_name
        self.model_version = model_version
        self.temperature = float(temperature)
        self.counts = ClassifyCounts()

    def count(self, prediction: Sequence[DetectionScores], record: ShardRecord, inserted: int) -> None:
        """Add a written batch to :attr:`counts`."""
        self.counts.batches += 1
        self.counts.detections_done += len(prediction) - len(record["failed"])
        self.counts.detections_failed += len(record["failed"])
        self.counts.rows += inserted
        self.counts.unknown += sum(1 for item in prediction if item.error is None and item.unknown_score >= 0.5)

    def tally(self) -> _MergeTally:
        """Counts of merged shard records (distributed run)."""
        return _MergeTally()

    def record(self, prediction: Sequence[DetectionScores]) -> ShardRecord:
        """The rows of some detections, without ``run_id`` (filled in when they are inserted).

        Returns:
            ``{"rows": {table: rows}, "failed": [ids of detections whose image could not be decoded]}``.
        """
        rows: list[dict[str, Any]] = []
        flags: dict[str, dict[str, Any]] = {}
        failed: list[str] = []
        for item in prediction:
            if item.error is not None:
                flags[item.media_id] = {"media_id": item.media_id, "flag": CLASSIFY_UNREADABLE,
                                        "message": f"the classify stage could not decode the file: {item.error}"}
                failed.append(item.detection_id)
                continue
            for rank, (taxon_id, score) in enumerate(zip(item.taxon_ids, item.scores, strict=True), start=1):
                rows.append({
                    "detection_id": item.detection_id, "model_name": self.model_name,
                    "model_version": self.model_version, "rank": rank, "taxon_id": taxon_id, "score": score,
                    "temperature": self.temperature, "unknown_score": item.unknown_score,
                })
        return {"rows": {S.classifications.name: rows, S.media_flags.name: list(flags.values())}, "failed": failed}


class _MergeTally:
    """Counts of the merged records of a distributed run, each detection once."""

    def __init__(self) -> None:
        self.batches = 0
        self.unknown: dict[str, bool] = {}  # detection id -> unknown score >= 0.5
        self.failed: set[str] = set()

    def __call__(self, record: ShardRecord) -> None:
        self.batches += 1
        self.unknown.update((row["detection_id"], row["unknown_score"] >= 0.5)
                            for row in record["rows"].get(S.classifications.name, ()))
        self.failed.update(record.get("failed", ()))

    def counts(self, inserted: int) -> ClassifyCounts:
        return ClassifyCounts(detections_done=len(self.unknown), detections_failed=len(self.failed - set(self.unknown)),
                              rows=inserted, batches=self.batches, unknown=sum(self.unknown.values()))
