"""Registry aliases (promotion, rollback), the ``ecowatch models`` commands, and the offline journal."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from ecowatch.retrain.journal import TrackingJournal, pending_journals, replay_journals
from ecowatch.tracking import (
    TrackingTarget,
    TrackingUnavailable,
    get_alias_version,
    list_model_versions,
    promote_version,
    register_model_version,
    rollback_alias,
    tracked_run,
    tracking_target,
)
from pipelines.cli import main

from .conftest import coco_set, write_project

NAME = "ecowatch-species"


def _register(target: TrackingTarget, tmp_path: Path, count: int) -> list[str]:
    versions = []
    for i in range(count):
        weights = tmp_path / f"w{i}.ckpt"
        weights.write_text(f"weights {i}")
        with tracked_run(target, experiment="t", run_name=f"train-{i}") as run:
            run.log_artifact(weights, "classifier")
        versions.append(register_model_version(target, run_id=run.run_id, artifact_path=f"classifier/{weights.name}",
                                                name=NAME, alias="challenger").version)
    return versions


def test_promotion_chain_and_rollback(tmp_path: Path) -> None:
    target = tracking_target(str(tmp_path / "mlflow" / "mlflow.db"))
    v1, v2, v3 = _register(target, tmp_path, 3)
    assert get_alias_version(target, NAME, "champion") is None and get_alias_version(target, "other", "x") is None
    assert promote_version(target, NAME, v1, expected_current=None).applied
    assert promote_version(target, NAME, v2, expected_current=v1).applied
    change = promote_version(target, NAME, v3, expected_current=v2, tags={"holdout.macro_f1": "0.9"})
    assert change.applied and change.previous == v2
    aliases = {v.version: v.aliases for v in list_model_versions(target, NAME)}
    assert aliases == {v1: (), v2: ("previous-champion",), v3: ("challenger", "champion")}
    assert get_alias_version(target, NAME, "champion").tags["holdout.macro_f1"] == "0.9"

    stale = promote_version(target, NAME, v1, expected_current=v2)  # decided against v2, but v3 is champion now
    assert not stale.applied and "is version 3 now" in stale.reason
    assert get_alias_version(target, NAME, "champion").version == v3

    back = rollback_alias(target, NAME)
    assert back.applied and (back.previous, back.version) == (v3, v2)
    assert get_alias_version(target, NAME, "previous-champion").version == v1  # one step back along the chain
    assert get_alias_version(target, NAME, "champion").version == v2
    assert rollback_alias(target, NAME).version == v1
    assert get_alias_version(target, NAME, "previous-champion") is None
    with pytest.raises(Exception, match="replaced no earlier champion"):
        rollback_alias(target, NAME)
    assert rollback_alias(target, NAME, to_version=v3).version == v3
    rolled = {v.version: v.tags for v in list_model_versions(target, NAME)}
    assert rolled[v2]["ecowatch.rolled_back_to"] == v1 and "ecowatch.rolled_back_utc" in rolled[v3]


def test_models_commands_list_and_roll_back(rounds_data, tmp_path: Path) -> None:
    conf = write_project(tmp_path / "p", rounds_data, labels=[coco_set("holdout_labels")])
    target = tracking_target(str(tmp_path / "p" / "work" / "mlflow" / "mlflow.db"))
    v1, v2 = _register(target, tmp_path, 2)
    promote_version(target, NAME, v1, expected_current=None)
    promote_version(target, NAME, v2, expected_current=v1)
    runner = CliRunner()
    listed = runner.invoke(main, ["models", "list", "--config", str(conf)])
    assert listed.exit_code == 0, listed.output
    lines = {line.split()[0]: line for line in listed.output.splitlines()[2:]}
    assert "challenger,champion" in lines[v2] and f"(replaced {v1})" in lines[v2]
    assert "previous-champion" in lines[v1] and "(replaced none)" in lines[v1]
    rolled = runner.invoke(main, ["models", "rollback", "--config", str(conf)])
    assert rolled.exit_code == 0, rolled.output
    assert f"rolled back from version {v2} to version {v1}" in rolled.output
    assert f"models:/{NAME}@champion to version {v1}" in rolled.output
    again = runner.invoke(main, ["models", "rollback", "--config", str(conf)])
    assert again.exit_code == 2 and "replaced no earlier champion" in again.output  # one-line error, no traceback


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fast_http_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's HTTP client gives up at once (its default retries take minutes)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")


def test_unreachable_server_without_journal_is_a_clear_error(fast_http_failure) -> None:
    target = TrackingTarget(f"http://127.0.0.1:{_closed_port()}", None)
    opened = tracked_run(target, experiment="e", run_name="r")
    with pytest.raises(TrackingUnavailable, match="cannot be reached"):
        opened.__enter__()


def test_server_unreachable_from_the_start_is_journaled_and_replayed(fast_http_failure, tmp_path: Path) -> None:
    down = TrackingTarget(f"http://127.0.0.1:{_closed_port()}", None)
    journal = TrackingJournal(tmp_path / "journal", "test")
    note = tmp_path / "weights.ckpt"
    note.write_text("weights")
    with tracked_run(down, experiment="e", run_name="r", tags={"k": "v"}, offline=journal) as run:
        assert run.offline and run.run_id is None and run.enabled
        run.log_params({"p": 1})
        run.log_metrics({"m": 0.5})
        run.log_artifact(note, "classifier")
        assert run.register_artifact("classifier/weights.ckpt", name=NAME, alias="challenger") is None
        assert run.promote(NAME, None, expected_current=None) is None
    assert pending_journals(tmp_path / "journal") == [journal.folder]
    note.write_text("changed after the run")  # the journal kept its own copy

    store = tracking_target(str(tmp_path / "mlflow.db"))  # the server comes back (here: as a sqlite store)
    [result] = replay_journals(store, tmp_path / "journal")
    assert result.complete and result.registered == [f"{NAME}/1"] and pending_journals(tmp_path / "journal") == []
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store.tracking_uri)
    replayed = client.get_run(result.run_id)
    assert replayed.info.status == "FINISHED" and replayed.data.params == {"p": "1"}
    assert replayed.data.metrics == {"m": 0.5} and replayed.data.tags["k"] == "v"
    champion = get_alias_version(store, NAME, "champion")
    assert champion.version == "1" and champion.run_id == result.run_id
    local = client.download_artifacts(result.run_id, "classifier/weights.ckpt", str(tmp_path / "dl"))
    assert Path(local).read_text() == "weights"
    assert replay_journals(store, tmp_path / "journal") == []  # nothing pending: nothing twice


class _Down:
    """An MLflow client whose server went away."""

    def __getattr__(self, name: str):
        def fail(*args, **kwargs):
            raise requests.exceptions.ConnectionError("connection refused")

        return fail


def test_server_lost_mid_run_continues_the_same_run_on_replay(tmp_path: Path) -> None:
    target = tracking_target(str(tmp_path / "mlflow.db"))
    journal = TrackingJournal(tmp_path / "journal", "test")
    with tracked_run(target, experiment="e", run_name="r", offline=journal) as run:
        run.log_params({"before": 1})
        run._client = _Down()  # the server stops answering
        run.log_metrics({"after": 2.0})
        assert run.offline and journal.folder is not None
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=target.tracking_uri)
    assert client.get_run(run.run_id).info.status == "RUNNING"  # its end is in the journal
    [result] = replay_journals(target, tmp_path / "journal")
    assert result.run_id == run.run_id
    got = client.get_run(run.run_id)
    assert got.info.status == "FINISHED" and got.data.params == {"before": "1"} and got.data.metrics == {"after": 2.0}
