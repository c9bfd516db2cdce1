"""Benchmark of distributed nightly prediction: 1 process against N, on a generated dump.

Generates (once, cached under ``--workdir``) a synthetic SD-card dump of ``--frames`` frames at
640x360 with :mod:`ecowatch.synth`, and a tiny species classifier trained on its labels for a few
steps (or takes ``--classifier``). Then, for each process count, runs ``ecowatch nightly`` from
scratch (a fresh store) in a subprocess with ``detect.devices=N`` (Lightning's launcher starts the
other processes; each predicts its share into a shard, rank 0 merges) and prints:

- detect images/s and classify crops/s: the images (crops) of the stage over the wall time of its
  ``Trainer.predict``, which includes starting the other processes (the first distributed stage
  waits for them to import everything and join) and rank 0's merge of the shards;
- the nightly run's own wall time (rank 0's ``run_nightly``: ingest, detect, static false
  positives, classify, fuse, exports, report) and the command's (with interpreter start).

    python bench/nightly_ddp.py                          # 300 frames, 1 vs 2 CPU processes
    python bench/nightly_ddp.py --frames 2000 --processes 1,2,4
    python bench/nightly_ddp.py --device cuda --processes 1,2 --frames 5000   # one process per GPU

On a CPU every process gets ``cores // N`` torch threads (the library's default) unless
``--threads`` is given. Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
IMAGE_SIZE = (640, 360)
EXPERIMENT = "bench-nightly-ddp"


def generate(workdir: Path, frames: int) -> Path:
    """The cached generated dump (``<out>/dump``, deployments, taxonomy, COCO labels)."""
    from ecowatch.synth import DumpSpec, generate_dump

    out = workdir / f"synth-{frames}-{IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}"
    if not (out / ".bench-complete").is_file():
        print(f"generating {frames} frames at {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} in {out} (once) ...", flush=True)
        generate_dump(out, DumpSpec.preset("sample", seed=0, n_frames=frames, image_size=IMAGE_SIZE), overwrite=True)
        (out / ".bench-complete").write_text("ok\n")
    return out


def tiny_classifier(data: Path) -> Path:
    """A MobileNetV3-small species classifier at 64 px, trained 20 steps on the dump's labels (cached)."""
    found = sorted((data / "models" / "classifiers").glob("*.ckpt"))
    if found:
        return found[0]
    from ecowatch.classify.config import ClassifierTrainingConfig
    from ecowatch.classify.crops import sources_from_coco
    from ecowatch.classify.train import train_classifier
    from ecowatch.tables import read_taxonomy

    print("training a tiny classifier on the dump's labels (once) ...", flush=True)
    config = ClassifierTrainingConfig.model_validate({
        "data": {"crop_size": 96, "input_size": 64, "cache_workers": 0},
        "model": {"name": "bench-species", "backbone": "mobilenet_v3_small", "pretrained": False},
        "train": {"max_epochs": 1, "max_steps": 20, "batch_size": 32, "workers": 0, "accelerator": "cpu"},
        "tracking": {"enabled": False},
    })
    sources = sources_from_coco(data / "coco_camera_traps.json", data / "dump", exclude_taxa=["homo_sapiens"])
    return train_classifier(config, sources=sources, taxa=read_taxonomy(data / "taxonomy.csv"),
                            models_dir=data / "models", cache_dir=data / "crops").checkpoint


def write_project(root: Path, data: Path, classifier: Path, args: argparse.Namespace) -> Path:
    """A fresh project (catalog + run configuration) over the dump, outputs under ``root/work``."""
    shutil.rmtree(root, ignore_errors=True)
    (root / "conf").mkdir(parents=True)
    (root / "data_catalog").mkdir()
    datasets = {
        "dump": {"type": "sdcard_dump", "path": str(data / "dump")},
        "deployments": {"type": "deployments_csv", "path": str(data / "deployments.csv")},
        "taxonomy": {"type": "taxonomy_csv", "path": str(data / "taxonomy.csv")},
        "labels": {"type": "coco_camera_traps", "path": str(data / "coco_camera_traps.json")},
        "store": {"type": "results_store", "path": "work/results.sqlite"},
        "tracking": {"type": "mlflow_tracking", "path": "work/mlflow/mlflow.db"},
        "models": {"type": "model_dir", "path": "work/models"},
        "exports": {"type": "directory", "path": "work/exports"},
        "reports": {"type": "directory", "path": "work/reports"},
    }
    (root / "data_catalog" / "catalog.yaml").write_text(yaml.safe_dump({"datasets": datasets}))
    accelerator = "gpu" if args.device == "cuda" else "cpu"
    common = {"accelerator": accelerator, "workers": args.workers, "threads": args.threads}
    conf = {
        "catalog": "data_catalog/catalog.yaml",
        "datasets": {name: name for name in datasets},
        "detect": {"detector": args.detector, "batch_size": args.batch_size, **common},
        "classify": {"model": str(classifier), **common},
        "tracking": {"experiment": EXPERIMENT, "enabled": True},
    }
    (root / "conf" / "nightly.yaml").write_text(yaml.safe_dump(conf))
    return root / "conf" / "nightly.yaml"


def run(conf: Path, processes: int) -> dict[str, float]:
    """One nightly run with ``processes`` processes; its figures from the run's MLflow metrics."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LOCAL_RANK", "NODE_RANK", "RANK", "WORLD_SIZE", "MASTER_", "TORCHELASTIC"))}
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "ecowatch", "nightly", "--config", str(conf), "--set", f"detect.devices={processes}"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=conf.parents[1], env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"nightly run with {processes} processes failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    from mlflow.tracking import MlflowClient

    from ecowatch.tracking import tracking_target

    client = MlflowClient(tracking_uri=tracking_target(str(conf.parents[1] / "work" / "mlflow" / "mlflow.db")).tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    metrics = client.search_runs([experiment.experiment_id])[0].data.metrics
    nightly = float(re.search(r"finished in ([\d.]+) s", done.stdout)[1])
    return {"images": metrics["detect.media_selected"], "images_per_s": metrics["detect.images_per_s"],
            "crops": metrics.get("classify.detections_selected", 0.0),
            "crops_per_s": metrics.get("classify.crops_per_second", 0.0), "nightly_s": nightly, "command_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default=str(REPO / "work" / "bench" / "nightly_ddp"))
    parser.add_argument("--frames", type=int, default=300, help="frames of the generated dump")
    parser.add_argument("--processes", default="1,2", help="process counts to compare, e.g. 1,2,4")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda: one process per GPU")
    parser.add_argument("--detector", default="ecowatch-synth", help="detect.detector (registry name or .pt)")
    parser.add_argument("--classifier", help="classifier checkpoint (default: a tiny one trained on the dump)")
    parser.add_argument("--batch-size", type=int, default=8, help="detect.batch_size")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers per process")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per process (default cores // N)")
    args = parser.parse_args()

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    workdir = Path(args.workdir)
    data = generate(workdir, args.frames)
    classifier = Path(args.classifier) if args.classifier else tiny_classifier(data)
    counts = [int(n) for n in args.processes.split(",") if n.strip()]
    print(f"dump: {args.frames} frames at {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} ({data}); device {args.device}; "
          f"{os.cpu_count()} CPU cores; detector {args.detector}, batch {args.batch_size}; classifier {classifier.name}",
          flush=True)
    print(f"{'processes':>9} {'images':>7} {'images/s':>9} {'crops':>6} {'crops/s':>8} {'nightly s':>10} "
          f"{'command s':>10}", flush=True)
    for processes in counts:
        conf = write_project(workdir / "runs" / f"p{processes}", data, classifier, args)
        figures = run(conf, processes)
        print(f"{processes:>9d} {figures['images']:>7.0f} {figures['images_per_s']:>9.1f} {figures['crops']:>6.0f} "
              f"{figures['crops_per_s']:>8.1f} {figures['nightly_s']:>10.1f} {figures['command_s']:>10.1f}",
              flush=True)


if __name__ == "__main__":
    main()
