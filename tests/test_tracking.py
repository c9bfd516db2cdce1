"""MLflow tracking: runs land in an embedded sqlite store with their params, metrics, artefacts."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecowatch.tracking import tracked_run, tracking_target


def test_tracked_run_logs_to_sqlite_store(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    target = tracking_target(str(tmp_path / "ml" / "mlflow.db"))
    assert target.tracking_uri.startswith("sqlite:///")
    note = tmp_path / "note.txt"
    note.write_text("hello")
    with tracked_run(target, experiment="t", run_name="r1", tags={"k": "v"}) as run:
        run.log_params({"p": 3})
        run.log_metrics({"m": 1.5})
        run.log_artifact(note)
    client = MlflowClient(tracking_uri=target.tracking_uri)
    got = client.get_run(run.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params == {"p": "3"}
    assert got.data.metrics == {"m": 1.5}
    assert got.data.tags["k"] == "v"
    assert [a.path for a in client.list_artifacts(run.run_id)] == ["note.txt"]
    assert (tmp_path / "ml" / "artifacts").is_dir()  # artefacts beside the database, not in the cwd


def test_failed_block_marks_run_failed(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    target = tracking_target(str(tmp_path / "mlflow.db"))
    with pytest.raises(ValueError), tracked_run(target, experiment="t", run_name="r") as run:
        raise ValueError("boom")
    assert MlflowClient(tracking_uri=target.tracking_uri).get_run(run.run_id).info.status == "FAILED"


def test_disabled_tracking_logs_nothing() -> None:
    with tracked_run(None, experiment="t", run_name="r") as run:
        run.log_params({"a": 1})
        assert not run.enabled


def test_keys_built_from_data_are_made_acceptable(tmp_path) -> None:
    """A metric named after an observation source (``classifier+prior``) is logged, not a failed run."""
    from mlflow.tracking import MlflowClient

    from ecowatch.tracking import mlflow_key, tracked_run, tracking_target

    assert mlflow_key("fuse.source.classifier+prior") == "fuse.source.classifier_prior"
    assert mlflow_key("system/node0/cpu: 1 a-b_c") == "system/node0/cpu: 1 a-b_c"
    target = tracking_target(str(tmp_path / "mlflow.db"))
    with tracked_run(target, experiment="keys", run_name="keys") as tracker:
        tracker.log_metrics({"fuse.source.classifier+prior": 3})
        tracker.log_params({"a+b": 1})
        tracker.set_tags({"t+": "x"})
    run = MlflowClient(tracking_uri=target.tracking_uri).get_run(tracker.run_id)
    assert run.data.metrics["fuse.source.classifier_prior"] == 3.0
    assert run.data.params["a_b"] == "1" and run.data.tags["t_"] == "x"


def test_model_artifact_names_its_single_weights_file(tmp_path) -> None:
    from ecowatch.errors import ModelNotFoundError
    from ecowatch.tracking import ModelArtifact

    folder = tmp_path / "artefact"
    (folder / "weights").mkdir(parents=True)
    (folder / "weights" / "best.pt").write_bytes(b"x")
    artifact = ModelArtifact(folder, "det", "3", "runs:/r/model")
    assert artifact.single_file(".pt", uri="models:/det/3", what="detector", example="e") == folder / "weights" / "best.pt"
    (folder / "weights" / "last.pt").write_bytes(b"y")
    with pytest.raises(ModelNotFoundError, match=r"exactly one \.pt file.*weights/best.pt, weights/last.pt"):
        artifact.single_file(".pt", uri="models:/det/3", what="detector", example="models:/det/3/weights/best.pt")
    with pytest.raises(ModelNotFoundError, match=r"found none"):
        artifact.single_file(".ckpt", uri="models:/det/3", what="classifier", example="e")


def test_a_run_whose_process_was_killed_is_marked_killed_by_the_next_run(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    from ecowatch.tracking import ABANDONED_TAG, PID_TAG, open_run

    target = tracking_target(str(tmp_path / "mlflow.db"))
    script = (f"import os, signal; from ecowatch.tracking import open_run, tracking_target; "
              f"r = open_run(tracking_target({str(tmp_path / 'mlflow.db')!r}), experiment='nightly', run_name='k'); "
              f"print(r.run_id, flush=True); os.kill(os.getpid(), signal.SIGKILL)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    killed_id = done.stdout.split()[-1]
    client = MlflowClient(tracking_uri=target.tracking_uri)
    assert client.get_run(killed_id).info.status == "RUNNING"  # what MLflow would show for ever
    alive = open_run(target, experiment="nightly", run_name="still running here")  # this process: alive
    assert client.get_run(killed_id).info.status == "KILLED"
    assert "ended without closing the run" in client.get_run(killed_id).data.tags[ABANDONED_TAG]
    with tracked_run(target, experiment="nightly", run_name="next") as nxt:
        pass
    assert client.get_run(alive.run_id).info.status == "RUNNING"  # its process (this one) lives
    assert client.get_run(alive.run_id).data.tags[PID_TAG] == str(os.getpid())
    assert client.get_run(nxt.run_id).info.status == "FINISHED"
    alive.end("FINISHED")
