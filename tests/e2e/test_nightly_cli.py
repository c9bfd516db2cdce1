"""End to end: the real CLI runs the nightly pipeline on a generated SD-card dump."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from ecowatch.store import open_store
from ecowatch.store.schema import media, media_flags, runs
from ecowatch.synth import DumpSpec, generate_dump


@pytest.fixture(scope="module")
def tiny_dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "sample"
    generate_dump(out, DumpSpec.preset("tiny"))
    return out


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecowatch", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600, check=False)


def test_nightly_populates_store_and_mlflow(tiny_dump: Path, project_factory, md_validator) -> None:
    from mlflow.tracking import MlflowClient

    conf = project_factory(dump=tiny_dump / "dump", deployments=tiny_dump / "deployments.csv",
                           taxonomy=tiny_dump / "taxonomy.csv", labels=tiny_dump / "coco_camera_traps.json")
    first = run_cli("nightly", "--config", str(conf))
    assert first.returncode == 0, first.stderr
    assert "nightly run" in first.stdout and "MLflow run:" in first.stdout

    project = conf.parent.parent
    store = open_store(project / "work" / "results.sqlite")
    files = [p for p in (tiny_dump / "dump").rglob("*") if p.is_file()]
    assert store.count(media) == len(files)  # every file recorded, broken ones included
    assert store.count(media, media.c.status == "ok") > 0
    flags = {row.flag for row in store.engine.connect().execute(sa.select(media_flags.c.flag))}
    assert {"zero_byte", "truncated", "clock_outside_deployment"} <= flags

    with store.engine.connect() as conn:
        run = conn.execute(sa.select(runs)).one()
    assert run.status == "finished" and run.mlflow_run_id
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'work' / 'mlflow' / 'mlflow.db'}")
    tracked = client.get_run(run.mlflow_run_id)
    assert tracked.info.status == "FINISHED"
    assert tracked.data.metrics["ingest.files_seen"] == len(files)
    assert tracked.data.params["dump"] == "dump"
    artefacts = [a.path for a in client.list_artifacts(run.mlflow_run_id)]
    assert artefacts == ["exports", "flagged_media.csv", "report"]
    assert tracked.data.tags["ecowatch.detector"] == "ecowatch-synth"
    assert tracked.data.metrics["detect.media_done"] == store.count(media, media.c.status == "ok")

    # the MegaDetector batch-output file passes MegaDetector's own validator, every file present
    options = md_validator.ValidateBatchResultsOptions()
    options.check_image_existence = True
    options.relative_path_base = str(tiny_dump / "dump")
    options.raise_errors = False
    md_json = project / "work" / "exports" / "dump" / "megadetector.json"
    checked = md_validator.validate_batch_results(str(md_json), options)["validation_results"]
    assert checked["errors"] == [] and checked["warnings"] == []
    assert sum(checked["detection_category_id_to_count"].values()) > 0

    second = run_cli("nightly", "--config", str(conf))  # a re-run adds nothing
    assert second.returncode == 0, second.stderr
    assert f"0 new, {len(files)} already ingested" in second.stdout
    assert ": 0 images run," in second.stdout  # detection resumes: nothing left to do
    report = project / "work" / "reports" / "report-dump.html"
    assert report.is_file() and "report:" in second.stdout
    assert store.count(media) == len(files)


def test_bad_config_stops_with_a_message(tiny_dump: Path, project_factory) -> None:
    conf = project_factory(dump=tiny_dump / "dump", conf={"ingest": {"wokers": 2}})
    result = run_cli("nightly", "--config", str(conf))
    assert result.returncode == 2
    assert "ingest.wokers: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_dump_names_the_fix(tmp_path: Path, project_factory) -> None:
    conf = project_factory(dump=tmp_path / "not_there")
    result = run_cli("nightly", "--config", str(conf), "--set", "datasets.deployments=null")
    assert result.returncode == 2
    assert "not_there does not exist" in result.stderr and "fix the path" in result.stderr
