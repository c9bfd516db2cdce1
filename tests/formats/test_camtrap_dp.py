"""Camtrap DP 1.0.2 export, offline validation and import (ecowatch.formats.camtrap_dp_*)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest

from ecowatch.errors import ConfigError, InputDataError
from ecowatch.formats.camtrap_dp_import import import_camtrap_dp
from ecowatch.formats.camtrap_dp_validate import SCHEMAS_ENV, validate_camtrap_dp
from ecowatch.formats.camtrap_dp_write import TABLE_COLUMNS, Contributor, License, ProjectInfo, export_camtrap_dp
from ecowatch.store import open_store
from ecowatch.store import schema as S
from ecowatch.tables import Taxon
from tests.conftest import SHARED_DATA

SCHEMAS = SHARED_DATA / "camtrap-dp-1.0.2"
EXAMPLE = SHARED_DATA / "real" / "camtrap_dp_example"
needs_schemas = pytest.mark.skipif(not SCHEMAS.is_dir(), reason=f"Camtrap DP schemas not found at {SCHEMAS}")
needs_example = pytest.mark.skipif(not EXAMPLE.is_dir(), reason=f"Camtrap DP example package not found at {EXAMPLE}")

PROJECT = ProjectInfo(
    title="Ecowatch test export",
    description="Hand-made store.",
    contributors=(Contributor("Ada Ecologist", role="contact", email="ada@example.org"),),
    licenses=(License("data", name="CC0-1.0"), License("media", name="CC-BY-4.0")),
    project_id="test-project",
    created=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
)
TAXONOMY = {"vulpes_vulpes": Taxon("vulpes_vulpes", "Vulpes vulpes", "species", "vulpes", "red fox")}


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def hand_store(tmp_path: Path):
    """A store with one deployment (UTC+2), three media (one failed), detections and observations."""
    store = open_store(tmp_path / "store.sqlite")
    run = store.start_run("nightly", {})
    store.finish_run(run, status="finished", counts={})
    t0 = dt.datetime(2026, 5, 1, 22, 0, 0)
    media = [("m1", "cam1/IMG_0001.JPG", "ok", t0), ("m2", "cam1/IMG_0002.JPG", "ok", t0 + dt.timedelta(seconds=2)),
             ("m3", "cam1/IMG_0003.JPG", "failed", None)]  # fmt: skip
    with store.transaction() as conn:
        conn.execute(S.dumps.insert().values(dump_id="card1", root="/data/card1"))
        conn.execute(S.deployments.insert().values(
            deployment_id="dep1", location_id="loc1", location_name="Pond", latitude=51.5, longitude=4.7,
            start=dt.datetime(2026, 4, 30, 12), end=dt.datetime(2026, 5, 10, 12), utc_offset_min=120,
            camera_make="Reconyx", camera_model="HF2X"))  # fmt: skip
        for mid, rel, status, ts in media:
            conn.execute(S.media.insert().values(
                media_id=mid, dump_id="card1", relpath=rel, deployment_id="dep1", sha256=mid * 10, size_bytes=10,
                media_type="image", status=status, timestamp=ts, timestamp_source="exif_datetimeoriginal",
                sequence_id="seq1" if ts else None, ingest_run_id=run))  # fmt: skip
        conn.execute(S.media_flags.insert().values(media_id="m3", flag="truncated", message="truncated JPEG"))
        conn.execute(S.detections.insert().values(
            detection_id="d1", media_id="m1", category="animal", conf=0.93, x=0.1, y=0.2, w=0.3, h=0.4,
            detector_name="MDv5a", detector_version="5.0", run_id=run))  # fmt: skip
        conn.execute(S.classifications.insert().values(
            detection_id="d1", model_name="wefox", model_version="1.2", rank=1, taxon_id="vulpes_vulpes",
            score=0.88, temperature=1.0, unknown_score=0.05, run_id=run))  # fmt: skip
        obs = [
            dict(observation_id="d1", level="media", media_id="m1", observation_type="animal",
                 taxon_id="vulpes_vulpes", taxon_rank="species", probability=0.88, count=1, source="classifier+prior"),
            dict(observation_id="o2", level="media", media_id="m2", observation_type="blank", source="detector"),
            dict(observation_id="o3", level="event", deployment_id="dep1", sequence_id="seq1",
                 observation_type="animal", taxon_id="vulpes_vulpes", probability=0.9, count=1, source="classifier"),
            dict(observation_id="o4", level="media", media_id="m2", observation_type="animal",
                 taxon_id="vulpes_vulpes", count=2, source="human"),
            dict(observation_id="o5", level="media", media_id="m3", observation_type="blank", source="detector"),
        ]  # fmt: skip
        for row in obs:
            conn.execute(S.observations.insert().values(run_id=run, **row))
    return store


def test_columns_match_official_schemas() -> None:
    if not SCHEMAS.is_dir():
        pytest.skip(f"Camtrap DP schemas not found at {SCHEMAS}")
    for name, columns in TABLE_COLUMNS.items():
        schema = json.loads((SCHEMAS / f"{name}-table-schema.json").read_text())
        assert tuple(f["name"] for f in schema["fields"]) == columns


@needs_schemas
def test_export_hand_store_validates(hand_store, tmp_path: Path, caplog) -> None:
    out = export_camtrap_dp(hand_store, tmp_path / "pkg", dump_id="card1", project=PROJECT, taxonomy=TAXONOMY)
    report = validate_camtrap_dp(out, schema_dir=SCHEMAS)
    assert report.valid, report.summary()

    media = _read(out / "media.csv")
    assert [m["mediaID"] for m in media] == ["m1", "m2"]  # the failed m3 is left out ...
    assert "m3" in caplog.text  # ... and named in the log
    assert media[0]["timestamp"] == "2026-05-01T22:00:00+02:00"
    assert media[0]["filePath"] == "cam1/IMG_0001.JPG" and media[0]["filePublic"] == "false"
    assert media[0]["fileMediatype"] == "image/jpeg" and media[0]["captureMethod"] == "activityDetection"

    obs = {o["observationID"]: o for o in _read(out / "observations.csv")}
    assert set(obs) == {"d1", "o2", "o3", "o4"}  # o5 belongs to the failed media file
    fox = obs["d1"]
    assert (fox["scientificName"], fox["classificationMethod"], fox["classifiedBy"]) == ("Vulpes vulpes", "machine", "wefox 1.2")
    assert [float(fox[k]) for k in ("bboxX", "bboxY", "bboxWidth", "bboxHeight")] == [0.1, 0.2, 0.3, 0.4]
    assert fox["classificationProbability"] == "0.88" and fox["eventID"] == "seq1"
    assert fox["classificationTimestamp"].endswith("Z")
    event = obs["o3"]
    assert (event["observationLevel"], event["mediaID"]) == ("event", "")
    assert (event["eventStart"], event["eventEnd"]) == ("2026-05-01T22:00:00+02:00", "2026-05-01T22:00:02+02:00")
    human = obs["o4"]
    assert (human["classificationMethod"], human["count"], human["bboxX"]) == ("human", "2", "")
    assert obs["o2"]["observationType"] == "blank" and obs["o2"]["scientificName"] == ""

    deployments = _read(out / "deployments.csv")
    assert deployments[0]["deploymentStart"] == "2026-04-30T12:00:00+02:00"
    assert deployments[0]["cameraModel"] == "Reconyx-HF2X"
    descriptor = json.loads((out / "datapackage.json").read_text())
    assert descriptor["taxonomic"] == [{"scientificName": "Vulpes vulpes", "taxonRank": "species",
                                        "vernacularNames": {"eng": "red fox"}}]  # fmt: skip
    assert descriptor["temporal"] == {"start": "2026-04-30", "end": "2026-05-10"}
    assert descriptor["spatial"] == {"type": "Point", "coordinates": [4.7, 51.5]}
    assert descriptor["project"]["observationLevel"] == ["event", "media"]
    assert "1 media file(s) were left out" in descriptor["description"]


@needs_schemas
def test_broken_package_names_file_and_field(hand_store, tmp_path: Path) -> None:
    out = export_camtrap_dp(hand_store, tmp_path / "pkg", project=PROJECT, taxonomy=TAXONOMY)
    obs_path = out / "observations.csv"
    obs_path.write_text(obs_path.read_text().replace(",animal,", ",dinosaur,", 1))
    media_path = out / "media.csv"
    rows = [line.split(",") for line in media_path.read_text().splitlines()]
    drop = rows[0].index("timestamp")
    media_path.write_text("\n".join(",".join(r[:drop] + r[drop + 1 :]) for r in rows) + "\n")
    descriptor = json.loads((out / "datapackage.json").read_text())
    descriptor["project"]["samplingDesign"] = "whimsical"
    (out / "datapackage.json").write_text(json.dumps(descriptor))

    report = validate_camtrap_dp(out, schema_dir=SCHEMAS)
    assert not report.valid
    found = {(e.file, e.field) for e in report.errors}
    assert ("observations.csv", "observationType") in found
    assert ("media.csv", "timestamp") in found
    assert ("datapackage.json", "project/samplingDesign") in found
    enum_error = next(e for e in report.errors if e.field == "observationType")
    assert enum_error.row == 2


def test_missing_schema_folder_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SCHEMAS_ENV, str(tmp_path / "nowhere"))
    (tmp_path / "datapackage.json").write_text("{}")
    with pytest.raises(InputDataError, match=SCHEMAS_ENV):
        validate_camtrap_dp(tmp_path)


def test_project_info_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match="media"):
        ProjectInfo(title="t", description="", contributors=(Contributor("A"),),
                    licenses=(License("data", name="CC0-1.0"),), project_id="p")  # fmt: skip
    with pytest.raises(ConfigError, match="samplingDesign|sampling_design"):
        ProjectInfo(title="t", description="", contributors=(Contributor("A"),), project_id="p",
                    licenses=PROJECT.licenses, sampling_design="random")  # fmt: skip


@needs_schemas
@needs_example
def test_official_example_validates() -> None:
    report = validate_camtrap_dp(EXAMPLE, schema_dir=SCHEMAS)
    assert report.valid, report.summary()


@needs_schemas
@needs_example
def test_example_round_trip(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store.sqlite")
    summary = import_camtrap_dp(store, EXAMPLE, dump_id="example")
    assert (summary.deployments_written, summary.media_inserted, summary.observations_inserted) == (4, 423, 549)
    assert summary.detections_inserted == 20 and summary.media_hashed == 10
    again = import_camtrap_dp(store, EXAMPLE, dump_id="example")
    assert (again.deployments_written, again.media_inserted, again.observations_inserted, again.detections_inserted) == (0, 0, 0, 0)
    assert store.count(S.observations, S.observations.c.source == "human") == 527
    assert store.count(S.observations, S.observations.c.source == "imported_machine") == 22

    out = export_camtrap_dp(store, tmp_path / "pkg", dump_id="example", project=PROJECT, taxonomy=summary.taxa)
    report = validate_camtrap_dp(out, schema_dir=SCHEMAS)
    assert report.valid, report.summary()
    original = {name: _read(EXAMPLE / f"{name}.csv") for name in TABLE_COLUMNS}
    exported = {name: _read(out / f"{name}.csv") for name in TABLE_COLUMNS}
    assert [len(exported[n]) for n in TABLE_COLUMNS] == [4, 423, 549]
    # Same file paths, timestamps (as instants), levels, types, names, counts, methods, boxes.
    assert {m["filePath"] for m in exported["media"]} == {m["filePath"] for m in original["media"]}
    as_instant = lambda s: dt.datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731

    def key(o):
        return (o["observationLevel"], o["observationType"], o["scientificName"], o["count"],
                o["classificationMethod"], as_instant(o["eventStart"]), as_instant(o["eventEnd"]),
                o["bboxX"] and round(float(o["bboxX"]), 5))  # fmt: skip

    assert sorted(map(key, exported["observations"])) == sorted(map(key, original["observations"]))
    habitats = {d["deploymentID"]: d["habitat"] for d in original["deployments"]}
    assert {d["deploymentID"]: d["habitat"] for d in exported["deployments"]} == habitats  # free text, as written
    assert "Protected marsh with ponds and small brooks" in habitats.values()
    descriptor = json.loads((out / "datapackage.json").read_text())
    original_names = {t["scientificName"] for t in json.loads((EXAMPLE / "datapackage.json").read_text())["taxonomic"]}
    assert {t["scientificName"] for t in descriptor["taxonomic"]} <= original_names
    assert descriptor["temporal"] == {"start": "2020-05-30", "end": "2021-04-18"}
