"""``ecowatch train classifier`` with Lightning's DDP over 2 CPU processes (gloo), run as a subprocess.

DDP re-executes the command line in the child process, so it runs from a clean environment (in
process it would re-run pytest in the child). The two-process run must optimise exactly as one
process with the same global batch (same number of steps, each rank half the batch), and only rank
0 writes the checkpoint, logs to MLflow and registers the model.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ecowatch.classify.checkpoint import load_classifier

from .data import REPO, write_training_project

pytestmark = pytest.mark.slow


def _train(conf: Path, *, devices: int) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "LOCAL_RANK", "NODE_RANK", "RANK",
                                                                     "WORLD_SIZE", "MASTER_"))}
    env.update(OMP_WAIT_POLICY="PASSIVE", PYTHONPATH=str(REPO), MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL="1")
    command = [sys.executable, "-m", "pipelines", "train", "classifier", "--config", str(conf),
               "--set", f"train.devices={devices}", "--set", "train.max_epochs=2", "--set", "train.batch_size=8",
               "--set", "train.threads=1", "--set", "train.accelerator=cpu"]
    return subprocess.run(command, cwd=conf.parents[1], env=env, capture_output=True, text=True, timeout=600)


def test_two_processes_train_like_one_with_the_same_global_batch(tiny_dump: Path, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from ecowatch.tracking import tracking_target

    runs = {}
    for devices in (1, 2):
        conf = write_training_project(tmp_path / f"p{devices}", tiny_dump)
        done = _train(conf, devices=devices)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert done.stdout.count("registered: models:/ecowatch-species/1") == 1  # rank 0 only
        store = tracking_target(str(conf.parents[1] / "work" / "mlflow" / "mlflow.db"))
        client = MlflowClient(tracking_uri=store.tracking_uri)
        found = client.search_runs([e.experiment_id for e in client.search_experiments()])
        assert len(found) == 1, [r.info.run_name for r in found]  # no run from the second process
        checkpoints = list((conf.parents[1] / "work" / "models" / "classifiers").glob("*.ckpt"))
        assert len(checkpoints) == 1
        runs[devices] = (found[0].data.metrics, load_classifier(checkpoints[0]))
    (one, one_model), (two, two_model) = runs[1], runs[2]
    assert two["train.processes"] == 2 and one["train.processes"] == 1
    assert two["train.steps"] == one["train.steps"] > 0  # same global batch: same optimiser steps per epoch
    assert two["train.epochs"] == one["train.epochs"]
    assert two_model.taxonomy.class_ids == one_model.taxonomy.class_ids
    for key in ("val.top1", "val.macro_f1", "test.top1", "temperature"):
        assert key in two, key
    assert "system/node0/cpu_utilization_percentage" in two  # the machine's load, logged into rank 0's run
