"""The site-resampled interval that ``bench/fusion.py`` prints beside each macro-F1 gain."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from ecowatch.classify.evaluate import classification_report

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_fusion", BENCH / "fusion.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _predictions(seed: int, n: int = 600, classes: int = 5, accuracy: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    return labels, np.where(rng.random(n) < accuracy, labels, rng.integers(0, classes, n))


def test_macro_f1_of_a_confusion_matrix_is_the_reports(bench: ModuleType) -> None:
    labels, predicted = _predictions(0)
    labels[labels == 4] = 3  # class 4 has no crops: left out of the mean, as in the report
    confusion = np.zeros((5, 5))
    np.add.at(confusion, (labels, predicted), 1)

    got = bench._macro_f1_of_confusions(np.stack([confusion, confusion]))

    expected = classification_report(predicted, labels, list("abcde")).macro_f1
    np.testing.assert_allclose(got, [expected, expected])


def test_gain_interval_over_sites(bench: ModuleType) -> None:
    labels, predicted = _predictions(1)
    sites = [f"site{i % 12}" for i in range(len(labels))]
    labels[:5] = -1  # crops of a species the classifier lacks are not scored

    same = bench._gain_interval(predicted, predicted, labels, sites, 5)
    perfect = bench._gain_interval(predicted, np.where(labels >= 0, labels, 0), labels, sites, 5)

    assert same == (0.0, 0.0)
    known = labels >= 0
    gain = 1.0 - classification_report(predicted[known], labels[known], list("abcde")).macro_f1
    assert 0.0 < perfect[0] < gain < perfect[1] < 1.0
    assert perfect == bench._gain_interval(predicted, np.where(labels >= 0, labels, 0), labels, sites, 5)  # seeded
