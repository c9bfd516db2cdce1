"""Shared test fixtures: a throw-away ecowatch project (conf + catalog) around any data, MegaDetector's
validator, and no network for any test (a test that tries to connect off this machine or resolve a
name other than localhost fails)."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

#: Offline switches for every test (ecowatch sets its own defaults too; tests do not rely on them).
_TEST_ENV = {
    "YOLO_OFFLINE": "1",
    "YOLO_AUTOINSTALL": "False",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "NO_ALBUMENTATIONS_UPDATE": "1",
    "OMP_WAIT_POLICY": "PASSIVE",
}
_saved_env: dict[str, str | None] = {}
_config_roots: list[Path] = []


def pytest_configure(config: pytest.Config) -> None:
    """Before any test module is imported: offline switches and private config folders.

    Importing Lightning imports torchmetrics, which imports matplotlib's font manager (it writes a
    font cache); ultralytics writes its settings on import; torch hub looks for weights in
    ``TORCH_HOME``. All of that goes to a temporary folder, not ``~``.
    """
    root = Path(tempfile.mkdtemp(prefix="ecowatch-tests-"))
    _config_roots.append(root)
    values = {**_TEST_ENV, "YOLO_CONFIG_DIR": str(root / "yolo"), "MPLCONFIGDIR": str(root / "matplotlib"),
              "TORCH_HOME": str(root / "torch")}
    for key, value in values.items():
        _saved_env[key] = os.environ.get(key)
        os.environ[key] = value


def pytest_unconfigure(config: pytest.Config) -> None:
    for key, value in _saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    for root in _config_roots:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread for the test (tests share a small machine); the previous count afterwards."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def write_project(
    root: Path,
    *,
    dump: Path,
    deployments: Path | None = None,
    taxonomy: Path | None = None,
    labels: Path | None = None,
    conf: dict | None = None,
) -> Path:
    """Write ``root/conf/nightly.yaml`` and ``root/data_catalog/catalog.yaml`` for a test run.

    Outputs (store, MLflow, exports, reports) go under ``root/work``. Returns the conf path.
    """
    (root / "conf").mkdir(parents=True, exist_ok=True)
    (root / "data_catalog").mkdir(parents=True, exist_ok=True)
    datasets: dict[str, dict] = {
        "dump": {"type": "sdcard_dump", "path": str(dump)},
        "store": {"type": "results_store", "path": "work/results.sqlite"},
        "tracking": {"type": "mlflow_tracking", "path": "work/mlflow/mlflow.db"},
        "models": {"type": "model_dir", "path": "work/models"},
        "exports": {"type": "directory", "path": "work/exports"},
        "reports": {"type": "directory", "path": "work/reports"},
    }
    names = {"dump": "dump", "store": "store", "tracking": "tracking", "models": "models",
             "exports": "exports", "reports": "reports"}
    for key, path, kind in (("deployments", deployments, "deployments_csv"),
                            ("taxonomy", taxonomy, "taxonomy_csv"),
                            ("labels", labels, "coco_camera_traps")):
        if path is not None:
            datasets[key] = {"type": kind, "path": str(path)}
            names[key] = key
        else:  # declared but absent: stages that need it say so
            datasets[key] = {"type": kind, "path": str(root / f"absent_{key}"), "create_with": "(not in this test)"}
            names[key] = key
    (root / "data_catalog" / "catalog.yaml").write_text(yaml.safe_dump({"datasets": datasets}))
    # the bundled detector trained on generated frames (the library default is a MegaDetector release)
    body: dict = {"catalog": "data_catalog/catalog.yaml", "datasets": names, "detect": {"detector": "ecowatch-synth"}}
    for key, value in (conf or {}).items():
        body[key] = {**body[key], **value} if isinstance(value, dict) and isinstance(body.get(key), dict) else value
    conf_path = root / "conf" / "nightly.yaml"
    conf_path.write_text(yaml.safe_dump(body))
    return conf_path


@pytest.fixture
def project_factory(tmp_path: Path) -> Callable[..., Path]:
    """Factory fixture: ``project_factory(dump=..., deployments=...)`` -> conf path in tmp_path."""

    def make(**kwargs) -> Path:
        return write_project(tmp_path / "project", **kwargs)

    return make


@pytest.fixture
def md_validator():
    """MegaDetector's validator module, imported without leaking its global Pillow setting.

    Importing it imports megadetector's visualization utilities, which set
    ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True`` process-wide; later tests (and ingest's
    truncation checks) rely on Pillow's default, so it is restored.
    """
    from PIL import ImageFile

    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        yield pytest.importorskip("megadetector.postprocessing.validate_batch_results")
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


# This machine only: servers that tests start themselves (PostgreSQL, an MLflow server) listen here.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


@pytest.fixture(scope="session")
def network_attempts() -> Iterator[list[str]]:
    """Block every IP connection and DNS lookup off this machine for the session; record the attempts.

    Loopback addresses and Unix sockets stay open: tests talk to servers they started themselves.
    """
    attempts: list[str] = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else None
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in LOOPBACK_HOSTS:
            attempts.append(f"connect {address}")
            raise OSError(f"network access blocked in tests: connect {address}")
        return real_connect(self, address)

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if (host.decode() if isinstance(host, bytes) else host) in LOOPBACK_HOSTS:
            return real_getaddrinfo(host, *args, **kwargs)
        attempts.append(f"getaddrinfo {host}")
        raise socket.gaierror(f"network access blocked in tests: {host}")

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    try:
        yield attempts
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.getaddrinfo = real_getaddrinfo


@pytest.fixture(autouse=True)
def no_network(network_attempts: list[str]) -> Iterator[None]:
    """Fail the test that tried to reach the network."""
    network_attempts.clear()
    yield
    assert not network_attempts, f"the test tried to reach the network: {network_attempts}"
