"""The part every prediction writer shares: one store transaction per batch, or a shard line.

:class:`StoreBatchWriter` is a Lightning ``BasePredictionWriter``. A subclass says which rows a
batch makes (:meth:`~StoreBatchWriter.record`, rows without ``run_id``), how they add to its
counts (:meth:`~StoreBatchWriter.count`) and how merged shard records are counted in a
distributed run (:meth:`~StoreBatchWriter.tally`). In one process each batch is committed in one
transaction; in several (see :mod:`ecowatch.shards`) each process appends its batches to its shard
and, when prediction ends, rank 0 merges every shard into the store (its counts are then those of
the whole run).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from lightning.pytorch.callbacks import BasePredictionWriter

from ecowatch.shards import ShardRecord, ShardSink, insert_rows
from ecowatch.store import Store


class MergeTally(Protocol):
    """Counts merged shard records, each item once (the distributed sampler may repeat an item)."""

    def __call__(self, record: ShardRecord) -> None: ...

    def counts(self, inserted: int) -> Any: ...


class StoreBatchWriter(BasePredictionWriter, ABC):
    """Writes each predicted batch into the store, or into this process's shard.

    Args:
        store: the results store.
        tables: the tables a batch fills, parents first.
        counted: the table whose inserted rows the counts report.
        run_id: the pipeline run writing the rows.
        shards: in a distributed run, this process's shard; None: each batch is committed.
    """

    def __init__(self, store: Store, *, tables: Sequence[sa.Table], counted: sa.Table, run_id: str,
                 shards: ShardSink | None) -> None:
        super().__init__(write_interval="batch")
        self.store = store
        self.tables = tuple(tables)
        self.counted = counted
        self.run_id = run_id
        self.shards = shards

    @abstractmethod
    def record(self, prediction: Sequence[Any]) -> ShardRecord:
        """The rows of a batch, ``{"rows": {table name: rows}, ...}``, without ``run_id``."""

    @abstractmethod
    def count(self, prediction: Sequence[Any], record: ShardRecord, inserted: int) -> None:
        """Add a written batch to the counts (``inserted``: rows of the counted table)."""

    @abstractmethod
    def tally(self) -> MergeTally:
        """A fresh tally of merged shard records."""

    def write_on_batch_end(self, trainer: Any, pl_module: Any, prediction: Sequence[Any],
                           batch_indices: Sequence[int] | None, batch: Any, batch_idx: int,
                           dataloader_idx: int = 0) -> None:
        """Write one batch (one transaction, or one shard line)."""
        self.write(prediction)

    def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
        """Distributed run: wait for every process, rank 0 merges the shards, then all go on."""
        if self.shards is None:
            return
        tally = self.tally()
        result = self.shards.finish(self.store, run_id=self.run_id, on_record=tally)
        if result is not None:
            self.counts = tally.counts(result.inserted[self.counted.name])

    def write(self, prediction: Sequence[Any]) -> None:
        """Write the rows of some predictions (also usable without a Trainer)."""
        record = self.record(prediction)
        rows = record["rows"]
        if self.shards is not None:
            self.shards.append(record)
            inserted = len(rows[self.counted.name])
        else:
            with self.store.transaction() as conn:
                inserted = insert_rows(self.store, conn, self.tables, rows, run_id=self.run_id)[self.counted.name]
        self.count(prediction, record, inserted)
