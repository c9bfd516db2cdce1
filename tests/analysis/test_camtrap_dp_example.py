"""The official Camtrap DP example: library results against a plain hand computation.

The hand computation reads the CSV files with the ``csv`` module and uses only ``datetime``
and loops; it shares no code with ecowatch.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from pathlib import Path

import pytest

from ecowatch.analysis import effort_days, independent_events, relative_abundance
from ecowatch.formats.camtrap_dp_read import read_camtrap_dp, records_from_camtrap_dp

EXAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "camtrap_dp_example"

pytestmark = pytest.mark.skipif(
    not (EXAMPLE / "datapackage.json").exists(),
    reason=f"official Camtrap DP example not found at {EXAMPLE} (shared test data absent)",
)


def _rows(name: str) -> list[dict[str, str]]:
    with open(EXAMPLE / name, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _hand(gap: dt.timedelta, rule: str) -> tuple[dict[tuple[str, str], int], dict[str, float]]:
    """Events per (deployment, taxon slug) and effort days per deployment, by hand."""
    offsets, effort = {}, {}
    for dep in _rows("deployments.csv"):
        start = dt.datetime.fromisoformat(dep["deploymentStart"])
        end = dt.datetime.fromisoformat(dep["deploymentEnd"])
        offsets[dep["deploymentID"]] = start.utcoffset()
        effort[dep["deploymentID"]] = (end - start).total_seconds() / 86400  # no outages in the package
    times = defaultdict(list)
    for obs in _rows("observations.csv"):
        if obs["observationLevel"] != "event" or obs["observationType"] != "animal":
            continue
        if not obs["scientificName"] or obs["cameraSetupType"]:
            continue
        instant = dt.datetime.fromisoformat(obs["eventStart"].replace("Z", "+00:00"))
        local = instant.astimezone(dt.timezone(offsets[obs["deploymentID"]])).replace(tzinfo=None)
        times[(obs["deploymentID"], obs["scientificName"].lower().replace(" ", "_"))].append(local)
    events = {}
    for key, stamps in times.items():
        stamps.sort()
        n, reference = 1, stamps[0]
        for previous, current in zip(stamps, stamps[1:]):
            if rule == "last_record":
                reference = previous
            if current - reference >= gap:
                n += 1
                reference = current
        events[key] = n
    return events, effort


def _library(gap: dt.timedelta, rule: str):
    pkg = read_camtrap_dp(EXAMPLE)
    events = independent_events(records_from_camtrap_dp(pkg), min_gap=gap, rule=rule)
    effort = effort_days(pkg.deployments)
    return pkg, events, effort, relative_abundance(events, effort)


def test_package_reads_completely():
    pkg = read_camtrap_dp(EXAMPLE / "datapackage.json")
    assert (len(pkg.deployments), len(pkg.media), len(pkg.observations)) == (4, 423, 549)
    assert pkg.profile_version == "1.0.2"
    assert pkg.observations["event_start"].notna().all()
    assert set(pkg.deployments["utc_offset_min"]) == {60, 120}
    assert "vulpes_vulpes" in set(pkg.taxa["taxon_id"])


@pytest.mark.parametrize(
    ("gap", "rule"),
    [
        (dt.timedelta(minutes=30), "last_record"),
        (dt.timedelta(minutes=30), "last_independent"),
        (dt.timedelta(hours=36), "last_record"),
        (dt.timedelta(hours=36), "last_independent"),
    ],
)
def test_events_effort_and_rai_agree_with_hand_computation(gap, rule):
    hand_events, hand_effort = _hand(gap, rule)
    _, events, effort, rai = _library(gap, rule)
    assert events.groupby(["deployment_id", "taxon_id"]).size().to_dict() == hand_events
    assert dict(zip(effort["deployment_id"], effort["effort_days"], strict=True)) == pytest.approx(hand_effort)
    seen = rai[rai["n_events"] > 0]
    library_rai = {(d, t): r for d, t, r in zip(seen["deployment_id"], seen["taxon_id"], seen["rai"], strict=True)}
    hand_rai = {(d, t): n / hand_effort[d] * 100 for (d, t), n in hand_events.items()}
    assert library_rai == pytest.approx(hand_rai)


def test_the_two_rules_differ_on_this_package():
    gap = dt.timedelta(hours=36)
    by_record, _ = _hand(gap, "last_record")
    by_independent, _ = _hand(gap, "last_independent")
    # mallards at 29b7d356 visit almost daily: chained by last_record, split by last_independent
    assert by_record[("29b7d356", "anas_platyrhynchos")] == 2
    assert by_independent[("29b7d356", "anas_platyrhynchos")] == 4


def test_per_deployment_figures_30_min():
    _, events, effort, rai = _library(dt.timedelta(minutes=30), "last_record")
    per_deployment = events.groupby("deployment_id").size().to_dict()
    assert per_deployment == {"00a2c20d": 9, "29b7d356": 9, "577b543a": 5, "62c200a9": 3}
    assert effort.set_index("deployment_id")["effort_days"].round(4).to_dict() == {
        "00a2c20d": 32.2806,
        "29b7d356": 9.9521,
        "577b543a": 9.1065,
        "62c200a9": 22.0324,
    }
    fox = rai[(rai["deployment_id"] == "577b543a") & (rai["taxon_id"] == "vulpes_vulpes")].iloc[0]
    assert fox["n_events"] == 1 and fox["rai"] == pytest.approx(100 / 9.106505, rel=1e-6)


def test_media_level_records_give_the_same_events_here():
    pkg, events, _, _ = _library(dt.timedelta(minutes=30), "last_record")
    media_events = independent_events(records_from_camtrap_dp(pkg, level="media"), min_gap=dt.timedelta(minutes=30))
    by_event_level = events.groupby(["deployment_id", "taxon_id"]).size()
    assert media_events.groupby(["deployment_id", "taxon_id"]).size().equals(by_event_level)
