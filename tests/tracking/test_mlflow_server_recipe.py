"""The shared MLflow server recipe of docs/cluster.md, for real: PostgreSQL backend store, one
artefact root, two nodes logging to it with ecowatch.tracking.

A real ``mlflow server`` runs on 127.0.0.1 with its backend store in a database of the test
PostgreSQL server and its artefacts in a temporary folder (the shared path of the recipe). Two
separate processes, the "nodes", each log a run (parameters, a metric history, an artefact) to
``http://127.0.0.1:PORT`` as a catalog ``mlflow_tracking`` dataset with that ``url:`` makes
ecowatch do. The test then reads both runs back through the server, and checks that the rows
are in PostgreSQL and the files under the artefact root.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.tracking.mlflow_node import EXPERIMENT

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120
NODES = ("node-a", "node-b")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1", NO_PROXY="127.0.0.1,localhost",
               no_proxy="127.0.0.1,localhost", PYTHONPATH=str(REPO))
    return env


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def mlflow_server(postgres_server, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """``mlflow server`` on a free port: (tracking URL, backend store URI, artefact root)."""
    backend = postgres_server.new_database("mlflow")
    artifacts = tmp_path / "shared" / "mlartifacts"
    port = _free_port()
    log_path = tmp_path / "mlflow-server.log"
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
               "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1"]
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=_environment(), cwd=tmp_path,
                                  start_new_session=True)  # its own process group: the workers stop with it
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
                pytest.fail(f"mlflow server did not come up on {url} (exit {server.poll()}):\n{tail}")
            time.sleep(0.5)
        yield url, backend, artifacts
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)


def test_two_nodes_log_to_a_shared_server_with_a_postgresql_backend(mlflow_server, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.artifacts import download_artifacts
    from mlflow.tracking import MlflowClient

    url, backend, artifacts = mlflow_server
    run_ids = {}
    # one after the other: the first node creates the experiment. (Nodes that both find it missing
    # at the same moment both try to create it, and the second gets RESOURCE_ALREADY_EXISTS.)
    for node in NODES:
        done = subprocess.run([sys.executable, "-m", "tests.tracking.mlflow_node", url, node, str(tmp_path / node)],
                              capture_output=True, text=True, env=_environment(), cwd=REPO, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        run_ids[node] = done.stdout.strip().splitlines()[-1]

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    client = MlflowClient(tracking_uri=url)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None and experiment.artifact_location.startswith("mlflow-artifacts:")
    found = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}
    assert sorted(found) == [f"nightly-{node}" for node in NODES]
    for node in NODES:
        run = found[f"nightly-{node}"]
        assert run.info.run_id == run_ids[node] and run.info.status == "FINISHED"
        assert run.data.params == {"node": node, "dump": f"cards_{node}"}
        assert run.data.tags["ecowatch.node"] == node
        history = client.get_metric_history(run.info.run_id, "ingest.files_seen")
        assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [(0, 10.0), (1, 20.0), (2, 30.0)]
        assert [a.path for a in client.list_artifacts(run.info.run_id, "tables")] == ["tables/counts.csv"]
        local = download_artifacts(run_id=run.info.run_id, artifact_path="tables/counts.csv",
                                   dst_path=str(tmp_path / "downloads" / node), tracking_uri=url)
        assert Path(local).read_text(encoding="utf-8") == f"node,media\n{node},{len(node) * 10}\n"

    # the server kept the runs in PostgreSQL and the files under the shared artefact root
    engine = sa.create_engine(backend)
    with engine.connect() as conn:
        stored = set(conn.execute(sa.text("SELECT run_uuid FROM runs WHERE status = 'FINISHED'")).scalars())
    engine.dispose()
    assert stored == set(run_ids.values())
    on_disk = sorted(p.relative_to(artifacts).parts for p in artifacts.rglob("counts.csv"))
    assert on_disk == sorted((experiment.experiment_id, run_ids[n], "artifacts", "tables", "counts.csv") for n in NODES)
