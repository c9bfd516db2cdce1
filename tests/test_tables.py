"""Deployments and taxonomy tables: valid files load, bad ones name the row and the fix."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ecowatch.errors import InputDataError
from ecowatch.tables import read_deployments, read_taxonomy
from tests.conftest import SHARED_DATA

HEADER = "deployment_id,location_id,location_name,latitude,longitude,deployment_start,deployment_end,camera_serial\n"


def write(tmp_path: Path, text: str, name: str = "deployments.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_offsets_as_local_time(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "D1,L1,Ridge,51.5,4.2,2026-03-01T10:00:00+01:00,2026-04-01T09:00:00+01:00,SN1\n")
    (dep,) = read_deployments(path)
    assert dep.start == dt.datetime(2026, 3, 1, 10, 0)
    assert dep.utc_offset_min == 60
    assert dep.contains(dt.datetime(2026, 3, 15, 12))
    assert not dep.contains(dt.datetime(2000, 1, 1))
    assert dep.camera_serial == "SN1"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("D1,L1,x,95,4.2,2026-03-01T10:00:00+01:00,2026-04-01T09:00:00+01:00,S", "latitude"),
        ("D1,L1,x,51,4.2,2026-03-01 10:00,2026-04-01T09:00:00+01:00,S", "no UTC offset"),
        ("D1,L1,x,51,4.2,yesterday,2026-04-01T09:00:00+01:00,S", "not an ISO 8601"),
        ("D1,L1,x,51,4.2,2026-05-01T10:00:00+01:00,2026-04-01T09:00:00+01:00,S", "before deployment_start"),
        ("D1,L1,x,abc,4.2,2026-03-01T10:00:00+01:00,2026-04-01T09:00:00+01:00,S", "not a number"),
    ],
)
def test_bad_rows_name_the_problem(tmp_path: Path, row: str, message: str) -> None:
    with pytest.raises(InputDataError, match=message) as info:
        read_deployments(write(tmp_path, HEADER + row + "\n"))
    assert "row 2" in str(info.value)


def test_duplicate_and_missing_columns(tmp_path: Path) -> None:
    row = "D1,L1,x,51,4,2026-03-01T10:00:00+01:00,2026-04-01T09:00:00+01:00,S\n"
    with pytest.raises(InputDataError, match="appears twice"):
        read_deployments(write(tmp_path, HEADER + row + row))
    with pytest.raises(InputDataError, match="missing column"):
        read_deployments(write(tmp_path, "deployment_id,latitude\nD1,5\n"))
    with pytest.raises(InputDataError, match="file not found"):
        read_deployments(tmp_path / "nope.csv")


@pytest.mark.skipif(not (SHARED_DATA / "real/camtrap_dp_example").is_dir(), reason="shared Camtrap DP example absent")
def test_reads_camtrap_dp_deployments() -> None:
    deployments = read_deployments(SHARED_DATA / "real/camtrap_dp_example/deployments.csv")
    assert len(deployments) == 4
    by_id = {d.deployment_id: d for d in deployments}
    assert by_id["00a2c20d"].start == dt.datetime(2020, 5, 30, 4, 57, 37)  # local clock time kept
    assert by_id["00a2c20d"].utc_offset_min == 120  # Belgian summer time
    assert by_id["62c200a9"].utc_offset_min == 60  # winter time
    assert all(d.end > d.start for d in deployments)


def test_taxonomy_parents_must_resolve(tmp_path: Path) -> None:
    head = "taxon_id,scientific_name,rank,parent_id,common_name\n"
    good = head + "animalia,Animalia,kingdom,,animals\nvulpes,Vulpes,genus,animalia,foxes\n"
    taxa = read_taxonomy(write(tmp_path, good, "tax.csv"))
    assert taxa["vulpes"].parent_id == "animalia"
    with pytest.raises(InputDataError, match="not in the table"):
        read_taxonomy(write(tmp_path, head + "vulpes,Vulpes,genus,canidae,foxes\n", "tax.csv"))
    with pytest.raises(InputDataError, match="rank 'tribe'"):
        read_taxonomy(write(tmp_path, head + "x,X,tribe,,x\n", "tax.csv"))
