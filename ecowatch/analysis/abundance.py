"""Relative abundance (RAI), naive occupancy and detection histories for occupancy models.

Inputs (see :mod:`ecowatch.analysis.contracts`):

* events: from :func:`ecowatch.analysis.events.independent_events` (``deployment_id, taxon_id,
  event_id, start, end, n_records, max_count``; times naive camera-local ``datetime64``).
* effort: from :func:`ecowatch.analysis.effort.effort_days` (``deployment_id, location_id,
  effort_days`` at least).
* deployments / outages: the deployments and outages tables.

Definitions:

* RAI (relative abundance index, camtrapR ``surveyReport`` "events per 100 trap nights"):
  ``RAI = independent events / active camera-days * 100``, per taxon and deployment (or
  location, or overall = summed events / summed effort). With zero effort RAI is ``NaN``.
* Naive occupancy: the share of sites (locations or deployments of the deployments table) with
  at least one event of the taxon. It ignores imperfect detection; use the detection history
  with an occupancy model for an estimate.
* Detection history (camtrapR ``detectionHistory(occasionLength, minActiveDaysPerOccasion,
  day1, includeEffort = TRUE)``): the camera operation matrix by location (see
  :func:`ecowatch.analysis.effort.camera_operation`) is cut into occasions of
  ``occasion_length_days`` calendar days, starting on each location's first day set up
  (``day1 = "station"``) or on the survey's first day (``day1 = "survey"``); the last occasion
  may be shorter. Effort of an occasion = active camera-days in it (``NaN`` if no camera was set
  up on any of its days). Detection = 1 if an event of the taxon starts on one of the
  occasion's days, else 0. Occasions whose effort is ``NaN``, 0 (set up but never working) or
  below ``min_active_days`` are ``NaN`` in both matrices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ecowatch.analysis.contracts import (
    require_columns,
    require_known_deployments,
    validate_deployments,
    validate_events,
)
from ecowatch.analysis.effort import camera_operation
from ecowatch.errors import InputDataError

RaiBy = Literal["deployment", "location", "overall"]
SiteBy = Literal["location", "deployment"]
Day1 = Literal["station", "survey"]


def relative_abundance(events: pd.DataFrame, effort: pd.DataFrame, *, by: RaiBy = "deployment") -> pd.DataFrame:
    """Relative abundance index: independent events per 100 active camera-days.

    Args:
        events: events table.
        effort: effort table (``deployment_id, location_id, effort_days``).
        by: ``"deployment"``, ``"location"`` (events and effort summed over the deployments at
            a location) or ``"overall"`` (summed over all deployments).

    Returns:
        Every combination of site and taxon seen in ``events`` (zeros included), sorted:
        ``deployment_id`` / ``location_id`` (absent for ``"overall"``), ``taxon_id``,
        ``n_events`` (int), ``effort_days`` (float), ``rai`` (events per 100 camera-days;
        ``NaN`` where effort is 0).

    Raises:
        InputDataError: a table breaks its contract, an event's deployment is not in
            ``effort``, or ``by`` is unknown.
    """
    if by not in ("deployment", "location", "overall"):
        raise InputDataError(f"by {by!r} is not one of ['deployment', 'location', 'overall'].")
    ev = validate_events(events)
    require_columns(effort, ("deployment_id", "location_id", "effort_days"), table="effort")
    eff = effort[["deployment_id", "location_id", "effort_days"]].copy()
    eff["deployment_id"] = eff["deployment_id"].astype(str)
    eff["location_id"] = eff["location_id"].astype(str)
    require_known_deployments(ev, eff, table="events")
    taxa = sorted(ev["taxon_id"].unique())
    if by == "overall":
        counts = ev.groupby("taxon_id").size().reindex(taxa, fill_value=0)
        total = float(eff["effort_days"].sum())
        out = pd.DataFrame({"taxon_id": taxa, "n_events": counts.to_numpy(dtype="int64")})
        out["effort_days"] = total
    else:
        key = f"{by}_id"
        ev = ev.merge(eff[["deployment_id", "location_id"]], on="deployment_id", how="left")
        site_effort = eff.groupby(key)["effort_days"].sum()
        grid = pd.MultiIndex.from_product([site_effort.index, taxa], names=[key, "taxon_id"])
        counts = ev.groupby([key, "taxon_id"]).size().reindex(grid, fill_value=0)
        out = counts.rename("n_events").astype("int64").reset_index()
        out["effort_days"] = out[key].map(site_effort).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rai = out["n_events"] / out["effort_days"] * 100.0
    out["rai"] = rai.where(out["effort_days"] > 0)
    return out.reset_index(drop=True)


def naive_occupancy(events: pd.DataFrame, deployments: pd.DataFrame, *, by: SiteBy = "location") -> pd.DataFrame:
    """Share of sites with at least one event of each taxon.

    Args:
        events: events table.
        deployments: deployments table; its sites (all of them, with or without events) are
            the denominator.
        by: ``"location"`` (``location_id``) or ``"deployment"``.

    Returns:
        One row per taxon in ``events``: ``taxon_id``, ``n_sites_detected``, ``n_sites``,
        ``naive_occupancy`` (0..1).

    Raises:
        InputDataError: a table breaks its contract, an event's deployment is unknown, or ``by``
            is unknown.
    """
    if by not in ("location", "deployment"):
        raise InputDataError(f"by {by!r} is not one of ['location', 'deployment'].")
    ev = validate_events(events)
    deps = validate_deployments(deployments)
    require_known_deployments(ev, deps, table="events")
    key = f"{by}_id"
    site_of = pd.Series(deps[key].to_numpy(), index=deps["deployment_id"])
    n_sites = deps[key].nunique()
    detected = ev.assign(_site=ev["deployment_id"].map(site_of)).groupby("taxon_id")["_site"].nunique()
    out = detected.rename("n_sites_detected").astype("int64").reset_index()
    out["n_sites"] = n_sites
    out["naive_occupancy"] = out["n_sites_detected"] / n_sites if n_sites else np.nan
    return out.sort_values("taxon_id").reset_index(drop=True)


@dataclass(frozen=True)
class DetectionHistory:
    """Detection and effort matrices for one taxon (rows ``location_id``, columns ``o1..oK``).

    Attributes:
        taxon_id: the taxon.
        detections: 1.0 (detected), 0.0 (not detected) or ``NaN`` (not enough effort).
        effort: active camera-days per occasion, ``NaN`` where ``detections`` is ``NaN``.
        occasion_start: first calendar day (``datetime64``, midnight) of each occasion.
        occasion_length_days: days per occasion.
        min_active_days: effort threshold below which an occasion is ``NaN``.
    """

    taxon_id: str
    detections: pd.DataFrame
    effort: pd.DataFrame
    occasion_start: pd.DataFrame
    occasion_length_days: int
    min_active_days: float


def detection_history(
    events: pd.DataFrame,
    deployments: pd.DataFrame,
    outages: pd.DataFrame | None = None,
    *,
    taxon_id: str,
    occasion_length_days: int,
    min_active_days: float = 0.0,
    day1: Day1 = "station",
) -> DetectionHistory:
    """Detection history and effort matrix by location for occupancy models.

    Args:
        events: events table (any taxa; only ``taxon_id`` is used).
        deployments: deployments table (gives ``location_id`` and the windows).
        outages: outages table, or ``None``.
        taxon_id: the taxon whose detections are tabulated.
        occasion_length_days: calendar days per occasion, >= 1.
        min_active_days: occasions with less active camera-days are ``NaN`` (camtrapR
            ``minActiveDaysPerOccasion``); 0 keeps every occasion with any camera set up.
        day1: ``"station"`` (each location's occasions start on its first day set up) or
            ``"survey"`` (all start on the first day of the survey).

    Returns:
        :class:`DetectionHistory` (see the module docstring for the definitions).

    Raises:
        InputDataError: a table breaks its contract, an event's deployment is unknown, or an
            argument is out of range.
    """
    if not isinstance(occasion_length_days, (int, np.integer)) or occasion_length_days < 1:
        raise InputDataError(f"occasion_length_days {occasion_length_days!r} must be a whole number >= 1.")
    if min_active_days < 0:
        raise InputDataError(f"min_active_days {min_active_days!r} must be >= 0.")
    if day1 not in ("station", "survey"):
        raise InputDataError(f"day1 {day1!r} is not one of ['station', 'survey'].")
    ev = validate_events(events)
    deps = validate_deployments(deployments)
    require_known_deployments(ev, deps, table="events")
    operation = camera_operation(deps, outages, by="location")
    days = operation.columns
    values = operation.to_numpy(dtype=float)
    set_up = ~np.isnan(values)
    first = np.where(set_up.any(axis=1), set_up.argmax(axis=1), len(days))
    last = np.where(set_up.any(axis=1), len(days) - 1 - set_up[:, ::-1].argmax(axis=1), -1)
    if day1 == "survey":
        first = np.full(len(first), int(first.min()) if len(first) else 0)
    span = np.maximum(last - first + 1, 0)
    n_occasions = int(np.ceil(span.max() / occasion_length_days)) if len(span) and span.max() > 0 else 0

    ev = ev[ev["taxon_id"] == str(taxon_id)]
    location_of = deps.set_index("deployment_id")["location_id"]
    day_index = pd.Series(np.arange(len(days)), index=days)
    ev_days = ev["start"].dt.normalize().map(day_index)
    ev_loc = ev["deployment_id"].map(location_of)
    detected_days = np.zeros(values.shape, dtype=bool)
    row_of = {loc: i for i, loc in enumerate(operation.index)}
    for loc, day in zip(ev_loc, ev_days, strict=True):
        if not pd.isna(day):
            detected_days[row_of[loc], int(day)] = True

    shape = (len(operation.index), n_occasions)
    effort = np.full(shape, np.nan)
    detections = np.full(shape, np.nan)
    starts = np.full(shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    for row in range(shape[0]):
        for occ in range(n_occasions):
            lo = first[row] + occ * occasion_length_days
            hi = min(lo + occasion_length_days, len(days))
            if lo >= len(days):
                continue
            starts[row, occ] = days[lo].to_datetime64()
            window = values[row, lo:hi]
            if np.isnan(window).all():
                continue
            active = float(np.nansum(window))
            if active <= 0.0 or active < min_active_days:
                continue
            effort[row, occ] = active
            detections[row, occ] = 1.0 if detected_days[row, lo:hi].any() else 0.0
    columns = pd.Index([f"o{k + 1}" for k in range(n_occasions)], name="occasion")
    index = pd.Index(operation.index, name="location_id")
    return DetectionHistory(
        taxon_id=str(taxon_id),
        detections=pd.DataFrame(detections, index=index, columns=columns),
        effort=pd.DataFrame(effort, index=index, columns=columns),
        occasion_start=pd.DataFrame(starts, index=index, columns=columns),
        occasion_length_days=int(occasion_length_days),
        min_active_days=float(min_active_days),
    )
