"""Benchmark of the ingest stage: files per second and peak memory at three dump sizes.

Generates (once, cached under ``--workdir``) a synthetic SD-card dump of ``--frames`` frames
at 640x360 with :mod:`ecowatch.synth`, then ingests the first quarter, the first half and all
of it, each into a fresh SQLite store, in a fresh process. Peak memory is measured in that
process and its pool workers: the resident set size (RSS) of the ingesting process, of the
largest worker, and of all of them together, sampled every 20 ms with psutil. (The kernel's
``ru_maxrss`` is not used: a child started by fork + exec inherits its parent's high-water mark,
here the generator's.) If ingest streams, the peaks stay flat while the number of files doubles.

    python bench/ingest.py                      # 10,000 frames: 2,500 / 5,000 / 10,000 files
    python bench/ingest.py --frames 2000        # quicker
    python bench/ingest.py --workers 4 --batch-size 512

The subsets are folders of hard links to the first N files of the dump in scan order (no
copies). Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

MIB = 1024 * 1024
IMAGE_SIZE = (640, 360)
SAMPLE_EVERY_S = 0.02


def generate(workdir: Path, frames: int) -> Path:
    """The cached dump folder (``<out>/dump`` with ``<out>/deployments.csv``); generated if absent."""
    from ecowatch.synth import DumpSpec, generate_dump

    out = workdir / f"synth-{frames}-{IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}"
    done = out / ".bench-complete"
    if not done.is_file():
        print(f"generating {frames} frames at {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} in {out} (once) ...", flush=True)
        started = time.perf_counter()
        spec = DumpSpec.preset("sample", n_frames=frames, image_size=IMAGE_SIZE, files_per_folder=1000)
        generate_dump(out, spec, overwrite=True)
        done.write_text("ok\n")
        print(f"  generated in {time.perf_counter() - started:.0f} s", flush=True)
    return out


def subset(out: Path, n_files: int) -> Path:
    """A folder of hard links to the first ``n_files`` files of the dump, in scan order."""
    from ecowatch.config import IngestConfig
    from ecowatch.ingest.scan import scan_dump

    view = out / "subsets" / str(n_files)
    if (view / ".bench-complete").is_file():
        return view
    shutil.rmtree(view, ignore_errors=True)
    dump = out / "dump"
    for count, item in enumerate(scan_dump(dump, IngestConfig())):
        if count == n_files:
            break
        target = view / item.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(item.path, target)
    (view / ".bench-complete").write_text("ok\n")
    return view


class PeakRss:
    """Samples the RSS of this process and its children in a background thread."""

    def __init__(self) -> None:
        import psutil

        self._me = psutil.Process()
        self._cmdline = self._me.cmdline()
        self._psutil = psutil
        self.main = self.worker = self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        main = self._me.memory_info().rss
        workers = []
        for child in self._me.children(recursive=True):
            try:
                # A child caught between fork and exec still looks like this process (same command
                # line, its pages shared copy-on-write): not a worker yet, not extra memory.
                if child.cmdline() == self._cmdline:
                    continue
                workers.append(child.memory_info().rss)
            except (self._psutil.NoSuchProcess, self._psutil.AccessDenied, self._psutil.ZombieProcess):
                continue
        self.main = max(self.main, main)
        self.worker = max([self.worker, *workers])
        self.total = max(self.total, main + sum(workers))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(SAMPLE_EVERY_S)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(view: Path, store_path: Path, deployments_csv: Path, workers: int, batch_size: int) -> dict[str, float]:
    """Ingest one folder into a fresh store in this process; return the figures."""
    from ecowatch.config import IngestConfig
    from ecowatch.ingest import ingest_dump
    from ecowatch.store import open_store
    from ecowatch.tables import read_deployments

    store = open_store(store_path)
    deployments = read_deployments(deployments_csv)
    config = IngestConfig(workers=workers, batch_size=batch_size)
    with PeakRss() as peak:
        started = time.perf_counter()
        summary = ingest_dump(store, dump_root=view, dump_id="bench", deployments=deployments, config=config,
                              run_id="bench")
        seconds = time.perf_counter() - started
    store.dispose()
    return {
        "files": summary.files_new,
        "sequences": summary.sequences,
        "seconds": seconds,
        "files_per_s": summary.files_new / seconds,
        "peak_main_mib": peak.main / MIB,
        "peak_worker_mib": peak.worker / MIB,
        "peak_total_mib": peak.total / MIB,
    }


def main(argv: list[str] | None = None) -> None:
    """Parse arguments; run the benchmark or (internally) one measurement."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("work/bench"), help="cache folder (default work/bench)")
    parser.add_argument("--frames", type=int, default=10_000, help="frames in the largest dump (default 10000)")
    parser.add_argument("--workers", type=int, default=2, help="ingest worker processes (default 2)")
    parser.add_argument("--batch-size", type=int, default=256, help="files per transaction (default 256)")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # internal: one run in a fresh process
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--deployments", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.store, args.deployments, args.workers, args.batch_size)))
        return

    workdir = args.workdir.resolve()
    out = generate(workdir, args.frames)
    sizes = sorted({max(1, args.frames // 4), max(1, args.frames // 2), args.frames})
    print(f"ingest benchmark: workers={args.workers} batch_size={args.batch_size}, fresh SQLite store per run, "
          f"{os.cpu_count()} CPUs")
    print(f"{'files':>7} {'seconds':>8} {'files/s':>8} {'peak RSS MiB: main':>19} {'largest worker':>15} "
          f"{'all processes':>14}")
    for size in sizes:
        view = subset(out, size)
        store_path = workdir / "stores" / f"ingest-{size}.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{store_path}{suffix}").unlink(missing_ok=True)
        result = subprocess.run(
            [sys.executable, __file__, "--measure", str(view), "--store", str(store_path), "--deployments",
             str(out / "deployments.csv"), "--workers", str(args.workers), "--batch-size", str(args.batch_size)],
            capture_output=True, text=True, check=True,
        )
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"{figures['files']:>7} {figures['seconds']:>8.1f} {figures['files_per_s']:>8.0f} "
              f"{figures['peak_main_mib']:>19.0f} {figures['peak_worker_mib']:>15.0f} "
              f"{figures['peak_total_mib']:>14.0f}", flush=True)


if __name__ == "__main__":
    main()
