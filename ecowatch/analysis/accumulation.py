"""Species accumulation: expected richness as sampling effort grows.

Inputs: an events table (:func:`ecowatch.analysis.events.independent_events`), the deployments
table and optional outages (see :mod:`ecowatch.analysis.contracts`).

Definitions (sample-based accumulation, as camtrapR ``speciesAccum`` / vegan ``specaccum``):

* Sampling unit: a deployment (``unit = "deployment"``; every deployment in the table, with or
  without events) or a camera-day (``unit = "day"``: a deployment x calendar day with active
  effort > 0 in :func:`ecowatch.analysis.effort.camera_operation`). A unit *has* a taxon when
  an event of that taxon starts in it.
* Random accumulation (vegan ``method = "random"``): the units are put in a random order
  ``n_permutations`` times (seeded); at each step h the richness is the number of taxa seen in
  the first h units; mean and sd (n - 1 denominator) over the permutations.
* Exact rarefaction (sample-based rarefaction, "Mao Tau" of Colwell et al. 2004; vegan
  ``method = "exact"``): for T units, a taxon found in y_j of them is missed by h units drawn
  without replacement with probability ``q_j(h) = C(T - y_j, h) / C(T, h)``, so
  ``E[S(h)] = sum_j (1 - q_j(h))``. The sd is the exact one conditional on the observed units
  (the limit of the random method's sd): ``Var S(h) = sum_{j,k} (q_jk(h) - q_j(h) q_k(h))``
  with ``q_jk(h) = C(T - u_jk, h) / C(T, h)``, u_jk the units holding j or k. This differs from
  Colwell's unconditional variance (which adds uncertainty about unseen taxa) and from vegan's
  correlation-based approximation of the same conditional variance.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd
from scipy import special

from ecowatch.analysis.contracts import require_known_deployments, validate_deployments, validate_events
from ecowatch.analysis.effort import camera_operation
from ecowatch.errors import InputDataError

logger = logging.getLogger(__name__)

Unit = Literal["deployment", "day"]


def incidence_matrix(
    events: pd.DataFrame,
    deployments: pd.DataFrame,
    outages: pd.DataFrame | None = None,
    *,
    unit: Unit = "deployment",
) -> pd.DataFrame:
    """Which taxa were detected in each sampling unit.

    Args:
        events: events table.
        deployments: deployments table (all its deployments are units, or hold the units).
        outages: outages table, or ``None`` (only used for ``unit = "day"``).
        unit: ``"deployment"`` or ``"day"`` (camera-days with effort > 0).

    Returns:
        Boolean DataFrame: rows = units (index ``deployment_id``, or ``(deployment_id, date)``
        for days), columns = taxon ids (sorted). Events outside any unit (e.g. on a day without
        effort) are left out and logged.

    Raises:
        InputDataError: a table breaks its contract, an event's deployment is unknown, or
            ``unit`` is unknown.
    """
    if unit not in ("deployment", "day"):
        raise InputDataError(f"unit {unit!r} is not one of ['deployment', 'day'].")
    ev = validate_events(events)
    deps = validate_deployments(deployments)
    require_known_deployments(ev, deps, table="events")
    taxa = sorted(ev["taxon_id"].unique())
    if unit == "deployment":
        index = pd.Index(deps["deployment_id"], name="deployment_id")
        keys = pd.Index(ev["deployment_id"])
    else:
        operation = camera_operation(deps, outages, by="deployment").stack()
        units = operation[operation > 0].index
        index = pd.MultiIndex.from_tuples(list(units), names=["deployment_id", "date"])
        keys = pd.MultiIndex.from_arrays([ev["deployment_id"], ev["start"].dt.normalize()])
    inside = keys.isin(index)
    if (~inside).any():
        logger.warning(
            "%d event(s) fall outside every sampling unit (no effort that day) and are ignored", int((~inside).sum())
        )
    matrix = pd.DataFrame(False, index=index, columns=pd.Index(taxa, name="taxon_id"))
    if inside.any():
        rows = index.get_indexer(keys[inside])
        cols = pd.Index(taxa).get_indexer(ev.loc[inside, "taxon_id"])
        values = matrix.to_numpy(copy=True)
        values[rows, cols] = True
        matrix = pd.DataFrame(values, index=index, columns=matrix.columns)
    return matrix


def _incidence_array(incidence: pd.DataFrame) -> np.ndarray:
    if not isinstance(incidence, pd.DataFrame):
        raise InputDataError(f"incidence: expected a DataFrame (units x taxa), got {type(incidence).__name__}.")
    try:
        values = incidence.to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputDataError("incidence: values must be booleans or 0/1 (units x taxa).") from exc
    if np.isnan(values).any():
        raise InputDataError("incidence: contains missing values.")
    return values > 0


def accumulation_random(incidence: pd.DataFrame, *, n_permutations: int = 100, seed: int = 0) -> pd.DataFrame:
    """Species accumulation by random orderings of the units (seeded).

    Args:
        incidence: units x taxa booleans (:func:`incidence_matrix`).
        n_permutations: number of random orders, >= 2.
        seed: seed of the random generator.

    Returns:
        ``n_units`` (1..T), ``mean``, ``sd`` of the richness over the permutations.

    Raises:
        InputDataError: bad incidence table or ``n_permutations < 2``.
    """
    if n_permutations < 2:
        raise InputDataError(f"n_permutations {n_permutations} must be >= 2.")
    present = _incidence_array(incidence)
    n_units = present.shape[0]
    rng = np.random.default_rng(seed)
    curves = np.zeros((n_permutations, n_units))
    units_of = [np.flatnonzero(present[:, j]) for j in range(present.shape[1])]
    units_of = [u for u in units_of if u.size]
    for p in range(n_permutations):
        position = np.empty(n_units, dtype=np.int64)
        position[rng.permutation(n_units)] = np.arange(n_units)
        first_seen = np.array([position[u].min() for u in units_of], dtype=np.int64)
        curves[p] = np.cumsum(np.bincount(first_seen, minlength=n_units))[:n_units]
    return pd.DataFrame(
        {"n_units": np.arange(1, n_units + 1), "mean": curves.mean(axis=0), "sd": curves.std(axis=0, ddof=1)}
    )


def _log_choose(n: np.ndarray, k: int) -> np.ndarray:
    return special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)


def _miss_probability(n_without: np.ndarray, n_units: int, h: int) -> np.ndarray:
    """P(h units drawn without replacement from n_units all avoid the n_units - n_without holding it)."""
    out = np.zeros(n_without.shape)
    ok = n_without >= h
    out[ok] = np.exp(_log_choose(n_without[ok].astype(float), h) - _log_choose(np.array(float(n_units)), h))
    return out


def accumulation_exact(incidence: pd.DataFrame) -> pd.DataFrame:
    """Sample-based rarefaction: exact expected richness and conditional sd per number of units.

    Args:
        incidence: units x taxa booleans (:func:`incidence_matrix`).

    Returns:
        ``n_units`` (1..T), ``mean``, ``sd`` (see the module docstring).

    Raises:
        InputDataError: bad incidence table.
    """
    present = _incidence_array(incidence)
    present = present[:, present.any(axis=0)]
    n_units = present.shape[0]
    as_int = present.astype(np.int64)
    holding = as_int.sum(axis=0)
    both = as_int.T @ as_int
    either = holding[:, None] + holding[None, :] - both
    means, sds = np.empty(n_units), np.empty(n_units)
    for h in range(1, n_units + 1):
        q = _miss_probability(n_units - holding, n_units, h)
        q_pair = _miss_probability(n_units - either, n_units, h)
        means[h - 1] = float((1.0 - q).sum())
        sds[h - 1] = float(np.sqrt(max((q_pair - np.outer(q, q)).sum(), 0.0)))
    return pd.DataFrame({"n_units": np.arange(1, n_units + 1), "mean": means, "sd": sds})
