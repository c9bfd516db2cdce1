"""Fixtures of the retraining tests: one torch thread, the generated rounds data, and
a throw-away project (catalog, ``conf/classifier.yaml`` shrunk to seconds, ``conf/retrain.yaml``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from .data import RoundsData, make_rounds

REPO = Path(__file__).resolve().parents[2]

#: The challenger's training in the tests: ResNet-18 from scratch at 32 px, 1 thread, no validation
#: passes during the fit (the retrain evaluates on its holdout), seconds per round.
TRAINING = {
    "data": {"crop_size": 40, "input_size": 32, "cache_workers": 0, "padding": 0.15,
             "split": {"val_fraction": 0.25, "test_fraction": 0.0, "seed": 0}},
    "model": {"backbone": "resnet18", "pretrained": False},
    "train": {"max_epochs": 15, "batch_size": 16, "workers": 0, "threads": 1, "accelerator": "cpu",
              "val_every_n_epochs": 1000, "lr": 0.003},
}






@pytest.fixture(autouse=True)
def _one_torch_thread(one_thread: None) -> None:
    """Every test here runs torch on one thread (see tests/conftest.py)."""


@pytest.fixture(scope="session")
def rounds_data(tmp_path_factory: pytest.TempPathFactory) -> RoundsData:
    """The generated dump and the labelled sets of the three rounds (see :mod:`tests.retrain.data`)."""
    return make_rounds(tmp_path_factory.mktemp("rounds"))


def write_project(root: Path, data: RoundsData, *, labels: list[dict], tracking: dict | None = None,
                  retrain: dict | None = None, training: dict | None = None) -> Path:
    """Write ``root/data_catalog/catalog.yaml``, ``root/conf/classifier.yaml`` and ``root/conf/retrain.yaml``.

    The labelled sets ``holdout_labels``, ``first_sites`` and ``new_sites`` are copies in ``root/labels``
    (a test may overwrite ``new_sites``). Returns the retrain configuration's path.
    """
    (root / "conf").mkdir(parents=True, exist_ok=True)
    (root / "data_catalog").mkdir(exist_ok=True)
    (root / "labels").mkdir(exist_ok=True)
    for name in ("holdout", "first_sites", "new_sites"):
        if not (root / "labels" / f"{name}.json").exists():
            shutil.copy(data.root / f"{name}.json", root / "labels" / f"{name}.json")
    datasets = {
        "images": {"type": "sdcard_dump", "path": str(data.dump)},
        "taxonomy": {"type": "taxonomy_csv", "path": str(data.taxonomy)},
        "deployments": {"type": "deployments_csv", "path": str(data.deployments)},
        "holdout_labels": {"type": "coco_camera_traps", "path": "labels/holdout.json"},
        "first_sites": {"type": "coco_camera_traps", "path": "labels/first_sites.json"},
        "new_sites": {"type": "coco_camera_traps", "path": "labels/new_sites.json"},
        "models": {"type": "model_dir", "path": "work/models"},
        "tracking": tracking or {"type": "mlflow_tracking", "path": "work/mlflow/mlflow.db"},
        "state": {"type": "directory", "path": "work/retrain"},
        "store": {"type": "results_store", "path": "work/results.sqlite"},
        "worklists": {"type": "directory", "path": "work/worklists"},
        "context_model": {"type": "model_dir", "path": "work/models/context/context-model.json"},
    }
    (root / "data_catalog" / "catalog.yaml").write_text(yaml.safe_dump({"datasets": datasets}))
    classifier = yaml.safe_load((REPO / "conf" / "classifier.yaml").read_text())  # the shipped file, shrunk
    classifier["datasets"] = {"images": "images", "labels": "holdout_labels", "taxonomy": "taxonomy",
                              "models": "models", "tracking": "tracking"}
    for section, values in {**TRAINING, **(training or {})}.items():
        classifier.setdefault(section, {}).update(values)
    (root / "conf" / "classifier.yaml").write_text(yaml.safe_dump(classifier))
    context = yaml.safe_load((REPO / "conf" / "context.yaml").read_text())  # the context priors' tables
    context["datasets"] = {"labels": "first_sites", "store": None, "deployments": "deployments",
                           "taxonomy": "taxonomy", "regions": None, "range_maps": None,
                           "context": "context_model"}
    (root / "conf" / "context.yaml").write_text(yaml.safe_dump(context))
    conf = yaml.safe_load((REPO / "conf" / "retrain.yaml").read_text())  # the shipped file, pointed here
    conf["datasets"] = {"taxonomy": "taxonomy", "models": "models", "tracking": "tracking", "state": "state",
                        "store": "store", "worklists": "worklists"}
    conf["labels"] = labels
    conf["worklist"]["dump"] = "images"
    for section, values in (retrain or {}).items():
        conf[section] = {**conf.get(section, {}), **values} if isinstance(values, dict) else values
    path = root / "conf" / "retrain.yaml"
    path.write_text(yaml.safe_dump(conf))
    return path


def coco_set(name: str) -> dict:
    """A ``labels`` entry of a COCO labelled set of the test catalog."""
    return {"dataset": name, "images": "images"}
