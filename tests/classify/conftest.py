"""Fixtures of the classifier tests: one torch thread, a tiny dump and a tiny model (offline switches and
the network block are in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .data import make_dump


@pytest.fixture(autouse=True)
def _one_torch_thread(one_thread: None) -> None:
    """Every test here runs torch on one thread (see tests/conftest.py)."""


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
