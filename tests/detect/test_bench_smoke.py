"""The detector benchmarks (bench/detect.py, bench/drone_tiling.py) run end to end, offline, on tiny inputs.

The figures of the tiny random detector mean nothing; these tests keep the scripts from rotting: they
generate their data, ingest it, run the detect stage (and ultralytics' predict), and print their
tables. Timings are never asserted.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_detect_bench_compares_ecowatch_with_ultralytics(tiny_weights: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_script("detect")

    results = bench.main(["--weights", str(tiny_weights), "--images", "4", "--image-size", "320x180", "--sizes", "64",
                          "--workers", "0", "--batch-size", "2", "--threads", "1", "--device", "cpu",
                          "--workdir", str(tmp_path), "--in-process"])

    runs = results[64]
    assert list(runs) == ["ecowatch", "ultralytics", "ultralytics-matched"]
    for figures in runs.values():
        assert figures["images"] == 4 and figures["images_per_s"] > 0 and figures["pss_tree_mib"] > 0
    assert runs["ecowatch"]["threads"] == runs["ultralytics-matched"]["threads"] == 1
    out = capsys.readouterr().out
    assert "ratios ecowatch / ultralytics" in out and "warm-up on 2 images excluded" in out


def test_drone_tiling_bench_reports_recall_tiled_and_untiled(tiny_weights: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_script("drone_tiling")

    results = bench.main(["--weights", str(tiny_weights), "--frames", "1", "--seed", "1", "--image-size", "480x320",
                          "--animals", "10,20", "--imgsz", "96", "--workers", "0", "--threads", "1",
                          "--device", "cpu", "--workdir", str(tmp_path)])

    assert list(results) == ["untiled", "tiled"]
    assert (results["untiled"]["tiled_frames"], results["tiled"]["tiled_frames"]) == (0, 1)
    for figures in results.values():
        assert figures["frames"] == 1 and figures["images_per_s"] > 0
        for key in ("recall", "precision", "recall_small"):
            assert math.isnan(figures[key]) or 0.0 <= figures[key] <= 1.0
    out = capsys.readouterr().out
    assert "recall small" in out and "IoU >= 0.5" in out and "long side < 32 px" in out


def test_recall_matching_rule() -> None:
    """Greedy by confidence: each detection takes its best unmatched truth box at IoU >= the threshold."""
    import numpy as np

    bench = load_script("drone_tiling")
    truth = {"a.jpg": np.array([[0, 0, 20, 20], [100, 100, 160, 140]], dtype=float), "b.jpg": np.zeros((0, 4))}
    detections = {
        "a.jpg": (np.array([[1, 1, 21, 21], [0, 0, 20, 20], [100, 100, 130, 140]], dtype=float),
                  np.array([0.5, 0.9, 0.8])),
        "b.jpg": (np.array([[5, 5, 9, 9]], dtype=float), np.array([0.3])),
    }

    figures = bench.evaluate(truth, detections, iou_threshold=0.5, small_px=32)

    # the 0.9 box takes the small deer; the 0.5 duplicate finds it taken; half of the large one is IoU 0.5
    assert (figures.truth, figures.truth_small, figures.detections) == (2, 1, 4)
    assert (figures.matched, figures.matched_small) == (2, 1)
    assert figures.recall == 1.0 and figures.recall_small == 1.0 and figures.precision == 0.5
