"""Deployment assignment rules and clock flags."""

from __future__ import annotations

import datetime as dt

from ecowatch.ingest import flags as F
from ecowatch.ingest.assign import DeploymentIndex

from .frames import deployment

NOW = dt.datetime(2026, 6, 1)
IN_A = dt.datetime(2026, 3, 10, 12, 0)


def index(*deployments, tolerance_h: float = 24.0) -> DeploymentIndex:
    return DeploymentIndex(deployments, clock_tolerance_h=tolerance_h, now=NOW)


def assign(idx: DeploymentIndex, relpath: str = "DCIM/100MEDIA/IMG_0001.JPG", serial: str = "",
           when: dt.datetime | None = IN_A, source: str = "exif_datetimeoriginal"):
    return idx.assign(relpath=relpath, serial=serial, timestamp=when, timestamp_source=source)


def test_folder_wins_and_the_deepest_folder_counts() -> None:
    idx = index(deployment("A", serial="S1"), deployment("B", serial="S2"))
    got = assign(idx, "A/B/DCIM/IMG_0001.JPG", serial="S1")
    assert (got.deployment_id, got.source, got.flags) == ("B", "folder", ())
    assert assign(idx, "B.JPG/x.jpg").deployment_id is None  # a file name is not a folder; 'B.JPG' != 'B'


def test_folder_with_clock_outside_window() -> None:
    got = assign(index(deployment("A")), "A/IMG_0001.JPG", when=dt.datetime(2026, 5, 1))
    assert (got.deployment_id, got.source) == ("A", "folder")
    assert [f.flag for f in got.flags] == [F.CLOCK_OUTSIDE_DEPLOYMENT]
    assert "after the end" in got.flags[0].message and "reset" not in got.flags[0].message


def test_serial_and_time_pick_the_deployment_of_a_moved_camera() -> None:
    first = deployment("A", serial="SN1", start="2026-03-01T10:00:00", end="2026-04-01T10:00:00")
    second = deployment("B", serial="sn1 ", start="2026-04-01T12:00:00", end="2026-05-01T10:00:00")
    idx = index(first, second)
    assert assign(idx, serial="SN1", when=IN_A).deployment_id == "A"
    late = assign(idx, serial="SN1", when=dt.datetime(2026, 4, 20))
    assert (late.deployment_id, late.source, late.flags) == ("B", "serial_time", ())
    # Both windows within tolerance: the one that contains the time without tolerance wins.
    assert assign(idx, serial="SN1", when=dt.datetime(2026, 4, 1, 11, 0)).deployment_id == "A"
    assert assign(idx, serial="SN1", when=dt.datetime(2026, 4, 1, 13, 0)).deployment_id == "B"


def test_tolerance_is_honoured() -> None:
    dep = deployment("A", serial="SN1")
    just_after = dt.datetime(2026, 4, 1, 20, 0)  # 10 h after the end
    assert assign(index(dep, tolerance_h=24), serial="SN1", when=just_after).source == "serial_time"
    strict = assign(index(dep, tolerance_h=1), serial="SN1", when=just_after)
    assert strict.source == "serial_only" and strict.flags[0].flag == F.CLOCK_OUTSIDE_DEPLOYMENT


def test_serial_only_with_a_reset_clock() -> None:
    got = assign(index(deployment("A", serial="SN1")), serial="SN1", when=dt.datetime(2000, 1, 1, 0, 3))
    assert (got.deployment_id, got.source) == ("A", "serial_only")
    (flag,) = got.flags
    assert flag.flag == F.CLOCK_OUTSIDE_DEPLOYMENT
    assert "looks reset (year 2000)" in flag.message and "2000-01-01 00:03:00" in flag.message


def test_future_clock_is_named() -> None:
    got = assign(index(deployment("A", serial="SN1")), serial="SN1", when=dt.datetime(2031, 1, 1))
    assert "in the future" in got.flags[0].message


def test_no_deployment_reasons() -> None:
    a1 = deployment("A", serial="SN1", start="2026-03-01T00:00:00", end="2026-03-05T00:00:00")
    a2 = deployment("B", serial="SN1", start="2026-03-20T00:00:00", end="2026-03-25T00:00:00")
    idx = index(a1, a2)
    cases = {
        "": "no camera serial",
        "SN9": "'SN9' is not in the deployments table",
        "SN1": "has 2 deployments ('A', 'B'), none of whose windows",
    }
    for serial, reason in cases.items():
        got = assign(idx, serial=serial, when=IN_A)
        assert (got.deployment_id, got.source) == (None, "")
        assert [f.flag for f in got.flags] == [F.NO_DEPLOYMENT] and reason in got.flags[0].message


def test_mtime_is_not_clock_checked() -> None:
    idx = index(deployment("A", serial="SN1"))
    folder = assign(idx, "A/IMG.JPG", when=dt.datetime(2026, 11, 23), source="file_mtime")
    assert (folder.deployment_id, folder.flags) == ("A", ())
    serial = assign(idx, serial="SN1", when=dt.datetime(2026, 11, 23), source="file_mtime")
    assert (serial.deployment_id, serial.source, serial.flags) == ("A", "serial_only", ())
