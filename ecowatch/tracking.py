"""Experiment tracking with MLflow. The only module that imports mlflow (lazily).

Every pipeline run (nightly, training, retraining) is an MLflow run. By default the tracking
store is an embedded SQLite file inside the project's working folder and artefacts sit in an
``artifacts/`` folder beside it; an ``http(s)://`` URL points at a shared ``mlflow server``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecowatch.errors import EcowatchError

log = logging.getLogger(__name__)


class TrackingError(EcowatchError):
    """MLflow is missing, or its tracking store cannot be used."""


@dataclass(frozen=True)
class TrackingTarget:
    """Where runs are logged.

    Attributes:
        tracking_uri: an MLflow tracking URI (``sqlite:///abs/path.db`` or ``http://host:port``).
        artifact_root: a ``file://`` URI for new experiments' artefacts, or None to let the
            server decide.
    """

    tracking_uri: str
    artifact_root: str | None


def tracking_target(location: str) -> TrackingTarget:
    """Resolve a catalog location (a path to a SQLite file, or a URI) into a tracking target.

    Args:
        location: a filesystem path such as ``/abs/work/mlflow/mlflow.db``, or an MLflow URI.

    Returns:
        The tracking target; for a path, artefacts go to ``artifacts/`` beside the database.
    """
    if "://" in location:
        if location.startswith("sqlite:///"):
            db = Path(location.removeprefix("sqlite:///"))
            return TrackingTarget(location, (db.parent / "artifacts").resolve().as_uri())
        return TrackingTarget(location, None)
    db = Path(location).expanduser().resolve()
    return TrackingTarget(f"sqlite:///{db}", (db.parent / "artifacts").as_uri())


def _mlflow() -> Any:
    """Import mlflow with telemetry off, or raise a TrackingError that says how to install it."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow
    except ImportError as exc:  # pragma: no cover - mlflow is a core dependency
        raise TrackingError("MLflow is not installed: `pip install mlflow` (or reinstall ecowatch).") from exc
    return mlflow


@dataclass
class RunLogger:
    """Logs to one active MLflow run; a disabled logger records nothing and costs nothing."""

    run_id: str | None = None
    experiment_id: str | None = None
    _client: Any = field(default=None, repr=False)

    @property
    def enabled(self) -> bool:
        """Whether an MLflow run is being written."""
        return self.run_id is not None

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters (values become strings; MLflow caps each at 6,000 characters)."""
        if self.enabled:
            self._client.log_batch(self.run_id, params=[_param(k, v) for k, v in params.items()])

    def log_metrics(self, metrics: Mapping[str, float], *, step: int | None = None) -> None:
        """Log numeric metrics."""
        if self.enabled:
            for key, value in metrics.items():
                self._client.log_metric(self.run_id, key, float(value), step=step or 0)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set run tags."""
        if self.enabled:
            for key, value in tags.items():
                self._client.set_tag(self.run_id, key, str(value))

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        """Copy a file or folder into the run's artefacts."""
        if not self.enabled:
            return
        if Path(path).is_dir():
            self._client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self._client.log_artifact(self.run_id, str(path), artifact_path)


def _param(key: str, value: Any) -> Any:
    from mlflow.entities import Param

    return Param(key, str(value)[:6000])


@contextmanager
def tracked_run(
    target: TrackingTarget | None,
    *,
    experiment: str,
    run_name: str,
    tags: Mapping[str, Any] | None = None,
) -> Iterator[RunLogger]:
    """Open an MLflow run for the duration of a block.

    The run ends ``FINISHED`` when the block completes and ``FAILED`` when it raises (the
    exception propagates). With ``target=None`` tracking is off and a disabled logger is given.

    Args:
        target: where to log (see :func:`tracking_target`), or None for no tracking.
        experiment: experiment name, created on first use.
        run_name: the run's display name.
        tags: tags set when the run starts.

    Yields:
        A :class:`RunLogger` bound to the run.

    Raises:
        TrackingError: the tracking store cannot be opened.
    """
    if target is None:
        yield RunLogger()
        return
    _mlflow()  # a clear error when MLflow is missing
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if target.tracking_uri.startswith("sqlite:///"):
        Path(target.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        client = MlflowClient(tracking_uri=target.tracking_uri)
        found = client.get_experiment_by_name(experiment)
        experiment_id = (
            found.experiment_id
            if found is not None
            else client.create_experiment(experiment, artifact_location=target.artifact_root)
        )
        run = client.create_run(experiment_id, run_name=run_name, tags={k: str(v) for k, v in (tags or {}).items()})
    except MlflowException as exc:
        raise TrackingError(f"cannot log to MLflow at {target.tracking_uri}: {exc}") from exc
    logger = RunLogger(run.info.run_id, experiment_id, client)
    log.info("MLflow run %s in experiment %r at %s", run.info.run_id, experiment, target.tracking_uri)
    try:
        yield logger
    except BaseException:
        client.set_terminated(run.info.run_id, status="FAILED")
        raise
    client.set_terminated(run.info.run_id, status="FINISHED")
