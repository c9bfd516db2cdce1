"""End to end: the nightly CLI writes a PostgreSQL results store named by a ``url:`` in the catalog."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from ecowatch.store import open_store
from ecowatch.store.schema import detector_done, media, media_flags, runs
from ecowatch.synth import DumpSpec, generate_dump

pytestmark = pytest.mark.slow


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecowatch", *args], capture_output=True, text=True, timeout=600,
                          check=False)


def test_nightly_on_a_postgresql_store_resumes_without_duplicates(tmp_path: Path, project_factory,
                                                                   postgres_server) -> None:
    sample = tmp_path / "sample"
    generate_dump(sample, DumpSpec.preset("tiny"))
    conf = project_factory(dump=sample / "dump", deployments=sample / "deployments.csv",
                           taxonomy=sample / "taxonomy.csv", labels=sample / "coco_camera_traps.json")
    url = postgres_server.new_database("nightly")
    catalog_path = conf.parent.parent / "data_catalog" / "catalog.yaml"
    catalog = yaml.safe_load(catalog_path.read_text())
    catalog["datasets"]["store"] = {"type": "results_store", "url": url}
    catalog_path.write_text(yaml.safe_dump(catalog))

    first = run_cli("nightly", "--config", str(conf))
    assert first.returncode == 0, first.stderr
    assert not (conf.parent.parent / "work" / "results.sqlite").exists()
    store = open_store(url)
    files = [p for p in (sample / "dump").rglob("*") if p.is_file()]
    assert store.count(media) == len(files)
    assert store.count(detector_done) == store.count(media, media.c.status == "ok") > 0
    with store.engine.connect() as conn:
        flags = set(conn.execute(sa.select(media_flags.c.flag)).scalars())
    assert {"zero_byte", "truncated", "clock_outside_deployment"} <= flags
    before = store.snapshot(exclude_columns=("run_id", "ingest_run_id"))

    second = run_cli("nightly", "--config", str(conf))
    assert second.returncode == 0, second.stderr
    assert store.snapshot(exclude_columns=("run_id", "ingest_run_id")) == before
    with store.engine.connect() as conn:
        assert list(conn.execute(sa.select(runs.c.status)).scalars()) == ["finished", "finished"]
    status = run_cli("status", "--config", str(conf))
    assert status.returncode == 0, status.stderr
    store.dispose()
