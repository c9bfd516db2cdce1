"""Benchmark of the detect stage against ultralytics' own predict: images/s and peak memory.

Generates (once, cached under ``--workdir``) camera-trap frames with :mod:`ecowatch.synth`
(``DumpSpec.preset("sample")``, 1280x720 by default) and takes the first ``--images`` of them. For
every network input size in ``--sizes`` it measures, each in a fresh Python process (so one run's
memory does not count for the next), on the same weights and the same image files:

- ``ecowatch``: :func:`ecowatch.detect.detect_stage` into a freshly ingested SQLite store, with
  ``--batch-size``, ``--workers`` DataLoader processes, ecowatch's thread setting (every core
  unless ``--threads``) and otherwise the defaults of ``detect`` (minimal padding: each batch padded
  to the smallest stride-aligned rectangle, fp16 on a GPU); ``--padding square`` for the square;
  tiling is off so both sides see each image whole;
- ``ultralytics``: ``YOLO(weights).predict(paths, stream=True)`` with the same ``imgsz``, ``conf``,
  ``iou`` and device, everything else ultralytics' default: batch 1, minimal (rectangular)
  padding, fp32, and the torch threads ultralytics sets itself (``import ultralytics`` and its
  device selection pin CPU inference to ``min(8, cores - 1)`` threads);
- ``ultralytics, matched``: the same call with torch threads set to ecowatch's number (after
  ultralytics' device selection), ecowatch's batch size, ecowatch's padding (``rect``) and
  ecowatch's precision, a like-for-like comparison.

images/s is images divided by the wall time of the whole call: for ecowatch the detect stage
(weights checksum and loading, DataLoader start, decoding, network, NMS, store writes), for
ultralytics the predict call on a model already loaded. Each process first runs the same call on
the first ``--batch-size`` images (in a separate store for ecowatch) as a warm-up, excluded from the
figures. Peak memory is sampled every 20 ms with psutil during the timed call: the resident set
size (RSS) of the measuring process, and the proportional set size (PSS) summed over it and its
children (DataLoader workers share pages with their parent, which PSS splits instead of counting
them in every process). On a GPU the peak of torch's allocated CUDA memory is printed as well.

    python bench/detect.py --weights path/to/detector.pt --images 48
    python bench/detect.py --images 200 --sizes 640,1280 --workers 4 --batch-size 16 --device cuda

Runs offline: nothing is downloaded (a registry name whose weights are not in
``<workdir>/models/detectors`` is an error that says where to put them). Figures are printed;
nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

MIB = 1024 * 1024
SAMPLE_EVERY_S = 0.02
DUMP_ID = "detect-bench"
RUNNERS = ("ecowatch", "ultralytics", "ultralytics-matched")


class PeakMemory:
    """Samples this process's RSS and the PSS of it and its children in a background thread."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._me = psutil.Process()
        self.rss_main = self.pss_tree = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _pss(self, process) -> int:  # noqa: ANN001 - psutil.Process
        try:
            return int(process.memory_full_info().pss)
        except (self._psutil.NoSuchProcess, self._psutil.AccessDenied, self._psutil.ZombieProcess, AttributeError):
            return 0

    def _sample(self) -> None:
        self.rss_main = max(self.rss_main, self._me.memory_info().rss)
        total = self._pss(self._me)
        for child in self._me.children(recursive=True):
            total += self._pss(child)
        self.pss_tree = max(self.pss_tree, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(SAMPLE_EVERY_S)

    def __enter__(self) -> PeakMemory:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def generate(workdir: Path, images: int, image_size: tuple[int, int], workers: int) -> Path:
    """The cached generator output (``<out>/dump``, ``<out>/deployments.csv``); generated if absent."""
    from ecowatch.synth import DumpSpec, generate_dump

    width, height = image_size
    frames = max(images + images // 4 + 2, 6)  # the generator's count is approximate
    out = workdir / f"camera-{frames}-{width}x{height}"
    if not (out / ".bench-complete").is_file():
        print(f"generating about {frames} camera frames at {width}x{height} in {out} (once) ...", flush=True)
        spec = DumpSpec.preset("sample", n_frames=frames, n_deployments=min(6, frames), image_size=image_size,
                               include_broken_files=False, workers=workers)
        generate_dump(out, spec, overwrite=True)
        (out / ".bench-complete").write_text("ok\n")
    return out


def view_of(out: Path, count: int, name: str) -> Path:
    """A dump folder ``<out>/<name>`` of hard links to the first ``count`` readable frames (by path)."""
    view = out / name
    if (view / ".bench-complete").is_file():
        return view
    coco = json.loads((out / "coco_camera_traps.json").read_text())
    names = sorted(image["file_name"] for image in coco["images"])[:count]
    if len(names) < count:
        print(f"  only {len(names)} frames were generated; using them all", flush=True)
    for relpath in names:
        target = view / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.link(out / "dump" / relpath, target)
    (view / ".bench-complete").write_text("ok\n")
    return view


def ingest(dump: Path, store_path: Path, deployments_csv: Path) -> None:
    """Ingest ``dump`` into a new SQLite store at ``store_path`` (replacing any old one)."""
    from ecowatch.config import IngestConfig
    from ecowatch.ingest import ingest_dump
    from ecowatch.store import open_store
    from ecowatch.tables import read_deployments

    for suffix in ("", "-wal", "-shm"):
        Path(f"{store_path}{suffix}").unlink(missing_ok=True)
    store_path.parent.mkdir(parents=True, exist_ok=True)
    store = open_store(store_path)
    ingest_dump(store, dump_root=dump, dump_id=DUMP_ID, deployments=read_deployments(deployments_csv),
                config=IngestConfig(workers=0), run_id="bench-ingest")
    store.dispose()


def image_paths(dump: Path) -> list[Path]:
    """The image files of a view, sorted by relative path (the detect stage's order)."""
    return sorted((p for p in dump.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")),
                  key=lambda p: p.relative_to(dump).as_posix())


def detect_config(args: argparse.Namespace, imgsz: int):  # noqa: ANN201 - DetectConfig (lazy import)
    from ecowatch.config import DetectConfig, TilingConfig

    accelerator = {"cpu": "cpu", "cuda": "gpu", "auto": "auto"}[args.device]
    return DetectConfig(detector=args.weights, imgsz=imgsz, conf_threshold=args.conf, iou_threshold=args.iou,
                        batch_size=args.batch_size, workers=args.workers, threads=args.threads,
                        accelerator=accelerator, padding=args.padding, tiling=TilingConfig(mode="never"))


def measure_ecowatch(args: argparse.Namespace, imgsz: int, paths: dict[str, Path]) -> dict[str, float]:
    """Warm-up then timed detect stage, in this process."""
    from ecowatch.detect.stage import detect_stage
    from ecowatch.store import open_store

    config = detect_config(args, imgsz)
    warm = open_store(paths["warm_store"])
    detect_stage(warm, dump_root=paths["warm_dump"], dump_id=DUMP_ID, config=config, run_id="warmup",
                 cache_dir=args.workdir / "models")
    warm.dispose()
    store = open_store(paths["store"])
    _reset_cuda_peak()
    with PeakMemory() as peak:
        started = time.perf_counter()
        summary = detect_stage(store, dump_root=paths["dump"], dump_id=DUMP_ID, config=config, run_id="bench",
                               cache_dir=args.workdir / "models")
        seconds = time.perf_counter() - started
    store.dispose()
    return _figures(summary.media_done, seconds, summary.threads, peak, loop_images_per_s=summary.images_per_second,
                    settings=f"batch {args.batch_size}, {args.workers} workers, {args.padding} padding"
                             f"{', fp16' if summary.accelerator == 'cuda' else ''}")


def measure_ultralytics(args: argparse.Namespace, imgsz: int, paths: dict[str, Path], *, matched: bool,
                        ecowatch_threads: int) -> dict[str, float]:
    """Warm-up then timed ``YOLO(weights).predict``, in this process."""
    os.environ.setdefault("YOLO_OFFLINE", "1")  # no update checks or downloads; settings otherwise default
    os.environ.setdefault("YOLO_CONFIG_DIR", str(args.workdir / "ultralytics"))
    import torch
    from ultralytics import YOLO  # first, as a user would: it sets OMP_NUM_THREADS=1 before torch loads

    weights = resolved_weights(args)
    files = [str(p) for p in image_paths(paths["dump"])]
    device = {"cpu": "cpu", "cuda": 0, "auto": None}[args.device]
    common = dict(imgsz=imgsz, conf=args.conf, iou=args.iou, device=device, verbose=False)
    model = YOLO(str(weights))
    warm_files = [str(p) for p in image_paths(paths["warm_dump"])]
    for _ in model.predict(warm_files, stream=True, **common):  # sets up the predictor (and ultralytics' threads)
        pass
    settings = "batch 1, rect padding, fp32 (ultralytics defaults)"
    if matched:
        torch.set_num_threads(ecowatch_threads)
        half = device != "cpu" and torch.cuda.is_available()
        common.update(batch=args.batch_size, rect=args.padding == "minimal", half=half)
        for _ in model.predict(warm_files, stream=True, **common):  # warm-up with these settings
            pass
        settings = (f"batch {args.batch_size}, {args.padding} padding{', fp16' if half else ''}, "
                    "threads as ecowatch")
    _reset_cuda_peak()
    count = 0
    with PeakMemory() as peak:
        started = time.perf_counter()
        for _ in model.predict(files, stream=True, **common):
            count += 1
        seconds = time.perf_counter() - started
    return _figures(count, seconds, torch.get_num_threads(), peak, settings=settings)


def resolved_weights(args: argparse.Namespace) -> Path:
    """The local weights file ``--weights`` names (a path or a registry name), never downloaded."""
    from ecowatch.detect.weights import resolve_detector

    return resolve_detector(args.weights, cache_dir=args.workdir / "models", offline=True).path


def _reset_cuda_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _figures(images: int, seconds: float, threads: int, peak: PeakMemory, *, settings: str,
             loop_images_per_s: float | None = None) -> dict[str, float]:
    import torch

    return {
        "images": images,
        "seconds": seconds,
        "images_per_s": images / seconds if seconds > 0 else 0.0,
        "loop_images_per_s": loop_images_per_s,
        "threads": threads,
        "rss_main_mib": peak.rss_main / MIB,
        "pss_tree_mib": peak.pss_tree / MIB,
        "cuda_peak_mib": torch.cuda.max_memory_allocated() / MIB if torch.cuda.is_available() else None,
        "settings": settings,
    }


def measure(args: argparse.Namespace, runner: str, imgsz: int, paths: dict[str, Path],
            ecowatch_threads: int) -> dict[str, float]:
    """One measurement, in a fresh process unless ``--in-process``."""
    if args.in_process:
        if runner == "ecowatch":
            return measure_ecowatch(args, imgsz, paths)
        return measure_ultralytics(args, imgsz, paths, matched=runner == "ultralytics-matched",
                                   ecowatch_threads=ecowatch_threads)
    command = [sys.executable, __file__, "--measure", runner, "--imgsz", str(imgsz), "--paths", json.dumps(
        {k: str(v) for k, v in paths.items()}), "--ecowatch-threads", str(ecowatch_threads), *args.passthrough]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{runner} at imgsz {imgsz} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[int, dict[str, dict[str, float]]]:
    """Run the benchmark (or, internally, one measurement); returns the figures by size and runner."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="ecowatch-synth",
                        help="an ultralytics .pt file or a registry name (default: ecowatch-synth, the bundled detector)")
    parser.add_argument("--images", type=int, default=48, help="images to run (default 48)")
    parser.add_argument("--image-size", default="1280x720", help="WxH of the generated frames (default 1280x720)")
    parser.add_argument("--sizes", default="640,1280", help="network input sizes (default 640,1280)")
    parser.add_argument("--workers", type=int, default=2, help="ecowatch DataLoader workers (default 2)")
    parser.add_argument("--batch-size", type=int, default=8, help="ecowatch images per batch (default 8)")
    parser.add_argument("--threads", type=int, default=None, help="ecowatch torch threads (default: every core)")
    parser.add_argument("--padding", choices=("minimal", "square"), default="minimal",
                        help="ecowatch's detect.padding, and the matched ultralytics run's rect (default minimal)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="device (default auto: a GPU when present)")
    parser.add_argument("--conf", type=float, default=0.25, help="confidence threshold, both (default 0.25)")
    parser.add_argument("--iou", type=float, default=0.7, help="NMS IoU threshold, both (default 0.7)")
    parser.add_argument("--workdir", type=Path, default=Path("work/bench"), help="cache folder (default work/bench)")
    parser.add_argument("--in-process", action="store_true",
                        help="measure in this process (quicker; memory figures then include earlier runs)")
    parser.add_argument("--measure", choices=RUNNERS, help=argparse.SUPPRESS)  # internal: one measurement
    parser.add_argument("--imgsz", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--paths", help=argparse.SUPPRESS)
    parser.add_argument("--ecowatch-threads", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.workdir = args.workdir.resolve()
    if Path(args.weights).suffix == ".pt":
        args.weights = str(Path(args.weights).resolve())
    args.passthrough = ["--weights", args.weights, "--workers", str(args.workers), "--batch-size",
                        str(args.batch_size), "--device", args.device, "--conf", str(args.conf), "--iou",
                        str(args.iou), "--workdir", str(args.workdir), "--padding", args.padding]
    if args.threads is not None:
        args.passthrough += ["--threads", str(args.threads)]

    if args.measure:
        paths = {k: Path(v) for k, v in json.loads(args.paths).items()}
        figures = (measure_ecowatch(args, args.imgsz, paths) if args.measure == "ecowatch" else
                   measure_ultralytics(args, args.imgsz, paths, matched=args.measure == "ultralytics-matched",
                                       ecowatch_threads=args.ecowatch_threads))
        print(json.dumps(figures))
        return {}

    width, _, height = args.image_size.lower().partition("x")
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"weights: {resolved_weights(args)}", flush=True)
    out = generate(args.workdir, args.images, (int(width), int(height)), args.workers)
    view, warm_view = view_of(out, args.images, f"view-{args.images}"), view_of(out, args.batch_size,
                                                                                f"warmup-{args.batch_size}")
    deployments = out / "deployments.csv"
    n_images = len(image_paths(view))
    results: dict[int, dict[str, dict[str, float]]] = {}
    for imgsz in sizes:
        stores = args.workdir / "stores"
        paths = {"dump": view, "warm_dump": warm_view, "store": stores / f"detect-{imgsz}.sqlite",
                 "warm_store": stores / f"detect-{imgsz}-warmup.sqlite"}
        results[imgsz] = {}
        for runner in RUNNERS:
            if runner == "ecowatch":
                ingest(view, paths["store"], deployments)
                ingest(warm_view, paths["warm_store"], deployments)
            threads = int(results[imgsz].get("ecowatch", {}).get("threads", 0))
            results[imgsz][runner] = measure(args, runner, imgsz, paths, threads)
    _print_table(args, n_images, results)
    return results


def _print_table(args: argparse.Namespace, n_images: int, results: dict[int, dict[str, dict[str, float]]]) -> None:
    print(f"detect benchmark: {n_images} images {args.image_size}, device {args.device}, {os.cpu_count()} CPUs, "
          f"conf {args.conf:g}, iou {args.iou:g}; warm-up on {args.batch_size} images excluded; "
          f"{'in one process' if args.in_process else 'each run in a fresh process'}")
    print(f"{'imgsz':>5} {'runner':<20} {'threads':>7} {'images/s':>9} {'loop img/s':>10} {'RSS MiB':>8} "
          f"{'PSS tree':>8} {'CUDA MiB':>8}  settings")
    for imgsz, runs in results.items():
        for runner, r in runs.items():
            loop = f"{r['loop_images_per_s']:.2f}" if r.get("loop_images_per_s") is not None else "-"
            cuda = f"{r['cuda_peak_mib']:.0f}" if r.get("cuda_peak_mib") is not None else "-"
            print(f"{imgsz:>5} {runner:<20} {r['threads']:>7} {r['images_per_s']:>9.2f} {loop:>10} "
                  f"{r['rss_main_mib']:>8.0f} {r['pss_tree_mib']:>8.0f} {cuda:>8}  {r['settings']}")
    print("ratios ecowatch / ultralytics (images/s: above 1 = ecowatch faster; memory: PSS of the process tree)")
    print(f"{'imgsz':>5} {'vs':<20} {'images/s':>9} {'memory':>8}")
    for imgsz, runs in results.items():
        ours = runs["ecowatch"]
        for runner in RUNNERS[1:]:
            theirs = runs[runner]
            speed = ours["images_per_s"] / theirs["images_per_s"] if theirs["images_per_s"] else float("nan")
            memory = ours["pss_tree_mib"] / theirs["pss_tree_mib"] if theirs["pss_tree_mib"] else float("nan")
            print(f"{imgsz:>5} {runner:<20} {speed:>9.2f} {memory:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
