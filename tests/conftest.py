"""Shared test fixtures: a throw-away ecowatch project (conf + catalog) around any data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


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
    body = {"catalog": "data_catalog/catalog.yaml", "datasets": names}
    body.update(conf or {})
    conf_path = root / "conf" / "nightly.yaml"
    conf_path.write_text(yaml.safe_dump(body))
    return conf_path


@pytest.fixture
def project_factory(tmp_path: Path) -> Callable[..., Path]:
    """Factory fixture: ``project_factory(dump=..., deployments=...)`` -> conf path in tmp_path."""

    def make(**kwargs) -> Path:
        return write_project(tmp_path / "project", **kwargs)

    return make
