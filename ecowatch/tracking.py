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
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ecowatch.errors import EcowatchError, ModelNotFoundError

log = logging.getLogger(__name__)


class TrackingError(EcowatchError):
    """MLflow is missing, or its tracking store cannot be used."""


class TrackingUnavailable(TrackingError):
    """The tracking server cannot be reached (connection refused or reset, timed out, retries exhausted)."""


def is_unreachable(exc: BaseException) -> bool:
    """Whether an error means the tracking store could not be reached (rather than refused the request).

    MLflow wraps a failed HTTP request in an ``MlflowException`` raised while handling the
    ``requests`` error, so the chain of causes and contexts is searched for a connection error,
    a timeout or exhausted retries.
    """
    import requests

    kinds = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.RetryError,
             ConnectionError, TimeoutError, TrackingUnavailable)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kinds):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _tracking_error(message: str, exc: BaseException) -> TrackingError:
    """A :class:`TrackingUnavailable` when ``exc`` means the store was unreachable, else a :class:`TrackingError`."""
    detail = getattr(exc, "message", None) or str(exc)
    if is_unreachable(exc):
        return TrackingUnavailable(f"{message}: the tracking server cannot be reached ({detail}).")
    return TrackingError(f"{message}: {detail}")


class OfflineSink(Protocol):
    """Where a run's tracking calls go while the tracking server cannot be reached.

    :class:`ecowatch.retrain.journal.TrackingJournal` writes them to a local journal that
    :func:`ecowatch.retrain.journal.replay_journals` replays once the server is back.
    """

    def record(self, op: str, payload: Mapping[str, Any]) -> None:
        """Keep one call: ``op`` (``run``, ``params``, ``metrics``, ``tags``, ``artifact``, ``register``,
        ``promote``, ``end``) with its JSON-ready arguments."""

    def keep_artifact(self, path: Path) -> str:
        """Copy a file or folder to be logged later; returns its key (path inside the journal)."""


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


_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. :/]")


def mlflow_key(name: str) -> str:
    """A metric, parameter or tag name MLflow accepts: other characters become ``_``.

    MLflow allows letters, digits, ``_ - . : /`` and spaces; keys built from data (an observation
    source such as ``classifier+prior``, a taxon id) would otherwise fail the whole call.
    """
    return _KEY_UNSAFE.sub("_", str(name))


@dataclass
class RunLogger:
    """Logs to one MLflow run; a disabled logger records nothing and costs nothing.

    With an offline sink (see :func:`tracked_run`), a call that cannot reach the tracking server
    switches the logger to offline: that call and every later one (parameters, metrics, tags,
    artefacts, registrations, alias moves, the run's end) go to the sink, to be replayed when the
    server is back. Without a sink an unreachable server raises :class:`TrackingUnavailable`.

    Attributes:
        run_id: the MLflow run, or None when tracking is off (or the run could not be created
            because the server was unreachable: then ``offline`` is True).
        experiment_id: its experiment.
        offline: True once calls go to the offline sink instead of the server.
    """

    run_id: str | None = None
    experiment_id: str | None = None
    _client: Any = field(default=None, repr=False)
    _target: TrackingTarget | None = field(default=None, repr=False)
    _sink: OfflineSink | None = field(default=None, repr=False)
    _opened: dict[str, Any] = field(default_factory=dict, repr=False)
    offline: bool = False

    @property
    def enabled(self) -> bool:
        """Whether the run is being written (to MLflow, or to the offline sink)."""
        return self.run_id is not None or self.offline

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters (values become strings; MLflow caps each at 6,000 characters)."""
        if self.enabled and params:
            values = {mlflow_key(k): str(v)[:6000] for k, v in params.items()}
            self._call("params", {"params": values},
                       lambda: self._client.log_batch(self.run_id, params=[_param(k, v) for k, v in values.items()]))

    def log_metrics(self, metrics: Mapping[str, float], *, step: int | None = None) -> None:
        """Log numeric metrics."""
        if self.enabled and metrics:
            values = {mlflow_key(k): float(v) for k, v in metrics.items()}
            self._call("metrics", {"metrics": values, "step": step or 0},
                       lambda: self._log_metrics(values, step or 0))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set run tags."""
        if self.enabled and tags:
            values = {mlflow_key(k): str(v) for k, v in tags.items()}
            self._call("tags", {"tags": values}, lambda: [self._client.set_tag(self.run_id, k, v)
                                                          for k, v in values.items()])

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        """Copy a file or folder into the run's artefacts."""
        if not self.enabled:
            return
        path = Path(path)

        def send() -> None:
            if path.is_dir():
                self._client.log_artifacts(self.run_id, str(path), artifact_path)
            else:
                self._client.log_artifact(self.run_id, str(path), artifact_path)

        if not self.offline:
            try:
                send()
                return
            except Exception as exc:  # noqa: BLE001 - sorted into unreachable (offline) or a TrackingError
                self._fail_over(exc, f"cannot log artefact {path}")
        assert self._sink is not None  # _fail_over raised otherwise
        self._sink.record("artifact", {"key": self._sink.keep_artifact(path), "is_dir": path.is_dir(),
                                       "artifact_path": artifact_path})

    def register_artifact(self, artifact_path: str, *, name: str, alias: str | None = None,
                          tags: Mapping[str, Any] | None = None) -> RegisteredVersion | None:
        """Register an artefact of this run as a new model version (see :func:`register_model_version`).

        Returns:
            The new version, or None when the logger is offline (the registration is kept in the
            sink and made on replay) or disabled.
        """
        if not self.enabled:
            return None
        payload = {"artifact_path": artifact_path, "name": name, "alias": alias,
                   "tags": {k: str(v) for k, v in (tags or {}).items()}}
        return self._call("register", payload, lambda: register_model_version(
            self._target, run_id=self.run_id, artifact_path=artifact_path, name=name, alias=alias, tags=tags))

    def promote(self, name: str, version: str | None, *, expected_current: str | None, alias: str = "champion",
                previous_alias: str = "previous-champion", tags: Mapping[str, Any] | None = None) -> AliasChange | None:
        """Move ``alias`` to a version (see :func:`promote_version`).

        Args:
            name: registered model name.
            version: the version to promote; None for the version this run registered (offline only).
            expected_current: the version ``alias`` pointed to when the decision was taken (None: no
                version had it); the alias is not moved if it changed since.
            alias: the alias to move.
            previous_alias: alias kept on the version it replaces.
            tags: tags set on the promoted version.

        Returns:
            The change, or None when offline (kept in the sink, applied on replay) or disabled.
        """
        if not self.enabled:
            return None
        payload = {"name": name, "version": version, "expected_current": expected_current, "alias": alias,
                   "previous_alias": previous_alias, "tags": {k: str(v) for k, v in (tags or {}).items()}}
        if version is None and not self.offline:
            raise TrackingError(f"promote {name}: no version given and the logger is online; give the version.")
        return self._call("promote", payload, lambda: promote_version(
            self._target, name, str(version), alias=alias, previous_alias=previous_alias,
            expected_current=expected_current, tags=tags))

    def end(self, status: str = "FINISHED") -> None:
        """Mark the run ``FINISHED`` or ``FAILED`` (:func:`tracked_run` does this at the end of its block)."""
        if self.enabled:
            self._call("end", {"status": status}, lambda: self._client.set_terminated(self.run_id, status=status))

    def _log_metrics(self, values: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        items = [Metric(k, v, stamp, step) for k, v in values.items()]
        for start in range(0, len(items), 1000):  # MLflow's limit per batch
            self._client.log_batch(self.run_id, metrics=items[start:start + 1000])

    def _call(self, op: str, payload: Mapping[str, Any], action: Any) -> Any:
        if not self.offline:
            try:
                return action()
            except Exception as exc:  # noqa: BLE001 - sorted into unreachable (offline) or a TrackingError
                self._fail_over(exc, f"cannot log {op} to MLflow run {self.run_id}")
        assert self._sink is not None  # _fail_over raised otherwise
        self._sink.record(op, payload)
        return None

    def _fail_over(self, exc: BaseException, message: str) -> None:
        """Go offline when the server is unreachable and a sink is set; raise a TrackingError otherwise."""
        if self._sink is None or not is_unreachable(exc):
            if isinstance(exc, TrackingError):
                raise exc
            uri = self._target.tracking_uri if self._target else "?"
            raise _tracking_error(f"{message} at {uri}", exc) from exc
        self.go_offline(str(getattr(exc, "message", None) or exc))

    def go_offline(self, reason: str) -> None:
        """Send every later call to the offline sink (called when the server cannot be reached)."""
        if self.offline:
            return
        if self._sink is None:
            raise TrackingUnavailable(f"MLflow run {self.run_id}: {reason}; no offline journal to fall back to.")
        uri = self._target.tracking_uri if self._target else ""
        log.warning("MLflow at %s cannot be reached (%s): run %s goes on offline; its records are kept locally "
                    "and replayed by `ecowatch tracking replay` (or the next `ecowatch retrain`).",
                    uri, reason[:300], self.run_id or "(not created yet)")
        self.offline = True
        self._sink.record("run", {"run_id": self.run_id, "experiment_id": self.experiment_id, "tracking_uri": uri,
                                  "reason": reason[:2000], **self._opened})


def _param(key: str, value: Any) -> Any:
    from mlflow.entities import Param

    return Param(key, str(value)[:6000])



def _experiment_id(client: Any, experiment: str, artifact_root: str | None) -> str:
    """The id of an experiment, created when missing (another process creating it at once is fine)."""
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    from mlflow.exceptions import MlflowException

    try:
        return client.create_experiment(experiment, artifact_location=artifact_root)
    except MlflowException as exc:  # RESOURCE_ALREADY_EXISTS: a parallel job created it first
        again = client.get_experiment_by_name(experiment)
        if again is None:
            raise
        log.debug("experiment %r was created by another process meanwhile (%s)", experiment, exc.error_code)
        return again.experiment_id


def open_run(target: TrackingTarget, *, experiment: str, run_name: str, tags: Mapping[str, Any] | None = None,
             offline: OfflineSink | None = None) -> RunLogger:
    """Create an MLflow run (and its experiment on first use) and return a logger bound to it.

    Prefer :func:`tracked_run`, which also ends the run; this is for code that ends it itself
    (:meth:`RunLogger.end`), such as a journal replay.

    Args:
        target: where to log.
        experiment: experiment name, created on first use (artefacts under ``target.artifact_root``).
        run_name: the run's display name.
        tags: tags set when the run starts.
        offline: where calls go if the server cannot be reached (None: raise instead).

    Returns:
        The logger (offline from the start when the server was unreachable and ``offline`` is set).

    Raises:
        TrackingUnavailable: the server cannot be reached and there is no offline sink.
        TrackingError: the tracking store refuses the run.
    """
    _mlflow()  # a clear error when MLflow is missing
    from mlflow.tracking import MlflowClient

    if target.tracking_uri.startswith("sqlite:///"):
        Path(target.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    tag_values = {k: str(v) for k, v in (tags or {}).items()}
    opened = {"experiment": experiment, "run_name": run_name, "tags": tag_values}
    client = None
    try:
        client = MlflowClient(tracking_uri=target.tracking_uri)
        experiment_id = _experiment_id(client, experiment, target.artifact_root)
        _end_abandoned_runs(client, experiment_id)
        run = client.create_run(experiment_id, run_name=run_name,
                                tags={HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()), **tag_values})
    except Exception as exc:  # noqa: BLE001 - sorted into unreachable (offline) or a TrackingError
        logger = RunLogger(None, None, client, target, offline, opened)
        logger._fail_over(exc, f"cannot log to MLflow at {target.tracking_uri}")
        return logger
    log.info("MLflow run %s in experiment %r at %s", run.info.run_id, experiment, target.tracking_uri)
    return RunLogger(run.info.run_id, experiment_id, client, target, offline, opened)


#: Tags of the machine and process that opened a run (so a later run can tell it was abandoned).
HOST_TAG, PID_TAG = "ecowatch.host", "ecowatch.pid"
#: Tag set on a run found abandoned.
ABANDONED_TAG = "ecowatch.abandoned"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _end_abandoned_runs(client: Any, experiment_id: str) -> list[str]:
    """Mark ``KILLED`` the runs of this experiment still ``RUNNING`` whose process on this machine is gone.

    A run whose process was killed (SIGKILL, power cut, out of memory) never ends itself and would
    show as running for ever. Only runs opened on this host are judged (others' processes cannot
    be seen); a process id that is alive again (reused) keeps its run running. A run left open on
    purpose, waiting for an offline journal's replay, is marked too; the replay sets its final
    status. Never raises: tidying up must not stop a new run.

    Returns:
        The run ids marked.
    """
    host = socket.gethostname()
    marked = []
    try:
        runs = client.search_runs([experiment_id], filter_string=f"attributes.status = 'RUNNING' and "
                                  f"tags.`{HOST_TAG}` = '{host}'", max_results=200)
        for run in runs:
            pid = run.data.tags.get(PID_TAG, "")
            if not pid.isdigit() or _process_alive(int(pid)):
                continue
            client.set_tag(run.info.run_id, ABANDONED_TAG,
                           f"process {pid} on {host} ended without closing the run (killed, or it left the rest "
                           "to an offline journal's replay); marked KILLED by the next run")
            client.set_terminated(run.info.run_id, "KILLED")
            marked.append(run.info.run_id)
            log.warning("MLflow run %s (process %s on %s) was left running by a process that is gone: marked KILLED",
                        run.info.run_id, pid, host)
    except Exception as exc:  # noqa: BLE001 - tidying up is best effort
        log.warning("could not check experiment %s for abandoned runs: %s", experiment_id, exc)
    return marked


def resume_run(target: TrackingTarget, run_id: str) -> RunLogger:
    """A logger bound to an existing run (to log more to it, e.g. on replay).

    Raises:
        TrackingError: the run does not exist or the store cannot be read.
    """
    _mlflow()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=target.tracking_uri)
    try:
        run = client.get_run(run_id)
    except Exception as exc:  # noqa: BLE001 - MlflowException or a connection error
        raise _tracking_error(f"cannot open MLflow run {run_id} at {target.tracking_uri}", exc) from exc
    return RunLogger(run_id, run.info.experiment_id, client, target)


@contextmanager
def tracked_run(
    target: TrackingTarget | None,
    *,
    experiment: str,
    run_name: str,
    tags: Mapping[str, Any] | None = None,
    offline: OfflineSink | None = None,
) -> Iterator[RunLogger]:
    """Open an MLflow run for the duration of a block.

    The run ends ``FINISHED`` when the block completes and ``FAILED`` when it raises (the
    exception propagates). With ``target=None`` tracking is off and a disabled logger is given.

    Args:
        target: where to log (see :func:`tracking_target`), or None for no tracking.
        experiment: experiment name, created on first use.
        run_name: the run's display name.
        tags: tags set when the run starts.
        offline: where calls go when the server cannot be reached, at the start or at any point
            of the block (e.g. :class:`ecowatch.retrain.journal.TrackingJournal`); None: an
            unreachable server raises :class:`TrackingUnavailable`.

    Yields:
        A :class:`RunLogger` bound to the run.

    Raises:
        TrackingError: the tracking store cannot be opened (:class:`TrackingUnavailable` when it
            cannot be reached and there is no offline sink).
    """
    if target is None:
        yield RunLogger()
        return
    logger = open_run(target, experiment=experiment, run_name=run_name, tags=tags, offline=offline)
    try:
        yield logger
    except BaseException:
        try:
            logger.end("FAILED")
        except TrackingError as exc:  # the block's own error matters more
            log.warning("could not mark MLflow run %s failed: %s", logger.run_id, exc)
        raise
    logger.end("FINISHED")


_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))(?:/(?P<path>.+))?$")


class SystemMetrics:
    """This machine's CPU, memory, disk, network (and GPU) use, sampled into an MLflow run.

    MLflow's own monitor, with a node id: the metrics are ``system/<node_id>/cpu_utilization_percentage``
    ... so the machines of one distributed run log side by side into the same run. ``start`` and
    ``stop`` never raise: system metrics are a diagnostic, not part of the result.

    Args:
        target: the tracking store.
        run_id: the run to log to.
        node_id: the machine's name in the metric keys (e.g. ``node0``).
        interval_s: seconds between samples (MLflow's ``MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL`` wins).
    """

    def __init__(self, target: TrackingTarget, run_id: str, *, node_id: str, interval_s: float = 10.0) -> None:
        self.target, self.run_id, self.node_id, self.interval_s = target, run_id, node_id, interval_s
        self._monitor: Any = None

    def start(self) -> None:
        try:
            from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

            self._monitor = SystemMetricsMonitor(self.run_id, sampling_interval=self.interval_s, node_id=self.node_id,
                                                 tracking_uri=self.target.tracking_uri)
            self._monitor.start()
        except Exception as exc:  # noqa: BLE001 - diagnostics must not stop a training run
            log.warning("system metrics of %s not logged to run %s: %s", self.node_id, self.run_id, exc)
            self._monitor = None

    def stop(self) -> None:
        """Stop sampling; a last sample is logged, so even a run shorter than the interval has one."""
        monitor, self._monitor = self._monitor, None
        if monitor is None:
            return
        try:
            monitor.finish()
            monitor.collect_metrics()
            monitor.publish_metrics(monitor.aggregate_metrics())
            monitor.mlflow_logger.flush()
        except Exception as exc:  # noqa: BLE001 - diagnostics must not fail a finished training run
            log.warning("system metrics of %s: %s", self.node_id, exc)


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

    def single_file(self, suffix: str, *, uri: str, what: str, example: str) -> Path:
        """The one ``suffix`` file of the artefact (the artefact itself, or a folder holding exactly one).

        Args:
            suffix: e.g. ``.pt`` or ``.ckpt``.
            uri: the ``models:/`` URI, for the message.
            what: what the file is (``detector``, ``classifier``), for the message.
            example: a URI naming the file, for the message.

        Raises:
            ModelNotFoundError: none or several such files.
        """
        local = self.local_path
        if local.is_file():
            return local
        found = sorted(local.rglob(f"*{suffix}"))
        if len(found) != 1:
            names = ", ".join(str(p.relative_to(local)) for p in found) or "none"
            raise ModelNotFoundError(
                f"{what} {uri}: expected exactly one {suffix} file in the model artefact at {local}, found "
                f"{names}. Name the file in the URI, e.g. {example}."
            )
        return found[0]


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
    except Exception as exc:  # noqa: BLE001 - MlflowException or a connection error
        raise _tracking_error(f"cannot resolve {model_uri} in the model registry at {registry}", exc) from exc
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
    except Exception as exc:  # noqa: BLE001 - MlflowException or a connection error
        raise _tracking_error(f"cannot register {artifact_path} of run {run_id} as {name!r} in "
                              f"{target.tracking_uri}", exc) from exc
    log.info("registered %s version %s%s", name, created.version, f" (alias {alias})" if alias else "")
    return RegisteredVersion(name, str(created.version), f"models:/{name}/{created.version}", alias)


# --- model registry: versions, aliases, promotion and rollback ---------------------------------------

#: Version tag naming the version a champion replaced (the rollback chain).
REPLACED_TAG = "ecowatch.replaced"


@dataclass(frozen=True)
class ModelVersionInfo:
    """One version of a registered model.

    Attributes:
        name: registered model name.
        version: version number (as text).
        aliases: aliases pointing at it (``champion``, ``challenger``, ...).
        tags: its tags.
        run_id: the MLflow run that logged its artefact.
        source: where its artefact is stored.
        created_utc: creation time, ISO 8601 UTC.
        description: its description.
    """

    name: str
    version: str
    aliases: tuple[str, ...]
    tags: dict[str, str]
    run_id: str
    source: str
    created_utc: str
    description: str = ""


@dataclass(frozen=True)
class AliasChange:
    """What a promotion or rollback did to an alias.

    Attributes:
        name: registered model name.
        alias: the alias.
        version: the version it points to after the change (None: no version).
        previous: the version it pointed to before (None: none).
        applied: whether the alias was moved.
        reason: why (or why not), one sentence.
    """

    name: str
    alias: str
    version: str | None
    previous: str | None
    applied: bool
    reason: str


def _client(target: TrackingTarget) -> Any:
    _mlflow()
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=target.tracking_uri)


def _version_info(version: Any, aliases: tuple[str, ...] | None = None) -> ModelVersionInfo:
    import datetime as dt

    created = dt.datetime.fromtimestamp((version.creation_timestamp or 0) / 1000, tz=dt.UTC)
    return ModelVersionInfo(
        name=version.name, version=str(version.version),
        aliases=tuple(sorted(aliases if aliases is not None else (getattr(version, "aliases", None) or ()))),
        tags=dict(version.tags or {}), run_id=version.run_id or "", source=version.source or "",
        created_utc=created.strftime("%Y-%m-%dT%H:%M:%SZ"), description=version.description or "",
    )


def list_model_versions(target: TrackingTarget, name: str) -> list[ModelVersionInfo]:
    """Every version of a registered model with its aliases and tags, oldest first.

    Returns:
        The versions; [] when no model of that name is registered.

    Raises:
        TrackingError: the registry cannot be read (:class:`TrackingUnavailable` when unreachable).
    """
    client = _client(target)
    try:
        try:
            model = client.get_registered_model(name)
        except Exception as exc:  # noqa: BLE001 - RESOURCE_DOES_NOT_EXIST, or unreachable (re-raised below)
            if is_unreachable(exc):
                raise
            return []
        by_version: dict[str, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            by_version.setdefault(str(version), []).append(alias)
        found = client.search_model_versions(f"name='{name}'")
    except Exception as exc:  # noqa: BLE001 - MlflowException or a connection error
        raise _tracking_error(f"cannot list the versions of {name!r} in {target.tracking_uri}", exc) from exc
    infos = [_version_info(v, tuple(by_version.get(str(v.version), ()))) for v in found]
    return sorted(infos, key=lambda v: int(v.version))


def get_alias_version(target: TrackingTarget, name: str, alias: str) -> ModelVersionInfo | None:
    """The version an alias points to, or None when the model or the alias does not exist.

    Raises:
        TrackingError: the registry cannot be read (:class:`TrackingUnavailable` when unreachable).
    """
    client = _client(target)
    try:
        version = client.get_model_version_by_alias(name, alias)
    except Exception as exc:  # noqa: BLE001 - RESOURCE_DOES_NOT_EXIST / INVALID_PARAMETER_VALUE, or unreachable
        if is_unreachable(exc):
            raise _tracking_error(f"cannot read {name}@{alias} in {target.tracking_uri}", exc) from exc
        return None
    return _version_info(version)


def set_model_alias(target: TrackingTarget, name: str, alias: str, version: str | None) -> None:
    """Point ``alias`` at ``version``; with ``version=None`` remove the alias (if it exists).

    Raises:
        TrackingError: the registry cannot be written.
    """
    client = _client(target)
    try:
        if version is None:
            if get_alias_version(target, name, alias) is not None:
                client.delete_registered_model_alias(name, alias)
        else:
            client.set_registered_model_alias(name, alias, str(version))
    except TrackingError:
        raise
    except Exception as exc:  # noqa: BLE001 - MlflowException or a connection error
        raise _tracking_error(f"cannot set {name}@{alias} to version {version} in {target.tracking_uri}", exc) from exc


def set_model_version_tags(target: TrackingTarget, name: str, version: str, tags: Mapping[str, Any]) -> None:
    """Set tags on a model version.

    Raises:
        TrackingError: the registry cannot be written.
    """
    client = _client(target)
    try:
        for key, value in tags.items():
            client.set_model_version_tag(name, str(version), key, str(value))
    except Exception as exc:  # noqa: BLE001 - MlflowException or a connection error
        raise _tracking_error(f"cannot tag {name} version {version} in {target.tracking_uri}", exc) from exc


def _utc_now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def promote_version(
    target: TrackingTarget,
    name: str,
    version: str,
    *,
    expected_current: str | None,
    alias: str = "champion",
    previous_alias: str = "previous-champion",
    tags: Mapping[str, Any] | None = None,
) -> AliasChange:
    """Move ``alias`` to ``version``, keeping the version it replaces under ``previous_alias``.

    The promoted version is tagged ``ecowatch.replaced`` with the version it replaced (""
    for none) and ``ecowatch.promoted_utc``: the chain :func:`rollback_alias` walks back.

    Args:
        target: the registry.
        name: registered model name.
        version: the version to promote.
        expected_current: the version ``alias`` pointed to when the promotion was decided (None:
            none). When it points elsewhere now (another run promoted meanwhile), nothing changes.
        alias: the alias to move.
        previous_alias: alias set on the replaced version (removed when there was none).
        tags: more tags for the promoted version (e.g. the promoting run, its holdout figures).

    Returns:
        The change (``applied`` False when the alias moved since the decision).

    Raises:
        TrackingError: the registry cannot be read or written.
    """
    current = get_alias_version(target, name, alias)
    current_version = current.version if current else None
    if current_version != expected_current:
        reason = (f"{name}@{alias} is version {current_version} now, not {expected_current} as when the promotion of "
                  f"version {version} was decided; not moved (run the retrain again to compare with it)")
        log.warning(reason)
        return AliasChange(name, alias, current_version, current_version, False, reason)
    if current_version == str(version):
        return AliasChange(name, alias, current_version, current_version, False,
                           f"version {version} is {alias} already")
    set_model_version_tags(target, name, version, {REPLACED_TAG: current_version or "",
                                                   "ecowatch.promoted_utc": _utc_now(), **(tags or {})})
    set_model_alias(target, name, alias, str(version))
    set_model_alias(target, name, previous_alias, current_version)
    log.info("%s@%s: version %s -> %s", name, alias, current_version, version)
    return AliasChange(name, alias, str(version), current_version, True,
                       f"version {version} promoted to {alias}" + (f", replacing version {current_version}"
                                                                   if current_version else ""))


def rollback_alias(
    target: TrackingTarget,
    name: str,
    *,
    alias: str = "champion",
    previous_alias: str = "previous-champion",
    to_version: str | None = None,
) -> AliasChange:
    """Move ``alias`` back to the version the current one replaced (or to ``to_version``).

    The rolled-back version is tagged ``ecowatch.rolled_back_utc`` and ``ecowatch.rolled_back_to``;
    ``previous_alias`` moves one step back along the chain (removed at its start), so rolling back
    again goes further back.

    Args:
        target: the registry.
        name: registered model name.
        alias: the alias to move back.
        previous_alias: the alias kept on the replaced version.
        to_version: the version to go back to; None for the one the current version replaced.

    Returns:
        The change.

    Raises:
        TrackingError: no version has ``alias``, the current version replaced none and no
            ``to_version`` is given, ``to_version`` does not exist, or the registry cannot be used.
    """
    current = get_alias_version(target, name, alias)
    if current is None:
        raise TrackingError(f"{name}@{alias} does not exist in {target.tracking_uri}: nothing to roll back. "
                            f"List the versions with `ecowatch models list`.")
    versions = {v.version: v for v in list_model_versions(target, name)}
    back = to_version or current.tags.get(REPLACED_TAG) or None
    if back is None:
        raise TrackingError(f"{name}@{alias} is version {current.version}, which replaced no earlier {alias}; "
                            f"give the version to go back to (--to VERSION), one of {sorted(versions, key=int)}.")
    if str(back) not in versions:
        raise TrackingError(f"{name} has no version {back}; versions: {sorted(versions, key=int)}.")
    if str(back) == current.version:
        return AliasChange(name, alias, current.version, current.version, False, f"version {back} is {alias} already")
    set_model_version_tags(target, name, current.version, {"ecowatch.rolled_back_utc": _utc_now(),
                                                           "ecowatch.rolled_back_to": back})
    set_model_alias(target, name, alias, str(back))
    set_model_alias(target, name, previous_alias, versions[str(back)].tags.get(REPLACED_TAG) or None)
    log.info("%s@%s rolled back: version %s -> %s", name, alias, current.version, back)
    return AliasChange(name, alias, str(back), current.version, True,
                       f"{alias} rolled back from version {current.version} to version {back}")


@dataclass(frozen=True)
class RunRecord:
    """A finished MLflow run, as :func:`find_runs` returns it."""

    run_id: str
    status: str
    start_utc: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


def find_runs(target: TrackingTarget, experiment: str, *, tags: Mapping[str, str] | None = None,
              status: str | None = "FINISHED", max_results: int = 10) -> list[RunRecord]:
    """The latest runs of an experiment with the given tag values, newest first.

    Returns:
        The runs ([] when the experiment does not exist).

    Raises:
        TrackingError: the store cannot be read (:class:`TrackingUnavailable` when unreachable).
    """
    import datetime as dt

    client = _client(target)
    conditions = [f"tags.`{k}` = '{v}'" for k, v in (tags or {}).items()]
    if status:
        conditions.append(f"attributes.status = '{status}'")
    try:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            return []
        runs = client.search_runs([found.experiment_id], filter_string=" and ".join(conditions),
                                  max_results=max_results, order_by=["attributes.start_time DESC"])
    except Exception as exc:  # noqa: BLE001 - MlflowException or a connection error
        raise _tracking_error(f"cannot search the runs of {experiment!r} in {target.tracking_uri}", exc) from exc
    def started(run: Any) -> str:
        return dt.datetime.fromtimestamp((run.info.start_time or 0) / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return [RunRecord(r.info.run_id, r.info.status, started(r), dict(r.data.params), dict(r.data.metrics),
                      dict(r.data.tags)) for r in runs]


def check_reachable(target: TrackingTarget) -> None:
    """Raise :class:`TrackingUnavailable` when the tracking store cannot be reached (one cheap request).

    Raises:
        TrackingUnavailable: the server cannot be reached.
        TrackingError: it answers with an error.
    """
    client = _client(target)
    try:
        client.search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - MlflowException or a connection error
        raise _tracking_error(f"MLflow at {target.tracking_uri}", exc) from exc
