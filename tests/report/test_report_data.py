"""The report's data layer: store rows -> the analyses' records table, with the level and time rules."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ecowatch.report import UNCLASSIFIED, ReportError
from ecowatch.report.data import animal_records, image_times, load_report_data
from ecowatch.store import schema as S
from tests.report.builders import DUMP, T0, TinyStore


def _obs(observation_id: str, **values: object) -> dict[str, object]:
    row = {"observation_id": observation_id, "level": "media", "deployment_id": "D1", "media_id": None,
           "sequence_id": None, "observation_type": "animal", "taxon_id": None, "taxon_rank": None,
           "probability": 0.9, "count": 1, "source": "classifier", "run_id": "r"}
    row.update(values)
    return row


def test_media_level_records(tiny: TinyStore) -> None:
    data = load_report_data(tiny.store, [DUMP])
    result = animal_records(data)
    records = result.records
    assert result.level_by_deployment == {"D1": "media", "D2": "media"}
    # 10 animal observations; the unknown one is not an animal; none outside a window or untimed
    assert len(records) == 9 and result.n_outside_window == 0 and result.n_untimed == 0
    assert records["taxon_id"].value_counts().to_dict() == {"vulpes_vulpes": 4, "meles_meles": 3, "vulpes": 1,
                                                            UNCLASSIFIED: 1}
    first = records.iloc[0]
    assert (first["deployment_id"], first["timestamp"], first["taxon_id"]) == ("D1", T0 + dt.timedelta(hours=1),
                                                                              "vulpes_vulpes")
    assert records["timestamp"].dtype == "datetime64[ns]"
    # images with a time: every ok image; the failed one is left out
    assert len(image_times(data)) == 11


def test_event_level_preferred_and_timed_by_its_media(tiny: TinyStore) -> None:
    """A deployment with event-level observations is analysed from them, at its first image's time."""
    seq = "event-1"
    first, second = tiny.media_ids["b/IMG_0003.JPG"], tiny.media_ids["b/IMG_0004.JPG"]
    with tiny.store.transaction() as conn:
        conn.execute(S.media.update().where(S.media.c.media_id.in_([first, second])).values(sequence_id=seq))
        tiny.store.insert_ignore(conn, S.observations, [
            _obs("ev1", level="event", deployment_id="D2", sequence_id=seq, taxon_id="meles_meles", count=2),
            _obs("ev2", level="event", deployment_id="D2", sequence_id="no-media", taxon_id="meles_meles"),
        ])  # fmt: skip
    result = animal_records(load_report_data(tiny.store, [DUMP]))
    assert result.level_by_deployment == {"D1": "media", "D2": "event"}
    d2 = result.records[result.records["deployment_id"] == "D2"]
    assert d2[["taxon_id", "timestamp", "count"]].values.tolist() == [["meles_meles", T0 + dt.timedelta(hours=50), 2]]
    assert result.n_untimed == 0  # the event without media belongs to no dump of the report


def test_unnamed_animal_superseded_by_a_named_one(tiny: TinyStore) -> None:
    media_id = tiny.media_ids["a/IMG_0005.JPG"]
    with tiny.store.transaction() as conn:
        tiny.store.insert_ignore(conn, S.observations, [_obs("named", media_id=media_id, taxon_id="meles_meles")])
    records = animal_records(load_report_data(tiny.store, [DUMP])).records
    assert UNCLASSIFIED not in set(records["taxon_id"])
    assert (records["taxon_id"] == "meles_meles").sum() == 4


def test_records_outside_the_window_are_counted_not_used(tiny: TinyStore) -> None:
    media_id = tiny.media_ids["b/IMG_0005.JPG"]  # 300 h after the start of a 240 h deployment
    with tiny.store.transaction() as conn:
        tiny.store.insert_ignore(conn, S.observations, [_obs("late", deployment_id="D2", media_id=media_id,
                                                             taxon_id="vulpes_vulpes")])  # fmt: skip
    result = animal_records(load_report_data(tiny.store, [DUMP]))
    assert result.n_outside_window == 1 and len(result.records) == 9


def test_unknown_dump_is_an_error_that_lists_the_known_ones(tiny: TinyStore) -> None:
    with pytest.raises(ReportError, match=r"no dump\(s\) \['nope'\].*tiny_dump"):
        load_report_data(tiny.store, ["nope"])


def test_whole_store_and_runs(tiny: TinyStore) -> None:
    data = load_report_data(tiny.store, None)
    assert data.dump_ids == (DUMP,)
    assert list(data.deployments["deployment_id"]) == ["D1", "D2"]
    assert data.runs[["kind", "status", "mlflow_run_id"]].values.tolist() == [["nightly", "finished",
                                                                                "mlflow-run-123"]]
    assert isinstance(data.deployments["start"].iloc[0], pd.Timestamp)
