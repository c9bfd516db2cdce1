"""Camtrap DP reader on tiny packages written by the test: mapping, local times, records, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ecowatch.errors import InputDataError
from ecowatch.formats.camtrap_dp_read import read_camtrap_dp, records_from_camtrap_dp
from ecowatch.tables import taxon_id_for

PROFILE = "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/camtrap-dp-profile.json"

DEPLOYMENTS = """deploymentID,locationID,locationName,latitude,longitude,deploymentStart,deploymentEnd,cameraHeight,baitUse
dep1,loc1,Pond,51.5,4.7,2024-05-01T12:00:00+02:00,2024-05-03T12:00:00+02:00,0.8,false
dep2,,Wood,51.6,4.8,2024-05-01T00:00:00-05:00,2024-05-02T00:00:00-05:00,,
"""
MEDIA = """mediaID,deploymentID,captureMethod,timestamp,filePath,filePublic,fileMediatype
m1,dep1,activityDetection,2024-05-01T22:00:00+02:00,media/m1.jpg,true,image/jpeg
m2,dep1,activityDetection,2024-05-01T22:00:03+02:00,media/m2.jpg,true,image/jpeg
m3,dep2,timeLapse,2024-05-01T06:00:00-05:00,media/m3.jpg,false,image/jpeg
"""
OBSERVATIONS = """observationID,deploymentID,mediaID,eventID,eventStart,eventEnd,observationLevel,observationType,cameraSetupType,scientificName,count,bboxX,bboxY,bboxWidth,bboxHeight,classificationMethod,classificationTimestamp
o1,dep1,,e1,2024-05-01T20:00:00Z,2024-05-01T20:00:03Z,event,animal,,Vulpes vulpes,2,,,,,human,2024-06-01T10:00:00Z
o2,dep1,m1,e1,2024-05-01T20:00:00Z,2024-05-01T20:00:00Z,media,animal,,Vulpes vulpes,1,0.1,0.2,0.3,0.4,machine,
o3,dep1,m2,e1,2024-05-01T20:00:03Z,2024-05-01T20:00:03Z,media,animal,,Vulpes vulpes,2,0.1,0.2,0.3,0.4,machine,
o4,dep2,,e2,2024-05-01T11:00:00Z,2024-05-01T11:00:00Z,event,animal,,Meles meles,,,,,,human,
o5,dep2,,e3,2024-05-01T12:00:00Z,2024-05-01T12:00:00Z,event,human,setup,Homo sapiens,1,,,,,human,
o6,dep2,,e4,2024-05-01T13:00:00Z,2024-05-01T13:00:00Z,event,animal,,,1,,,,,human,
o7,dep2,,e5,2024-05-01T14:00:00Z,2024-05-01T14:00:00Z,event,blank,,,,,,,,human,
"""


def _descriptor(**overrides) -> dict:
    descriptor = {
        "profile": PROFILE,
        "name": "test-package",
        "resources": [
            {"name": name, "path": f"{name}.csv", "profile": "tabular-data-resource"}
            for name in ("deployments", "media", "observations")
        ],
        "taxonomic": [
            {
                "scientificName": "Vulpes vulpes",
                "taxonID": "https://www.checklistbank.org/dataset/COL2023/taxon/5BSG3",
                "taxonRank": "species",
                "vernacularNames": {"eng": "red fox", "nld": "vos"},
            }
        ],
    }
    descriptor.update(overrides)
    return descriptor


def write_package(root: Path, *, descriptor: dict | None = None, **tables: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    texts = {"deployments": DEPLOYMENTS, "media": MEDIA, "observations": OBSERVATIONS, **tables}
    for name, text in texts.items():
        (root / f"{name}.csv").write_text(text, encoding="utf-8")
    (root / "datapackage.json").write_text(json.dumps(descriptor or _descriptor()), encoding="utf-8")
    return root


def test_taxon_id_for():
    assert taxon_id_for("Vulpes vulpes") == "vulpes_vulpes"
    assert taxon_id_for("  Canis lupus familiaris ") == "canis_lupus_familiaris"
    assert taxon_id_for("Équus (ferus) caballus") == "equus_ferus_caballus"
    assert taxon_id_for("") == ""


def test_tables_are_mapped_and_times_are_camera_local(tmp_path):
    pkg = read_camtrap_dp(write_package(tmp_path / "pkg") / "datapackage.json")
    assert pkg.profile_version == "1.0.2"
    assert pkg.metadata["name"] == "test-package"
    deps = pkg.deployments.set_index("deployment_id")
    assert deps.loc["dep1", "start"] == pd.Timestamp("2024-05-01 12:00")
    assert deps.loc["dep2", "location_id"] == "dep2"  # empty locationID falls back to the deployment id
    assert deps["utc_offset_min"].tolist() == [120, -300]
    assert deps.loc["dep1", "camera_height"] == 0.8 and not deps.loc["dep1", "bait_use"]
    assert pd.isna(deps.loc["dep2", "bait_use"])
    media = pkg.media.set_index("media_id")
    assert media.loc["m3", "timestamp"] == pd.Timestamp("2024-05-01 06:00")
    assert bool(media.loc["m1", "file_public"]) and not bool(media.loc["m3", "file_public"])
    obs = pkg.observations.set_index("observation_id")
    # 20:00Z at a +02:00 camera is 22:00 on the camera clock; 11:00Z at -05:00 is 06:00
    assert obs.loc["o1", "event_start"] == pd.Timestamp("2024-05-01 22:00")
    assert obs.loc["o4", "event_start"] == pd.Timestamp("2024-05-01 06:00")
    assert obs.loc["o4", "utc_offset_min"] == -300
    assert obs.loc["o2", "taxon_id"] == "vulpes_vulpes" and obs.loc["o2", "scientific_name"] == "Vulpes vulpes"
    assert obs.loc["o2", ["bbox_x", "bbox_y", "bbox_width", "bbox_height"]].tolist() == [0.1, 0.2, 0.3, 0.4]
    assert pd.isna(obs.loc["o4", "count"]) and obs.loc["o1", "count"] == 2
    assert obs.loc["o1", "classification_timestamp"] == pd.Timestamp("2024-06-01 10:00", tz="UTC")
    taxa = pkg.taxa.set_index("taxon_id")
    assert taxa.loc["vulpes_vulpes", "vernacular_eng"] == "red fox"
    assert taxa.loc["meles_meles", "taxon_rank"] == ""  # only in the observations
    assert read_camtrap_dp(tmp_path / "pkg").deployments.equals(pkg.deployments)  # folder path works too


def test_records_event_level(tmp_path):
    pkg = read_camtrap_dp(write_package(tmp_path))
    records = records_from_camtrap_dp(pkg)
    assert records["observation_id"].tolist() == ["o1", "o4"]  # setup, unnamed and blank left out
    assert records["timestamp"].tolist() == [pd.Timestamp("2024-05-01 22:00"), pd.Timestamp("2024-05-01 06:00")]
    assert records["count"].tolist() == [2, 1]  # missing count -> 1
    assert records["media_id"].tolist() == ["", ""]
    assert records["sequence_id"].tolist() == ["e1", "e2"]
    with_setup = records_from_camtrap_dp(pkg, observation_type=["animal", "human"], include_setup=True)
    assert "homo_sapiens" in set(with_setup["taxon_id"])


def test_records_media_level(tmp_path):
    records = records_from_camtrap_dp(read_camtrap_dp(write_package(tmp_path)), level="media")
    assert records["media_id"].tolist() == ["m1", "m2"]
    assert records["timestamp"].tolist() == [pd.Timestamp("2024-05-01 22:00:00"), pd.Timestamp("2024-05-01 22:00:03")]
    with pytest.raises(InputDataError, match="level"):
        records_from_camtrap_dp(read_camtrap_dp(tmp_path), level="sequence")


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"deployments": DEPLOYMENTS.replace("deploymentStart", "start")}, r"deployments\.csv.*deploymentStart"),
        ({"media": MEDIA.replace("2024-05-01T22:00:03+02:00", "yesterday")}, r"media\.csv: row 3.*timestamp"),
        ({"media": MEDIA.replace("2024-05-01T22:00:03+02:00", "2024-05-01T22:00:03")}, "UTC offset"),
        ({"media": MEDIA.replace("m3,dep2", "m3,depX")}, r"media\.csv.*depX"),
        ({"observations": OBSERVATIONS.replace("o3,dep1,m2", "o3,dep1,m9")}, r"observations\.csv: row 4.*m9"),
        ({"observations": OBSERVATIONS.replace("media,animal", "media,bird", 1)}, "observationType"),
        ({"observations": OBSERVATIONS.replace("o2,dep1", "o1,dep1")}, "appears twice"),
        ({"deployments": DEPLOYMENTS.replace("51.5,4.7", "95.0,4.7")}, "latitude"),
        ({"observations": OBSERVATIONS.replace("Vulpes vulpes,2,", "Vulpes vulpes,two,", 1)}, "count"),
        ({"media": ""}, r"media\.csv"),
    ],
)
def test_bad_tables_name_the_file_and_problem(tmp_path, tables, message):
    root = write_package(tmp_path, **tables)
    with pytest.raises(InputDataError, match=message):
        read_camtrap_dp(root)


def test_bad_descriptors(tmp_path):
    with pytest.raises(InputDataError, match="no such file"):
        read_camtrap_dp(tmp_path / "nowhere")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "datapackage.json").write_text("{not json")
    with pytest.raises(InputDataError, match="not valid JSON"):
        read_camtrap_dp(tmp_path / "bad")
    old = write_package(tmp_path / "old", descriptor=_descriptor(profile=PROFILE.replace("1.0.2", "0.1.6")))
    with pytest.raises(InputDataError, match="0.1.6"):
        read_camtrap_dp(old)
    other = write_package(tmp_path / "other", descriptor=_descriptor(profile="tabular-data-package"))
    with pytest.raises(InputDataError, match="not a Camtrap DP profile"):
        read_camtrap_dp(other)
    no_media = _descriptor()
    no_media["resources"] = [r for r in no_media["resources"] if r["name"] != "media"]
    with pytest.raises(InputDataError, match="'media'"):
        read_camtrap_dp(write_package(tmp_path / "nomedia", descriptor=no_media))
    remote = _descriptor()
    remote["resources"][1]["path"] = "https://example.org/media.csv"
    with pytest.raises(InputDataError, match="only local files"):
        read_camtrap_dp(write_package(tmp_path / "remote", descriptor=remote))
