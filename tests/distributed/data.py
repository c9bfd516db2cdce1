"""Seeded fixture data of the distributed tests (``python -m tests.distributed.data OUT`` writes it to look at).

:func:`make_data` writes a small generated SD-card dump (ecowatch.synth's ``tiny`` preset: 6
deployments, 60 frames of 480x270 plus the preset's broken files) and a species classifier trained
on its labels for two steps (MobileNetV3-small at 32 px, about 5 s on one core), so that a nightly
run over it detects with the bundled ``ecowatch-synth`` detector and classifies the animal boxes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

SEED = 0
#: The dump: small enough for four nightly runs in a test, with boxes for the classifier.
DUMP_OVERRIDES = {"seed": SEED, "n_deployments": 6, "n_frames": 60, "image_size": (480, 270), "workers": 0}


@dataclass(frozen=True)
class NightlyData:
    """A generated dump and a classifier for it.

    Attributes:
        dump: the card dump folder.
        deployments: its deployments CSV.
        taxonomy: its taxonomy CSV.
        classifier: the trained classifier checkpoint (``classify.model``).
    """

    dump: Path
    deployments: Path
    taxonomy: Path
    classifier: Path


def make_data(out: Path) -> NightlyData:
    """Generate the dump into ``out`` and train the tiny classifier on its labels (seeded)."""
    from ecowatch.classify.config import ClassifierTrainingConfig
    from ecowatch.classify.crops import sources_from_coco
    from ecowatch.classify.train import train_classifier
    from ecowatch.synth import DumpSpec, generate_dump
    from ecowatch.tables import read_taxonomy

    generate_dump(out, DumpSpec.preset("tiny", **DUMP_OVERRIDES), overwrite=True)
    config = ClassifierTrainingConfig.model_validate({
        "data": {"crop_size": 40, "input_size": 32, "cache_workers": 0,
                 "split": {"val_fraction": 0.25, "test_fraction": 0.25, "seed": SEED}},
        "model": {"name": "tiny-species", "backbone": "mobilenet_v3_small", "pretrained": False},
        "train": {"max_epochs": 1, "max_steps": 2, "batch_size": 8, "workers": 0, "threads": 1,
                  "accelerator": "cpu", "val_every_n_epochs": 1, "seed": SEED},
        "tracking": {"enabled": False},
    })
    sources = sources_from_coco(out / "coco_camera_traps.json", out / "dump", exclude_taxa=["homo_sapiens"])
    result = train_classifier(config, sources=sources, taxa=read_taxonomy(out / "taxonomy.csv"),
                              models_dir=out / "models", cache_dir=out / "crops")
    return NightlyData(out / "dump", out / "deployments.csv", out / "taxonomy.csv", result.checkpoint)


if __name__ == "__main__":  # pragma: no cover
    print(make_data(Path(sys.argv[1])))
