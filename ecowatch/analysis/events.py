"""Independent events: grouping records of one species at one deployment into visits.

Input: a records table (see :mod:`ecowatch.analysis.contracts`): ``deployment_id``,
``timestamp`` (naive ``datetime64``, camera-local clock), ``taxon_id`` (str), ``count``
(int >= 1, optional, default 1), optional ``media_id``.

Definition (camtrapR ``recordTable(minDeltaTime, deltaTimeComparedTo)``): the records of one
taxon at one deployment are sorted by time. The first record opens an event. A later record
opens a new event when its time minus a reference time is at least ``min_gap`` (``>=``, as
camtrapR: a record exactly ``min_gap`` after the reference is independent); otherwise it joins
the current event. The reference time is

* ``"last_record"`` (camtrapR ``deltaTimeComparedTo = "lastRecord"``): the previous record of
  that taxon at that deployment, so an event lasts as long as records keep arriving less than
  ``min_gap`` apart;
* ``"last_independent"`` (``"lastIndependentRecord"``): the first record of the current event,
  so no event spans ``min_gap`` or more.

With ``min_gap > 0`` records with identical timestamps always share an event (camtrapR drops
such duplicates beforehand); ``min_gap = 0`` makes every record its own event.

Event count: the records sharing one media file (``media_id`` when present and non-empty,
otherwise the same timestamp) are summed (e.g. 1 adult + 2 juveniles in one image = 3), and
the event's ``max_count`` is the largest of those sums over the event's media: the most
individuals seen at once (camtrapR ``eventSummaryFunction = "max"`` on the count).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import numpy as np
import pandas as pd

from ecowatch.analysis.contracts import validate_records
from ecowatch.errors import InputDataError

GapRule = Literal["last_record", "last_independent"]
GAP_RULES: tuple[str, ...] = ("last_record", "last_independent")

EVENTS_COLUMNS: tuple[str, ...] = ("deployment_id", "taxon_id", "event_id", "start", "end", "n_records", "max_count")


def _event_numbers(times_ns: np.ndarray, min_gap_ns: int, rule: str) -> np.ndarray:
    """0-based event number of each record of one sorted (deployment, taxon) group."""
    if rule == "last_record":
        new = np.ones(len(times_ns), dtype=bool)
        new[1:] = np.diff(times_ns) >= min_gap_ns
        return np.cumsum(new) - 1
    numbers = np.empty(len(times_ns), dtype=np.int64)
    anchor = times_ns[0]
    current = 0
    for i in range(1, len(times_ns)):
        if times_ns[i] - anchor >= min_gap_ns:
            current += 1
            anchor = times_ns[i]
        numbers[i] = current
    numbers[0] = 0
    return numbers


def independent_events(
    records: pd.DataFrame,
    *,
    min_gap: dt.timedelta | pd.Timedelta,
    rule: GapRule = "last_record",
) -> pd.DataFrame:
    """Group records into independent events per taxon and deployment.

    Args:
        records: records table (columns in the module docstring).
        min_gap: minimum time between independent records, e.g. ``timedelta(minutes=30)``
            (camtrapR ``minDeltaTime``, which is in minutes). Must be >= 0.
        rule: ``"last_record"`` or ``"last_independent"``: what the gap is measured from (see
            the module docstring).

    Returns:
        One row per event, sorted by ``deployment_id, taxon_id, start``: ``deployment_id``,
        ``taxon_id``, ``event_id`` (``"<deployment_id>:<taxon_id>:<n>"``, n from 1 in time
        order), ``start``, ``end`` (first and last record time), ``n_records`` (records in the
        event), ``max_count`` (see the module docstring).

    Raises:
        InputDataError: the records table breaks its contract, ``min_gap`` is negative or not a
            timedelta, or ``rule`` is unknown.
    """
    if rule not in GAP_RULES:
        raise InputDataError(f"rule {rule!r} is not one of {list(GAP_RULES)}.")
    try:
        gap = pd.Timedelta(min_gap)
    except (TypeError, ValueError) as exc:
        raise InputDataError(f"min_gap {min_gap!r} is not a timedelta; use e.g. timedelta(minutes=30).") from exc
    if pd.isna(gap) or gap < pd.Timedelta(0):
        raise InputDataError(f"min_gap {min_gap!r} must be a non-negative timedelta.")
    table = validate_records(records)
    if table.empty:
        return pd.DataFrame({c: pd.Series([], dtype=_dtype(c)) for c in EVENTS_COLUMNS})

    table["_media_key"] = _media_keys(table)
    table = table.sort_values(["deployment_id", "taxon_id", "timestamp"], kind="stable").reset_index(drop=True)

    gap_ns = int(gap.value)
    numbers = np.empty(len(table), dtype=np.int64)
    times = table["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    for _, index in table.groupby(["deployment_id", "taxon_id"], sort=False).indices.items():
        numbers[index] = _event_numbers(times[index], gap_ns, rule)
    table["_event"] = numbers

    keys = ["deployment_id", "taxon_id", "_event"]
    per_media = table.groupby([*keys, "_media_key"], sort=False)["count"].sum().groupby(level=keys).max()
    grouped = table.groupby(keys, sort=True)
    events = grouped["timestamp"].agg(start="min", end="max")
    events["n_records"] = grouped.size()
    events["max_count"] = per_media.reindex(events.index).astype("int64")
    events = events.reset_index()
    events["event_id"] = (
        events["deployment_id"] + ":" + events["taxon_id"] + ":" + (events["_event"] + 1).astype(str)
    )
    return events[list(EVENTS_COLUMNS)].sort_values(["deployment_id", "taxon_id", "start"]).reset_index(drop=True)


def _media_keys(table: pd.DataFrame) -> pd.Series:
    """The media a record belongs to: its ``media_id``, else its timestamp."""
    by_time = "@" + table["timestamp"].astype(str)
    if "media_id" not in table.columns:
        return by_time
    media = table["media_id"]
    has_media = media.notna() & (media.astype(str).str.len() > 0)
    return media.astype(str).where(has_media, by_time)


def _dtype(column: str) -> str:
    if column in ("start", "end"):
        return "datetime64[ns]"
    if column in ("n_records", "max_count"):
        return "int64"
    return "str"
