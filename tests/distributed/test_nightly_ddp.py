"""The nightly run over 2 CPU processes (gloo) writes the store a one-process run writes, also after a rank dies.

Every run is ``ecowatch nightly`` in a subprocess with a clean environment: Lightning's launcher
runs the command line again in the second process (in-process it would re-run pytest), torchrun
starts both at once. Batches of one image (detect) and one crop (classify), one torch thread per
process: every forward pass is the same computation whichever process runs it, so the stores must
be identical, floats included.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ecowatch.shards import TEST_DIE_AFTER_BATCHES
from ecowatch.store import open_store

from ..conftest import write_project
from .data import NightlyData

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
#: Launcher variables of the test's own environment (none, normally) must not reach the runs.
_LAUNCH_PREFIXES = ("PYTEST", "LOCAL_RANK", "NODE_RANK", "RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK",
                    "ROLE_", "MASTER_", "TORCHELASTIC", "SLURM_", "ECOWATCH_TEST_")


def write_nightly_project(root: Path, data: NightlyData, *, tracking: bool = False) -> Path:
    """A project whose nightly run detects and classifies ``data`` one image / crop per batch, on CPU."""
    one_at_a_time = {"batch_size": 1, "workers": 0, "threads": 1, "accelerator": "cpu"}
    return write_project(root, dump=data.dump, deployments=data.deployments, taxonomy=data.taxonomy, conf={
        "detect": one_at_a_time,
        "classify": {"model": str(data.classifier), **one_at_a_time},
        "tracking": {"enabled": tracking},
    })


def nightly(conf: Path, *, devices: int = 1, torchrun: bool = False, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess:
    """``ecowatch nightly`` with ``devices`` processes (Lightning's launcher), or 2 started by torchrun."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_LAUNCH_PREFIXES)}
    clean.update(OMP_WAIT_POLICY="PASSIVE", PYTHONPATH=str(REPO), **(env or {}))
    if torchrun:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                   "-m", "pipelines", "nightly", "--config", str(conf)]
    else:
        command = [sys.executable, "-m", "ecowatch", "nightly", "--config", str(conf),
                   "--set", f"detect.devices={devices}"]
    return subprocess.run(command, cwd=conf.parents[1], env=clean, capture_output=True, text=True, timeout=600,
                          check=False)


def work(conf: Path) -> Path:
    return conf.parents[1] / "work"


def snapshot(conf: Path) -> dict[str, list[tuple]]:
    """Every data table of the project's store, without run ids (they differ from run to run)."""
    store = open_store(work(conf) / "results.sqlite")
    try:
        return store.snapshot(exclude_columns=("run_id", "ingest_run_id"))
    finally:
        store.dispose()


def count(conf: Path, sql: str) -> int:
    with sqlite3.connect(f"file:{work(conf) / 'results.sqlite'}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchone()[0]


def run_statuses(conf: Path) -> list[str]:
    with sqlite3.connect(f"file:{work(conf) / 'results.sqlite'}?mode=ro", uri=True) as conn:
        return [row[0] for row in conn.execute("SELECT status FROM runs ORDER BY started_at")]


def shard_files(conf: Path) -> list[Path]:
    return sorted((work(conf) / "models" / "shards").rglob("*.jsonl"))


def output(done: subprocess.CompletedProcess) -> str:
    return f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-5000:]}"


@pytest.fixture(scope="module")
def one_process(nightly_data: NightlyData, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple]]:
    """The store of a one-process nightly run: the reference."""
    conf = write_nightly_project(tmp_path_factory.mktemp("one-process"), nightly_data)
    done = nightly(conf)
    assert done.returncode == 0, output(done)
    reference = snapshot(conf)
    assert len(reference["detections"]) > 0 and len(reference["detector_done"]) > 0
    assert len(reference["classifications"]) > 0 and len(reference["observations"]) > 0
    assert not shard_files(conf)  # one process writes the store directly
    return reference


def test_two_processes_write_the_store_of_one_process(nightly_data: NightlyData, one_process: dict,
                                                       tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from ecowatch.tracking import tracking_target

    conf = write_nightly_project(tmp_path / "p", nightly_data, tracking=True)
    done = nightly(conf, devices=2)
    assert done.returncode == 0, output(done)
    assert snapshot(conf) == one_process  # every image and crop once: none lost, none doubled
    assert not shard_files(conf)  # merged, then removed
    # the second process ran the prediction stages only: one run row, one summary, one MLflow run
    assert run_statuses(conf) == ["finished"]
    assert done.stdout.count("nightly run ") == 1
    images = len(one_process["detector_done"])
    assert f"{images} images run, 0 already done" in done.stdout
    client = MlflowClient(tracking_uri=tracking_target(str(work(conf) / "mlflow" / "mlflow.db")).tracking_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1
    metrics = runs[0].data.metrics
    assert metrics["detect.media_done"] == images  # rank 0's counts are those of both processes
    assert metrics["classify.detections_done"] == len({row[0] for row in one_process["classifications"]})


@pytest.mark.parametrize("stage", ["detect", "classify"])
def test_a_rank_dies_then_the_same_command_completes_the_store(stage: str, nightly_data: NightlyData,
                                                                one_process: dict, tmp_path: Path) -> None:
    conf = write_nightly_project(tmp_path / "p", nightly_data)
    killed = nightly(conf, devices=2, env={TEST_DIE_AFTER_BATCHES: f"{stage}:1:1"})  # rank 1 exits after 1 batch
    assert killed.returncode != 0, output(killed)
    left = shard_files(conf)
    assert {path.name for path in left} == {"rank-00000.jsonl", "rank-00001.jsonl"}, left
    assert all(f"/shards/{stage}/" in path.as_posix() for path in left)
    # the dead run merged nothing of that stage
    if stage == "detect":
        assert count(conf, "SELECT count(*) FROM detector_done") == 0
    else:
        assert count(conf, "SELECT count(*) FROM detector_done") == len(one_process["detector_done"])
        assert count(conf, "SELECT count(*) FROM classifications") == 0
    assert run_statuses(conf)[0] in ("failed", "running")  # "running" when the launcher SIGKILLed rank 0

    rerun = nightly(conf, devices=2)
    assert rerun.returncode == 0, output(rerun)
    assert snapshot(conf) == one_process
    assert not shard_files(conf)
    if stage == "detect":  # the dead run's batches were merged first, only the rest was predicted again
        already = int(re.search(r"(\d+) already done", rerun.stdout)[1])
        assert 0 < already < len(one_process["detector_done"])
    assert run_statuses(conf)[1:] == ["finished"]


def test_torchrun_starts_both_processes_at_once(nightly_data: NightlyData, one_process: dict, tmp_path: Path) -> None:
    conf = write_nightly_project(tmp_path / "p", nightly_data)
    done = nightly(conf, torchrun=True)  # rank 1 waits in a barrier until rank 0 has ingested the dump
    assert done.returncode == 0, output(done)
    assert snapshot(conf) == one_process
    assert not shard_files(conf)
    assert run_statuses(conf) == ["finished"]
    assert done.stdout.count("nightly run ") == 1
