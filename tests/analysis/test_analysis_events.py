"""Independent events: the two gap rules, the gap boundary, event counts, errors."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ecowatch.analysis import independent_events
from ecowatch.errors import InputDataError

GAP = dt.timedelta(minutes=30)


def _chain(records_table):
    # fox records 20 min apart for an hour, then one 1 h later
    return records_table(
        [
            ("d1", "2024-05-01 00:00", "fox", 1),
            ("d1", "2024-05-01 00:20", "fox", 3),
            ("d1", "2024-05-01 00:40", "fox", 2),
            ("d1", "2024-05-01 01:00", "fox", 1),
            ("d1", "2024-05-01 02:00", "fox", 1),
        ]
    )


def test_last_record_chains_records_closer_than_the_gap(records_table):
    events = independent_events(_chain(records_table), min_gap=GAP, rule="last_record")
    assert list(events["n_records"]) == [4, 1]
    assert list(events["start"].dt.strftime("%H:%M")) == ["00:00", "02:00"]
    assert list(events["end"].dt.strftime("%H:%M")) == ["01:00", "02:00"]
    assert list(events["max_count"]) == [3, 1]
    assert list(events["event_id"]) == ["d1:fox:1", "d1:fox:2"]


def test_last_independent_measures_from_the_event_start(records_table):
    events = independent_events(_chain(records_table), min_gap=GAP, rule="last_independent")
    # 00:40 is 40 min after the independent record at 00:00 -> new event; 01:00 is 20 min after 00:40
    assert list(events["n_records"]) == [2, 2, 1]
    assert list(events["start"].dt.strftime("%H:%M")) == ["00:00", "00:40", "02:00"]
    assert list(events["max_count"]) == [3, 2, 1]


def test_record_exactly_at_the_gap_is_independent(records_table):
    at_gap = records_table([("d1", "2024-05-01 00:00:00", "fox", 1), ("d1", "2024-05-01 00:30:00", "fox", 1)])
    just_under = records_table([("d1", "2024-05-01 00:00:00", "fox", 1), ("d1", "2024-05-01 00:29:59", "fox", 1)])
    for rule in ("last_record", "last_independent"):
        assert len(independent_events(at_gap, min_gap=GAP, rule=rule)) == 2
        assert len(independent_events(just_under, min_gap=GAP, rule=rule)) == 1


def test_species_and_deployments_are_kept_apart(records_table):
    records = records_table(
        [
            ("d1", "2024-05-01 00:00", "fox", 1),
            ("d1", "2024-05-01 00:05", "badger", 1),
            ("d1", "2024-05-01 00:10", "fox", 1),
            ("d2", "2024-05-01 00:10", "fox", 1),
        ]
    )
    events = independent_events(records, min_gap=GAP)
    counts = events.groupby(["deployment_id", "taxon_id"]).size().to_dict()
    assert counts == {("d1", "badger"): 1, ("d1", "fox"): 1, ("d2", "fox"): 1}
    fox_d1 = events[(events["deployment_id"] == "d1") & (events["taxon_id"] == "fox")].iloc[0]
    assert fox_d1["n_records"] == 2


def test_input_order_does_not_matter(records_table):
    records = _chain(records_table)
    shuffled = records.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(
        independent_events(records, min_gap=GAP), independent_events(shuffled, min_gap=GAP)
    )


def test_max_count_sums_records_of_one_media_then_takes_the_max(records_table):
    records = records_table(
        [
            ("d1", "2024-05-01 00:00:00", "boar", 1),  # img1: 1 adult ...
            ("d1", "2024-05-01 00:00:00", "boar", 2),  # ... + 2 piglets in the same image
            ("d1", "2024-05-01 00:00:05", "boar", 2),  # img2
        ],
        media_ids=["img1", "img1", "img2"],
    )
    events = independent_events(records, min_gap=GAP)
    assert list(events["max_count"]) == [3]
    # without media ids, records at the same timestamp are one media file
    assert list(independent_events(records.drop(columns="media_id"), min_gap=GAP)["max_count"]) == [3]


def test_missing_count_column_means_one_each(records_table):
    records = _chain(records_table).drop(columns="count")
    assert list(independent_events(records, min_gap=GAP)["max_count"]) == [1, 1]


def test_zero_gap_makes_every_record_an_event(records_table):
    assert len(independent_events(_chain(records_table), min_gap=dt.timedelta(0))) == 5


def test_empty_records_give_an_empty_events_table(records_table):
    events = independent_events(records_table([]), min_gap=GAP)
    assert events.empty
    assert list(events.columns) == ["deployment_id", "taxon_id", "event_id", "start", "end", "n_records", "max_count"]


def test_missing_column_is_named(records_table):
    with pytest.raises(InputDataError, match="taxon_id"):
        independent_events(_chain(records_table).drop(columns="taxon_id"), min_gap=GAP)


def test_bad_inputs_raise(records_table):
    records = _chain(records_table)
    with pytest.raises(InputDataError, match="rule"):
        independent_events(records, min_gap=GAP, rule="lastRecord")
    with pytest.raises(InputDataError, match="non-negative"):
        independent_events(records, min_gap=-GAP)
    aware = records.assign(timestamp=records["timestamp"].dt.tz_localize("UTC"))
    with pytest.raises(InputDataError, match="timezone-aware"):
        independent_events(aware, min_gap=GAP)
    as_text = records.assign(timestamp=records["timestamp"].astype(str))
    with pytest.raises(InputDataError, match="not datetime64"):
        independent_events(as_text, min_gap=GAP)
    with pytest.raises(InputDataError, match="count"):
        independent_events(records.assign(count=0), min_gap=GAP)
