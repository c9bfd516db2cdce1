"""The offline tracking journal: an MLflow server that cannot be reached mid-run loses nothing.

The failure mode (documented in the README's "Retraining" section):

1. ``ecowatch retrain`` needs the registry at its start (to find the champion); a server that
   cannot be reached then stops the run before any work, with a message saying so: nothing is lost.
2. When the server stops answering after that, the run goes on. The
   :class:`~ecowatch.tracking.RunLogger` switches to offline and every later record (parameters,
   metrics, tags, artefacts, the challenger's registration, the champion alias move, the run's
   end) is appended to a journal ``<state>/tracking-journal/<UTC time>-<label>/journal.jsonl``;
   artefacts are copied beside it. The checkpoint, the decision and the state file are written
   locally as usual, so the run completes.
3. ``ecowatch tracking replay`` (and the start of the next ``ecowatch retrain``) replays pending
   journals to the server in order: the same MLflow run is continued (or created, if the server
   was never reached), the challenger registered, and the champion alias moved only if it still
   points to the version the decision was taken against (otherwise the promotion is reported as
   skipped, and the next retrain compares with the new champion). Replay records its progress
   after every step, so an interrupted replay resumes without registering a version twice.

Journal lines are JSON objects ``{"op": ..., "utc": ..., ...}`` with the ops of
:class:`~ecowatch.tracking.OfflineSink`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecowatch.errors import InputDataError
from ecowatch.tracking import TrackingTarget, list_model_versions, open_run, promote_version, resume_run

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.jsonl"
PENDING_MARKER = "PENDING"
PROGRESS_FILE = "progress.json"
REPLAYED_FILE = "replayed.json"


class TrackingJournal:
    """Tracking records kept locally while the server cannot be reached (an :class:`~ecowatch.tracking.OfflineSink`).

    The folder ``<root>/<UTC time>-<label>/`` is created on the first record only: a run that
    never loses the server leaves nothing behind.

    Args:
        root: the journal root folder (``<state>/tracking-journal``).
        label: a name for the folder (e.g. ``retrain-ecowatch-species``).
    """

    def __init__(self, root: Path, label: str) -> None:
        self.root = Path(root)
        self.label = label
        self.folder: Path | None = None
        self._artifacts = 0

    @property
    def active(self) -> bool:
        """Whether anything was recorded (the run went offline)."""
        return self.folder is not None

    def _open(self) -> Path:
        if self.folder is None:
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
            self.folder = self.root / f"{stamp}-{self.label}"
            (self.folder / "artifacts").mkdir(parents=True, exist_ok=False)
            (self.folder / PENDING_MARKER).write_text("replay with `ecowatch tracking replay`\n")
        return self.folder

    def record(self, op: str, payload: Mapping[str, Any]) -> None:
        """Append one record (flushed and synced to disk before returning)."""
        line = json.dumps({"op": op, "utc": dt.datetime.now(dt.UTC).isoformat(), **payload}, sort_keys=True)
        with (self._open() / JOURNAL_FILE).open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def keep_artifact(self, path: Path) -> str:
        """Copy a file or folder into the journal; returns its key (a path relative to the journal)."""
        self._artifacts += 1
        key = f"artifacts/{self._artifacts:04d}/{Path(path).name}"
        target = self._open() / key
        target.parent.mkdir(parents=True)
        if Path(path).is_dir():
            shutil.copytree(path, target)
        else:
            shutil.copy2(path, target)
        return key


def pending_journals(root: Path) -> list[Path]:
    """Journal folders not yet replayed, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / PENDING_MARKER).is_file())


@dataclass
class ReplayResult:
    """What replaying one journal did.

    Attributes:
        folder: the journal.
        run_id: the MLflow run it went to.
        ops: records replayed by this call.
        registered: ``name/version`` of the versions registered.
        alias_changes: what each promotion did (applied or why not).
        complete: the whole journal is on the server (the journal is marked replayed).
    """

    folder: Path
    run_id: str | None = None
    ops: int = 0
    registered: list[str] = field(default_factory=list)
    alias_changes: list[str] = field(default_factory=list)
    complete: bool = False


def _read_ops(folder: Path) -> list[dict[str, Any]]:
    path = folder / JOURNAL_FILE
    ops = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            ops.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if number == len(path.read_text(encoding="utf-8").splitlines()):  # a record cut by a crash: the last one
                log.warning("%s: last line is incomplete and is ignored", path)
                break
            raise InputDataError(f"{path}: line {number} is not JSON ({exc}); the journal is damaged.") from exc
    return ops


def replay_journal(target: TrackingTarget, folder: Path) -> ReplayResult:
    """Replay one journal to the tracking server (resuming where an earlier replay stopped).

    Args:
        target: the tracking server (or store) to replay to.
        folder: the journal folder.

    Returns:
        What was replayed.

    Raises:
        TrackingUnavailable: the server cannot be reached (progress so far is kept; run again).
        TrackingError: the server refuses a record.
        InputDataError: the journal is damaged.
    """
    folder = Path(folder)
    ops = _read_ops(folder)
    progress_path = folder / PROGRESS_FILE
    progress: dict[str, Any] = (json.loads(progress_path.read_text()) if progress_path.is_file()
                                else {"done": 0, "run_id": None, "last_version": None, "registered": [],
                                      "alias_changes": []})
    result = ReplayResult(folder, progress["run_id"], 0, list(progress["registered"]), list(progress["alias_changes"]))
    logger = resume_run(target, progress["run_id"]) if progress["run_id"] else None
    for index, op in enumerate(ops):
        if index < progress["done"]:
            continue
        kind = op["op"]
        if kind == "run":
            if logger is None:
                if op.get("run_id"):
                    logger = resume_run(target, op["run_id"])
                else:
                    logger = open_run(target, experiment=op["experiment"], run_name=op["run_name"], tags=op["tags"])
                progress["run_id"] = result.run_id = logger.run_id
            logger.set_tags({"ecowatch.replayed_from": folder.name})
        elif logger is None:
            raise InputDataError(f"{folder / JOURNAL_FILE}: record {index + 1} ({kind}) comes before the run record; "
                                 "the journal is damaged.")
        elif kind == "params":
            logger.log_params(op["params"])
        elif kind == "metrics":
            logger.log_metrics(op["metrics"], step=op.get("step", 0))
        elif kind == "tags":
            logger.set_tags(op["tags"])
        elif kind == "artifact":
            logger.log_artifact(folder / op["key"], op.get("artifact_path"))
        elif kind == "register":
            version = _registered_already(target, op, logger.run_id)  # type: ignore[arg-type]
            if version is None:
                registered = logger.register_artifact(op["artifact_path"], name=op["name"], alias=op.get("alias"),
                                                      tags=op.get("tags"))
                version = registered.version if registered else None
            progress["last_version"] = version
            result.registered.append(f"{op['name']}/{version}")
        elif kind == "promote":
            version = op.get("version") or progress["last_version"]
            change = promote_version(target, op["name"], str(version), expected_current=op.get("expected_current"),
                                     alias=op["alias"], previous_alias=op["previous_alias"], tags=op.get("tags"))
            result.alias_changes.append(change.reason)
        elif kind == "end":
            logger.end(op.get("status", "FINISHED"))
        else:
            raise InputDataError(f"{folder / JOURNAL_FILE}: record {index + 1} has unknown op {kind!r}.")
        progress["done"] = index + 1
        progress["registered"], progress["alias_changes"] = result.registered, result.alias_changes
        result.ops += 1
        _write_json(progress_path, progress)
    (folder / REPLAYED_FILE).write_text(json.dumps({"run_id": result.run_id, "registered": result.registered,
                                                    "alias_changes": result.alias_changes,
                                                    "replayed_utc": dt.datetime.now(dt.UTC).isoformat()}, indent=1))
    (folder / PENDING_MARKER).unlink(missing_ok=True)
    result.complete = True
    log.info("replayed %s: run %s, %d records, registered %s, %s", folder.name, result.run_id, result.ops,
             result.registered or "nothing", "; ".join(result.alias_changes) or "no alias change")
    return result


def _registered_already(target: TrackingTarget, op: Mapping[str, Any], run_id: str) -> str | None:
    """The version an interrupted registration already created (same run and artefact), if any."""
    for version in list_model_versions(target, op["name"]):
        if version.run_id == run_id and version.source.rstrip("/").endswith("/" + op["artifact_path"].strip("/")):
            return version.version
    return None


def _write_json(path: Path, record: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)


def replay_journals(target: TrackingTarget, root: Path) -> list[ReplayResult]:
    """Replay every pending journal under ``root``, oldest first.

    Returns:
        One result per journal replayed.

    Raises:
        TrackingUnavailable: the server cannot be reached (the journals stay pending).
        TrackingError: the server refuses a record.
    """
    return [replay_journal(target, folder) for folder in pending_journals(root)]


def replay_if_reachable(target: TrackingTarget, root: Path) -> list[ReplayResult]:
    """Replay pending journals when the server answers; otherwise log it and leave them for later."""
    from ecowatch.tracking import TrackingUnavailable

    if not pending_journals(root):
        return []
    try:
        return replay_journals(target, root)
    except TrackingUnavailable as exc:
        log.warning("offline journals not replayed yet (%s); run `ecowatch tracking replay` later", exc)
        return []
