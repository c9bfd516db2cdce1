"""RAI, naive occupancy and detection histories on hand-made tables."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from ecowatch.analysis import detection_history, effort_days, independent_events, naive_occupancy, relative_abundance
from ecowatch.errors import InputDataError

GAP = dt.timedelta(minutes=30)


@pytest.fixture
def survey(deployments_table, records_table):
    deps = deployments_table(
        [
            ("d1", "L1", "2024-05-01 12:00", "2024-05-03 00:00"),  # 1.5 days
            ("d2", "L1", "2024-05-01 00:00", "2024-05-02 00:00"),  # 1 day, same location
            ("d3", "L2", "2024-05-01 00:00", "2024-05-01 00:00"),  # zero effort
        ]
    )
    records = records_table(
        [
            ("d1", "2024-05-01 13:00", "fox", 1),
            ("d1", "2024-05-01 20:00", "fox", 1),
            ("d1", "2024-05-02 03:00", "fox", 1),
            ("d1", "2024-05-02 04:00", "badger", 1),  # badger only at d1
            ("d2", "2024-05-01 10:00", "fox", 1),
        ]
    )
    return deps, independent_events(records, min_gap=GAP)


def test_rai_per_deployment(survey):
    deps, events = survey
    rai = relative_abundance(events, effort_days(deps)).set_index(["deployment_id", "taxon_id"])
    assert rai.loc[("d1", "fox"), "rai"] == pytest.approx(3 / 1.5 * 100)
    assert rai.loc[("d1", "badger"), "rai"] == pytest.approx(1 / 1.5 * 100)
    assert rai.loc[("d2", "fox"), "rai"] == pytest.approx(100.0)
    assert rai.loc[("d2", "badger"), "n_events"] == 0  # a species in one deployment only: zero elsewhere
    assert rai.loc[("d2", "badger"), "rai"] == 0.0
    assert np.isnan(rai.loc[("d3", "fox"), "rai"])  # zero effort: undefined, not infinite
    assert len(rai) == 6


def test_rai_by_location_and_overall(survey):
    deps, events = survey
    effort = effort_days(deps)
    by_location = relative_abundance(events, effort, by="location").set_index(["location_id", "taxon_id"])
    assert by_location.loc[("L1", "fox"), "rai"] == pytest.approx(4 / 2.5 * 100)
    assert by_location.loc[("L1", "fox"), "effort_days"] == pytest.approx(2.5)
    overall = relative_abundance(events, effort, by="overall").set_index("taxon_id")
    assert overall.loc["fox", "rai"] == pytest.approx(4 / 2.5 * 100)
    assert overall.loc["badger", "n_events"] == 1


def test_rai_errors(survey):
    deps, events = survey
    effort = effort_days(deps)
    with pytest.raises(InputDataError, match="not in the deployments"):
        relative_abundance(events, effort[effort["deployment_id"] != "d1"])
    with pytest.raises(InputDataError, match="effort_days"):
        relative_abundance(events, effort.drop(columns="effort_days"))
    with pytest.raises(InputDataError, match="by"):
        relative_abundance(events, effort, by="site")


def test_naive_occupancy(survey):
    deps, events = survey
    by_location = naive_occupancy(events, deps).set_index("taxon_id")
    assert by_location.loc["fox", "naive_occupancy"] == pytest.approx(1 / 2)  # L1 of L1, L2
    by_deployment = naive_occupancy(events, deps, by="deployment").set_index("taxon_id")
    assert by_deployment.loc["fox", "n_sites_detected"] == 2
    assert by_deployment.loc["fox", "naive_occupancy"] == pytest.approx(2 / 3)
    assert by_deployment.loc["badger", "naive_occupancy"] == pytest.approx(1 / 3)


def test_detection_history_occasions_effort_and_na(deployments_table, records_table, outages_table):
    deps = deployments_table(
        [
            ("d1", "L1", "2024-05-01 12:00", "2024-05-08 12:00"),  # days 1..8, half days at both ends
            ("d2", "L2", "2024-05-03 00:00", "2024-05-09 00:00"),  # days 3..8
        ]
    )
    outages = outages_table([("d2", "2024-05-06 00:00", "2024-05-09 00:00")])  # d2 dead from day 6
    records = records_table([("d1", "2024-05-05 10:00", "fox", 1), ("d2", "2024-05-03 08:00", "fox", 1)])
    events = independent_events(records, min_gap=GAP)

    history = detection_history(events, deps, outages, taxon_id="fox", occasion_length_days=3, min_active_days=1.0)
    # L1: occasions from May 1: [1-3] 2.5 days, [4-6] 3 days (fox on the 5th), [7-8] 1.5 days
    assert history.effort.loc["L1"].tolist() == pytest.approx([2.5, 3.0, 1.5])
    assert history.detections.loc["L1"].tolist() == [0.0, 1.0, 0.0]
    # L2: from May 3: [3-5] 3 days with fox, [6-8] set up but dead -> NA in both matrices
    assert history.detections.loc["L2"].iloc[0] == 1.0
    assert history.effort.loc["L2"].iloc[0] == pytest.approx(3.0)
    assert np.isnan(history.detections.loc["L2"].iloc[1]) and np.isnan(history.effort.loc["L2"].iloc[1])
    assert history.occasion_start.loc["L2"].iloc[0].strftime("%m-%d") == "05-03"

    strict = detection_history(events, deps, outages, taxon_id="fox", occasion_length_days=3, min_active_days=2.0)
    assert np.isnan(strict.detections.loc["L1"].iloc[2])  # 1.5 active days < 2


def test_detection_history_survey_day1_aligns_all_locations(deployments_table, records_table):
    deps = deployments_table(
        [("d1", "L1", "2024-05-01 00:00", "2024-05-05 00:00"), ("d2", "L2", "2024-05-03 00:00", "2024-05-05 00:00")]
    )
    events = independent_events(records_table([("d2", "2024-05-04 08:00", "fox", 1)]), min_gap=GAP)
    history = detection_history(events, deps, taxon_id="fox", occasion_length_days=2, day1="survey")
    assert list(history.detections.columns) == ["o1", "o2"]  # May 1-2, May 3-4 (the 5th starts at the end)
    assert np.isnan(history.detections.loc["L2", "o1"])  # not yet set up
    assert history.detections.loc["L2", "o2"] == 1.0
    assert history.detections.loc["L1"].tolist() == [0.0, 0.0]
    assert history.occasion_start.loc["L1", "o2"] == history.occasion_start.loc["L2", "o2"]


def test_detection_history_errors(survey):
    deps, events = survey
    with pytest.raises(InputDataError, match="occasion_length_days"):
        detection_history(events, deps, taxon_id="fox", occasion_length_days=0)
    with pytest.raises(InputDataError, match="day1"):
        detection_history(events, deps, taxon_id="fox", occasion_length_days=1, day1="first")
