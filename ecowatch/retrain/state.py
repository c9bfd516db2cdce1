"""The retrain state file: what the last successful retrain saw, and the holdout that never moves.

``<state folder>/state-<model name>.json`` (written atomically at the end of a successful run)::

    {"format": "ecowatch-retrain-state", "format_version": 1, "model_name": "ecowatch-species",
     "labels_fingerprint": "<sha256>", "labels": 1234, "per_source": {...},
     "holdout_locations": ["HES08", ...], "last_run_id": "<MLflow run>", "last_run_utc": "...",
     "last_decision": {...}, "champion_version": "3", "challenger_version": "4",
     "pending_journals": []}

A run whose labels have the fingerprint recorded here has nothing new to train on. The holdout
locations are chosen on the first round and read from here on every later one, so champion and
challenger are always compared on crops of the same locations. The fingerprint and the holdout
are also logged to each MLflow run (tag ``ecowatch.labels_fingerprint``, param
``holdout.locations``), from where :func:`state_from_run` restores a lost state file.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ecowatch.errors import InputDataError
from ecowatch.tracking import TrackingTarget, find_runs

log = logging.getLogger(__name__)

STATE_FORMAT = "ecowatch-retrain-state"
STATE_FORMAT_VERSION = 1
FINGERPRINT_TAG = "ecowatch.labels_fingerprint"
HOLDOUT_PARAM = "holdout.locations"


@dataclass
class RetrainState:
    """What the last successful retrain of one model saw and decided.

    Attributes:
        model_name: the registered model.
        labels_fingerprint: fingerprint of the labelled set it trained on ("" before the first run).
        labels: labels in that set.
        per_source: labels per source.
        holdout_locations: the fixed holdout locations.
        last_run_id: its MLflow run (None when tracking was off).
        last_run_utc: when it finished, ISO 8601 UTC.
        last_decision: the promotion decision record.
        champion_version: the registry version that was champion after it.
        challenger_version: the version it registered.
        pending_journals: offline journals not yet replayed to the tracking server.
    """

    model_name: str
    labels_fingerprint: str = ""
    labels: int = 0
    per_source: dict[str, int] = field(default_factory=dict)
    holdout_locations: tuple[str, ...] = ()
    last_run_id: str | None = None
    last_run_utc: str = ""
    last_decision: dict[str, Any] | None = None
    champion_version: str | None = None
    challenger_version: str | None = None
    pending_journals: list[str] = field(default_factory=list)


def state_path(folder: Path, model_name: str) -> Path:
    """``<folder>/state-<model name>.json``."""
    return Path(folder) / f"state-{model_name}.json"


def load_state(folder: Path, model_name: str) -> RetrainState | None:
    """The state of a model, or None before its first retrain.

    Raises:
        InputDataError: the file exists but is not a retrain state file (the message says to
            delete it: the next run restores it from MLflow or starts a first round).
    """
    path = state_path(folder, model_name)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.pop("format") != STATE_FORMAT or record.pop("format_version") != STATE_FORMAT_VERSION:
            raise ValueError("another format or version")
        record["holdout_locations"] = tuple(record.get("holdout_locations", ()))
        return RetrainState(**record)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputDataError(
            f"{path}: not an ecowatch retrain state file ({exc}). Delete it: the next retrain restores the holdout "
            "from the latest MLflow retrain run, or starts a first round."
        ) from exc


def save_state(folder: Path, state: RetrainState) -> Path:
    """Write the state atomically (temporary file renamed into place); returns its path."""
    path = state_path(folder, state.model_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"format": STATE_FORMAT, "format_version": STATE_FORMAT_VERSION, **asdict(state)}
    record["holdout_locations"] = list(state.holdout_locations)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def state_from_run(model_name: str, run_id: str, params: Mapping[str, str], tags: Mapping[str, str]) -> RetrainState:
    """A state rebuilt from the latest finished MLflow retrain run (when the state file was lost)."""
    holdout = tuple(h for h in params.get(HOLDOUT_PARAM, "").split(",") if h)
    return RetrainState(model_name=model_name, labels_fingerprint=tags.get(FINGERPRINT_TAG, ""),
                        holdout_locations=holdout, last_run_id=run_id)


def utc_now() -> str:
    """The current time, ISO 8601 UTC to the second."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def state_from_mlflow(target: TrackingTarget, experiment: str, model_name: str, *, kind: str) -> RetrainState | None:
    """The state rebuilt from the latest finished retrain run of the model in MLflow (None: no such run).

    Raises:
        TrackingError: the tracking store cannot be searched.
    """
    runs = find_runs(target, experiment, tags={"ecowatch.kind": kind, "ecowatch.model": model_name}, max_results=1)
    if not runs:
        return None
    log.info("no retrain state file: holdout and fingerprint restored from MLflow run %s", runs[0].run_id)
    return state_from_run(model_name, runs[0].run_id, runs[0].params, runs[0].tags)
