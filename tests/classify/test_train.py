"""Training end to end: ``ecowatch train classifier`` on the tiny dump (two steps), MLflow and the registry."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from ecowatch.classify.checkpoint import load_classifier
from ecowatch.classify.config import load_classifier_config
from ecowatch.classify.openset import OPEN_SET_METHODS
from ecowatch.errors import ConfigError
from pipelines.train import train_group

from .data import write_training_project

REPO = Path(__file__).resolve().parents[2]


def test_training_result_carries_checkpoint_and_figures(tiny_classifier) -> None:
    result = tiny_classifier
    assert result.checkpoint.is_file() and result.checkpoint.name == f"tiny-species-{result.model_version}.ckpt"
    loaded = load_classifier(result.checkpoint)
    assert loaded.taxonomy.class_ids == result.taxonomy.class_ids and loaded.temperature == result.temperature
    assert loaded.preprocessing.input_size == 32 and loaded.backbone == "mobilenet_v3_small"
    assert set(result.split.train).isdisjoint(result.split.val + result.split.test)
    assert result.crops["train"] > 0 and result.crops["val"] > 0
    metrics = result.metrics()
    for key in ("val.top1", "val.macro_f1", "val.ece_before", "val.ece_after", "temperature", "train.images_per_s"):
        assert key in metrics and math.isfinite(metrics[key])
    assert metrics["val.nll_after"] <= metrics["val.nll_before"] + 1e-9  # the temperature never worsens val NLL


def test_evaluation_outputs_with_test_time_flip_average_each_crop_and_its_mirror_image() -> None:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from ecowatch.classify.backbones import build_backbone
    from ecowatch.classify.openset import embeddings_and_logits
    from ecowatch.classify.train import _outputs

    torch.manual_seed(0)
    network = build_backbone("resnet18_half", 4, pretrained=False).eval()
    images = torch.randn(7, 3, 32, 32)
    loader = DataLoader(TensorDataset(images, torch.zeros(7)), batch_size=3)
    embeddings, logits = _outputs(network, loader, torch.device("cpu"), flip=True)
    with torch.no_grad():
        e_plain, l_plain = embeddings_and_logits(network, images)
        e_mirror, l_mirror = embeddings_and_logits(network, torch.flip(images, dims=[3]))
    assert torch.allclose(logits, (l_plain + l_mirror) / 2, atol=1e-5)
    assert torch.allclose(embeddings, (e_plain + e_mirror) / 2, atol=1e-5)
    assert not torch.allclose(logits, l_plain, atol=1e-3)
    single = _outputs(network, loader, torch.device("cpu"))
    assert torch.allclose(single[1], l_plain, atol=1e-5) and torch.allclose(single[0], e_plain, atol=1e-5)
    empty = _outputs(network, DataLoader(TensorDataset(images[:0], torch.zeros(0)), batch_size=3), torch.device("cpu"),
                     flip=True)
    assert empty[0].shape == (0, 256) and empty[1].shape == (0, 4)


def test_cli_trains_logs_and_registers(tiny_dump: Path, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from ecowatch.tracking import tracking_target

    conf = write_training_project(tmp_path / "project", tiny_dump)
    held_out = "sciurus_carolinensis"  # seen at the tiny dump's validation site (its AUROC needs some)
    result = CliRunner().invoke(train_group, ["classifier", "--config", str(conf), "--set", "train.max_steps=2",
                                                     "--set", f"data.holdout_species=[{held_out}]",
                                                     "--set", "open_set.method=auto",
                                                     "--set", "train.resize_from=16"])  # progressive resizing
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "registered: models:/ecowatch-species/1 (alias challenger)" in result.output
    target = tracking_target(str(tmp_path / "project" / "work" / "mlflow" / "mlflow.db"))
    client = MlflowClient(tracking_uri=target.tracking_uri)
    version = client.get_model_version_by_alias("ecowatch-species", "challenger")
    run = client.get_run(version.run_id)
    assert run.info.status == "FINISHED"
    for key in ("val.top1", "val.macro_f1", "val.ece_before", "val.ece_after", "test.top1", "val.unknown_auroc"):
        assert key in run.data.metrics, key
    assert any(k.startswith("test.recall.") for k in run.data.metrics)
    assert {f"val.unknown_auroc.{m}" for m in ("energy", "max_logit", "msp")} <= set(run.data.metrics)
    m = run.data.metrics  # intervals over resampled validation sites hold the figure
    assert m["val.macro_f1_low"] <= m["val.macro_f1"] <= m["val.macro_f1_high"]
    assert m["val.unknown_auroc_low"] <= m["val.unknown_auroc"] <= m["val.unknown_auroc_high"]
    assert held_out not in run.data.params["classes"]
    assert run.data.params["train.resize_from"] == "16"
    # the shrunk project trains mobilenet_v3_small on the CPU: float32 whatever the CPU (depthwise convolutions)
    assert run.data.params["train.precision"] == "auto" and run.data.params["train.precision_used"] == "32-true"
    artefacts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert {"evaluation/confusion_val.png", "evaluation/confusion_test.png", "evaluation/evaluation.json"} <= artefacts
    checkpoints = list((tmp_path / "project" / "work" / "models" / "classifiers").glob("*.ckpt"))
    assert len(checkpoints) == 1 and version.tags["model_version"] in checkpoints[0].name
    loaded = load_classifier(checkpoints[0])
    assert loaded.taxonomy.class_ids == tuple(run.data.params["classes"].split(","))
    # open_set.method auto: the method with the best AUROC on the held-out species at validation sites
    by_method = {m: run.data.metrics[f"val.unknown_auroc.{m}"] for m in OPEN_SET_METHODS}
    assert loaded.open_set.method == max(by_method, key=lambda m: (by_method[m], -OPEN_SET_METHODS.index(m)))
    assert run.data.tags["ecowatch.open_set_method"] == loaded.open_set.method


def test_shipped_config_loads_and_errors_name_the_key(tiny_dump: Path, tmp_path: Path) -> None:
    loaded = load_classifier_config(REPO / "conf" / "classifier.yaml")
    assert loaded.config.model.backbone in ("resnet18_half", "resnet18", "mobilenet_v3_small", "regnet_y_400mf")
    conf = write_training_project(tmp_path / "p", tiny_dump)
    with pytest.raises(ConfigError, match=r"train\.max_epoch: unknown key"):
        load_classifier_config(conf, overrides={"train.max_epoch": 3})
    with pytest.raises(ConfigError, match=r"model\.backbone: .*not registered"):
        load_classifier_config(conf, overrides={"model.backbone": "vgg11"})
    with pytest.raises(ConfigError, match=r"input_size \(256\) must not exceed crop_size"):
        load_classifier_config(conf, overrides={"data.input_size": 256})
    with pytest.raises(ConfigError, match=r"data\.eval_zoom: .*less than or equal to 1"):
        load_classifier_config(conf, overrides={"data.eval_zoom": 1.5})
    with pytest.raises(ConfigError, match=r"datasets\.labels: 'nope' is not in the catalog"):
        load_classifier_config(conf, overrides={"datasets.labels": "nope"})
