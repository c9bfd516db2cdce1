"""Fine-tuning from a checkpoint (``train_classifier(init_from=...)``): whole network, or backbone only."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ecowatch.classify.backbones import build_backbone
from ecowatch.classify.checkpoint import save_classifier
from ecowatch.classify.openset import OpenSetCalibration
from ecowatch.classify.task import SpeciesClassificationTask, load_initial_weights
from ecowatch.classify.taxonomy import ClassTaxonomy
from ecowatch.classify.transforms import Preprocessing
from ecowatch.errors import ConfigError
from ecowatch.tables import Taxon

TAXA = {t: Taxon(t, t.replace("_", " ").capitalize(), "species", "", "") for t in ("a_a", "b_b", "c_c")}


def _checkpoint(tmp_path: Path, classes: tuple[str, ...], backbone: str = "mobilenet_v3_small") -> Path:
    torch.manual_seed(1)
    taxonomy = ClassTaxonomy.from_taxa(TAXA, classes)
    network = build_backbone(backbone, len(classes), pretrained=False)
    return save_classifier(tmp_path / f"{backbone}-{len(classes)}.ckpt", network=network, model_name="m",
                           backbone=backbone, taxonomy=taxonomy, preprocessing=Preprocessing(input_size=32),
                           temperature=1.0, open_set=OpenSetCalibration("energy", 0.0, 1.0, 0.95))


def _state(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in network.state_dict().items()}


def test_same_classes_copy_every_weight(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path, ("a_a", "b_b"))
    source = torch.load(path, weights_only=True)["state_dict"]
    torch.manual_seed(2)
    network = build_backbone("mobilenet_v3_small", 2, pretrained=False)
    assert load_initial_weights(network, path, backbone="mobilenet_v3_small", class_ids=("a_a", "b_b")) == "full"
    assert all(torch.equal(v, source[k]) for k, v in network.state_dict().items())


def test_other_classes_copy_the_backbone_and_keep_a_new_head(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path, ("a_a", "b_b"))
    source = torch.load(path, weights_only=True)["state_dict"]
    task = SpeciesClassificationTask(backbone="mobilenet_v3_small",
                                     taxonomy=ClassTaxonomy.from_taxa(TAXA, ("a_a", "b_b", "c_c")).to_record(),
                                     pretrained=False, init_from=str(path))
    state = task.model.state_dict()
    head = [k for k in state if k.startswith("classifier.3.")]
    assert head and state["classifier.3.weight"].shape[0] == 3
    assert all(torch.equal(v, source[k]) for k, v in state.items() if k not in head)
    # same number of classes, other species: the head is not copied either
    reordered = _state(build_backbone("mobilenet_v3_small", 2, pretrained=False))
    network = build_backbone("mobilenet_v3_small", 2, pretrained=False)
    network.load_state_dict(reordered)
    assert load_initial_weights(network, path, backbone="mobilenet_v3_small", class_ids=("b_b", "a_a")) == "backbone"
    assert torch.equal(network.state_dict()["classifier.3.weight"], reordered["classifier.3.weight"])


def test_another_backbone_is_refused(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path, ("a_a", "b_b"), backbone="mobilenet_v3_small")
    with pytest.raises(ConfigError, match=r"cannot fine-tune a resnet18 from .*mobilenet_v3_small; train from scratch"):
        load_initial_weights(build_backbone("resnet18", 2, pretrained=False), path, backbone="resnet18",
                             class_ids=("a_a", "b_b"))
