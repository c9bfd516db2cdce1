"""End to end: a generated SD-card dump, ingested and detected, reported by the real CLI and pipeline."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import sqlalchemy as sa

from ecowatch.config import load_config
from ecowatch.errors import ConfigError, StoreError
from ecowatch.ingest.records import media_id_for
from ecowatch.report import UNCLASSIFIED
from ecowatch.store import open_store
from ecowatch.store import schema as S
from pipelines.report import report_filename, run_report
from tests.report.conftest import NightlyProject

# no_exif_time images stay: their time comes from the file (the generator stamps the camera clock on it)
NOT_ANALYSABLE = {"clock_outside_deployment", "no_deployment"}


def _truth_records(project: NightlyProject) -> dict[str, set[str]]:
    """Taxon -> images with a truth box of it whose time the store holds inside its deployment."""
    coco = json.loads((project.sample / "coco_camera_traps.json").read_text())
    store = open_store(project.store_path)
    with store.engine.connect() as conn:
        ok = set(conn.execute(sa.select(S.media.c.media_id).where(S.media.c.status == "ok")).scalars())
        flagged = set(conn.execute(sa.select(S.media_flags.c.media_id)
                                   .where(S.media_flags.c.flag.in_(NOT_ANALYSABLE))).scalars())
    store.dispose()
    images: dict[str, set[str]] = defaultdict(set)
    for ann in coco["annotations"]:
        media_id = media_id_for("dump", ann["image_id"])
        if "bbox" in ann and ann.get("taxon_id") not in (None, "homo_sapiens") and media_id in ok - flagged:
            images[ann["taxon_id"]].add(media_id)
    return images


def test_cli_report_of_a_detector_only_store(detector_project: NightlyProject) -> None:
    result = subprocess.run([sys.executable, "-m", "ecowatch", "report", "--config", str(detector_project.conf)],
                            capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    path = detector_project.root / "work" / "reports" / "report-dump.html"
    assert f"report written to {path}" in result.stdout
    assert "MLflow run" not in result.stdout  # tracking is off in this project
    html = path.read_text()
    truth = _truth_records(detector_project)
    n_images = len(set().union(*truth.values()))
    row = html.split(f'data-taxon="{UNCLASSIFIED}"')[1].split("</tr>")[0]
    assert f'<td class="num">{n_images}</td>' in row  # records = analysable images with an animal box
    assert "tiny-truth-detector" in html and "0.1" in html  # detector name and version
    assert 'id="map-image"' in html and 'id="calendar-image"' in html
    assert "clock_outside_deployment" in html and "no_exif_time" in html  # the dump's broken files


class _Tracker:
    """Stands in for the nightly run's open MLflow run (:class:`ecowatch.tracking.RunLogger`)."""

    run_id = "nightly-mlflow-run"

    def __init__(self) -> None:
        self.artifacts: list[tuple[Path, str | None]] = []

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.artifacts.append((Path(path), artifact_path))


def test_report_logged_into_an_open_run(detector_project: NightlyProject) -> None:
    tracker = _Tracker()
    summary = run_report(load_config(detector_project.conf), tracker=tracker)  # type: ignore[arg-type]
    assert tracker.artifacts == [(summary.path, "report")]
    assert summary.mlflow_run_id == "nightly-mlflow-run"


@pytest.mark.slow
def test_report_run_tracked_in_mlflow(detector_project: NightlyProject) -> None:
    """With tracking on and no open run, the report opens its own MLflow run and logs the file."""
    from mlflow.tracking import MlflowClient

    summary = run_report(load_config(detector_project.conf, overrides={"tracking.enabled": True}))
    client = MlflowClient(tracking_uri=f"sqlite:///{detector_project.root / 'work' / 'mlflow' / 'mlflow.db'}")
    assert [a.path for a in client.list_artifacts(summary.mlflow_run_id, "report")] == ["report/report-dump.html"]
    run = client.get_run(summary.mlflow_run_id)
    assert run.data.tags["ecowatch.kind"] == "report" and run.info.status == "FINISHED"
    assert run.data.metrics["report.events"] == summary.n_events


def test_pipeline_report_of_a_classified_store(classified_project: NightlyProject) -> None:
    loaded = load_config(classified_project.conf, overrides={"report.regions": None, "report.bootstrap_samples": 0})
    summary = run_report(loaded)
    truth = _truth_records(classified_project)
    assert {r.taxon_id: r.n_records for r in summary.species} == {t: len(m) for t, m in truth.items()}
    assert all(r.common_name and r.scientific_name for r in summary.species)  # names from the taxonomy CSV
    assert summary.mlflow_run_id is None  # tracking disabled in this project
    html = summary.path.read_text()
    assert "tiny-truth-classifier" in html and "2026.1" in html
    assert 'class="gallery-item"' in html  # crops from the dump's own image files


def test_report_needs_a_store_and_known_regions(detector_project: NightlyProject, tmp_path: Path,
                                                project_factory) -> None:  # fmt: skip
    conf = project_factory(dump=detector_project.sample / "dump")
    with pytest.raises(StoreError, match="no results store at .*Run `ecowatch nightly` first"):
        run_report(load_config(conf))
    loaded = load_config(detector_project.conf, overrides={"report.regions": "nope"})
    with pytest.raises(ConfigError, match=r"report\.regions: 'nope' is not in the catalog"):
        run_report(loaded)
    loaded = load_config(detector_project.conf, overrides={"report.regions": "store"})
    with pytest.raises(ConfigError, match=r"'store' is a results_store dataset"):
        run_report(loaded)
    with pytest.raises(ConfigError, match=r"report\.event_rule"):
        load_config(detector_project.conf, overrides={"report.event_rule": "first"})
    assert report_filename("card 3/a") == "report-card_3_a.html" and report_filename(None) == "report-store.html"


@pytest.mark.slow
def test_nightly_then_report_with_the_bundled_detector(tiny_sample: Path, project_factory) -> None:
    """The real chain: `ecowatch nightly` (ingest, detect, detector observations) then `ecowatch report`."""
    conf = project_factory(dump=tiny_sample / "dump", deployments=tiny_sample / "deployments.csv",
                           taxonomy=tiny_sample / "taxonomy.csv",
                           conf={"tracking": {"enabled": False}, "ingest": {"workers": 0}})  # fmt: skip
    nightly = subprocess.run([sys.executable, "-m", "ecowatch", "nightly", "--config", str(conf)],
                             capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert nightly.returncode == 0, nightly.stderr
    report = subprocess.run([sys.executable, "-m", "ecowatch", "report", "--config", str(conf)],
                            capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert report.returncode == 0, report.stderr
    html = (conf.parent.parent / "work" / "reports" / "report-dump.html").read_text()
    assert 'id="detectors-table"' in html and "nightly" in html
    assert 'id="map-image"' in html and 'id="calendar-image"' in html
