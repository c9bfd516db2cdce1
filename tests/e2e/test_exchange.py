"""End to end: a generated nightly run exported as Camtrap DP validates offline, and the
``ecowatch import`` / ``ecowatch export`` commands on the configured store."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from ecowatch.config import load_config
from ecowatch.formats.camtrap_dp_validate import validate_camtrap_dp
from ecowatch.formats.camtrap_dp_write import Contributor, License, ProjectInfo, export_camtrap_dp
from ecowatch.store import open_store
from ecowatch.store import schema as S
from ecowatch.synth import DumpSpec, generate_dump
from ecowatch.tables import read_taxonomy
from pipelines.cli import main
from tests.conftest import SHARED_DATA, write_project
from tests.ingest.frames import write_frame

SCHEMAS = SHARED_DATA / "camtrap-dp-1.0.2"
EXAMPLE = SHARED_DATA / "real" / "camtrap_dp_example"
needs_schemas = pytest.mark.skipif(not SCHEMAS.is_dir(), reason=f"Camtrap DP schemas not found at {SCHEMAS}")
needs_example = pytest.mark.skipif(not EXAMPLE.is_dir(), reason=f"Camtrap DP example package not found at {EXAMPLE}")
FAST = ("--set", "ingest.workers=0", "--set", "tracking.enabled=false")
PROJECT = ProjectInfo(
    title="ecowatch nightly test",
    description="Generated tiny dump.",
    contributors=(Contributor("Ada Ecologist", role="contact"),),
    licenses=(License("data", name="CC0-1.0"), License("media", name="CC-BY-4.0")),
    project_id="nightly-test",
    created=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
)


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def nightly_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A nightly run on a generated tiny dump (fewer frames than the preset: the detector runs on CPU).

    The detector is the tests' tiny seeded YOLO (random weights: boxes of every category on most
    images), so the store holds detections and detector observations as a real run's would.
    Returns the run configuration and the generated dump folder.
    """
    from pipelines.nightly import run_nightly
    from tests.detect.tiny_model import build_tiny_detector

    base = tmp_path_factory.mktemp("nightly")
    generate_dump(base / "tiny", DumpSpec.preset("tiny", n_frames=8))
    conf = write_project(base / "project", dump=base / "tiny" / "dump", deployments=base / "tiny" / "deployments.csv",
                         taxonomy=base / "tiny" / "taxonomy.csv")  # fmt: skip
    overrides = {"ingest.workers": 0, "tracking.enabled": False, "detect.workers": 0, "detect.imgsz": 64,
                 "detect.tiling.mode": "never"}  # fmt: skip
    detector = build_tiny_detector(base / "tiny-detector.pt", imgsz=64)  # network blocked: tests/conftest.py
    run_nightly(load_config(conf, overrides={**overrides, "detect.detector": str(detector)}))
    return conf, base / "tiny"


def _observation_ids(store, *sources: str) -> set[str]:
    o = S.observations
    with store.engine.connect() as conn:
        return set(conn.execute(sa.select(o.c.observation_id).where(o.c.source.in_(sources))).scalars())


@pytest.mark.slow
@needs_schemas
def test_nightly_run_exports_a_valid_package(nightly_project, tmp_path: Path) -> None:
    conf, tiny = nightly_project
    store = open_store(conf.parent.parent / "work" / "results.sqlite")
    out = export_camtrap_dp(store, tmp_path / "pkg", dump_id="dump", project=PROJECT,
                            taxonomy=read_taxonomy(tiny / "taxonomy.csv"))  # fmt: skip
    report = validate_camtrap_dp(out, schema_dir=SCHEMAS)
    assert report.valid, report.summary()

    media, m = _read(out / "media.csv"), S.media
    exportable = (m.c.dump_id == "dump", m.c.status == "ok", m.c.deployment_id.is_not(None), m.c.timestamp.is_not(None))
    assert 0 < len(media) == store.count(m, *exportable)
    assert len(media) < store.count(m)  # the generated dump holds broken files, left out of the package
    with store.engine.connect() as conn:
        used = set(conn.execute(sa.select(m.c.deployment_id).where(*exportable).distinct()).scalars())
        sources = set(conn.execute(sa.select(S.observations.c.source).distinct()).scalars())
    deployments = _read(out / "deployments.csv")
    assert {d["deploymentID"] for d in deployments} == used
    assert {r["deploymentID"] for r in media} <= used

    # Holds with or without detection in the nightly run: every observation it wrote is a machine
    # observation in the package (none is human or of unknown method), each of an exported file.
    assert not sources & {"human", "imported"}
    observations = _read(out / "observations.csv")
    assert all(o["classificationMethod"] == "machine" and o["classifiedBy"] for o in observations)
    assert {o["mediaID"] for o in observations if o["mediaID"]} <= {r["mediaID"] for r in media}
    exported_ids = {o["observationID"] for o in observations}
    assert exported_ids <= _observation_ids(store, *sources)
    if store.count(S.detections):  # the detector ran: its observations of exported files are all there
        with store.engine.connect() as conn:
            expected = set(conn.execute(
                sa.select(S.observations.c.observation_id).join(m, m.c.media_id == S.observations.c.media_id)
                .where(*exportable)).scalars())  # fmt: skip
        assert expected and exported_ids == expected
    store.dispose()


@needs_schemas
def test_a_named_animal_replaces_the_detectors_unnamed_one_in_the_package(nightly_project, tmp_path: Path) -> None:
    """Once the fuser names an image's animal, the detector's "an animal" row of that image is not exported."""
    conf, tiny = nightly_project
    store = open_store(conf.parent.parent / "work" / "results.sqlite")
    with store.engine.connect() as conn:
        unnamed = conn.execute(sa.select(S.observations).where(
            S.observations.c.observation_type == "animal", S.observations.c.taxon_id.is_(None),
            S.observations.c.level == "media")).mappings().first()  # fmt: skip
    if unnamed is None:
        pytest.skip("the tiny detector found no animal in this dump")
    named = {**dict(unnamed), "observation_id": "fused-test-1", "taxon_id": "vulpes_vulpes", "taxon_rank": "species",
             "source": "classifier+prior"}
    with store.transaction() as conn:
        store.insert_ignore(conn, S.observations, [named])
    try:
        out = export_camtrap_dp(store, tmp_path / "pkg", dump_id="dump", project=PROJECT,
                                taxonomy=read_taxonomy(tiny / "taxonomy.csv"))  # fmt: skip
        assert validate_camtrap_dp(out, schema_dir=SCHEMAS).valid
        exported = {o["observationID"]: o for o in _read(out / "observations.csv")}
        assert "fused-test-1" in exported and exported["fused-test-1"]["scientificName"] == "Vulpes vulpes"
        assert unnamed["observation_id"] not in exported  # superseded, still in the store
        assert store.count(S.observations, S.observations.c.observation_id == unnamed["observation_id"]) == 1
    finally:
        with store.transaction() as conn:
            conn.execute(S.observations.delete().where(S.observations.c.observation_id == "fused-test-1"))
        store.dispose()


@pytest.mark.slow
@needs_schemas
def test_export_commands_on_the_configured_store(nightly_project, monkeypatch: pytest.MonkeyPatch) -> None:
    conf, tiny = nightly_project
    monkeypatch.setenv("ECOWATCH_CAMTRAP_DP_SCHEMAS", str(SCHEMAS))
    runner = CliRunner()
    result = runner.invoke(main, ["export", "camtrap-dp", "--dump", "dump", "--config", str(conf),
                                  "--contributor", "Ada Ecologist:principalInvestigator", *FAST])  # fmt: skip
    assert result.exit_code == 0, result.output
    package = conf.parent.parent / "work" / "exports" / "dump" / "camtrap-dp"
    assert f"wrote Camtrap DP package {package}" in result.output
    assert "validation: valid" in result.output and "note:" not in result.output
    descriptor = json.loads((package / "datapackage.json").read_text())
    assert descriptor["contributors"] == [{"title": "Ada Ecologist", "role": "principalInvestigator"}]
    names = {t.scientific_name for t in read_taxonomy(tiny / "taxonomy.csv").values()}
    assert {t["scientificName"] for t in descriptor["taxonomic"]} <= names

    out = conf.parent.parent / "md.json"
    result = runner.invoke(main, ["export", "megadetector", "--out", str(out), "--config", str(conf), *FAST])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert payload["info"]["format_version"] == "1.6"
    files = {p.relative_to(tiny / "dump").as_posix() for p in (tiny / "dump").rglob("*") if p.is_file()}
    assert payload["images"] and {i["file"] for i in payload["images"]} <= files

    result = runner.invoke(main, ["export", "camtrap-dp", "--dump", "nope", "--config", str(conf), *FAST])
    assert result.exit_code == 2 and "dump 'nope' is not in the results store" in result.output


@needs_schemas
def test_invalid_package_exits_1(tmp_path: Path, project_factory, monkeypatch) -> None:
    """A store row that breaks Camtrap DP (an observation type outside its list) is reported, status 1."""
    conf = project_factory(dump=tmp_path)
    monkeypatch.setenv("ECOWATCH_CAMTRAP_DP_SCHEMAS", str(SCHEMAS))
    store = open_store(conf.parent.parent / "work" / "results.sqlite")
    run = store.start_run("test", {})
    with store.transaction() as conn:
        conn.execute(S.dumps.insert().values(dump_id="d", root=str(tmp_path)))
        conn.execute(S.deployments.insert().values(
            deployment_id="dep", location_id="loc", latitude=52.0, longitude=5.0, start=dt.datetime(2026, 3, 1),
            end=dt.datetime(2026, 4, 1), utc_offset_min=60))  # fmt: skip
        conn.execute(S.media.insert().values(
            media_id="m1", dump_id="d", relpath="a.jpg", deployment_id="dep", sha256="0" * 64, size_bytes=1,
            media_type="image", status="ok", timestamp=dt.datetime(2026, 3, 2),
            timestamp_source="exif_datetimeoriginal", ingest_run_id=run))  # fmt: skip
        conn.execute(S.observations.insert().values(
            observation_id="o1", level="media", media_id="m1", observation_type="dinosaur", source="human", run_id=run))
    store.dispose()
    result = CliRunner().invoke(main, ["export", "camtrap-dp", "--config", str(conf), *FAST])
    assert result.exit_code == 1, result.output
    assert "validation: 1 problem(s)" in result.output and "observationType" in result.output
    assert "note: contributor 'unknown'" in result.output


def test_import_folders_command(tmp_path: Path, project_factory) -> None:
    conf = project_factory(dump=tmp_path)
    (tmp_path / "deployments.csv").write_text(
        "deployment_id,location_id,location_name,latitude,longitude,deployment_start,deployment_end\n"
        "oak-1,oak,Oak,52.0,5.0,2026-03-01T10:00:00+01:00,2026-04-01T10:00:00+01:00\n"
    )
    root = tmp_path / "trapper"
    when = dt.datetime(2026, 3, 10, 22, 0)
    write_frame(root / "Oak" / "Vulpes_vulpes" / "IMG_0001.JPG", when=when)
    write_frame(root / "Oak" / "empty" / "IMG_0002.JPG", seed=1, when=when)
    write_frame(root / "Elm" / "Vulpes_vulpes" / "IMG_0003.JPG", seed=2, when=when)
    args = ["import", "folders", str(root), "--deployments", str(tmp_path / "deployments.csv"), "--dump-id", "trap1",
            "--config", str(conf), *FAST]  # fmt: skip
    runner = CliRunner()
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "labels: 3 images, 3 new observations" in first.output
    assert "types: animal=2, blank=1" in first.output and "taxa: vulpes_vulpes=2" in first.output
    assert "stations not in the deployments table (files): Elm=1" in first.output
    again = runner.invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "0 new, 3 already imported" in again.output and "3 images, 0 new observations" in again.output
    store = open_store(conf.parent.parent / "work" / "results.sqlite")
    assert store.count(S.observations, S.observations.c.source == "human") == 3
    store.dispose()


@needs_example
def test_import_camtrap_dp_command(tmp_path: Path, project_factory) -> None:
    conf = project_factory(dump=tmp_path)
    runner = CliRunner()
    args = ["import", "camtrap-dp", str(EXAMPLE), "--dump-id", "example", "--config", str(conf), *FAST]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "media: 423 new of 423" in first.output and "observations: 549 new of 549" in first.output
    again = runner.invoke(main, args)
    assert "media: 0 new of 423" in again.output and "observations: 0 new of 549" in again.output
