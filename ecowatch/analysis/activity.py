"""Diel activity: circular kernel densities and the overlap of two activity patterns.

Input: times of day in radians (0 = midnight, pi = noon, 2*pi = the next midnight), one value
per independent event, e.g. ``time_of_day_radians(events["start"])`` (camera-local clock time).

Definitions (Ridout & Linkie 2009, J. Agric. Biol. Environ. Stat. 14:322-337; Meredith &
Ridout, R package ``overlap``):

* Kernel density: von Mises kernel, ``f(t) = 1/n * sum_i exp(kappa * cos(t - x_i)) /
  (2 * pi * I0(kappa))`` (``overlap::densityFit``), where ``kappa`` is the kernel's
  concentration (larger = less smoothing).
* Bandwidth: Ridout & Linkie's plug-in rule as ``overlap::getBandWidth`` (``kmax = 3``; the
  same rule as ``activity::bwcalc``): for k = 1..kmax, the concentration ``kappa_k`` of a von
  Mises distribution whose k-th trigonometric moment ``I_k(kappa)/I0(kappa)`` equals the
  sample's is solved on [1e-4, 345]; ``kappa_hat = max_k kappa_k`` and the kernel
  concentration is ``(3 n kappa_hat^2 I2(2 kappa_hat) / (4 sqrt(pi) I0(kappa_hat)^2))^(2/5)``.
  The root is solved to machine precision (R's ``uniroot`` stops at ~1e-4, so values agree
  with ``overlap`` to about 5 significant digits). ``adjust`` divides the concentration, as
  ``overlap``'s ``adjust`` (defaults 0.8 for Dhat1 and 1 for Dhat4, i.e. R&L's c = 1.25, 1).
* Overlap coefficient ``Delta = integral of min(f, g)`` (Weitzman 1970), estimated by
  ``overlap::overlapEst``'s Dhat1 (densities on a grid of ``n_grid`` points over (0, 2pi],
  each normalised to sum 1, summed minima) or Dhat4 (``1/2 (mean over a of min(1, g(a)/f(a))
  + mean over b of min(1, f(b)/g(b)))``, densities evaluated exactly at every observation;
  ``overlap`` interpolates from the grid when n > 1.1 * n_grid). ``estimator = "auto"`` picks
  Dhat1 when the smaller sample is < 50, else Dhat4 (Meredith & Ridout's recommendation).
* Confidence interval: smoothed bootstrap as ``overlap::bootstrap(smooth = TRUE)``: each
  species' sample is redrawn (same size) from its fitted density on a 511-point grid, the
  estimator is recomputed, and the interval is ``"basic0"`` (percentile interval shifted by the
  bootstrap bias, the method the ``overlap`` authors recommend), ``"perc"`` or ``"norm0"``
  (``overlap::bootCI``; percentiles normal-interpolated as there). Seeded: same seed, same CI.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize, special, stats

from ecowatch.errors import InputDataError

Estimator = Literal["auto", "Dhat1", "Dhat4"]
CiMethod = Literal["basic0", "perc", "norm0"]
TWO_PI = 2.0 * np.pi
DEFAULT_ADJUST = {"Dhat1": 0.8, "Dhat4": 1.0}
SMALL_SAMPLE = 50  # below this (smaller sample), Dhat1 is preferred over Dhat4
_KAPPA_RANGE = (1e-4, 345.0)  # overlap::getBandWidth's uniroot interval
_BOOT_GRID = 512  # overlap::bootstrap's grid (first point dropped: 0 and 2*pi are both midnight)


def time_of_day_radians(timestamps: ArrayLike | pd.Series) -> np.ndarray:
    """Clock time of day in radians: ``2*pi * seconds since midnight / 86400``.

    Args:
        timestamps: naive (camera-local) datetimes: a Series, DatetimeIndex or sequence.

    Returns:
        float array in [0, 2*pi).

    Raises:
        InputDataError: the values are not datetimes or some are missing.
    """
    try:
        stamps = pd.DatetimeIndex(pd.to_datetime(pd.Series(timestamps)))
    except (TypeError, ValueError) as exc:
        raise InputDataError(f"timestamps are not datetimes: {exc}") from exc
    if stamps.isna().any():
        raise InputDataError("timestamps contain missing values (NaT); drop them first.")
    seconds = (stamps - stamps.normalize()) / pd.Timedelta(seconds=1)
    return np.asarray(seconds, dtype=float) / 86_400.0 * TWO_PI


def _times(values: ArrayLike, name: str) -> np.ndarray:
    try:
        times = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise InputDataError(f"{name}: times must be numbers (radians).") from exc
    if not np.isfinite(times).all():
        raise InputDataError(f"{name}: times contain missing or infinite values.")
    if times.size and (times.min() < 0 or times.max() > TWO_PI):
        raise InputDataError(
            f"{name}: times must be radians in [0, 2*pi]; got {times.min():.3f}..{times.max():.3f}. "
            "Convert clock times with time_of_day_radians()."
        )
    if np.unique(times).size < 2:
        raise InputDataError(f"{name}: need at least 2 different times, got {np.unique(times).size}.")
    return times


def _trig_moment(x: np.ndarray, k: int) -> float:
    mean_direction = np.arctan2(np.sin(x).sum(), np.cos(x).sum())
    return float(np.hypot(np.mean(np.sin(k * (x - mean_direction))), np.mean(np.cos(k * (x - mean_direction)))))


def _kappa_hat(x: np.ndarray, kmax: int) -> float:
    estimates = [0.0]
    for k in range(1, kmax + 1):
        moment = _trig_moment(x, k)

        def gap(kappa: float, k: int = k, moment: float = moment) -> float:
            return float(special.ive(k, kappa) / special.ive(0, kappa)) - moment

        lo, hi = _KAPPA_RANGE
        if gap(lo) * gap(hi) <= 0:
            estimates.append(optimize.brentq(gap, lo, hi, xtol=1e-12, rtol=1e-12))
    return max(estimates)


def bandwidth_kappa(times_rad: ArrayLike, *, kmax: int = 3) -> float:
    """Ridout & Linkie (2009) kernel concentration for a sample (``overlap::getBandWidth``).

    Args:
        times_rad: times of day in radians, [0, 2*pi].
        kmax: number of trigonometric moments tried (3 as recommended).

    Returns:
        The von Mises kernel concentration (not a width: larger means less smoothing).

    Raises:
        InputDataError: bad times (fewer than 2 distinct), or no moment gives a concentration
            in [1e-4, 345] (data indistinguishable from uniform, or all at one time).
    """
    x = _times(times_rad, "times_rad")
    kappa = _kappa_hat(x, int(kmax))
    if kappa <= 0:
        raise InputDataError(
            f"cannot estimate a bandwidth for these {x.size} times: no trigonometric moment matches a von Mises "
            "concentration in [1e-4, 345] (times nearly uniform over the day, or nearly all at one time)."
        )
    # I2(2k) / I0(k)^2 with exponentially scaled Bessel functions: the e^(2k) factors cancel.
    ratio = special.ive(2, 2 * kappa) / special.ive(0, kappa) ** 2
    return float((3 * x.size * kappa**2 * ratio / (4 * np.sqrt(np.pi))) ** 0.4)


def _density(x: np.ndarray, at: np.ndarray, kappa: float, chunk: int = 2048) -> np.ndarray:
    """von Mises kernel density of sample ``x`` at points ``at`` (``overlap::densityFit``)."""
    norm = TWO_PI * special.i0e(kappa) * x.size
    out = np.empty(at.size)
    for lo in range(0, at.size, chunk):
        block = at[lo : lo + chunk, None] - x[None, :]
        out[lo : lo + chunk] = np.exp(kappa * (np.cos(block) - 1.0)).sum(axis=1) / norm
    return out


@dataclass(frozen=True)
class ActivityDensity:
    """A fitted activity curve.

    Attributes:
        grid_rad: evaluation points, radians, ``n_grid`` points over [0, 2*pi).
        density: density per radian at ``grid_rad`` (integrates to 1 over the day).
        kappa: kernel concentration used (bandwidth / adjust).
        n: sample size.
    """

    grid_rad: np.ndarray
    density: np.ndarray
    kappa: float
    n: int


def activity_density(
    times_rad: ArrayLike,
    *,
    n_grid: int = 512,
    adjust: float = 1.0,
    kappa: float | None = None,
    kmax: int = 3,
) -> ActivityDensity:
    """Kernel density of times of day (von Mises kernel, Ridout & Linkie bandwidth).

    Args:
        times_rad: times of day in radians, [0, 2*pi].
        n_grid: number of grid points over [0, 2*pi).
        adjust: smoothing multiplier; the concentration is ``bandwidth_kappa / adjust``.
        kappa: use this kernel concentration instead of the estimated one (``adjust`` ignored).
        kmax: moments for the bandwidth (see :func:`bandwidth_kappa`).

    Returns:
        :class:`ActivityDensity`.

    Raises:
        InputDataError: bad times, ``n_grid < 2``, ``adjust`` or ``kappa`` not positive, or the
            bandwidth cannot be estimated.
    """
    x = _times(times_rad, "times_rad")
    if n_grid < 2:
        raise InputDataError(f"n_grid {n_grid} must be >= 2.")
    if kappa is None:
        if adjust <= 0:
            raise InputDataError(f"adjust {adjust} must be > 0.")
        kappa = bandwidth_kappa(x, kmax=kmax) / adjust
    elif kappa <= 0:
        raise InputDataError(f"kappa {kappa} must be > 0.")
    grid = np.linspace(0.0, TWO_PI, n_grid, endpoint=False)
    return ActivityDensity(grid_rad=grid, density=_density(x, grid, float(kappa)), kappa=float(kappa), n=x.size)


def _choose(estimator: str, n_a: int, n_b: int) -> str:
    if estimator == "auto":
        return "Dhat1" if min(n_a, n_b) < SMALL_SAMPLE else "Dhat4"
    if estimator not in ("Dhat1", "Dhat4"):
        raise InputDataError(f"estimator {estimator!r} is not one of ['auto', 'Dhat1', 'Dhat4'].")
    return estimator


def _overlap(a: np.ndarray, b: np.ndarray, estimator: str, kappa_a: float, kappa_b: float, n_grid: int) -> float:
    if estimator == "Dhat1":
        grid = np.linspace(0.0, TWO_PI, n_grid)[1:]
        da, db = _density(a, grid, kappa_a), _density(b, grid, kappa_b)
        return float(np.minimum(da / da.sum(), db / db.sum()).sum())
    both = np.concatenate([a, b])
    fa, fb = _density(a, both, kappa_a), _density(b, both, kappa_b)
    n = a.size
    return float((np.minimum(1.0, fb[:n] / fa[:n]).mean() + np.minimum(1.0, fa[n:] / fb[n:]).mean()) / 2.0)


def overlap_coefficient(
    times_a: ArrayLike,
    times_b: ArrayLike,
    *,
    estimator: Estimator = "auto",
    adjust: float | None = None,
    kmax: int = 3,
    n_grid: int = 128,
) -> float:
    """Overlap coefficient of two activity patterns (``overlap::overlapEst``).

    Args:
        times_a: times of day of species A, radians [0, 2*pi].
        times_b: times of day of species B, radians [0, 2*pi].
        estimator: ``"Dhat1"``, ``"Dhat4"`` or ``"auto"`` (Dhat1 if the smaller sample < 50).
        adjust: smoothing multiplier (concentration = bandwidth / adjust); default 0.8 for
            Dhat1 and 1.0 for Dhat4.
        kmax: moments for the bandwidth.
        n_grid: grid size for Dhat1 (overlap's default 128).

    Returns:
        The estimate, in [0, 1].

    Raises:
        InputDataError: bad times, unknown estimator, or a bandwidth cannot be estimated.
    """
    a, b = _times(times_a, "times_a"), _times(times_b, "times_b")
    chosen = _choose(estimator, a.size, b.size)
    factor = DEFAULT_ADJUST[chosen] if adjust is None else adjust
    if factor <= 0:
        raise InputDataError(f"adjust {adjust} must be > 0.")
    kappa_a = bandwidth_kappa(a, kmax=kmax) / factor
    kappa_b = bandwidth_kappa(b, kmax=kmax) / factor
    return _overlap(a, b, chosen, kappa_a, kappa_b, n_grid)


@dataclass(frozen=True)
class OverlapEstimate:
    """An overlap coefficient with its bootstrap confidence interval.

    Attributes:
        estimator: ``"Dhat1"`` or ``"Dhat4"``.
        estimate: the point estimate.
        n_a, n_b: sample sizes.
        ci_lower, ci_upper: confidence limits (``NaN`` when ``n_boot == 0``), clipped to [0, 1].
        conf_level: e.g. 0.95.
        ci_method: ``"basic0"``, ``"perc"`` or ``"norm0"``.
        n_boot: bootstrap samples that gave an estimate.
        boot_mean: mean of the bootstrap estimates (its difference to ``estimate`` is the
            bootstrap bias).
    """

    estimator: str
    estimate: float
    n_a: int
    n_b: int
    ci_lower: float
    ci_upper: float
    conf_level: float
    ci_method: str
    n_boot: int
    boot_mean: float


def _quantile_interval(boot: np.ndarray, conf_level: float) -> tuple[float, float]:
    """Normal-interpolated percentile interval (``overlap``'s ``quantileInter``)."""
    r = boot.size
    alpha = np.array([(1 - conf_level) / 2, (1 + conf_level) / 2])
    rank = (r + 1) * alpha
    if not np.all((rank > 1) & (rank < r)):
        return float("nan"), float("nan")
    k = np.trunc(rank).astype(int)
    ordered = np.sort(boot)
    lo, hi = ordered[k - 1], ordered[k]  # 1-based ranks k and k + 1
    if np.all(k == rank):
        return float(lo[0]), float(lo[1])
    wanted, too_lo, too_hi = stats.norm.ppf(alpha), stats.norm.ppf(k / (r + 1)), stats.norm.ppf((k + 1) / (r + 1))
    limits = lo + (wanted - too_lo) / (too_hi - too_lo) * (hi - lo)
    return float(limits[0]), float(limits[1])


def _smooth_resampler(x: np.ndarray, kmax: int) -> tuple[np.ndarray, np.ndarray]:
    grid = np.linspace(0.0, TWO_PI, _BOOT_GRID)[1:]
    weights = _density(x, grid, bandwidth_kappa(x, kmax=kmax))
    return grid, weights / weights.sum()


def activity_overlap(
    times_a: ArrayLike,
    times_b: ArrayLike,
    *,
    estimator: Estimator = "auto",
    n_boot: int = 1000,
    conf_level: float = 0.95,
    ci_method: CiMethod = "basic0",
    seed: int = 0,
    kmax: int = 3,
    n_grid: int = 128,
) -> OverlapEstimate:
    """Overlap coefficient with a smoothed-bootstrap confidence interval.

    Args:
        times_a: times of day of species A, radians [0, 2*pi].
        times_b: times of day of species B, radians [0, 2*pi].
        estimator: ``"auto"``, ``"Dhat1"`` or ``"Dhat4"`` (see :func:`overlap_coefficient`).
        n_boot: bootstrap samples (``overlap``'s authors suggest 10 000 for publication); 0
            skips the interval. The percentile limits need ``(n_boot + 1) * (1 - conf_level) / 2
            > 1`` (at least 40 for 95 %); with fewer the limits are ``NaN``.
        conf_level: confidence level in (0, 1).
        ci_method: ``"basic0"`` (default), ``"perc"`` or ``"norm0"``.
        seed: seed of the bootstrap's random generator.
        kmax: moments for the bandwidth.
        n_grid: grid size for Dhat1.

    Returns:
        :class:`OverlapEstimate`.

    Raises:
        InputDataError: bad times or arguments, or a bandwidth cannot be estimated.
    """
    if not 0 < conf_level < 1:
        raise InputDataError(f"conf_level {conf_level} must be in (0, 1).")
    if ci_method not in ("basic0", "perc", "norm0"):
        raise InputDataError(f"ci_method {ci_method!r} is not one of ['basic0', 'perc', 'norm0'].")
    if n_boot < 0:
        raise InputDataError(f"n_boot {n_boot} must be >= 0.")
    a, b = _times(times_a, "times_a"), _times(times_b, "times_b")
    chosen = _choose(estimator, a.size, b.size)
    estimate = overlap_coefficient(a, b, estimator=chosen, kmax=kmax, n_grid=n_grid)
    boot = np.empty(0)
    if n_boot:
        rng = np.random.default_rng(seed)
        (grid_a, prob_a), (grid_b, prob_b) = _smooth_resampler(a, kmax), _smooth_resampler(b, kmax)
        values = []
        for _ in range(n_boot):
            res_a = rng.choice(grid_a, size=a.size, replace=True, p=prob_a)
            res_b = rng.choice(grid_b, size=b.size, replace=True, p=prob_b)
            try:
                values.append(overlap_coefficient(res_a, res_b, estimator=chosen, kmax=kmax, n_grid=n_grid))
            except InputDataError:  # a degenerate resample (no bandwidth); overlap returns NA too
                continue
        boot = np.asarray(values)
    lower = upper = boot_mean = float("nan")
    if boot.size >= 2:
        boot_mean = float(boot.mean())
        bias = boot_mean - estimate
        if ci_method == "norm0":
            half = float(np.std(boot, ddof=1) * stats.norm.ppf((1 + conf_level) / 2))
            lower, upper = estimate - half, estimate + half
        else:
            lower, upper = _quantile_interval(boot, conf_level)
            if ci_method == "basic0":
                lower, upper = lower - bias, upper - bias
        lower, upper = float(np.clip(lower, 0.0, 1.0)), float(np.clip(upper, 0.0, 1.0))
    return OverlapEstimate(
        estimator=chosen,
        estimate=estimate,
        n_a=a.size,
        n_b=b.size,
        ci_lower=lower,
        ci_upper=upper,
        conf_level=conf_level,
        ci_method=ci_method,
        n_boot=int(boot.size),
        boot_mean=boot_mean,
    )


def pairwise_overlap(
    times_by_taxon: Mapping[str, ArrayLike],
    *,
    estimator: Estimator = "auto",
    n_boot: int = 1000,
    conf_level: float = 0.95,
    ci_method: CiMethod = "basic0",
    seed: int = 0,
) -> pd.DataFrame:
    """Overlap coefficients (with CIs) for every pair of taxa.

    Args:
        times_by_taxon: taxon id -> times of day in radians (e.g. from
            ``events.groupby("taxon_id")["start"].apply(time_of_day_radians)``).
        estimator, n_boot, conf_level, ci_method: as :func:`activity_overlap`.
        seed: master seed; each pair's bootstrap is seeded from it and the two taxon ids, so a
            pair's interval does not change when taxa are added or removed.

    Returns:
        One row per unordered pair (``taxon_a < taxon_b``): ``taxon_a, taxon_b, n_a, n_b,
        estimator, estimate, ci_lower, ci_upper``.

    Raises:
        InputDataError: fewer than 2 taxa, bad times, or a bandwidth cannot be estimated (the
            message names the pair).
    """
    taxa = sorted(times_by_taxon)
    if len(taxa) < 2:
        raise InputDataError(f"need at least 2 taxa for pairwise overlap, got {taxa}.")
    rows = []
    for ta, tb in itertools.combinations(taxa, 2):
        pair_seed = np.random.SeedSequence([seed, zlib.crc32(f"{ta}\x00{tb}".encode())]).generate_state(1)[0]
        try:
            est = activity_overlap(
                times_by_taxon[ta],
                times_by_taxon[tb],
                estimator=estimator,
                n_boot=n_boot,
                conf_level=conf_level,
                ci_method=ci_method,
                seed=int(pair_seed),
            )
        except InputDataError as exc:
            raise InputDataError(f"overlap of {ta!r} and {tb!r}: {exc}") from exc
        rows.append((ta, tb, est.n_a, est.n_b, est.estimator, est.estimate, est.ci_lower, est.ci_upper))
    columns = ["taxon_a", "taxon_b", "n_a", "n_b", "estimator", "estimate", "ci_lower", "ci_upper"]
    return pd.DataFrame(rows, columns=columns)
