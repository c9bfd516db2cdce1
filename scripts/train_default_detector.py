"""Reproduce ecowatch's embedded default detector (``ecowatch-synth``) from generated data.

Steps (all seeded; the same command gives the same data and, up to floating-point
non-determinism of multi-threaded CPU kernels, the same weights):

1. generate a camera-trap training dump (``DumpSpec.preset("train")``: 15 deployments, a year,
   4,000 frames at 960x540) and a drone dump (24 frames at 4000x3000) with ``ecowatch.synth``;
2. convert both to an ultralytics dataset (:func:`ecowatch.detect.datasets.build_yolo_dataset`):
   classes animal/person/vehicle, split by location, 30% of the empty camera frames kept as
   negatives, drone frames cut into full-resolution tiles of the model's image size;
3. train the compact YOLO11 variant ``yolo11-c256`` from scratch at 320 px
   (:func:`ecowatch.detect.train.train_detector`), logged to MLflow and registered;
4. copy the best weights to ``--install`` (by default the package's bundled file).

Usage::

    python scripts/train_default_detector.py --workdir /tmp/ecowatch-detector [--epochs 30 | --hours 1.25]

The bundled weights were made in two runs on two shared CPU cores, ``--threads 1``: from scratch
with ``--hours 1.0`` (26 epochs), then continued from that run's ``last.pt`` with
``--architecture <workdir>/runs/ecowatch-synth/weights/last.pt --hours 1.35`` (30 more epochs;
validation precision 0.80, recall 0.42, mAP50 0.48). The epochs that fitted are in each MLflow
run and checkpoint; ``--epochs`` makes a run independent of the machine's speed. On a GPU pass
``--device 0`` and ``--epochs 150``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

from ecowatch.detect.datasets import build_yolo_dataset, read_coco_camera_traps
from ecowatch.detect.registry import BUNDLED_DIR, get_detector
from ecowatch.detect.train import TrainSettings, train_detector
from ecowatch.synth import DumpSpec, generate_dump
from ecowatch.tracking import tracking_target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="scratch folder (data, runs, MLflow store)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hours", type=float, default=None,
                        help="train for this long instead (ultralytics' `time`: epochs and the learning-rate "
                             "schedule are fitted to it after the first epoch)")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--architecture", default="yolo11-c256")
    parser.add_argument("--install", type=Path, default=None,
                        help="where to copy the best weights (default: the bundled ecowatch-synth file)")
    parser.add_argument("--no-install", action="store_true", help="leave the bundled weights alone")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    camera, drone = work / "train", work / "drone_train"
    if not (camera / "manifest.json").is_file():
        generate_dump(camera, DumpSpec.preset("train"), overwrite=True)
    if not (drone / "manifest.json").is_file():
        generate_dump(drone, DumpSpec.preset("drone", seed=7, n_frames=24), overwrite=True)
    images = [read_coco_camera_traps(camera / "coco_camera_traps.json", camera / "dump"),
              read_coco_camera_traps(drone / "coco_camera_traps.json", drone / "dump")]
    dataset = build_yolo_dataset(images, work / "dataset", val_fraction=0.2, seed=0, keep_empty=0.2,
                                 tile_above=2000, tile_size=args.imgsz, tile_overlap=0.2,
                                 max_tiles_per_image=24, empty_tile_fraction=0.1)
    print("dataset:", json.dumps(dataset.counts), "val locations:", dataset.val_locations, flush=True)
    extra = {"warmup_epochs": 1.0, "val": False}  # validate once, after the last epoch
    if args.hours:
        extra["time"] = args.hours
    settings = TrainSettings(architecture=args.architecture, imgsz=args.imgsz, epochs=args.epochs, batch=args.batch,
                             device=args.device, threads=args.threads, close_mosaic=3, extra=extra)
    trained = train_detector(dataset, work / "runs" / "ecowatch-synth", settings=settings,
                             tracking=tracking_target(str(work / "mlflow" / "mlflow.db")),
                             register_as="ecowatch-synth", alias="champion",
                             on_epoch=lambda e, m: print(f"epoch {e}: " + ", ".join(
                                 f"{k}={v:.3f}" for k, v in m.items() if k.startswith("metrics")), flush=True))
    print(f"trained {trained.epochs_run} epochs in {trained.seconds / 60:.1f} min: {trained.metrics}")
    print(f"weights: {trained.weights} (MLflow run {trained.mlflow_run_id}, {trained.registered})")
    if not args.no_install:
        target = args.install or (BUNDLED_DIR / get_detector("ecowatch-synth").filename)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(trained.weights, target)
        print(f"installed {target} ({target.stat().st_size / 1e6:.2f} MB)")
    print(f"total {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
