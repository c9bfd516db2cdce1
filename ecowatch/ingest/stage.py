"""The ingest stage: an SD-card dump into media rows, flags, deployments and sequences.

Order of work in :func:`ingest_dump`:

1. upsert the deployments table and the ``dumps`` row;
2. scan the dump (sorted, streaming) in batches of ``batch_size`` files; per batch, one
   ``relpath IN (...)`` query drops files already ingested (no re-hashing);
3. probe the new files in the worker pool (hash, decode check, EXIF);
4. per batch in the main process: deployment assignment, ``duplicate_content`` against the
   store and earlier files of the batch, then one transaction writes the media rows and their
   flags (``insert_ignore``: a re-run never duplicates);
5. regroup the sequences of every deployment the dump touches.

A run killed at any point leaves only whole batches behind; the next run skips them and
finishes the rest, ending in the same rows as an uninterrupted run.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecowatch.config import IngestConfig
from ecowatch.errors import InputDataError
from ecowatch.ingest import flags as F
from ecowatch.ingest.assign import DeploymentIndex, StationLayout
from ecowatch.ingest.probe import FileFacts
from ecowatch.ingest.records import (
    MediaRef,
    dump_deployment_ids,
    first_by_sha256,
    known_relpaths,
    media_id_for,
    upsert_deployments,
    upsert_dump,
    write_batch,
)
from ecowatch.ingest.scan import ScannedFile, ScanStats, scan_dump
from ecowatch.ingest.sequences import assign_sequences
from ecowatch.ingest.workers import Prober
from ecowatch.store import Store
from ecowatch.tables import Deployment

log = logging.getLogger(__name__)

# Media types whose deployment matters: assignment flags are not raised for other files.
_ASSIGNABLE_TYPES = frozenset({"image", "video"})


@dataclass
class IngestSummary:
    """What one ingest run did.

    Attributes:
        files_seen: card-content files found in the dump (media names and AppleDouble files).
        files_new: files probed and recorded by this run.
        files_already_ingested: files skipped because the store already holds their relpath.
        media_ok: new media with status ``ok``.
        media_failed: new media with status ``failed``.
        media_skipped: new media with status ``skipped`` (videos, AppleDouble files).
        flags: flag name to the number of new media carrying it.
        sequences: sequences of the deployments this dump's media belong to, after regrouping.
        seconds: wall-clock duration of the run.
        files_ignored: files without a media extension, not recorded (README.txt, logs).
    """

    files_seen: int = 0
    files_new: int = 0
    files_already_ingested: int = 0
    media_ok: int = 0
    media_failed: int = 0
    media_skipped: int = 0
    flags: dict[str, int] = field(default_factory=dict)
    sequences: int = 0
    seconds: float = 0.0
    files_ignored: int = 0


def _batches(files: Iterator[ScannedFile], size: int) -> Iterator[list[ScannedFile]]:
    while batch := list(itertools.islice(files, size)):
        yield batch


def _unknown_only(
    store: Store, dump_id: str, batches: Iterator[list[ScannedFile]]
) -> Iterator[tuple[int, list[ScannedFile]]]:
    """Per batch: how many files the store already holds, and the others (one IN query per batch)."""
    for batch in batches:
        known = known_relpaths(store, dump_id, [f.relpath for f in batch])
        yield len(known), [f for f in batch if f.relpath not in known]


def _duplicate_flags(store: Store, dump_id: str, facts: Sequence[FileFacts]) -> dict[str, F.Flag]:
    """``duplicate_content`` flags of a batch, by relpath: the first copy is the original."""
    eligible = [f for f in facts if f.sha256 and f.size_bytes > 0 and f.media_type in _ASSIGNABLE_TYPES]
    originals: dict[str, MediaRef] = first_by_sha256(store, (f.sha256 for f in eligible))
    out: dict[str, F.Flag] = {}
    for item in eligible:
        original = originals.get(item.sha256)
        if original is None:
            originals[item.sha256] = MediaRef(media_id_for(dump_id, item.relpath), dump_id, item.relpath)
            continue
        out[item.relpath] = F.Flag(
            F.DUPLICATE_CONTENT,
            f"same content (sha256 {item.sha256[:12]}...) as media {original.media_id} "
            f"({original.dump_id}/{original.relpath})",
        )
    return out


def _media_row(item: FileFacts, *, dump_id: str, deployment_id: str | None, source: str, run_id: str) -> dict[str, Any]:
    exif = item.exif
    return {
        "media_id": media_id_for(dump_id, item.relpath),
        "dump_id": dump_id,
        "relpath": item.relpath,
        "deployment_id": deployment_id,
        "sha256": item.sha256,
        "size_bytes": item.size_bytes,
        "media_type": item.media_type,
        "status": item.status,
        "width": item.width,
        "height": item.height,
        "orientation": item.orientation,
        "color_mode": item.color_mode,
        "is_greyscale": item.is_greyscale,
        "timestamp": item.timestamp,
        "timestamp_source": item.timestamp_source,
        "camera_make": exif.make,
        "camera_model": exif.model,
        "camera_serial": exif.serial,
        "gps_latitude": exif.gps_latitude,
        "gps_longitude": exif.gps_longitude,
        "gps_altitude_m": exif.gps_altitude_m,
        "deployment_source": source,
        "sequence_id": None,
        "sequence_frame": None,
        "ingest_run_id": run_id,
    }


def ingest_dump(
    store: Store,
    *,
    dump_root: Path,
    dump_id: str,
    deployments: Sequence[Deployment],
    config: IngestConfig,
    run_id: str,
    on_progress: Callable[[int], None] | None = None,
    stations: StationLayout | None = None,
) -> IngestSummary:
    """Ingest one SD-card dump into the results store; idempotent and resumable.

    Args:
        store: the results store (opened with :func:`ecowatch.store.open_store`).
        dump_root: folder of the dump; relpaths are POSIX paths relative to it.
        dump_id: the dump's catalog name; media ids are sha1(``dump_id + '/' + relpath``).
        deployments: the deployments table; upserted into the store first.
        config: the ``ingest`` section of the run configuration (extensions, hidden files,
            workers, batch size, clock tolerance in hours, sequence gap in seconds).
        run_id: id of the current run, written to ``media.ingest_run_id``.
        on_progress: called after each batch with the number of files just handled
            (already-ingested files included); drives the CLI's progress bar.
        stations: the dump is sorted into station folders (``<station>/...``, camtrapR's
            layout): media are assigned by station and time instead of by deployment-id folder
            and camera serial (see :mod:`ecowatch.ingest.assign`); None: the default rules.

    Returns:
        Counts of what this run found and wrote.

    Raises:
        InputDataError: ``dump_root`` is not a folder.
        IngestError: a worker process died (the run can be resumed).
        sqlalchemy.exc.SQLAlchemyError: the store failed; committed batches stay valid.

    Problems with individual files never raise: they are flags on the media rows.
    """
    started = time.perf_counter()
    root = Path(dump_root)
    if not root.is_dir():
        raise InputDataError(
            f"dump {dump_id!r}: {root} is not a folder. Point the catalog's dump entry at the folder the "
            "SD card was copied to."
        )
    root = root.resolve()
    changed = upsert_deployments(store, deployments)
    upsert_dump(store, dump_id, root)
    log.info("ingest %s from %s: %d deployments (%d new or updated)", dump_id, root, len(deployments), changed)

    index = DeploymentIndex(deployments, clock_tolerance_h=config.clock_tolerance_h, stations=stations)
    summary = IngestSummary()
    flag_counts: Counter[str] = Counter()
    stats = ScanStats()
    batches = _unknown_only(store, dump_id, _batches(scan_dump(root, config, stats), config.batch_size))
    with Prober(config.workers, config.batch_size) as prober:
        for known, files, facts in prober.probe_batches(batches):
            summary.files_already_ingested += known
            if facts:
                _write(store, facts, dump_id=dump_id, index=index, run_id=run_id, summary=summary,
                       flag_counts=flag_counts)
            if on_progress is not None:
                on_progress(known + len(files))
    summary.files_seen = stats.yielded
    summary.files_ignored = stats.ignored

    for deployment_id in dump_deployment_ids(store, dump_id):
        summary.sequences += assign_sequences(
            store, deployment_id, gap_s=config.sequence_gap_s, batch_size=config.batch_size
        )
    summary.flags = dict(sorted(flag_counts.items()))
    summary.seconds = time.perf_counter() - started
    log.info(
        "ingest %s: %d files, %d new (%d ok, %d failed, %d skipped), %d already ingested, %d sequences, flags %s, "
        "%.1f s",
        dump_id, summary.files_seen, summary.files_new, summary.media_ok, summary.media_failed,
        summary.media_skipped, summary.files_already_ingested, summary.sequences, summary.flags, summary.seconds,
    )
    return summary


def _write(
    store: Store,
    facts: Sequence[FileFacts],
    *,
    dump_id: str,
    index: DeploymentIndex,
    run_id: str,
    summary: IngestSummary,
    flag_counts: Counter[str],
) -> None:
    duplicates = _duplicate_flags(store, dump_id, facts)
    media_rows, flag_rows = [], []
    for item in facts:
        assignment = index.assign(
            relpath=item.relpath,
            serial=item.exif.serial,
            timestamp=item.timestamp,
            timestamp_source=item.timestamp_source,
        )
        row = _media_row(item, dump_id=dump_id, deployment_id=assignment.deployment_id,
                         source=assignment.source, run_id=run_id)
        media_rows.append(row)
        item_flags = list(item.flags)
        if item.media_type in _ASSIGNABLE_TYPES:
            item_flags.extend(assignment.flags)
        if item.relpath in duplicates:
            item_flags.append(duplicates[item.relpath])
        for flag in item_flags:
            flag_rows.append({"media_id": row["media_id"], "flag": flag.flag, "message": flag.message})
            flag_counts[flag.flag] += 1
        summary.media_ok += item.status == "ok"
        summary.media_failed += item.status == "failed"
        summary.media_skipped += item.status == "skipped"
    inserted = write_batch(store, media_rows, flag_rows)
    summary.files_new += len(media_rows)
    if inserted != len(media_rows):
        log.warning(
            "%d of %d media rows of this batch were already in the store (another process ingesting %s?)",
            len(media_rows) - inserted, len(media_rows), dump_id,
        )


__all__ = ["IngestSummary", "ingest_dump"]
