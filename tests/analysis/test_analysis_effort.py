"""Effort: windows minus outages, partial days, the camera operation matrix, outage detection."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ecowatch.analysis import active_periods, camera_operation, deployments_frame, detect_outages, effort_days
from ecowatch.errors import InputDataError
from ecowatch.tables import read_deployments


def test_partial_days_are_fractions(deployments_table):
    deps = deployments_table([("d1", "L1", "2024-05-01 18:00", "2024-05-02 06:00")])
    effort = effort_days(deps)
    assert effort.loc[0, "effort_days"] == pytest.approx(0.5)
    assert effort.loc[0, "window_days"] == pytest.approx(0.5)
    operation = camera_operation(deps)
    assert list(operation.columns.strftime("%Y-%m-%d")) == ["2024-05-01", "2024-05-02"]
    assert operation.loc["d1"].tolist() == pytest.approx([0.25, 0.25])


def test_outages_overlapping_window_edges_are_clipped_and_merged(deployments_table, outages_table):
    deps = deployments_table([("d1", "L1", "2024-05-01 12:00", "2024-05-05 12:00")])  # 4 days
    outages = outages_table(
        [
            ("d1", "2024-04-30 00:00", "2024-05-02 00:00"),  # starts before the window: 12 h inside
            ("d1", "2024-05-03 00:00", "2024-05-03 12:00"),  # 12 h ...
            ("d1", "2024-05-03 06:00", "2024-05-03 18:00"),  # ... overlapping: union 18 h
            ("d1", "2024-05-05 06:00", "2024-05-09 00:00"),  # ends after the window: 6 h inside
        ]
    )
    effort = effort_days(deps, outages).iloc[0]
    assert effort["outage_days"] == pytest.approx((12 + 18 + 6) / 24)
    assert effort["effort_days"] == pytest.approx(4 - 36 / 24)
    periods = active_periods(deps, outages)
    assert periods["start"].dt.strftime("%d %H:%M").tolist() == ["02 00:00", "03 18:00"]
    assert periods["end"].dt.strftime("%d %H:%M").tolist() == ["03 00:00", "05 06:00"]
    operation = camera_operation(deps, outages).loc["d1"]
    assert operation.tolist() == pytest.approx([0.0, 1.0, 0.25, 1.0, 0.25])
    assert operation.sum() == pytest.approx(effort["effort_days"])


def test_zero_effort_is_zero_not_missing(deployments_table, outages_table):
    deps = deployments_table([("d1", "L1", "2024-05-01 12:00", "2024-05-03 12:00")])
    outages = outages_table([("d1", "2024-05-01 00:00", "2024-05-04 00:00")])
    assert effort_days(deps, outages).loc[0, "effort_days"] == 0.0
    assert camera_operation(deps, outages).loc["d1"].tolist() == [0.0, 0.0, 0.0]  # set up, not working
    assert active_periods(deps, outages).empty


def test_zero_length_deployment_has_no_day_set_up(deployments_table):
    deps = deployments_table(
        [("d1", "L1", "2024-05-01 12:00", "2024-05-01 12:00"), ("d2", "L1", "2024-05-01 00:00", "2024-05-02 00:00")]
    )
    assert effort_days(deps)["effort_days"].tolist() == [0.0, 1.0]
    operation = camera_operation(deps)
    assert np.isnan(operation.loc["d1"]).all()
    assert operation.loc["d2"].iloc[0] == 1.0
    assert np.isnan(operation.loc["d2"].iloc[1])  # ends at midnight: the next day is not set up


def test_operation_by_location_sums_cameras_and_keeps_nan_where_none(deployments_table):
    deps = deployments_table(
        [
            ("d1", "L1", "2024-05-01 00:00", "2024-05-03 00:00"),
            ("d2", "L1", "2024-05-02 12:00", "2024-05-03 00:00"),
            ("d3", "L2", "2024-05-04 00:00", "2024-05-04 06:00"),
        ]
    )
    operation = camera_operation(deps, by="location")
    assert list(operation.index) == ["L1", "L2"]
    assert operation.loc["L1"].tolist()[:2] == [1.0, 1.5]
    assert np.isnan(operation.loc["L1"].iloc[3])
    assert operation.loc["L2"].iloc[3] == pytest.approx(0.25)
    assert np.isnan(operation.loc["L2"].iloc[:3]).all()


def test_effort_table_errors(deployments_table, outages_table):
    deps = deployments_table([("d1", "L1", "2024-05-01 00:00", "2024-05-02 00:00")])
    with pytest.raises(InputDataError, match="'end'"):
        effort_days(deps.drop(columns="end"))
    with pytest.raises(InputDataError, match="not in the deployments"):
        effort_days(deps, outages_table([("dX", "2024-05-01 00:00", "2024-05-01 06:00")]))
    with pytest.raises(InputDataError, match="before it starts"):
        effort_days(deps, outages_table([("d1", "2024-05-01 06:00", "2024-05-01 00:00")]))
    backwards = deps.assign(end=deps["start"] - pd.Timedelta(hours=1))
    with pytest.raises(InputDataError, match="before it starts"):
        effort_days(backwards)
    with pytest.raises(InputDataError, match="appears twice"):
        effort_days(pd.concat([deps, deps]))


def test_detect_outages_finds_gaps_edges_and_clock_issues(deployments_table):
    deps = deployments_table([("d1", "L1", "2024-05-01 00:00", "2024-05-10 00:00")])
    times = pd.DataFrame(
        {
            "deployment_id": "d1",
            "timestamp": pd.to_datetime(
                [
                    "2024-04-20 10:00",  # before the start: clock problem
                    "2024-05-01 12:00",
                    "2024-05-03 12:00",  # exactly max_gap after the previous: still working
                    "2024-05-07 00:00",  # 3.5 days later: outage
                    "2024-05-07 01:00",
                    "2030-01-01 00:00",  # after the end: clock problem
                ]
            ),
        }
    )
    found = detect_outages(times, deps, max_gap=dt.timedelta(days=2))
    fmt = "%Y-%m-%d %H:%M"
    spans = list(zip(found.outages["start"].dt.strftime(fmt), found.outages["end"].dt.strftime(fmt), strict=True))
    assert spans == [
        ("2024-05-03 12:00", "2024-05-07 00:00"),
        ("2024-05-07 01:00", "2024-05-10 00:00"),  # last image to the end of the window
    ]
    assert found.clock_issues["issue"].tolist() == ["before_start", "after_end"]
    # the detected outages feed effort directly
    effort = effort_days(deps, found.outages).loc[0, "effort_days"]
    assert effort == pytest.approx(9 - 3.5 - (3 - 1 / 24))


def test_detect_outages_errors(deployments_table):
    deps = deployments_table([("d1", "L1", "2024-05-01 00:00", "2024-05-10 00:00")])
    times = pd.DataFrame({"deployment_id": ["d9"], "timestamp": pd.to_datetime(["2024-05-02"])})
    with pytest.raises(InputDataError, match="d9"):
        detect_outages(times, deps, max_gap=dt.timedelta(days=1))
    with pytest.raises(InputDataError, match="positive"):
        detect_outages(times.assign(deployment_id="d1"), deps, max_gap=dt.timedelta(0))
    with pytest.raises(InputDataError, match="timestamp"):
        detect_outages(times.drop(columns="timestamp"), deps, max_gap=dt.timedelta(days=1))


def test_deployments_from_the_tables_module_feed_the_analyses(tmp_path):
    csv_path = tmp_path / "deployments.csv"
    csv_path.write_text(
        "deployment_id,location_id,location_name,latitude,longitude,deployment_start,deployment_end\n"
        "d1,L1,Pond,51.0,4.0,2024-05-01T18:00:00+02:00,2024-05-02T06:00:00+02:00\n"
    )
    deps = deployments_frame(read_deployments(csv_path))
    assert deps.loc[0, "start"] == pd.Timestamp("2024-05-01 18:00") and deps.loc[0, "utc_offset_min"] == 120
    assert effort_days(deps).loc[0, "effort_days"] == pytest.approx(0.5)
