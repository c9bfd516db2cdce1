"""The holdout is chosen once and kept; unchanged labels are "nothing new"; the state survives its file's loss.

Training is cut to two optimiser steps: these tests are about what the retrain run decides to
train on, not about the model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ecowatch.errors import InputDataError
from ecowatch.retrain.config import load_retrain_config
from ecowatch.retrain.holdout import choose_holdout
from ecowatch.retrain.labels import LabelledBox
from ecowatch.retrain.state import load_state, state_path
from pipelines.retrain import run_retrain

from .conftest import coco_set, write_project

NAME = "ecowatch-species"
QUICK = {"train": {"max_epochs": 1, "max_steps": 2}}


def test_choose_holdout_needs_three_locations() -> None:
    labels = [LabelledBox(str(i), Path("x.jpg"), f"i/{i}", None, "cervus_elaphus", f"L{i % 2}", "", "s")
              for i in range(6)]
    with pytest.raises(InputDataError, match=r"2 location\(s\) \(\['L0', 'L1'\]\); retraining needs at least 3"):
        choose_holdout(labels, fraction=0.3, seed=0)


@pytest.mark.slow
def test_holdout_is_chosen_once_and_kept(rounds_data, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    root = tmp_path / "project"
    first = [coco_set("holdout_labels"), coco_set("first_sites")]
    retrain = {"holdout": {"fraction": 0.4}}
    conf = write_project(root, rounds_data, labels=first, retrain=retrain, training=QUICK)
    r1 = run_retrain(load_retrain_config(conf))
    chosen = r1.holdout_locations
    assert chosen and set(chosen) < set(rounds_data.holdout_locations + rounds_data.first_locations)
    state = load_state(root / "work" / "retrain", NAME)
    assert state.holdout_locations == chosen and state.labels_fingerprint == r1.fingerprint

    # new labels from 4 more locations: the holdout does not move, the new locations train
    conf = write_project(root, rounds_data, labels=[*first, coco_set("new_sites")], retrain=retrain, training=QUICK)
    r2 = run_retrain(load_retrain_config(conf))
    assert r2.status == "trained" and r2.holdout_locations == chosen and r2.fingerprint != r1.fingerprint
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'work' / 'mlflow' / 'mlflow.db'}")
    assert client.get_run(r2.mlflow_run_id).data.params["holdout.locations"] == ",".join(chosen)

    # the state file is lost: the holdout and the fingerprint come back from the latest MLflow retrain run
    state_path(root / "work" / "retrain", NAME).unlink()
    r3 = run_retrain(load_retrain_config(conf))
    assert r3.status == "nothing_new" and r3.holdout_locations == chosen

    # labels unchanged, but asked to: trains again, same holdout
    r4 = run_retrain(load_retrain_config(conf), force=True)
    assert r4.status == "trained" and r4.holdout_locations == chosen and r4.champion_version is not None
