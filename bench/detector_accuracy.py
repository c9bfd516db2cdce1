"""Accuracy of a detector on generated camera-trap frames from places it never saw.

Generates an evaluation dump with another seed than the training dump (every location's scene,
camera placement, animals and times differ), ingests it into a fresh store, runs ecowatch's
detect stage, and scores the stored detections against the dump's COCO Camera Traps truth:

- box level (IoU >= 0.5, COCO-style greedy matching by confidence), per category, and for
  animals by size (long side in pixels of the frame);
- image level for animals (does the frame hold an animal?);
- the operating point: the confidence threshold with the most recall at precision >= 0.90, and
  the figures at the nightly run's observation threshold.

Usage::

    python bench/detector_accuracy.py --workdir /tmp/ecowatch-eval [--weights ecowatch-synth] [--frames 600]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ecowatch.config import DetectConfig, IngestConfig, TilingConfig
from ecowatch.detect import detect_stage
from ecowatch.detect.evaluate import box_curve, image_curve, operating_point, read_predictions, read_truth
from ecowatch.ingest import ingest_dump
from ecowatch.store import open_store
from ecowatch.synth import DumpSpec, generate_dump
from ecowatch.tables import read_deployments

SIZE_BINS = ((0, 32), (32, 64), (64, 128), (128, 100_000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--weights", default="ecowatch-synth", help="registry name, .pt path or models:/ URI")
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--seed", type=int, default=101, help="seed of the evaluation dump (training used 0)")
    parser.add_argument("--image-size", default="1280x720")
    parser.add_argument("--imgsz", type=int, default=None, help="network input size (default: the detector's)")
    parser.add_argument("--min-precision", type=float, default=0.90)
    parser.add_argument("--iou", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = args.workdir.resolve()
    width, height = (int(v) for v in args.image_size.lower().split("x"))
    generated = work / f"eval-seed{args.seed}-{args.frames}-{width}x{height}"
    if not (generated / "manifest.json").is_file():
        generate_dump(generated, DumpSpec.preset("sample", seed=args.seed, n_frames=args.frames,
                                                 image_size=(width, height), workers=args.workers), overwrite=True)
    store_path = work / f"store-{Path(args.weights).stem}-{args.seed}.sqlite"
    store_path.unlink(missing_ok=True)
    store = open_store(store_path)
    run_id = store.start_run("bench", {"weights": args.weights})
    ingest_dump(store, dump_root=generated / "dump", dump_id="eval",
                deployments=read_deployments(generated / "deployments.csv"),
                config=IngestConfig(workers=args.workers), run_id=run_id)
    config = DetectConfig(detector=args.weights, imgsz=args.imgsz, workers=args.workers,
                          tiling=TilingConfig(mode="never"))
    started = time.perf_counter()
    detect = detect_stage(store, dump_root=generated / "dump", dump_id="eval", config=config, run_id=run_id,
                          cache_dir=work / "models")
    seconds = time.perf_counter() - started
    truth = read_truth(generated / "coco_camera_traps.json")
    predictions = read_predictions(store, dump_id="eval", detector_version=detect.detector_version)
    store.dispose()

    n_animals = sum(len(t.boxes.get("animal", [])) for t in truth.values())
    print(f"detector {detect.detector_name} (version {detect.detector_version}, {detect.imgsz} px) on "
          f"{len(truth)} generated frames at {width}x{height}, seed {args.seed} (training dump: seed 0), "
          f"{n_animals} animal boxes; {detect.images_per_second:.1f} images/s ({seconds:.0f} s with loading)")
    results: dict[str, object] = {"detector": detect.detector_name, "version": detect.detector_version,
                                  "frames": len(truth), "seed": args.seed}
    print(f"\nbox level, IoU >= {args.iou}; operating point = most recall at precision >= {args.min_precision}")
    print(f"{'category':<22}{'boxes':>7}{'threshold':>11}{'precision':>11}{'recall':>8}"
          f"{'P@' + str(DetectConfig().observation_threshold):>9}{'R@' + str(DetectConfig().observation_threshold):>8}")
    rows = [("animal", None), ("person", None), ("vehicle", None)]
    rows += [(f"animal {lo}-{hi if hi < 100_000 else ''}px", (lo, hi)) for lo, hi in SIZE_BINS]
    for label, size in rows:
        category = label.split()[0]
        keep = None if size is None else (lambda box, _img, lo=size[0], hi=size[1]: lo <= max(box[2], box[3]) < hi)
        curve = box_curve(truth, predictions, category=category, iou_threshold=args.iou, truth_filter=keep)
        point = operating_point(curve, min_precision=args.min_precision)
        p_obs, r_obs = curve.at(DetectConfig().observation_threshold)
        results[label] = {"boxes": curve.n_truth, "threshold": point.threshold, "precision": point.precision,
                          "recall": point.recall, "precision_at_obs": p_obs, "recall_at_obs": r_obs}
        fmt = (lambda v: f"{v:.3f}" if v is not None else "n/a")
        print(f"{label:<22}{curve.n_truth:>7}{fmt(point.threshold):>11}{fmt(point.precision):>11}"
              f"{fmt(point.recall):>8}{p_obs:>9.3f}{r_obs:>8.3f}")
    curve = image_curve(truth, predictions, category="animal")
    point = operating_point(curve, min_precision=args.min_precision)
    p_obs, r_obs = curve.at(DetectConfig().observation_threshold)
    results["image level animal"] = {"images": curve.n_truth, "threshold": point.threshold,
                                     "precision": point.precision, "recall": point.recall,
                                     "precision_at_obs": p_obs, "recall_at_obs": r_obs}
    print(f"\nimage level (frame holds an animal): {curve.n_truth} positive frames; operating point threshold "
          f"{point.threshold}, precision {point.precision}, recall {point.recall}; at "
          f"{DetectConfig().observation_threshold}: precision {p_obs:.3f}, recall {r_obs:.3f}")
    out = work / "detector_accuracy.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
