"""The classifier throughput benchmark (bench/classify.py) runs end to end, offline, on the tiny dump.

Timings are never asserted; the test keeps the script from rotting and its figures from being
empty (its warm-up once outlasted a small dump's epochs and the training figure was NaN).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.detect.test_bench_smoke import load_script


def test_classify_bench_prints_training_and_inference_rates(tiny_dump: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_script("classify")

    # 32-crop batches: an epoch of the tiny dump is 3 batches, no longer than the warm-up
    results = bench.main(["--data", str(tiny_dump), "--workdir", str(tmp_path), "--backbones", "mobilenet_v3_small",
                          "--input-size", "32", "--crop-size", "40", "--batch-size", "32", "--steps", "3",
                          "--warmup", "3", "--crops", "8", "--workers", "0", "--threads", "1", "--accelerator", "cpu"])

    figures = results["mobilenet_v3_small"]
    assert figures["precision"] == "32-true"  # depthwise convolutions train in float32 on every CPU
    for key in ("train", "train_loop", "infer_net", "infer_e2e", "infer_e2e_flip"):
        assert math.isfinite(figures[key]) and figures[key] > 0, key
    assert figures["train_loop"] <= figures["train"] * 1.001  # the loop's wall clock includes the steps
    out = capsys.readouterr().out
    assert "train precision" in out and "mobilenet_v3_small" in out
