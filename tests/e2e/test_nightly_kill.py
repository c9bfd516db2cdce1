"""A nightly run SIGKILLed during detection, re-run, ends with the detections of an uninterrupted run."""

from __future__ import annotations

import math
import os
import re
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

N_FRAMES = 300
# Small batches commit often, so the run can be caught part-way through detection.
SETTINGS = {"detect": {"batch_size": 4, "workers": 1}, "tracking": {"enabled": False}}


def count(db: Path, sql: str) -> int:
    """A count through a read-only connection (0 while the store or its table does not exist)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def nightly(conf: Path) -> list[str]:
    return [sys.executable, "-m", "ecowatch", "nightly", "--config", str(conf)]


def detections(db: Path) -> dict[str, tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT detection_id, media_id, category, conf, x, y, w, h, detector_version, tile "
                            "FROM detections").fetchall()
    return {row[0]: row[1:] for row in rows}


@pytest.mark.slow
def test_sigkill_during_detection_then_rerun_equals_uninterrupted(tmp_path: Path, project_factory) -> None:
    generated = tmp_path / "generated"
    generate_dump(generated, DumpSpec.preset("tiny", n_frames=N_FRAMES, image_size=(480, 270)))
    dump, deployments = generated / "dump", generated / "deployments.csv"
    killed_conf = project_factory(dump=dump, deployments=deployments, conf=SETTINGS)
    clean_conf = write_project(tmp_path / "clean", dump=dump, deployments=deployments, conf=SETTINGS)
    killed_db = killed_conf.parent.parent / "work" / "results.sqlite"

    process = subprocess.Popen(nightly(killed_conf), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    done = ok = 0
    deadline = time.monotonic() + 600
    try:
        while process.poll() is None and time.monotonic() < deadline:
            done = count(killed_db, "SELECT count(*) FROM detector_done")
            ok = count(killed_db, "SELECT count(*) FROM media WHERE status = 'ok' AND media_type = 'image'")
            if ok and done >= ok // 3:
                break
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the run and its DataLoader workers, mid-batch
        _, stderr = process.communicate(timeout=60)
    assert 0 < done < ok, f"could not catch detection part-way ({done} of {ok} images); stderr: {stderr[-2000:]!r}"
    with sqlite3.connect(f"file:{killed_db}?mode=ro", uri=True) as conn:
        assert conn.execute("SELECT status FROM runs").fetchone()[0] == "running"  # killed, never finished

    resumed = subprocess.run(nightly(killed_conf), capture_output=True, text=True, timeout=900, check=False)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    already = int(re.search(r"(\d+) already done", resumed.stdout)[1])
    assert done <= already < ok  # only the rest was run
    clean = subprocess.run(nightly(clean_conf), capture_output=True, text=True, timeout=900, check=False)
    assert clean.returncode == 0, clean.stderr[-4000:]
    clean_db = clean_conf.parent.parent / "work" / "results.sqlite"

    # every image done exactly once, by the same detector version
    for db in (killed_db, clean_db):
        assert count(db, "SELECT count(*) FROM detector_done") == ok
        assert count(db, "SELECT count(DISTINCT media_id) FROM detector_done") == ok
    resumed_rows, clean_rows = detections(killed_db), detections(clean_db)
    assert clean_rows, "the uninterrupted run found nothing to compare"
    assert resumed_rows.keys() == clean_rows.keys()  # no duplicate, no missing detection
    for key, row in clean_rows.items():
        other = resumed_rows[key]
        assert other[0:2] == row[0:2] and other[7:] == row[7:]
        # a batch of other composition may change the last float digits, nothing more
        assert all(math.isclose(a, b, abs_tol=1e-4) for a, b in zip(other[2:7], row[2:7])), (key, row, other)
    # derived rows are recomputed whole: the same observations, no duplicates
    query = "SELECT count(*) FROM observations"
    assert count(killed_db, query) == count(clean_db, query) > 0
    store = open_store(killed_db)
    try:
        with store.engine.connect() as conn:
            statuses = [row[0] for row in conn.exec_driver_sql("SELECT status FROM runs ORDER BY started_at")]
    finally:
        store.dispose()
    assert statuses == ["running", "finished"]  # the killed run stays visible as such
