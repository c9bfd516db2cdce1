"""Shards of a distributed prediction run, and their merge into the results store, exactly once.

With more than one process (see :mod:`ecowatch.distributed`), the prediction writers do not write
the results store batch by batch; each process appends its batches to its own shard file, and at
the end of prediction rank 0 merges every shard into the store:

``<models>/shards/<stage>/<model version>/<dump>/<content key>/rank-<r>.jsonl``

- A shard is a JSON-lines file. Each line is one predicted batch, self-contained: the rows it
  adds to each table (without ``run_id``, which the merging run fills in) plus a few counts.
  Lines are flushed and fsynced one by one, so a process that dies leaves a shard that is
  complete up to its last whole line; a torn last line is skipped.
- The content key is a hash of the ids the run selected: every process selects the same pending
  list, so they agree on the folder without talking to each other.
- The merge inserts the rows of whole lines in transactions with insert-ignore. Primary keys are
  deterministic (detection ids, ``(media_id, detector_version)``, ...), so rows written twice
  (a sample Lightning's sampler gives two processes, a shard merged again after a crash during
  its merge) end up once. Merged shards are deleted.
- A run that died before its merge left its shards behind. The next run of the same stage, model
  version and dump merges them first (:func:`merge_leftovers`), before it selects what is still
  pending, so nothing predicted is lost and nothing is predicted twice.

All processes must see the same shard folder: on several machines the models folder has to be on
a shared file system (rank 0 checks that it read every line each process wrote). One nightly run
per dump at a time: a run merges and deletes the shards it finds for its dump.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ecowatch.errors import StoreError
from ecowatch.store import Store

log = logging.getLogger(__name__)

#: Version of the line format; a shard of another version is refused, not misread.
SHARD_FORMAT = 1
#: Rows inserted per merge transaction (whole lines only, so a line is never split).
MERGE_ROWS_PER_TRANSACTION = 5000
#: Test-only hook, inert unless set: ``<stage>:<rank>:<n>`` makes that rank's process exit with
#: status 1 right after it wrote its n-th batch to its shard (a rank dying mid-run).
TEST_DIE_AFTER_BATCHES = "ECOWATCH_TEST_DIE_AFTER_BATCHES"

#: One shard line: table name -> rows (column name -> value), plus the stage's own counts.
ShardRecord = dict[str, Any]


def content_key(ids: Iterable[str]) -> str:
    """A short hash of an ordered list of ids: the folder name every process agrees on.

    Args:
        ids: the selected ids (media ids, detection ids), in selection order.

    Returns:
        The first 16 hex digits of the sha256 of the ids, one per line.
    """
    digest = hashlib.sha256()
    for value in ids:
        digest.update(value.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ShardPlace:
    """Where the shards of one stage, model version and dump live.

    Attributes:
        root: the shards folder (``<models>/shards`` in a nightly run).
        stage: ``detect`` or ``classify``.
        version: the model version (sha256 prefix of the weights).
        dump_id: the dump's catalog name.
    """

    root: Path
    stage: str
    version: str
    dump_id: str

    @property
    def folder(self) -> Path:
        """The folder of this stage, version and dump (one subfolder per run)."""
        return Path(self.root) / _safe(self.stage) / _safe(self.version) / _safe(self.dump_id)

    def run_folder(self, key: str) -> Path:
        """The folder of one run's shards (``key``: :func:`content_key` of its selection)."""
        return self.folder / _safe(key)

    def shard_path(self, key: str, rank: int) -> Path:
        """The shard of one process of one run."""
        return self.run_folder(key) / f"rank-{rank:05d}.jsonl"

    def shards(self, key: str | None = None) -> list[Path]:
        """Shard files present, of one run (``key``) or of every run, sorted (run, then rank)."""
        base = self.run_folder(key) if key is not None else self.folder
        pattern = "rank-*.jsonl" if key is not None else "*/rank-*.jsonl"
        return sorted(base.glob(pattern)) if base.is_dir() else []


class ShardFile:
    """One process's append-only shard: one :data:`ShardRecord` per line, flushed and fsynced.

    Args:
        path: the shard file (its folder is created); an existing file is appended to.
        stage: the stage name, for the test hook (:data:`TEST_DIE_AFTER_BATCHES`).
        rank: this process's global rank, likewise.
    """

    def __init__(self, path: Path, *, stage: str, rank: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")  # noqa: SIM115 - closed by close(), lines are fsynced one by one
        if self._file.tell() > 0:
            with open(self.path, "rb") as existing:
                existing.seek(-1, os.SEEK_END)
                if existing.read(1) != b"\n":  # a torn line of a process that died: never glue onto it
                    self._file.write(b"\n")
        self.records = 0
        self._die_after = _test_die_after(stage, rank)

    def append(self, record: ShardRecord) -> None:
        """Write one record as one line, then flush and fsync it."""
        line = json.dumps({"format": SHARD_FORMAT, **record}, separators=(",", ":"), default=_json_default)
        self._file.write(line.encode() + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.records += 1
        if self._die_after is not None and self.records >= self._die_after:
            log.warning("%s=%s: exiting now, as the test asked", TEST_DIE_AFTER_BATCHES,
                        os.environ.get(TEST_DIE_AFTER_BATCHES))
            os._exit(1)

    def close(self) -> None:
        """Close the file (every line is already on disk)."""
        if not self._file.closed:
            self._file.close()


def read_records(path: Path) -> Iterator[ShardRecord]:
    """The complete records of a shard, in order; a torn or unreadable line is skipped with a warning.

    Raises:
        StoreError: a line of another shard format version.
    """
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                log.warning("%s: line %d is incomplete (its process died while writing it); skipped, its items "
                            "stay pending", path, number)
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                log.warning("%s: line %d is not valid JSON; skipped, its items stay pending", path, number)
                continue
            if record.get("format") != SHARD_FORMAT:
                raise StoreError(f"{path}: line {number} has shard format {record.get('format')!r}, this ecowatch "
                                 f"reads format {SHARD_FORMAT}; merge it with the ecowatch version that wrote it, "
                                 "or delete the file (its items are then predicted again).")
            yield record


@dataclass
class MergeResult:
    """What a merge wrote.

    Attributes:
        files: shard files merged.
        records: complete records (batches) read.
        records_per_file: records read per file, in the order merged.
        inserted: rows inserted per table (rows already in the store are not counted).
    """

    files: int = 0
    records: int = 0
    records_per_file: list[int] = field(default_factory=list)
    inserted: dict[str, int] = field(default_factory=dict)


def insert_rows(store: Store, conn: sa.Connection, tables: Sequence[sa.Table],
                rows: Mapping[str, Sequence[Mapping[str, Any]]], *, run_id: str) -> dict[str, int]:
    """Insert-ignore rows into tables in the given order, filling in ``run_id`` where a table has one.

    Args:
        store: the results store.
        conn: a connection inside a transaction.
        tables: the tables, parents before children (e.g. detections before detector_done).
        rows: table name to rows; tables absent or empty are skipped.
        run_id: the run recorded in the ``run_id`` column of tables that have one.

    Returns:
        Rows inserted per table name.

    Raises:
        StoreError: ``rows`` names a table that is not in ``tables``.
    """
    unknown = sorted(set(rows) - {table.name for table in tables})
    if unknown:
        raise StoreError(f"rows for tables {unknown}, expected only {[t.name for t in tables]}")
    inserted: dict[str, int] = {}
    for table in tables:
        batch = list(rows.get(table.name) or ())
        if "run_id" in table.c:
            batch = [{**row, "run_id": run_id} for row in batch]
        inserted[table.name] = store.insert_ignore(conn, table, batch)
    return inserted


def merge_shards(
    store: Store,
    paths: Sequence[Path],
    *,
    tables: Sequence[sa.Table],
    run_id: str,
    on_record: Callable[[ShardRecord], None] | None = None,
    rows_per_transaction: int = MERGE_ROWS_PER_TRANSACTION,
) -> MergeResult:
    """Insert every complete record of some shard files into the store, whole records per transaction.

    Idempotent: merging a shard twice, or records that overlap, writes each row once. The files
    are left in place (see :func:`remove_shards`).

    Args:
        store: the results store.
        paths: shard files, merged in this order.
        tables: the tables the records fill, parents first (see :func:`insert_rows`).
        run_id: recorded in the rows' ``run_id`` column.
        on_record: called with every record read (to count what was merged).
        rows_per_transaction: rows gathered before a transaction is committed (a record is never split).

    Returns:
        Files, records and inserted rows.

    Raises:
        StoreError: a record of another format, or one naming an unexpected table.
    """
    result = MergeResult(inserted={table.name: 0 for table in tables})
    pending: dict[str, list[Mapping[str, Any]]] = {}
    size = 0

    def commit() -> None:
        nonlocal pending, size
        if size:
            with store.transaction() as conn:
                for name, count in insert_rows(store, conn, tables, pending, run_id=run_id).items():
                    result.inserted[name] += count
        pending, size = {}, 0

    for path in paths:
        read = 0
        for record in read_records(path):
            read += 1
            for name, rows in record.get("rows", {}).items():
                pending.setdefault(name, []).extend(rows)
                size += len(rows)
            if on_record is not None:
                on_record(record)
            if size >= rows_per_transaction:
                commit()
        result.files += 1
        result.records += read
        result.records_per_file.append(read)
    commit()
    return result


def remove_shards(paths: Iterable[Path], *, up_to: Path) -> None:
    """Delete merged shard files, then their folders that became empty, up to (not including) ``up_to``."""
    folders = set()
    for path in paths:
        Path(path).unlink(missing_ok=True)
        folders.add(Path(path).parent)
    stop = Path(up_to).resolve()
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        current = folder.resolve()
        while current != stop and stop in current.parents:
            try:
                current.rmdir()
            except OSError:  # not empty (another run's shards, or a file we did not write): leave it
                break
            current = current.parent


def merge_leftovers(store: Store, place: ShardPlace, *, tables: Sequence[sa.Table], run_id: str) -> MergeResult:
    """Merge and delete the shards an earlier run of this stage, version and dump left behind.

    A distributed run that died (a process killed, a node lost) before its merge leaves its shards;
    their complete lines are predictions already paid for. Called by rank 0 before it selects the
    pending items, so those items count as done.

    Returns:
        What was merged (nothing when no shard was left).
    """
    paths = place.shards()
    if not paths:
        return MergeResult()
    result = merge_shards(store, paths, tables=tables, run_id=run_id)
    remove_shards(paths, up_to=place.root)
    log.info("%s: merged %d batches from %d shard files an interrupted run left in %s (%s rows inserted)",
             place.stage, result.records, result.files, place.folder,
             ", ".join(f"{name} {count}" for name, count in result.inserted.items()))
    return result


class ShardSink:
    """Where one process of a distributed prediction run puts its batches, and the merge at its end.

    Args:
        place: the shards of this stage, model version and dump.
        key: the run's :func:`content_key`.
        rank: this process's global rank.
        world_size: the number of processes.
        tables: the tables the records fill, parents first.
    """

    def __init__(self, place: ShardPlace, key: str, *, rank: int, world_size: int, tables: Sequence[sa.Table]) -> None:
        self.place = place
        self.key = key
        self.rank = rank
        self.world_size = world_size
        self.tables = tuple(tables)
        self.file = ShardFile(place.shard_path(key, rank), stage=place.stage, rank=rank)

    def append(self, record: ShardRecord) -> None:
        """Append one batch's record to this process's shard."""
        self.file.append(record)

    def finish(self, store: Store, *, run_id: str, on_record: Callable[[ShardRecord], None] | None = None
               ) -> MergeResult | None:
        """Close the shard; once every process has, rank 0 merges all shards of the run; all wait for it.

        Every process must call it (it is a collective): the first synchronisation makes sure every
        shard is complete on disk before rank 0 reads it, the second that no process goes on (e.g.
        selects the next stage's work) before the store holds every row.

        Args:
            store: the results store.
            run_id: recorded in the merged rows' ``run_id`` column.
            on_record: called by rank 0 with every merged record.

        Returns:
            What rank 0 merged; None in the other processes.

        Raises:
            StoreError: rank 0 could not read every line another process wrote (the shard folder
                is not shared between the machines), the processes selected different work, or a
                merge write failed.
        """
        from ecowatch.distributed import barrier, gather_ints

        self.file.close()
        gathered = gather_ints([self.rank, self.file.records, int(self.key[:12], 16)])
        written = {rank: records for rank, records, _ in gathered}
        result = None
        if self.rank == 0:
            keys = {rank: key for rank, _, key in gathered}
            if len(set(keys.values())) > 1:  # never expected: every process selects after rank 0's writes
                raise StoreError(
                    f"{self.place.stage}: the processes selected different work (selection keys "
                    f"{ {rank: f'{key:012x}' for rank, key in keys.items()} }), nothing was merged. Another process "
                    f"wrote the store while they selected; run again (what was predicted is merged first)."
                )
            result = self._merge(store, written, run_id=run_id, on_record=on_record)
        barrier()
        return result

    def _merge(self, store: Store, written: Mapping[int, int], *, run_id: str,
               on_record: Callable[[ShardRecord], None] | None) -> MergeResult:
        paths = [self.place.shard_path(self.key, rank) for rank in range(self.world_size)]
        present = [path for path in paths if path.is_file()]
        result = merge_shards(store, present, tables=self.tables, run_id=run_id, on_record=on_record)
        read = dict(zip(present, result.records_per_file, strict=True))
        short = [f"rank {rank} wrote {written[rank]} batches to {path}, {read.get(path, 0)} are readable"
                 for rank, path in enumerate(paths) if read.get(path, 0) < written.get(rank, 0)]
        if short:  # what was readable is merged (and stays in place: the next run merges it again, harmlessly)
            raise StoreError(
                f"{self.place.stage}: {'; '.join(short)}. Every process writes its shard under {self.place.root} "
                "and rank 0 merges them, so on several machines that folder (the catalog's models folder) must be "
                "on a shared file system. The readable batches are in the store; run again to predict the rest."
            )
        remove_shards(present, up_to=self.place.root)
        log.info("%s: merged %d batches of %d processes into the store (%s rows inserted)", self.place.stage,
                 result.records, self.world_size, ", ".join(f"{n} {c}" for n, c in result.inserted.items()))
        return result


def _test_die_after(stage: str, rank: int) -> int | None:
    text = os.environ.get(TEST_DIE_AFTER_BATCHES, "").strip()
    if not text:
        return None
    parts = text.split(":")
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        raise ValueError(f"{TEST_DIE_AFTER_BATCHES}={text!r}: expected <stage>:<rank>:<batches>, e.g. detect:1:1")
    if parts[0] != stage or int(parts[1]) != rank:
        return None
    return max(1, int(parts[2]))


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(name: str) -> str:
    """A name usable as one path component (dump ids and versions are short, plain names anyway)."""
    cleaned = _UNSAFE.sub("_", name).strip(".") or "_"
    return cleaned


def _json_default(value: Any) -> Any:
    """numpy scalars (and anything with ``item()``) as plain Python numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to a shard")
