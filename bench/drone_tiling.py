"""Benchmark of tiled inference: recall of small animals on generated drone frames, tiled vs untiled.

Generates (once, cached under ``--workdir``) a drone dump with :mod:`ecowatch.synth`
(``DumpSpec.preset("drone")``: nadir frames, 4000x3000 by default, 20-100 deer and wild boar 10-60
px long), ingests it into a fresh SQLite store per run, runs the detect stage untiled
(``tiling.mode: never``, every frame letterboxed whole) and tiled (``tiling.mode: always``), and
compares the stored detections with the generator's COCO Camera Traps truth.

    python bench/drone_tiling.py --weights path/to/detector.pt --frames 12
    python bench/drone_tiling.py --weights det.pt --frames 48 --imgsz 640 --tile-size 640 --overlap 0.2

Matching rule (stated in the output): per frame, detections of category ``animal`` with confidence
at or above ``--conf`` are taken in descending confidence; each is matched to the not yet matched
truth box with which it has the highest IoU, if that IoU is at least ``--iou``. Truth boxes are the
visible part of each animal (``bbox`` ``[x, y, w, h]`` in pixels). A truth box is *small* when its
long side is below ``--small-px`` pixels. Recall = matched truth boxes / truth boxes (all, and small
only); precision = matched detections / detections. Person and vehicle detections are left out
(the drone truth holds only animals).

images/s is the detect stage's prediction loop (decoding, tiling, network, merge, store writes) over
all frames; weights loading is not in it. A warm-up run of each mode on the first frame, in a
separate store, comes first and is excluded. Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DUMP_ID = "drone-bench"


@dataclass
class Figures:
    """Recall and precision of one run against the truth."""

    truth: int
    truth_small: int
    detections: int
    matched: int
    matched_small: int

    @property
    def recall(self) -> float:
        return self.matched / self.truth if self.truth else float("nan")

    @property
    def recall_small(self) -> float:
        return self.matched_small / self.truth_small if self.truth_small else float("nan")

    @property
    def precision(self) -> float:
        return self.matched / self.detections if self.detections else float("nan")


def generate(workdir: Path, *, seed: int, frames: int, image_size: tuple[int, int], animals: tuple[int, int],
             workers: int) -> Path:
    """The cached drone dump folder (``<out>/dump``, ``<out>/coco_camera_traps.json``); generated if absent."""
    from ecowatch.synth import DumpSpec, generate_dump

    width, height = image_size
    out = workdir / f"drone-s{seed}-n{frames}-{width}x{height}-a{animals[0]}-{animals[1]}"
    done = out / ".bench-complete"
    if not done.is_file():
        print(f"generating {frames} drone frames at {width}x{height} in {out} (once) ...", flush=True)
        spec = DumpSpec.preset("drone", seed=seed, n_frames=frames, n_deployments=min(2, frames),
                               image_size=image_size, drone_animals=animals, workers=workers)
        summary = generate_dump(out, spec, overwrite=True)
        done.write_text("ok\n")
        print(f"  generated {summary.n_frames} frames, {summary.n_animals} animals in {summary.seconds:.0f} s",
              flush=True)
    return out


def first_frame_view(out: Path) -> Path:
    """A dump folder holding a hard link to the first frame only (for the warm-up runs)."""
    view = out / "warmup"
    if not (view / ".bench-complete").is_file():
        coco = json.loads((out / "coco_camera_traps.json").read_text())
        relpath = sorted(image["file_name"] for image in coco["images"])[0]
        target = view / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.link(out / "dump" / relpath, target)
        (view / ".bench-complete").write_text("ok\n")
    return view


def fresh_store(path: Path, dump: Path, deployments_csv: Path, workers: int):  # noqa: ANN201 - Store (lazy import)
    """A new SQLite store at ``path`` with ``dump`` ingested."""
    from ecowatch.config import IngestConfig
    from ecowatch.ingest import ingest_dump
    from ecowatch.store import open_store
    from ecowatch.tables import read_deployments

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    store = open_store(path)
    ingest_dump(store, dump_root=dump, dump_id=DUMP_ID, deployments=read_deployments(deployments_csv),
                config=IngestConfig(workers=workers), run_id="bench-ingest")
    return store


def truth_boxes(coco_path: Path) -> dict[str, np.ndarray]:
    """Truth boxes per frame relpath as ``float64`` (N, 4) x1, y1, x2, y2 in pixels (animals only)."""
    coco = json.loads(coco_path.read_text())
    skip = {c["id"] for c in coco["categories"] if c["name"] in ("empty", "human", "vehicle")}
    boxes: dict[str, list[list[float]]] = {image["file_name"]: [] for image in coco["images"]}
    for annotation in coco["annotations"]:
        if annotation["category_id"] in skip or "bbox" not in annotation:
            continue
        x, y, w, h = annotation["bbox"]
        boxes[annotation["image_id"]].append([x, y, x + w, y + h])
    return {name: np.asarray(b, dtype=np.float64).reshape(-1, 4) for name, b in boxes.items()}


def stored_detections(store, conf: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:  # noqa: ANN001
    """Animal detections at or above ``conf`` per relpath: (x1, y1, x2, y2 pixels, conf)."""
    import sqlalchemy as sa

    from ecowatch.store import schema as S

    query = (
        sa.select(S.media.c.relpath, S.media.c.width, S.media.c.height, S.detections.c.conf, S.detections.c.x,
                  S.detections.c.y, S.detections.c.w, S.detections.c.h)
        .join(S.media, S.media.c.media_id == S.detections.c.media_id)
        .where(S.detections.c.category == "animal", S.detections.c.conf >= conf)
    )
    rows: dict[str, list[tuple[float, ...]]] = {}
    with store.engine.connect() as connection:
        for relpath, width, height, score, x, y, w, h in connection.execute(query):
            rows.setdefault(relpath, []).append((x * width, y * height, (x + w) * width, (y + h) * height, score))
    out = {}
    for relpath, values in rows.items():
        array = np.asarray(values, dtype=np.float64)
        out[relpath] = (array[:, :4], array[:, 4])
    return out


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4), both x1, y1, x2, y2."""
    inter_w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    inter_h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = inter_w * inter_h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def evaluate(truth: dict[str, np.ndarray], detections: dict[str, tuple[np.ndarray, np.ndarray]], *,
             iou_threshold: float, small_px: float) -> Figures:
    """Greedy matching by descending confidence (see the module docstring)."""
    figures = Figures(0, 0, 0, 0, 0)
    for relpath, gt in truth.items():
        small = np.maximum(gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]) < small_px
        figures.truth += len(gt)
        figures.truth_small += int(small.sum())
        boxes, conf = detections.get(relpath, (np.zeros((0, 4)), np.zeros(0)))
        figures.detections += len(conf)
        if not len(gt) or not len(conf):
            continue
        ious = iou_matrix(boxes[np.argsort(-conf, kind="stable")], gt)
        taken = np.zeros(len(gt), dtype=bool)
        for row in ious:
            candidates = np.where(taken, -1.0, row)
            best = int(np.argmax(candidates))
            if candidates[best] >= iou_threshold:
                taken[best] = True
        figures.matched += int(taken.sum())
        figures.matched_small += int((taken & small).sum())
    return figures


def run_detect(store, dump: Path, args: argparse.Namespace, mode: str, run_id: str):  # noqa: ANN001, ANN201
    """The detect stage over ``dump`` with tiling ``mode`` (``never`` or ``always``)."""
    from ecowatch.config import DetectConfig, TilingConfig
    from ecowatch.detect.stage import detect_stage

    tiling = TilingConfig(mode=mode, tile_size=args.tile_size, overlap=args.overlap,
                          full_frame_pass=not args.no_full_frame)
    config = DetectConfig(detector=args.weights, imgsz=args.imgsz, conf_threshold=args.conf, batch_size=args.batch_size,
                          workers=args.workers, threads=args.threads,
                          accelerator={"cpu": "cpu", "cuda": "gpu", "auto": "auto"}[args.device], tiling=tiling)
    return detect_stage(store, dump_root=dump, dump_id=DUMP_ID, config=config, run_id=run_id,
                        cache_dir=args.workdir / "models")


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Run the benchmark; returns the printed figures by run (``untiled``, ``tiled``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help="an ultralytics .pt detector (or a registry name)")
    parser.add_argument("--frames", type=int, default=12, help="drone frames to generate (default 12)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--image-size", type=parse_size, default=(4000, 3000), help="WxH (default 4000x3000)")
    parser.add_argument("--animals", default="20,100", help="min,max animals per frame (default 20,100)")
    parser.add_argument("--imgsz", type=int, default=None, help="network input size (default: the detector's)")
    parser.add_argument("--tile-size", type=int, default=None, help="tile side in frame pixels (default: imgsz)")
    parser.add_argument("--overlap", type=float, default=0.2, help="tile overlap, fraction or pixels (default 0.2)")
    parser.add_argument("--no-full-frame", action="store_true", help="tiled run without the whole-frame pass")
    parser.add_argument("--conf", type=float, default=0.2, help="confidence threshold (default 0.2)")
    parser.add_argument("--iou", type=float, default=0.5, help="IoU for a match (default 0.5)")
    parser.add_argument("--small-px", type=float, default=32, help="small animal: long side below this (default 32)")
    parser.add_argument("--batch-size", type=int, default=8, help="network inputs per forward pass (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader and generator workers (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: every core)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="device (default auto)")
    parser.add_argument("--workdir", type=Path, default=Path("work/bench"), help="cache folder (default work/bench)")
    args = parser.parse_args(argv)
    args.workdir = args.workdir.resolve()
    low, high = (int(v) for v in args.animals.split(","))

    out = generate(args.workdir, seed=args.seed, frames=args.frames, image_size=args.image_size, animals=(low, high),
                   workers=args.workers)
    truth = truth_boxes(out / "coco_camera_traps.json")
    deployments = out / "deployments.csv"
    stores = args.workdir / "stores"
    n_truth = sum(len(b) for b in truth.values())
    n_small = sum(int((np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) < args.small_px).sum()) for b in truth.values())

    for mode in ("never", "always"):  # warm-up (excluded): torch's one-time set-up, file caches
        warm = fresh_store(stores / f"drone-warmup-{mode}.sqlite", first_frame_view(out), deployments, 0)
        run_detect(warm, first_frame_view(out), args, mode, f"warmup-{mode}")
        warm.dispose()

    results: dict[str, dict[str, float]] = {}
    for name, mode in (("untiled", "never"), ("tiled", "always")):
        store = fresh_store(stores / f"drone-{name}.sqlite", out / "dump", deployments, args.workers)
        started = time.perf_counter()
        summary = run_detect(store, out / "dump", args, mode, name)
        seconds = time.perf_counter() - started
        figures = evaluate(truth, stored_detections(store, args.conf), iou_threshold=args.iou, small_px=args.small_px)
        store.dispose()
        results[name] = {
            "recall_small": figures.recall_small, "recall": figures.recall, "precision": figures.precision,
            "detections": figures.detections, "frames": summary.media_done, "tiled_frames": summary.media_tiled,
            "images_per_s": summary.images_per_second, "seconds": seconds, "imgsz": summary.imgsz,
            "threads": summary.threads, "accelerator": summary.accelerator,
        }

    first = results["untiled"]
    print(f"drone tiling benchmark: {len(truth)} frames {args.image_size[0]}x{args.image_size[1]} (seed {args.seed}), "
          f"{n_truth} animals, {n_small} small (long side < {args.small_px:g} px)")
    print(f"weights {args.weights}, imgsz {first['imgsz']}, {first['accelerator']} with {first['threads']} threads; "
          f"tiles of {args.tile_size or first['imgsz']} px overlapping {args.overlap:g}"
          f"{'' if args.no_full_frame else ' + whole-frame pass'}")
    print(f"match: animal detections with conf >= {args.conf:g}, greedy by confidence, IoU >= {args.iou:g}; "
          "images/s: prediction loop after a warm-up run on one frame")
    print(f"{'run':<8} {'recall small':>12} {'recall all':>10} {'precision':>9} {'detections':>10} "
          f"{'tiled frames':>12} {'images/s':>9} {'stage s':>8}")
    for name, r in results.items():
        print(f"{name:<8} {r['recall_small']:>12.3f} {r['recall']:>10.3f} {r['precision']:>9.3f} "
              f"{r['detections']:>10d} {r['tiled_frames']:>5d}/{r['frames']:<6d} {r['images_per_s']:>9.2f} "
              f"{r['seconds']:>8.1f}", flush=True)
    return results


if __name__ == "__main__":
    main()
