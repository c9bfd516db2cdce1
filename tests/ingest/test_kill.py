"""A SIGKILLed ingest, re-run, ends with exactly the rows of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ecowatch.store import open_store
from ecowatch.synth import DumpSpec, generate_dump

from ..conftest import write_project

N_FRAMES = 3000
SNAPSHOT_EXCLUDE = ("ingest_run_id", "run_id")
# Small batches: the run commits often, so it can be caught part-way.
INGEST_SETTINGS = {"ingest": {"workers": 2, "batch_size": 64}}


def ingest_command(conf: Path) -> list[str]:
    return [sys.executable, "-m", "ecowatch", "ingest", "--config", str(conf)]


def media_count(db: Path) -> int:
    """Rows in ``media``, read through a read-only connection (0 while the store does not exist)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT count(*) FROM media").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet, or its schema is being written
        return 0


@pytest.mark.slow
def test_sigkill_then_rerun_equals_uninterrupted(tmp_path: Path, project_factory) -> None:
    generated = tmp_path / "generated"
    generate_dump(generated, DumpSpec.preset("tiny", n_frames=N_FRAMES, image_size=(320, 240)))
    dump, deployments = generated / "dump", generated / "deployments.csv"
    total = sum(1 for p in dump.rglob("*") if p.is_file())
    killed_conf = project_factory(dump=dump, deployments=deployments, conf=INGEST_SETTINGS)
    clean_conf = write_project(tmp_path / "clean", dump=dump, deployments=deployments, conf=INGEST_SETTINGS)
    killed_db = killed_conf.parent.parent / "work" / "results.sqlite"

    process = subprocess.Popen(ingest_command(killed_conf), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    seen = 0
    deadline = time.monotonic() + 300
    try:
        while process.poll() is None and time.monotonic() < deadline:
            seen = media_count(killed_db)
            if seen >= total // 3:
                break
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the run and its worker processes, mid-batch
        _, stderr = process.communicate(timeout=60)
    assert 0 < seen < total, f"could not catch the run part-way ({seen} of {total} media); stderr: {stderr[-2000:]!r}"
    assert media_count(killed_db) < total

    resumed = subprocess.run(ingest_command(killed_conf), capture_output=True, text=True, timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "already ingested" in resumed.stdout
    clean = subprocess.run(ingest_command(clean_conf), capture_output=True, text=True, timeout=600, check=False)
    assert clean.returncode == 0, clean.stderr[-4000:]

    killed_store = open_store(killed_db)
    clean_store = open_store(clean_conf.parent.parent / "work" / "results.sqlite")
    try:
        resumed_rows = killed_store.snapshot(exclude_columns=SNAPSHOT_EXCLUDE)
        clean_rows = clean_store.snapshot(exclude_columns=SNAPSHOT_EXCLUDE)
        assert len(clean_rows["media"]) == total
        assert any(row[-2] is not None for row in clean_rows["media"])  # sequence ids were assigned
        assert len(clean_rows["media_flags"]) > 0
        assert resumed_rows == clean_rows
    finally:
        killed_store.dispose()
        clean_store.dispose()
