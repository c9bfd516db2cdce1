"""Fixtures of the classifier tests: offline switches, a blocked network, a tiny dump and a tiny model.

Every test here runs with the network blocked: a connection to an IP address or a DNS lookup fails
the test that made it (nothing may download weights or send telemetry). Matplotlib (imported by
torchmetrics) keeps its font cache in a temporary folder, not in ``~``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .data import make_dump

_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "NO_ALBUMENTATIONS_UPDATE": "1"}
_set_here: list[str] = []
_roots: list[Path] = []


def pytest_configure(config: pytest.Config) -> None:
    root = Path(tempfile.mkdtemp(prefix="ecowatch-classify-tests-"))
    _roots.append(root)
    for key, value in {**_ENV, "MPLCONFIGDIR": str(root / "matplotlib"), "TORCH_HOME": str(root / "torch")}.items():
        if key not in os.environ:
            os.environ[key] = value
            _set_here.append(key)


def pytest_unconfigure(config: pytest.Config) -> None:
    for key in _set_here:
        os.environ.pop(key, None)
    for root in _roots:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tests share a small machine: one torch thread."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny generated dump (see :mod:`tests.classify.data`): ``dump/``, labels, taxonomy."""
    return make_dump(tmp_path_factory.mktemp("tiny") / "data")


@pytest.fixture(scope="session")
def tiny_sources(tiny_dump: Path) -> list:
    """Labelled animal boxes of the tiny dump."""
    from ecowatch.classify.crops import sources_from_coco

    return sources_from_coco(tiny_dump / "coco_camera_traps.json", tiny_dump / "dump", exclude_taxa=["homo_sapiens"])


@pytest.fixture(scope="session")
def tiny_taxa(tiny_dump: Path) -> dict:
    from ecowatch.tables import read_taxonomy

    return read_taxonomy(tiny_dump / "taxonomy.csv")


def tiny_training_config(**sections: dict) -> object:
    """A training configuration that runs in seconds: 32 px, MobileNetV3-small, two steps, no tracking."""
    from ecowatch.classify.config import ClassifierTrainingConfig

    raw: dict[str, dict] = {
        "data": {"crop_size": 40, "input_size": 32, "cache_workers": 0,
                 "split": {"val_fraction": 0.25, "test_fraction": 0.25, "seed": 0}},
        "model": {"name": "tiny-species", "backbone": "mobilenet_v3_small", "pretrained": False},
        "train": {"max_epochs": 1, "max_steps": 2, "batch_size": 8, "workers": 0, "threads": 1,
                  "accelerator": "cpu", "val_every_n_epochs": 1},
        "tracking": {"enabled": False},
    }
    for key, values in sections.items():
        raw.setdefault(key, {}).update(values)
    return ClassifierTrainingConfig.model_validate(raw)


@pytest.fixture(scope="session")
def tiny_classifier(tiny_dump: Path, tiny_sources: list, tiny_taxa: dict, tmp_path_factory: pytest.TempPathFactory):
    """A classifier trained for two steps on the tiny dump (its TrainingResult; checkpoint on disk)."""
    from ecowatch.classify.train import train_classifier

    work = tmp_path_factory.mktemp("trained")
    return train_classifier(tiny_training_config(), sources=tiny_sources, taxa=tiny_taxa, models_dir=work / "models",
                            cache_dir=work / "crops")
