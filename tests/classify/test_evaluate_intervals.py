"""Intervals over resampled sites (a cluster bootstrap) for macro-F1, a macro-F1 gain and the unknown AUROC."""

from __future__ import annotations

import numpy as np

from ecowatch.classify.evaluate import (
    auroc_interval,
    classification_report,
    macro_f1_gain_interval,
    macro_f1_interval,
    macro_f1_of_confusions,
    site_resamples,
)
from ecowatch.classify.openset import auroc

CLASSES = list("abcde")


def _predictions(seed: int, n: int = 600, accuracy: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASSES), n)
    return labels, np.where(rng.random(n) < accuracy, labels, rng.integers(0, len(CLASSES), n))


def _sites(n: int, count: int = 12) -> list[str]:
    return [f"site{i % count}" for i in range(n)]


def test_macro_f1_of_a_confusion_matrix_is_the_reports() -> None:
    labels, predicted = _predictions(0)
    labels[labels == 4] = 3  # class 4 has no crops: left out of the mean, as in the report
    confusion = np.zeros((5, 5))
    np.add.at(confusion, (labels, predicted), 1)

    got = macro_f1_of_confusions(np.stack([confusion, confusion]))

    expected = classification_report(predicted, labels, CLASSES).macro_f1
    np.testing.assert_allclose(got, [expected, expected])


def test_site_resamples_draw_whole_sites() -> None:
    index, counts = site_resamples(["b", "a", "b", "c"], resamples=50, seed=3)

    assert index.tolist() == [1, 0, 1, 2]
    assert counts.shape == (50, 3)
    assert (counts.sum(axis=1) == 3).all()  # as many draws as sites
    np.testing.assert_array_equal(counts, site_resamples(["b", "a", "b", "c"], resamples=50, seed=3)[1])


def test_macro_f1_interval_holds_the_figure_and_widens_when_sites_differ() -> None:
    rng = np.random.default_rng(1)
    sites = _sites(2400, 8)
    accuracy = np.array([0.3 + 0.09 * int(s.removeprefix("site")) for s in sites])  # 0.30 .. 0.93 by site
    labels = rng.integers(0, len(CLASSES), len(sites))
    predicted = np.where(rng.random(len(sites)) < accuracy, labels, rng.integers(0, len(CLASSES), len(sites)))
    point = classification_report(predicted, labels, CLASSES).macro_f1

    by_site = macro_f1_interval(predicted, labels, sites, len(CLASSES))
    by_crop = macro_f1_interval(predicted, labels, [str(i) for i in range(len(sites))], len(CLASSES))

    assert by_site[0] < point < by_site[1]
    assert by_crop[0] < point < by_crop[1]
    assert by_site[1] - by_site[0] > 2 * (by_crop[1] - by_crop[0])  # crops of a site are not independent


def test_gain_interval_is_zero_for_the_same_predictions_and_holds_a_real_gain() -> None:
    labels, predicted = _predictions(2)
    labels[:5] = -1  # crops of a species the classifier lacks are not scored
    sites = _sites(len(labels))
    better = np.where(labels >= 0, labels, 0)

    same = macro_f1_gain_interval(predicted, predicted, labels, sites, len(CLASSES))
    gain = macro_f1_gain_interval(predicted, better, labels, sites, len(CLASSES))

    assert same == (0.0, 0.0)
    known = labels >= 0
    point = 1.0 - classification_report(predicted[known], labels[known], CLASSES).macro_f1
    assert 0.0 < gain[0] < point < gain[1] < 1.0


def test_auroc_interval() -> None:
    rng = np.random.default_rng(4)
    known, unknown = rng.normal(0.0, 1.0, 500), rng.normal(1.0, 1.0, 80)
    known_sites, unknown_sites = _sites(500), _sites(80)

    low, high = auroc_interval(known, known_sites, unknown, unknown_sites)
    separated = auroc_interval(known, known_sites, unknown + 100.0, unknown_sites)
    tied = auroc_interval(np.zeros(500), known_sites, np.zeros(80), unknown_sites)

    assert low < auroc(known, unknown) < high
    assert separated == (1.0, 1.0)
    assert tied == (0.5, 0.5)  # ties count half
    assert np.isnan(auroc_interval(known, known_sites, unknown[:0], [])).all()


def test_auroc_interval_without_a_resample_holding_both_kinds_is_nan() -> None:
    # known crops at one site, held-out crops at another: a single resample may draw only one of them
    outcomes = {auroc_interval(np.array([0.1]), ["a"], np.array([0.9]), ["b"], resamples=1, seed=s)
                for s in range(20)}
    assert (1.0, 1.0) in outcomes
    assert any(np.isnan(low) and np.isnan(high) for low, high in outcomes)
