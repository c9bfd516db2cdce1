"""Tiny, seeded fixture data of the classifier tests (run it to look at it: ``python -m tests.classify.data OUT``).

- :func:`make_dump`: a small synthetic SD-card dump with COCO Camera Traps truth (ecowatch.synth's
  ``tiny`` preset with more locations, so a location split has a train, a val and a test site).
- :func:`fake_image`: a flat-coloured frame with one bright rectangle, for crop geometry tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[2]
SEED = 0
#: The dump: 6 deployments at 5 locations, 160 frames of 480x270.
DUMP_OVERRIDES = dict(seed=SEED, n_deployments=6, n_frames=160, image_size=(480, 270), workers=0)


def make_dump(out: Path) -> Path:
    """Write the tiny dump (about 3 s) and return its folder (``dump/``, ``coco_camera_traps.json`` ...)."""
    from ecowatch.synth import DumpSpec, generate_dump

    generate_dump(out, DumpSpec.preset("tiny", **DUMP_OVERRIDES), overwrite=True)
    return out


def write_training_project(root: Path, dump: Path) -> Path:
    """A project folder training on ``dump`` with the shipped ``conf/classifier.yaml``, shrunk to seconds.

    Returns:
        The project's ``conf/classifier.yaml`` (its catalog names the dump's images, labels and
        taxonomy, ``work/models`` and the MLflow store ``work/mlflow/mlflow.db``).
    """
    (root / "conf").mkdir(parents=True)
    (root / "data_catalog").mkdir()
    datasets = {
        "images": {"type": "sdcard_dump", "path": str(dump / "dump")},
        "labels": {"type": "coco_camera_traps", "path": str(dump / "coco_camera_traps.json")},
        "taxonomy": {"type": "taxonomy_csv", "path": str(dump / "taxonomy.csv")},
        "models": {"type": "model_dir", "path": "work/models"},
        "tracking": {"type": "mlflow_tracking", "path": "work/mlflow/mlflow.db"},
    }
    (root / "data_catalog" / "catalog.yaml").write_text(yaml.safe_dump({"datasets": datasets}))
    conf = yaml.safe_load((REPO / "conf" / "classifier.yaml").read_text())  # the shipped file, shrunk
    conf["datasets"] = {name: name for name in datasets}
    conf["data"].update(crop_size=40, input_size=32, cache_workers=0, split={"val_fraction": 0.25,
                                                                          "test_fraction": 0.25, "seed": 0})
    conf["model"].update(backbone="mobilenet_v3_small", pretrained=False)
    conf["train"].update(max_epochs=1, batch_size=8, workers=0, threads=1, accelerator="cpu", val_every_n_epochs=1)
    path = root / "conf" / "classifier.yaml"
    path.write_text(yaml.safe_dump(conf))
    return path


def fake_image(width: int = 200, height: int = 100, *, box: tuple[int, int, int, int] = (80, 30, 40, 20),
               background: int = 50, value: int = 200) -> np.ndarray:
    """A grey ``uint8`` RGB frame with one rectangle ``box`` = (x, y, w, h) in pixels of grey ``value``."""
    image = np.full((height, width, 3), background, dtype=np.uint8)
    x, y, w, h = box
    image[y:y + h, x:x + w] = value
    return image


if __name__ == "__main__":  # pragma: no cover
    print(make_dump(Path(sys.argv[1])))
