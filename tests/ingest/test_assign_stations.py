"""Deployment assignment by station folder and time (StationLayout, the camtrapR layout)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from ecowatch.errors import ConfigError
from ecowatch.ingest import flags as F
from ecowatch.ingest.assign import DeploymentIndex, StationLayout

from .frames import deployment

NOW = dt.datetime(2026, 6, 1)
MARCH = dt.datetime(2026, 3, 10, 12, 0)
APRIL = dt.datetime(2026, 4, 20, 12, 0)


def at(dep_id: str, station: str, *, camera: str = "", start: str = "2026-03-01T10:00:00",
       end: str = "2026-04-01T10:00:00", serial: str = ""):
    return dataclasses.replace(deployment(dep_id, serial=serial, start=start, end=end), location_name=station,
                               camera_id=camera)  # fmt: skip


def assign(idx: DeploymentIndex, relpath: str, when: dt.datetime | None = MARCH, source: str = "exif_datetimeoriginal",
           serial: str = ""):  # fmt: skip
    return idx.assign(relpath=relpath, serial=serial, timestamp=when, timestamp_source=source)


def test_station_and_time_pick_the_deployment() -> None:
    spring = at("A1", "Oak Ridge")
    later = at("A2", "Oak Ridge", start="2026-04-02T10:00:00", end="2026-05-01T10:00:00")
    idx = DeploymentIndex([spring, later, at("B1", "Pond")], clock_tolerance_h=24, now=NOW,
                          stations=StationLayout())  # fmt: skip
    got = assign(idx, "oak ridge /Vulpes_vulpes/IMG_0001.JPG")  # case and spaces ignored
    assert (got.deployment_id, got.source, got.flags) == ("A1", "station_time", ())
    assert assign(idx, "Oak Ridge/Vulpes_vulpes/IMG_0002.JPG", when=APRIL).deployment_id == "A2"
    assert assign(idx, "Pond/empty/IMG_0003.JPG").deployment_id == "B1"


def test_station_folder_replaces_folder_and_serial_rules() -> None:
    # A folder named like a deployment id and a camera serial of another deployment do not count.
    idx = DeploymentIndex([at("A1", "Oak", serial="SN1"), at("B1", "Pond")], clock_tolerance_h=24, now=NOW,
                          stations=StationLayout())  # fmt: skip
    got = assign(idx, "Pond/A1/IMG_0001.JPG", serial="SN1")
    assert (got.deployment_id, got.source) == ("B1", "station_time")


def test_single_deployment_with_a_bad_clock_is_assigned_and_flagged() -> None:
    idx = DeploymentIndex([at("A1", "Oak")], clock_tolerance_h=24, now=NOW, stations=StationLayout())
    got = assign(idx, "Oak/fox/IMG.JPG", when=dt.datetime(2000, 1, 1))
    assert (got.deployment_id, got.source) == ("A1", "station_only")
    assert [f.flag for f in got.flags] == [F.CLOCK_OUTSIDE_DEPLOYMENT] and "looks reset" in got.flags[0].message
    mtime = assign(idx, "Oak/fox/IMG.JPG", when=dt.datetime(2026, 11, 1), source="file_mtime")
    assert (mtime.deployment_id, mtime.source, mtime.flags) == ("A1", "station_only", ())


def test_no_deployment_reasons() -> None:
    spring = at("A1", "Oak")
    later = at("A2", "Oak", start="2026-04-02T10:00:00", end="2026-05-01T10:00:00")
    idx = DeploymentIndex([spring, later], clock_tolerance_h=1, now=NOW, stations=StationLayout())
    cases = {
        ("Elm/fox/IMG.JPG", MARCH, "exif_datetimeoriginal"): "station 'Elm' is not in the deployments table",
        ("IMG.JPG", MARCH, "exif_datetimeoriginal"): "not inside a station folder",
        ("Oak/fox/IMG.JPG", dt.datetime(2026, 7, 1), "exif_datetimeoriginal"): "has 2 deployments ('A1', 'A2'), none",
        ("Oak/fox/IMG.JPG", MARCH, "file_mtime"): "no EXIF time to choose one",
    }
    for (relpath, when, source), reason in cases.items():
        got = assign(idx, relpath, when=when, source=source)
        assert (got.deployment_id, got.source) == (None, "")
        assert [f.flag for f in got.flags] == [F.NO_DEPLOYMENT] and reason in got.flags[0].message


def test_camera_folder_picks_among_cameras_of_a_station() -> None:
    left, right = at("A-left", "Oak", camera="CamL"), at("A-right", "Oak", camera="CamR")
    idx = DeploymentIndex([left, right], clock_tolerance_h=24, now=NOW,
                          stations=StationLayout(camera_level=True))  # fmt: skip
    assert assign(idx, "Oak/camr/fox/IMG.JPG").deployment_id == "A-right"
    assert assign(idx, "Oak/CamL/fox/IMG.JPG").deployment_id == "A-left"
    unknown = assign(idx, "Oak/CamX/fox/IMG.JPG")
    assert unknown.deployment_id is None and "camera 'CamX' at station 'Oak'" in unknown.flags[0].message
    # Deployments without camera ids: the camera folder does not narrow the choice.
    plain = DeploymentIndex([at("A1", "Oak")], clock_tolerance_h=24, now=NOW, stations=StationLayout(camera_level=True))
    assert assign(plain, "Oak/Cam1/fox/IMG.JPG").deployment_id == "A1"


def test_station_column_choice() -> None:
    dep = at("dep-7", "Oak")
    by_id = DeploymentIndex([dep], clock_tolerance_h=24, now=NOW, stations=StationLayout(column="deployment_id"))
    assert assign(by_id, "dep-7/fox/IMG.JPG").deployment_id == "dep-7"
    by_location = DeploymentIndex([dep], clock_tolerance_h=24, now=NOW, stations=StationLayout(column="location_id"))
    assert assign(by_location, "loc-dep-7/fox/IMG.JPG").deployment_id == "dep-7"
    with pytest.raises(ConfigError, match="camera_serial.*location_name"):
        StationLayout(column="camera_serial")
