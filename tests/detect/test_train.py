"""``ecowatch train detector``: a real (tiny) ultralytics training, tracked and registered in MLflow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ecowatch.detect.network import load_network
from ecowatch.detect.train import ARCHITECTURES, architecture_yaml
from ecowatch.synth import DumpSpec, generate_dump


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "sample"
    generate_dump(out, DumpSpec.preset("tiny", n_frames=40))
    return out


def test_compact_architectures_derive_from_ultralytics_configs(tmp_path: Path) -> None:
    from ultralytics.nn.tasks import DetectionModel

    for name, (_, depth, width, max_channels) in ARCHITECTURES.items():
        path = architecture_yaml(name, tmp_path)
        model = DetectionModel(path, nc=3, verbose=False)
        assert model.yaml["scales"] == {"n": [depth, width, max_channels]}
        assert sum(p.numel() for p in model.parameters()) < 3_000_000
    assert architecture_yaml("yolo11n.yaml", tmp_path) == "yolo11n.yaml"


@pytest.mark.slow
def test_train_detector_cli_logs_registers_and_loads(tiny: Path, project_factory) -> None:
    from mlflow.tracking import MlflowClient

    conf = project_factory(dump=tiny / "dump", deployments=tiny / "deployments.csv",
                           labels=tiny / "coco_camera_traps.json")
    project = conf.parent.parent
    result = subprocess.run(
        [sys.executable, "-m", "ecowatch", "train", "detector", "--config", str(conf), "--imgsz", "96",
         "--epochs", "1", "--batch", "8", "--workers", "0", "--register-as", "tiny-detector", "--alias", "challenger",
         "--out", str(project / "work" / "train")],
        capture_output=True, text=True, cwd=project, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "registered: models:/tiny-detector/1" in result.stdout
    weights = project / "work" / "train" / "train" / "weights" / "best.pt"
    network = load_network(weights)
    assert dict(network.names) == {0: "animal", 1: "person", 2: "vehicle"} and network.trained_imgsz == 96

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'work' / 'mlflow' / 'mlflow.db'}")
    version = client.get_model_version_by_alias("tiny-detector", "challenger")
    run = client.get_run(version.run_id)
    assert run.info.status == "FINISHED" and run.data.params["imgsz"] == "96"
    assert "metrics.mAP50" in run.data.metrics and "train.seconds" in run.data.metrics
    assert {a.path for a in client.list_artifacts(version.run_id)} >= {"weights", "dataset", "results.csv"}
    # ultralytics' own MLflow callback stayed off: the only runs are ecowatch's
    assert [r.info.run_id for r in client.search_runs([run.info.experiment_id])] == [run.info.run_id]
