"""Experiment tracking with MLflow. The only module that imports mlflow (lazily).

Every pipeline run (nightly, training, retraining) is an MLflow run. By default the tracking
store is an embedded SQLite file inside the project's working folder and artefacts sit in an
``artifacts/`` folder beside it; an ``http(s)://`` URL points at a shared ``mlflow server``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
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


_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))(?:/(?P<path>.+))?$")


@dataclass(frozen=True)
class ModelArtifact:
    """A registered model version's artefact, downloaded to a local folder.

    Attributes:
        local_path: the downloaded file or folder (the artefact at the version's source, or the
            sub-path named in the URI).
        name: registered model name.
        version: the model version number the URI resolved to (an alias resolves to a number).
        source_uri: where MLflow stores the version's artefacts.
    """

    local_path: Path
    name: str
    version: str
    source_uri: str


def parse_models_uri(uri: str) -> tuple[str, str | None, str | None, str]:
    """Split an MLflow registry URI into (name, alias, version, sub-path).

    Args:
        uri: ``models:/<name>@<alias>`` or ``models:/<name>/<version>``, optionally followed by
            ``/<path inside the artefact>``.

    Returns:
        The model name, the alias or None, the version number or None, and the sub-path ("" if none).

    Raises:
        TrackingError: the text is not such a URI.
    """
    match = _MODELS_URI.match(uri.strip())
    if match is None:
        raise TrackingError(
            f"{uri!r} is not an MLflow model registry URI; expected models:/<name>@<alias> "
            "(e.g. models:/megadetector@champion) or models:/<name>/<version> (e.g. models:/megadetector/3)."
        )
    return match["name"], match["alias"], match["version"], match["path"] or ""


def fetch_model_artifact(
    model_uri: str,
    dst_dir: Path,
    *,
    tracking_uri: str,
    registry_uri: str | None = None,
) -> ModelArtifact:
    """Download a registered model version's artefact from the MLflow model registry.

    The alias (if any) is resolved to a version number first; the artefact of that version is then
    downloaded to ``dst_dir/<name>/<version>/``. Versions are immutable in MLflow, so a version
    already downloaded there is reused, not downloaded again (the registry is still asked which
    version an alias points to). The download goes to a temporary folder beside it and is renamed
    into place, so an interrupted download never leaves a half-written version folder.

    Args:
        model_uri: ``models:/<name>@<alias>`` or ``models:/<name>/<version>``, optionally followed
            by ``/<path>`` to fetch one file of the artefact (e.g. ``models:/md@champion/best.pt``).
        dst_dir: folder under which versions are stored (created if absent).
        tracking_uri: the MLflow tracking URI (``sqlite:///abs/path.db`` or ``http(s)://...``).
        registry_uri: the model registry URI; the tracking URI when None.

    Returns:
        The local artefact with the resolved name and version.

    Raises:
        TrackingError: a malformed URI, an unknown model, alias or version, or an MLflow store
            that cannot be read.
    """
    name, alias, version, sub_path = parse_models_uri(model_uri)
    _mlflow()
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    registry = registry_uri or tracking_uri
    try:
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry)
        if version is None:  # the URI named an alias
            version = str(client.get_model_version_by_alias(name, alias).version)
        source = client.get_model_version_download_uri(name, version)
    except MlflowException as exc:
        raise TrackingError(f"cannot resolve {model_uri} in the model registry at {registry}: {exc.message}") from exc
    target = Path(dst_dir) / name / version
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=target.parent))
        try:
            download_artifacts(artifact_uri=source, dst_path=str(staging), tracking_uri=tracking_uri)
            staging.rename(target)
        except MlflowException as exc:
            raise TrackingError(f"cannot download {model_uri} (version {version}, {source}): {exc.message}") from exc
        except OSError as exc:
            if not target.exists():  # else another process finished the same version first: use theirs
                raise TrackingError(f"cannot download {model_uri} (version {version}) to {target}: {exc}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log.info("downloaded %s (version %s) from %s to %s", model_uri, version, source, target)
    local = _artifact_root(target)
    if sub_path:
        local = local / sub_path
        if not local.exists():
            raise TrackingError(
                f"{model_uri}: the artefact of version {version} has no {sub_path!r} (looked in {local})."
            )
    return ModelArtifact(local, name, version, source)


def _artifact_root(target: Path) -> Path:
    """The downloaded artefact inside a version folder: its only entry, or the folder itself."""
    entries = [p for p in target.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 else target


@dataclass(frozen=True)
class RegisteredVersion:
    """A model version created in the MLflow model registry.

    Attributes:
        name: registered model name.
        version: the new version number.
        uri: ``models:/<name>/<version>``, usable wherever ecowatch takes a model.
        alias: the alias set on it, or None.
    """

    name: str
    version: str
    uri: str
    alias: str | None


def register_model_version(
    target: TrackingTarget,
    *,
    run_id: str,
    artifact_path: str,
    name: str,
    alias: str | None = None,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
) -> RegisteredVersion:
    """Register a run's logged artefact as a new version of a registered model.

    The artefact must already be logged to ``run_id`` under ``artifact_path`` (a file or a
    folder); the registered model is created on first use. With ``alias`` (``champion``,
    ``challenger``) the alias is moved to the new version.

    Args:
        target: the tracking (and registry) store.
        run_id: the MLflow run that logged the artefact.
        artifact_path: the artefact's path inside the run (e.g. ``weights/best.pt``).
        name: registered model name.
        alias: alias to point at the new version, or None.
        tags: tags of the new version.
        description: description of the new version.

    Returns:
        The new version.

    Raises:
        TrackingError: the registry cannot be written.
    """
    _mlflow()
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri=target.tracking_uri)
        try:
            client.get_registered_model(name)
        except MlflowException:
            client.create_registered_model(name)
        run = client.get_run(run_id)
        source = f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}"
        created = client.create_model_version(name, source, run_id=run_id,
                                              tags={k: str(v) for k, v in (tags or {}).items()},
                                              description=description)
        if alias:
            client.set_registered_model_alias(name, alias, created.version)
    except MlflowException as exc:
        raise TrackingError(f"cannot register {artifact_path} of run {run_id} as {name!r} in "
                            f"{target.tracking_uri}: {exc.message}") from exc
    log.info("registered %s version %s%s", name, created.version, f" (alias {alias})" if alias else "")
    return RegisteredVersion(name, str(created.version), f"models:/{name}/{created.version}", alias)
