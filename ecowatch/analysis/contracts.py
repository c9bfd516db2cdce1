"""Column contracts of the tables the analyses take, and their validation on entry.

Every analysis validates its input tables here, so a missing column or a wrong dtype is an
:class:`~ecowatch.errors.InputDataError` that names the table, the column and the fix, not a
``KeyError`` deep inside pandas.

Tables (pandas DataFrames; extra columns are kept and ignored):

deployments
    ``deployment_id`` (str, unique), ``location_id`` (str), ``location_name`` (str),
    ``latitude``, ``longitude`` (WGS84 decimal degrees), ``start``, ``end`` (naive
    ``datetime64``, the camera's local clock time; ``end >= start``).
records
    One row per detection of a species in a media file or an event: ``deployment_id``,
    ``timestamp`` (naive ``datetime64``, camera-local clock), ``taxon_id`` (str), ``count``
    (int >= 1; optional, 1 when absent or missing); optional ``media_id``, ``sequence_id``.
outages
    Periods a camera was not working: ``deployment_id``, ``start``, ``end`` (naive
    ``datetime64``, camera-local clock; ``end >= start``).
events
    The output of :func:`ecowatch.analysis.events.independent_events`: ``deployment_id``,
    ``taxon_id``, ``event_id``, ``start``, ``end``, ``n_records``, ``max_count``.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from ecowatch.errors import InputDataError
from ecowatch.tables import Deployment

DEPLOYMENT_COLUMNS: tuple[str, ...] = (
    "deployment_id",
    "location_id",
    "location_name",
    "latitude",
    "longitude",
    "start",
    "end",
)
RECORD_COLUMNS: tuple[str, ...] = ("deployment_id", "timestamp", "taxon_id")
RECORD_OPTIONAL_COLUMNS: tuple[str, ...] = ("count", "media_id", "sequence_id")
OUTAGE_COLUMNS: tuple[str, ...] = ("deployment_id", "start", "end")
EVENT_COLUMNS: tuple[str, ...] = ("deployment_id", "taxon_id", "event_id", "start", "end", "n_records", "max_count")


def deployments_frame(deployments: Iterable[Deployment]) -> pd.DataFrame:
    """The deployments table of the analyses from :func:`ecowatch.tables.read_deployments` output.

    Args:
        deployments: validated deployments (naive camera-local ``start``/``end``).

    Returns:
        The deployments table (columns in the module docstring) plus ``utc_offset_min``.
    """
    rows = [
        {
            "deployment_id": d.deployment_id,
            "location_id": d.location_id,
            "location_name": d.location_name,
            "latitude": d.latitude,
            "longitude": d.longitude,
            "start": d.start,
            "end": d.end,
            "utc_offset_min": d.utc_offset_min,
        }
        for d in deployments
    ]
    frame = pd.DataFrame(rows, columns=[*DEPLOYMENT_COLUMNS, "utc_offset_min"])
    for column in ("start", "end"):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
    return frame


def require_columns(frame: pd.DataFrame, columns: Iterable[str], *, table: str) -> None:
    """Raise if ``frame`` lacks any of ``columns``.

    Args:
        frame: the table to check.
        columns: the column names it must have.
        table: the table's name in the message (``"deployments"``, ``"records"`` ...).

    Raises:
        InputDataError: ``frame`` is not a DataFrame or lacks a column; the message names the
            missing column(s) and the columns present.
    """
    if not isinstance(frame, pd.DataFrame):
        raise InputDataError(f"{table}: expected a pandas DataFrame, got {type(frame).__name__}.")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputDataError(
            f"{table} table: missing column(s) {missing}; it has {list(frame.columns)}. "
            f"Rename or add them (see ecowatch.analysis.contracts for the {table} contract)."
        )


def require_naive_datetimes(frame: pd.DataFrame, columns: Iterable[str], *, table: str) -> None:
    """Raise unless each column is a naive ``datetime64`` column without missing values.

    Raises:
        InputDataError: a column holds strings, tz-aware datetimes or ``NaT``.
    """
    for column in columns:
        series = frame[column]
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            raise InputDataError(
                f"{table} table: column {column!r} is timezone-aware ({series.dtype}); the analyses use the "
                "camera's local clock time. Convert with .dt.tz_convert(<local offset>).dt.tz_localize(None)."
            )
        if not pd.api.types.is_datetime64_dtype(series.dtype):
            raise InputDataError(
                f"{table} table: column {column!r} has dtype {series.dtype}, not datetime64. "
                f"Parse it first, e.g. frame[{column!r}] = pd.to_datetime(frame[{column!r}])."
            )
        if series.isna().any():
            row = series.index[series.isna()][0]
            raise InputDataError(f"{table} table: column {column!r} is missing (NaT) at row {row!r}.")


def _require_ordered(frame: pd.DataFrame, *, table: str, id_column: str = "deployment_id") -> None:
    bad = frame["end"] < frame["start"]
    if bad.any():
        row = frame.loc[bad].iloc[0]
        raise InputDataError(
            f"{table} table: {id_column} {row[id_column]!r} ends ({row['end']}) before it starts ({row['start']})."
        )


def validate_deployments(deployments: pd.DataFrame) -> pd.DataFrame:
    """Check a deployments table and return a copy with ``deployment_id``/``location_id`` as str.

    Raises:
        InputDataError: missing column, non-datetime ``start``/``end``, ``end < start`` or a
            duplicated ``deployment_id``.
    """
    require_columns(deployments, DEPLOYMENT_COLUMNS, table="deployments")
    require_naive_datetimes(deployments, ("start", "end"), table="deployments")
    out = deployments.copy()
    out["deployment_id"] = out["deployment_id"].astype(str)
    out["location_id"] = out["location_id"].astype(str)
    duplicated = out["deployment_id"].duplicated()
    if duplicated.any():
        raise InputDataError(
            f"deployments table: deployment_id {out.loc[duplicated, 'deployment_id'].iloc[0]!r} appears twice; "
            "ids must be unique."
        )
    _require_ordered(out, table="deployments")
    return out.reset_index(drop=True)


def validate_records(records: pd.DataFrame) -> pd.DataFrame:
    """Check a records table; return a copy with ``count`` filled (1 when absent or missing).

    Raises:
        InputDataError: missing column, non-datetime ``timestamp``, or a ``count`` that is not
            a whole number >= 1.
    """
    require_columns(records, RECORD_COLUMNS, table="records")
    require_naive_datetimes(records, ("timestamp",), table="records")
    out = records.copy()
    out["deployment_id"] = out["deployment_id"].astype(str)
    out["taxon_id"] = out["taxon_id"].astype(str)
    if "count" not in out.columns:
        out["count"] = 1
    counts = pd.to_numeric(out["count"], errors="coerce")
    not_a_number = out["count"].notna() & counts.isna()
    bad = not_a_number | (counts.notna() & ((counts < 1) | (counts != counts.round())))
    if bad.any():
        index = out.index[bad][0]
        raise InputDataError(
            f"records table: count {out.loc[index, 'count']!r} at row {index!r} is not a whole number >= 1."
        )
    out["count"] = counts.fillna(1).astype("int64")
    return out.reset_index(drop=True)


def validate_outages(outages: pd.DataFrame | None, deployments: pd.DataFrame) -> pd.DataFrame:
    """Check an outages table against the deployments; ``None`` gives an empty table.

    Raises:
        InputDataError: missing column, non-datetime ``start``/``end``, ``end < start`` or an
            outage for a ``deployment_id`` that is not in the deployments table.
    """
    if outages is None:
        return pd.DataFrame(
            {
                "deployment_id": pd.Series([], dtype=str),
                "start": pd.Series([], dtype="datetime64[ns]"),
                "end": pd.Series([], dtype="datetime64[ns]"),
            }
        )
    require_columns(outages, OUTAGE_COLUMNS, table="outages")
    require_naive_datetimes(outages, ("start", "end"), table="outages")
    out = outages.copy()
    out["deployment_id"] = out["deployment_id"].astype(str)
    _require_ordered(out, table="outages")
    unknown = sorted(set(out["deployment_id"]) - set(deployments["deployment_id"].astype(str)))
    if unknown:
        raise InputDataError(
            f"outages table: deployment_id(s) {unknown} are not in the deployments table. Fix the ids or add "
            "the deployments."
        )
    return out.reset_index(drop=True)


def validate_events(events: pd.DataFrame) -> pd.DataFrame:
    """Check an events table (from ``independent_events``) and return a copy.

    Raises:
        InputDataError: missing column or non-datetime ``start``/``end``.
    """
    require_columns(events, EVENT_COLUMNS, table="events")
    require_naive_datetimes(events, ("start", "end"), table="events")
    out = events.copy()
    out["deployment_id"] = out["deployment_id"].astype(str)
    out["taxon_id"] = out["taxon_id"].astype(str)
    return out.reset_index(drop=True)


def require_known_deployments(frame: pd.DataFrame, deployments: pd.DataFrame, *, table: str) -> None:
    """Raise if ``frame`` names a ``deployment_id`` absent from the deployments table.

    Raises:
        InputDataError: naming the unknown ids.
    """
    unknown = sorted(set(frame["deployment_id"].astype(str)) - set(deployments["deployment_id"].astype(str)))
    if unknown:
        raise InputDataError(
            f"{table} table: deployment_id(s) {unknown[:10]} are not in the deployments table. "
            "Add those deployments or drop their rows."
        )
