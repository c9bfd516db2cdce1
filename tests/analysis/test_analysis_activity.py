"""Activity densities and overlap: known properties, a hand computation, seeded bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, special, stats

from ecowatch.analysis import (
    activity_density,
    activity_overlap,
    bandwidth_kappa,
    overlap_coefficient,
    pairwise_overlap,
    time_of_day_radians,
)
from ecowatch.errors import InputDataError


def _von_mises(mean: float, kappa: float, n: int, seed: int) -> np.ndarray:
    draws = stats.vonmises.rvs(kappa, loc=mean, size=n, random_state=np.random.default_rng(seed))
    return np.mod(draws, 2 * np.pi)


DAY = _von_mises(np.pi, 4.0, 60, seed=1)  # active around noon
NIGHT = _von_mises(0.0, 4.0, 70, seed=2)  # active around midnight
DUSK = _von_mises(1.5 * np.pi, 2.0, 45, seed=3)


def test_time_of_day_radians():
    texts = ["2024-05-01 00:00", "2024-05-01 06:00", "2024-05-02 18:00", "2024-05-03 12:00:30"]
    stamps = pd.Series(pd.to_datetime(texts, format="ISO8601"))
    expected = [0.0, np.pi / 2, 1.5 * np.pi, (12 * 3600 + 30) / 86400 * 2 * np.pi]
    assert time_of_day_radians(stamps) == pytest.approx(expected)


def test_identical_samples_overlap_fully():
    for estimator in ("Dhat1", "Dhat4"):
        assert overlap_coefficient(DAY, DAY, estimator=estimator) == pytest.approx(1.0, abs=1e-12)


def test_day_and_night_species_barely_overlap():
    for estimator in ("Dhat1", "Dhat4"):
        assert overlap_coefficient(DAY, NIGHT, estimator=estimator) < 0.1
    assert overlap_coefficient(DAY, DUSK) > overlap_coefficient(DAY, NIGHT)


def test_overlap_is_symmetric():
    for estimator in ("Dhat1", "Dhat4"):
        ab = overlap_coefficient(DAY, DUSK, estimator=estimator)
        ba = overlap_coefficient(DUSK, DAY, estimator=estimator)
        assert ab == pytest.approx(ba, abs=1e-12)


def _hand_kappa(sample: list[float], kmax: int = 3) -> float:
    """Ridout & Linkie (2009) bandwidth written out with plain loops and unscaled Bessel functions."""
    s = sum(math.sin(x) for x in sample)
    c = sum(math.cos(x) for x in sample)
    mu = math.atan2(s, c)
    best = 0.0
    for k in range(1, kmax + 1):
        sk = sum(math.sin(k * (x - mu)) for x in sample) / len(sample)
        ck = sum(math.cos(k * (x - mu)) for x in sample) / len(sample)
        rho = math.sqrt(sk * sk + ck * ck)

        def f(kappa: float, k: int = k, rho: float = rho) -> float:
            return special.iv(k, kappa) / special.iv(0, kappa) - rho

        if f(1e-4) * f(345.0) <= 0:
            best = max(best, optimize.brentq(f, 1e-4, 345.0, xtol=1e-12))
    n = len(sample)
    return (3 * n * best**2 * special.iv(2, 2 * best) / (4 * math.sqrt(math.pi) * special.iv(0, best) ** 2)) ** 0.4


def _hand_density(sample: list[float], t: float, kappa: float) -> float:
    return sum(math.exp(kappa * math.cos(t - x)) for x in sample) / (2 * math.pi * special.iv(0, kappa) * len(sample))


def test_hand_computed_case():
    a = [0.5, 1.0, 1.2, 2.0, 2.2]
    b = [1.5, 2.5, 3.0, 3.1, 4.0, 4.5]
    ka, kb = _hand_kappa(a), _hand_kappa(b)
    assert bandwidth_kappa(a) == pytest.approx(ka, rel=1e-9)
    assert bandwidth_kappa(b) == pytest.approx(kb, rel=1e-9)
    # Dhat4 (adjust 1): average of min(1, ratio) over both samples
    term_a = sum(min(1.0, _hand_density(b, x, kb) / _hand_density(a, x, ka)) for x in a) / len(a)
    term_b = sum(min(1.0, _hand_density(a, y, ka) / _hand_density(b, y, kb)) for y in b) / len(b)
    assert overlap_coefficient(a, b, estimator="Dhat4") == pytest.approx((term_a + term_b) / 2, rel=1e-9)
    # Dhat1 (adjust 0.8 -> concentration * 1.25): normalised densities on 127 points of (0, 2pi]
    grid = [2 * math.pi * i / 127 for i in range(1, 128)]
    da = [_hand_density(a, t, ka / 0.8) for t in grid]
    db = [_hand_density(b, t, kb / 0.8) for t in grid]
    dhat1 = sum(min(x / sum(da), y / sum(db)) for x, y in zip(da, db, strict=True))
    assert overlap_coefficient(a, b, estimator="Dhat1") == pytest.approx(dhat1, rel=1e-9)


def test_estimates_match_the_true_overlap_of_two_von_mises():
    a, b = _von_mises(0.0, 2.0, 400, seed=10), _von_mises(np.pi / 2, 2.0, 400, seed=11)

    def true_min(x: float) -> float:
        return min(stats.vonmises.pdf(x, 2.0, loc=0.0), stats.vonmises.pdf(x, 2.0, loc=np.pi / 2))

    truth = integrate.quad(true_min, -np.pi, np.pi, limit=200)[0]
    assert overlap_coefficient(a, b) == pytest.approx(truth, abs=0.04)


def test_density_integrates_to_one_and_respects_kappa():
    fitted = activity_density(DAY)
    assert fitted.density.mean() * 2 * np.pi == pytest.approx(1.0, abs=1e-9)
    assert fitted.kappa == pytest.approx(bandwidth_kappa(DAY))
    assert activity_density(DAY, adjust=2.0).kappa == pytest.approx(fitted.kappa / 2)
    flat = activity_density([1.0, 2.0], kappa=1e-9, n_grid=8)
    assert flat.density == pytest.approx(np.full(8, 1 / (2 * np.pi)), rel=1e-6)


def test_auto_estimator_follows_the_smaller_sample():
    small = activity_overlap(DAY, NIGHT, n_boot=0)
    large = activity_overlap(_von_mises(0, 2, 60, 4), _von_mises(1, 2, 80, 5), n_boot=0)
    assert small.estimator == "Dhat4"  # min(60, 70) >= 50
    assert activity_overlap(DAY, DUSK, n_boot=0).estimator == "Dhat1"  # 45 < 50
    assert large.estimator == "Dhat4"
    assert np.isnan(small.ci_lower) and small.n_boot == 0


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    first = activity_overlap(DAY, DUSK, n_boot=60, seed=7)
    again = activity_overlap(DAY, DUSK, n_boot=60, seed=7)
    other = activity_overlap(DAY, DUSK, n_boot=60, seed=8)
    assert (first.ci_lower, first.ci_upper) == (again.ci_lower, again.ci_upper)
    assert (first.ci_lower, first.ci_upper) != (other.ci_lower, other.ci_upper)
    assert 0.0 <= first.ci_lower < first.estimate < first.ci_upper <= 1.0
    assert first.n_boot == 60 and first.ci_method == "basic0"
    perc = activity_overlap(DAY, DUSK, n_boot=60, seed=7, ci_method="perc")
    # basic0 = perc shifted by the bootstrap bias
    bias = first.boot_mean - first.estimate
    assert first.ci_lower == pytest.approx(max(perc.ci_lower - bias, 0.0))
    too_few = activity_overlap(DAY, DUSK, n_boot=20, seed=7)  # (20 + 1) * 0.025 < 1: no 95% interval
    assert np.isnan(too_few.ci_lower) and np.isfinite(too_few.boot_mean)


def test_pairwise_overlap_table():
    table = pairwise_overlap({"night": NIGHT, "day": DAY, "dusk": DUSK}, n_boot=40, seed=1)
    pairs = list(zip(table["taxon_a"], table["taxon_b"], strict=True))
    assert pairs == [("day", "dusk"), ("day", "night"), ("dusk", "night")]
    row = table.iloc[1]
    assert row["estimate"] == pytest.approx(overlap_coefficient(DAY, NIGHT))
    again = pairwise_overlap({"day": DAY, "night": NIGHT}, n_boot=40, seed=1)
    assert np.isfinite(row["ci_upper"])
    assert again.iloc[0]["ci_upper"] == row["ci_upper"]  # a pair's CI does not depend on the other taxa


def test_bad_times_raise():
    with pytest.raises(InputDataError, match="2 different"):
        overlap_coefficient([1.0, 1.0, 1.0], DAY)
    with pytest.raises(InputDataError, match="radians"):
        overlap_coefficient([1.0, 7.5], DAY)
    with pytest.raises(InputDataError, match="missing"):
        bandwidth_kappa([1.0, float("nan")])
    with pytest.raises(InputDataError, match="estimator"):
        overlap_coefficient(DAY, NIGHT, estimator="Dhat5")
    with pytest.raises(InputDataError, match="at least 2 taxa"):
        pairwise_overlap({"day": DAY})
    uniform = np.linspace(0, 2 * np.pi, 24, endpoint=False)  # every trigonometric moment is 0
    with pytest.raises(InputDataError, match="bandwidth"):
        bandwidth_kappa(uniform)
