"""Retraining against a real ``mlflow server`` on 127.0.0.1, including losing it mid-run (slow).

The failure mode under test (see :mod:`ecowatch.retrain.journal`): the server stops answering
after the challenger is trained; the run completes, keeps every record in a local journal and
says so; a retrain while the server is down stops before doing anything; once the server is back,
``ecowatch tracking replay`` puts the run, its metrics and artefacts, the challenger's registration
and the champion alias move on the server, and the nightly run resolves the new champion from it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ecowatch.retrain.config import load_retrain_config
from ecowatch.retrain.journal import JOURNAL_FILE, pending_journals
from ecowatch.retrain.state import load_state
from ecowatch.tracking import TrackingTarget, TrackingUnavailable, get_alias_version
from pipelines.cli import main
from pipelines.retrain import run_retrain

from .conftest import coco_set, write_project
from .mlflow_server import MlflowServer
from .test_rounds import RULE

NAME = "ecowatch-species"


@pytest.fixture
def mlflow_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowServer]:
    """A running ``mlflow server``; MLflow's client gives up on it at once when it is down (no minutes of retries)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    server = MlflowServer(tmp_path / "server")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_retrain_logs_to_a_server_and_survives_losing_it(rounds_data, mlflow_server: MlflowServer,
                                                         tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from ecowatch.classify.checkpoint import checkpoint_version
    from ecowatch.classify.stage import resolve_classifier

    root = tmp_path / "project"
    tracking = {"type": "mlflow_tracking", "url": mlflow_server.url}
    retrain = {"holdout": {"locations": list(rounds_data.holdout_locations)},
               "promotion": RULE}
    first = [coco_set("holdout_labels"), coco_set("first_sites")]
    server = TrackingTarget(mlflow_server.url, None)
    client = MlflowClient(tracking_uri=mlflow_server.url)

    # round 1 against the server: the first champion
    conf = write_project(root, rounds_data, labels=first, tracking=tracking, retrain=retrain)
    r1 = run_retrain(load_retrain_config(conf))
    assert r1.decision.promote and r1.offline_journal is None
    assert client.get_run(r1.mlflow_run_id).info.status == "FINISHED"
    assert get_alias_version(server, NAME, "champion").version == "1"

    # round 2: the server goes away once the challenger is trained
    conf = write_project(root, rounds_data, labels=[*first, coco_set("new_sites")], tracking=tracking, retrain=retrain)
    steps: list[str] = []

    def lose_server(step: str) -> None:
        steps.append(step)
        if step == "evaluate":
            mlflow_server.stop()

    r2 = run_retrain(load_retrain_config(conf), on_step=lose_server)
    assert steps[-4:] == ["decide", "log", "register", "promote"]  # every step ran
    assert r2.status == "trained" and r2.checkpoint.is_file() and r2.decision.promote
    assert r2.challenger_version is None and r2.alias_change is None  # the registry could not be written ...
    journal = r2.offline_journal
    assert journal is not None and pending_journals(root / "work" / "retrain" / "tracking-journal") == [journal]
    ops = [json.loads(line)["op"] for line in (journal / JOURNAL_FILE).read_text().splitlines()]
    assert ops[0] == "run" and {"metrics", "artifact", "register", "promote"} <= set(ops) and ops[-1] == "end"
    assert any(p.name == r2.checkpoint.name for p in (journal / "artifacts").rglob("*.ckpt"))  # ... but kept
    state = load_state(root / "work" / "retrain", NAME)
    assert state.labels_fingerprint == r2.fingerprint and state.pending_journals == [journal.name]

    # while the server is down: unchanged labels are "nothing new" all the same; a forced retrain stops
    # before doing anything
    quiet = run_retrain(load_retrain_config(conf))
    assert quiet.status == "nothing_new" and quiet.replayed == [] and journal.is_dir()
    with pytest.raises(TrackingUnavailable, match="Nothing was trained"):
        run_retrain(load_retrain_config(conf), force=True)
    assert len(list((root / "work" / "models" / "classifiers").glob("*.ckpt"))) == 2

    # the server is back: replay the journal with one command
    mlflow_server.start()
    replayed = CliRunner().invoke(main, ["tracking", "replay", "--config", str(conf)])
    assert replayed.exit_code == 0, replayed.output
    assert f"MLflow run {r2.mlflow_run_id}" in replayed.output and f"registered {NAME}/2" in replayed.output
    assert pending_journals(root / "work" / "retrain" / "tracking-journal") == []
    run = client.get_run(r2.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["challenger.macro_f1"] == pytest.approx(r2.challenger.report.macro_f1)
    assert run.data.metrics["champion.macro_f1"] == pytest.approx(r2.champion.report.macro_f1)
    artefacts = {a.path for a in client.list_artifacts(r2.mlflow_run_id, "retrain")}
    assert {"retrain/decision.json", "retrain/evaluation.json"} <= artefacts
    assert get_alias_version(server, NAME, "champion").version == "2"
    assert get_alias_version(server, NAME, "previous-champion").version == "1"

    # the nightly run resolves the new champion from the server
    resolved = resolve_classifier(f"models:/{NAME}@champion", cache_dir=tmp_path / "nightly-models",
                                  tracking_uri=mlflow_server.url)
    assert resolved.version == checkpoint_version(r2.checkpoint)
    listed = CliRunner().invoke(main, ["models", "list", "--config", str(conf)])
    assert listed.exit_code == 0, listed.output
    print(listed.output)  # quoted in the closing note (pytest -s)
