"""Builders of tiny hand-made analysis tables (deployments, records, outages)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import pytest


def _times(values: Sequence[str]) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), format="ISO8601"), dtype="datetime64[ns]")


@pytest.fixture
def deployments_table() -> Callable[..., pd.DataFrame]:
    """``deployments_table([(deployment_id, location_id, start, end), ...])`` -> deployments."""

    def make(rows: Sequence[tuple[str, str, str, str]]) -> pd.DataFrame:
        ids, locations, starts, ends = zip(*rows, strict=True) if rows else ((), (), (), ())
        return pd.DataFrame(
            {
                "deployment_id": list(ids),
                "location_id": list(locations),
                "location_name": [f"site {loc}" for loc in locations],
                "latitude": 51.0,
                "longitude": 4.0,
                "start": _times(starts),
                "end": _times(ends),
            }
        )

    return make


@pytest.fixture
def records_table() -> Callable[..., pd.DataFrame]:
    """``records_table([(deployment_id, timestamp, taxon_id, count), ...], media_ids=None)``."""

    def make(rows: Sequence[tuple[str, str, str, int]], media_ids: Sequence[str] | None = None) -> pd.DataFrame:
        ids, stamps, taxa, counts = zip(*rows, strict=True) if rows else ((), (), (), ())
        frame = pd.DataFrame(
            {"deployment_id": list(ids), "timestamp": _times(stamps), "taxon_id": list(taxa), "count": list(counts)}
        )
        if media_ids is not None:
            frame["media_id"] = list(media_ids)
        return frame

    return make


@pytest.fixture
def outages_table() -> Callable[..., pd.DataFrame]:
    """``outages_table([(deployment_id, start, end), ...])`` -> outages."""

    def make(rows: Sequence[tuple[str, str, str]]) -> pd.DataFrame:
        ids, starts, ends = zip(*rows, strict=True) if rows else ((), (), ())
        return pd.DataFrame({"deployment_id": list(ids), "start": _times(starts), "end": _times(ends)})

    return make
