"""Sampling effort: when each camera was working, in fractional camera-days.

Inputs (see :mod:`ecowatch.analysis.contracts`):

* deployments: ``deployment_id, location_id, location_name, latitude, longitude, start, end``
  (``start``/``end`` naive ``datetime64``, camera-local clock).
* outages (optional): ``deployment_id, start, end``: periods a camera was not working. They may
  overlap each other and the deployment edges; they are clipped to the window and merged.

Definitions:

* Active periods = deployment window ``[start, end]`` minus the union of its outages.
* Effort (camera-days, "trap-nights") = total length of the active periods / 24 h. Partial days
  count as fractions: a camera set up at 18:00 and taken down at 06:00 the next day has 0.5 days.
* Camera operation matrix (camtrapR ``cameraOperation`` with setup/retrieval times, so that
  partial days are fractions): one row per deployment (or location), one column per calendar
  day; the value is the active fraction of that day (0..1, summed over deployments for a
  location). ``NaN`` = not set up at all that day; ``0`` = set up but not working (outage).
  Calendar days are midnight-to-midnight on the camera-local clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ecowatch.analysis.contracts import (
    require_columns,
    require_known_deployments,
    require_naive_datetimes,
    validate_deployments,
    validate_outages,
)
from ecowatch.errors import InputDataError

DAY_NS = 86_400 * 10**9
OperationBy = Literal["deployment", "location"]


@dataclass(frozen=True)
class OutageDetection:
    """Result of :func:`detect_outages`.

    Attributes:
        outages: ``deployment_id, start, end, reason`` (``reason`` = ``"trigger_gap"``), ready
            to pass as ``outages`` to :func:`effort_days` / :func:`camera_operation`.
        clock_issues: ``deployment_id, timestamp, issue`` (``"before_start"`` or
            ``"after_end"``): timestamps outside their deployment window, a sign of a wrongly
            set camera clock. They are not used to find gaps.
    """

    outages: pd.DataFrame
    clock_issues: pd.DataFrame


def _merged(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _active_ns(window: tuple[int, int], outages: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Window minus outages, as (start, end) int64 nanoseconds; empty pieces dropped."""
    lo, hi = window
    clipped = [(max(s, lo), min(e, hi)) for s, e in outages if e > lo and s < hi]
    active: list[tuple[int, int]] = []
    cursor = lo
    for start, end in _merged(clipped):
        if start > cursor:
            active.append((cursor, start))
        cursor = max(cursor, end)
    if hi > cursor:
        active.append((cursor, hi))
    return active


def _ns(value: pd.Timestamp) -> int:
    return int(pd.Timestamp(value).as_unit("ns").value)


def _active_by_deployment(deployments: pd.DataFrame, outages: pd.DataFrame) -> dict[str, list[tuple[int, int]]]:
    by_dep: dict[str, list[tuple[int, int]]] = {}
    for dep_id, group in outages.groupby("deployment_id"):
        by_dep[str(dep_id)] = [(_ns(s), _ns(e)) for s, e in zip(group["start"], group["end"], strict=True)]
    return {
        dep_id: _active_ns((_ns(start), _ns(end)), by_dep.get(dep_id, []))
        for dep_id, start, end in zip(
            deployments["deployment_id"], deployments["start"], deployments["end"], strict=True
        )
    }


def active_periods(deployments: pd.DataFrame, outages: pd.DataFrame | None = None) -> pd.DataFrame:
    """The periods each camera was working: deployment window minus outages.

    Args:
        deployments: deployments table.
        outages: outages table, or ``None`` for none.

    Returns:
        ``deployment_id, start, end`` (naive local ``datetime64[ns]``), one row per active
        period, sorted; a deployment entirely covered by outages has no row.

    Raises:
        InputDataError: a table breaks its contract or an outage names an unknown deployment.
    """
    deps = validate_deployments(deployments)
    active = _active_by_deployment(deps, validate_outages(outages, deps))
    rows = [(dep_id, s, e) for dep_id, periods in active.items() for s, e in periods]
    frame = pd.DataFrame(rows, columns=["deployment_id", "start", "end"])
    for column in ("start", "end"):
        frame[column] = pd.to_datetime(frame[column].astype("int64"), unit="ns")
    frame["deployment_id"] = frame["deployment_id"].astype(str)
    return frame.sort_values(["deployment_id", "start"]).reset_index(drop=True)


def effort_days(deployments: pd.DataFrame, outages: pd.DataFrame | None = None) -> pd.DataFrame:
    """Active camera-days per deployment (window minus outages, fractional days).

    Args:
        deployments: deployments table.
        outages: outages table, or ``None`` for none.

    Returns:
        One row per deployment, in input order: ``deployment_id``, ``location_id``, ``start``,
        ``end``, ``window_days`` (end - start), ``outage_days`` (outage time inside the
        window, overlaps counted once), ``effort_days`` (= window_days - outage_days), all in
        days of 24 h.

    Raises:
        InputDataError: a table breaks its contract or an outage names an unknown deployment.
    """
    deps = validate_deployments(deployments)
    active = _active_by_deployment(deps, validate_outages(outages, deps))
    out = deps[["deployment_id", "location_id", "start", "end"]].copy()
    out["window_days"] = (deps["end"] - deps["start"]) / pd.Timedelta(days=1)
    out["effort_days"] = [sum(e - s for s, e in active[d]) / DAY_NS for d in deps["deployment_id"]]
    out["outage_days"] = out["window_days"] - out["effort_days"]
    return out[["deployment_id", "location_id", "start", "end", "window_days", "outage_days", "effort_days"]]


def camera_operation(
    deployments: pd.DataFrame,
    outages: pd.DataFrame | None = None,
    *,
    by: OperationBy = "deployment",
) -> pd.DataFrame:
    """Camera operation matrix: active fraction of each calendar day (camtrapR ``cameraOperation``).

    Args:
        deployments: deployments table.
        outages: outages table, or ``None`` for none.
        by: ``"deployment"`` (one row per deployment) or ``"location"`` (one row per
            ``location_id``; the deployments at a location are summed, as camtrapR with
            ``camerasIndependent = TRUE``, so two cameras working all day give 2.0).

    Returns:
        DataFrame indexed by ``deployment_id`` or ``location_id``, with one column per calendar
        day (a ``DatetimeIndex`` named ``date``, midnight local time) from the first start to
        the last end. Values: active days in that day (0..1 per deployment); ``NaN`` where no
        deployment was set up. Each deployment row sums to its ``effort_days``.

    Raises:
        InputDataError: a table breaks its contract, an outage names an unknown deployment, or
            ``by`` is unknown.
    """
    if by not in ("deployment", "location"):
        raise InputDataError(f"by {by!r} is not one of ['deployment', 'location'].")
    deps = validate_deployments(deployments)
    active = _active_by_deployment(deps, validate_outages(outages, deps))
    if deps.empty:
        return pd.DataFrame(index=pd.Index([], name=f"{by}_id"), columns=pd.DatetimeIndex([], name="date"))
    first_day = _ns(deps["start"].min().normalize())
    last_day = _ns(deps["end"].max().normalize())
    n_days = (last_day - first_day) // DAY_NS + 1
    matrix = np.full((len(deps), n_days), np.nan)
    for row, (dep_id, start, end) in enumerate(zip(deps["deployment_id"], deps["start"], deps["end"], strict=True)):
        lo, hi = _ns(start), _ns(end)
        for day in range((lo - first_day) // DAY_NS, (hi - first_day) // DAY_NS + 1):
            day_lo = first_day + day * DAY_NS
            if min(hi, day_lo + DAY_NS) > max(lo, day_lo):  # set up during part of this day
                matrix[row, day] = 0.0
        for s, e in active[dep_id]:
            for day in range((s - first_day) // DAY_NS, (e - 1 - first_day) // DAY_NS + 1):
                day_lo = first_day + day * DAY_NS
                matrix[row, day] += (min(e, day_lo + DAY_NS) - max(s, day_lo)) / DAY_NS
    columns = pd.DatetimeIndex(pd.to_datetime(first_day + np.arange(n_days) * DAY_NS, unit="ns"), name="date")
    frame = pd.DataFrame(matrix, index=pd.Index(deps["deployment_id"], name="deployment_id"), columns=columns)
    if by == "location":
        frame = frame.groupby(deps["location_id"].to_numpy()).sum(min_count=1)
        frame.index.name = "location_id"
    return frame


def detect_outages(
    times: pd.DataFrame,
    deployments: pd.DataFrame,
    *,
    max_gap: dt.timedelta | pd.Timedelta,
) -> OutageDetection:
    """Find likely outages from gaps in the camera's triggers, and timestamps outside the window.

    A camera that keeps working produces images (triggers, and time-lapse images if set);
    a gap longer than ``max_gap`` between consecutive images, or between the deployment start
    and the first image, or the last image and the deployment end, is taken as an outage
    (battery, full card, camera knocked over). This is a heuristic: choose ``max_gap`` well
    above the longest quiet spell expected at a working camera (with a daily time-lapse image,
    e.g. 2 days). Timestamps outside ``[start, end]`` are reported as clock issues and ignored
    for the gaps.

    Args:
        times: records or media table with ``deployment_id`` and ``timestamp`` (naive
            ``datetime64``, camera-local clock); one row per image (duplicates are harmless).
        deployments: deployments table.
        max_gap: longest gap between images still counted as working; must be > 0.

    Returns:
        :class:`OutageDetection` (outages start at the last image before the gap and end at
        the next image, or at the window edge).

    Raises:
        InputDataError: a table breaks its contract, ``times`` names an unknown deployment, or
            ``max_gap`` is not a positive timedelta.
    """
    try:
        gap = pd.Timedelta(max_gap)
    except (TypeError, ValueError) as exc:
        raise InputDataError(f"max_gap {max_gap!r} is not a timedelta; use e.g. timedelta(days=2).") from exc
    if pd.isna(gap) or gap <= pd.Timedelta(0):
        raise InputDataError(f"max_gap {max_gap!r} must be a positive timedelta.")
    deps = validate_deployments(deployments)
    require_columns(times, ("deployment_id", "timestamp"), table="times")
    require_naive_datetimes(times, ("timestamp",), table="times")
    require_known_deployments(times, deps, table="times")
    stamps = times[["deployment_id", "timestamp"]].copy()
    stamps["deployment_id"] = stamps["deployment_id"].astype(str)
    by_dep = dict(tuple(stamps.groupby("deployment_id")))
    outages: list[tuple[str, pd.Timestamp, pd.Timestamp]] = []
    issues: list[tuple[str, pd.Timestamp, str]] = []
    for dep_id, start, end in zip(deps["deployment_id"], deps["start"], deps["end"], strict=True):
        own = by_dep.get(dep_id, stamps.iloc[0:0])["timestamp"].sort_values()
        issues += [(dep_id, t, "before_start") for t in own[own < start]]
        issues += [(dep_id, t, "after_end") for t in own[own > end]]
        points = [start, *own[(own >= start) & (own <= end)], end]
        outages += [(dep_id, a, b) for a, b in zip(points[:-1], points[1:], strict=True) if b - a > gap]
    outage_frame = pd.DataFrame(outages, columns=["deployment_id", "start", "end"])
    outage_frame["reason"] = "trigger_gap"
    issue_frame = pd.DataFrame(issues, columns=["deployment_id", "timestamp", "issue"])
    for frame, columns in ((outage_frame, ("start", "end")), (issue_frame, ("timestamp",))):
        frame["deployment_id"] = frame["deployment_id"].astype(str)
        for column in columns:
            frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
    return OutageDetection(outages=outage_frame, clock_issues=issue_frame)
