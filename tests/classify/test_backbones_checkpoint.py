"""Backbone registry (every entry builds; bf16 training on CPUs with bf16 units), local-only ImageNet weights, standalone
checkpoints (and their float16 copies)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from ecowatch.classify.backbones import BACKBONES, build_backbone, weights_filename
from ecowatch.classify.checkpoint import checkpoint_version, compact_classifier, load_classifier, save_classifier
from ecowatch.classify.crops import CropGeometry
from ecowatch.classify.openset import OpenSetCalibration, embedding_bank, embedding_layer, embeddings_and_logits
from ecowatch.classify.taxonomy import ClassTaxonomy
from ecowatch.classify.transforms import Preprocessing
from ecowatch.errors import ConfigError, ModelNotFoundError


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_registered_backbone_builds_with_its_head(name: str) -> None:
    entry = BACKBONES[name]
    assert entry.target in ("cpu", "gpu")
    assert weights_filename(name).endswith(".pth") if entry.weights else weights_filename(name) is None
    if entry.target == "gpu":  # shapes only, on the meta device: the large backbones build in milliseconds
        with torch.device("meta"):
            model = build_backbone(name, 7, pretrained=False).eval()
            embeddings, logits = embeddings_and_logits(model, torch.zeros(2, 3, entry.input_size, entry.input_size))
    else:
        torch.manual_seed(0)
        with torch.no_grad():
            model = build_backbone(name, 7, pretrained=False).eval()
            embeddings, logits = embeddings_and_logits(model, torch.zeros(2, 3, 32, 32))
    assert logits.shape == (2, 7)
    # the knn open-set score's embedding: the pooled image features entering the head
    assert embeddings.shape == (2, embedding_layer(model).in_features) and embeddings.shape[1] >= 256


def test_resnet18_at_half_width_is_torchvisions_resnet18_with_half_the_channels(
        caplog: pytest.LogCaptureFixture) -> None:
    import torchvision

    full = torchvision.models.resnet18(num_classes=7)
    with caplog.at_level(logging.WARNING, logger="ecowatch.classify.backbones"):
        half = build_backbone("resnet18_half", 7, pretrained=True)  # no published weights: random, said so
    assert "no ImageNet weights are published" in caplog.text
    assert type(half) is type(full) and [type(m) for m in half.modules()] == [type(m) for m in full.modules()]
    for (name, p_half), (_, p_full) in zip(half.named_parameters(), full.named_parameters(), strict=True):
        if p_full.dim() == 4:  # every convolution has half the filters (the stem's 3 input channels stay)
            assert p_half.shape[0] * 2 == p_full.shape[0], name
            assert p_half.shape[1] * (1 if p_full.shape[1] == 3 else 2) == p_full.shape[1], name
    assert half.fc.in_features == 256 and half.fc.out_features == 7
    n_half, n_full = (sum(p.numel() for p in m.parameters()) for m in (half, full))
    assert 0.24 < n_half / n_full < 0.26  # a quarter of the weights (and of the multiply-adds)
    stds = [m.weight.std().item() for m in half.modules() if isinstance(m, torch.nn.Conv2d)]
    fan_out = [m.weight[0].numel() // m.in_channels * m.out_channels for m in half.modules()
               if isinstance(m, torch.nn.Conv2d)]
    for std, fan in zip(stds, fan_out, strict=True):  # torchvision's Kaiming (fan-out) initialisation
        assert std == pytest.approx((2 / fan) ** 0.5, rel=0.25)


@pytest.mark.parametrize("units", ["amx", "avx512_bf16"])
def test_auto_precision_on_a_cpu_is_bf16_only_for_dense_backbones_with_bf16_units(
        monkeypatch: pytest.MonkeyPatch, units: str) -> None:
    from ecowatch.classify import train

    monkeypatch.setattr(train.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(train, "cpu_bf16_units", lambda: units)
    assert train.resolve_precision("auto", "cpu", "resnet18") == "bf16-mixed"
    assert train.resolve_precision("auto", "cpu", "mobilenet_v3_small") == "32-true"  # depthwise: slower in bf16
    assert train.resolve_precision("auto", "cpu") == "32-true"
    assert train.resolve_precision("32-true", "cpu", "resnet18") == "32-true"  # an explicit precision is kept
    monkeypatch.setattr(train, "cpu_bf16_units", lambda: None)
    assert train.resolve_precision("auto", "cpu", "resnet18") == "32-true"
    assert train.resolve_precision("auto", "auto", "resnet18") == "32-true"  # no GPU: the CPU rule


def test_cpu_bf16_units_follow_torchs_cpu_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    from ecowatch.classify import backbones

    assert backbones.cpu_bf16_units() in (None, "amx", "avx512_bf16")  # this machine, whatever it is
    names = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    probes = dict.fromkeys(names, False)
    for name in names:
        monkeypatch.setattr(backbones.torch.cpu, name, lambda name=name: probes[name], raising=False)
    assert backbones.cpu_bf16_units() is None
    probes["_is_avx512_bf16_supported"] = True  # AMD EPYC Zen 4
    assert backbones.cpu_bf16_units() == "avx512_bf16"
    probes["_is_amx_tile_supported"] = True  # Sapphire Rapids has both: AMX is the one that counts
    assert backbones.cpu_bf16_units() == "amx"
    monkeypatch.delattr(backbones.torch.cpu, "_is_amx_tile_supported")  # an older torch without the probe
    assert backbones.cpu_bf16_units() == "avx512_bf16"


def test_imagenet_weights_come_from_the_local_cache_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import torchvision

    reference = torchvision.models.mobilenet_v3_small(weights=None)  # stands in for the ImageNet file
    torch.save(reference.state_dict(), tmp_path / weights_filename("mobilenet_v3_small"))
    loaded = build_backbone("mobilenet_v3_small", 3, pretrained=True, weights_dir=tmp_path)
    assert torch.equal(loaded.features[0][0].weight, reference.features[0][0].weight)
    assert loaded.classifier[-1].out_features == 3
    with caplog.at_level(logging.WARNING, logger="ecowatch.classify.backbones"):
        build_backbone("mobilenet_v3_small", 3, pretrained=True, weights_dir=tmp_path / "empty")
    assert "no ImageNet weights" in caplog.text and "Nothing is downloaded" in caplog.text
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / weights_filename("mobilenet_v3_small")).write_bytes(b"junk")
    with pytest.raises(ModelNotFoundError, match="cannot be loaded"):
        build_backbone("mobilenet_v3_small", 3, pretrained=True, weights_dir=tmp_path / "bad")
    with pytest.raises(ConfigError, match="not registered; choose one of"):
        build_backbone("resnet1000", 3)


def test_checkpoint_round_trip_needs_only_the_file(tiny_taxa: dict, tmp_path: Path) -> None:
    classes = ["vulpes_vulpes", "meles_meles", "sus_scrofa"]
    taxonomy = ClassTaxonomy.from_taxa(tiny_taxa, classes)
    torch.manual_seed(0)
    network = build_backbone("mobilenet_v3_small", len(classes), pretrained=False).eval()
    pre = Preprocessing(geometry=CropGeometry(crop_size=40, padding=0.2), input_size=32)
    open_set = OpenSetCalibration("energy", threshold=-2.5, scale=0.7, known_recall=0.95)
    path = save_classifier(tmp_path / "m.ckpt", network=network, model_name="tiny", backbone="mobilenet_v3_small",
                           taxonomy=taxonomy, preprocessing=pre, temperature=1.7, open_set=open_set,
                           metrics={"test.top1": 0.5})
    loaded = load_classifier(path)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        expected = network(x)
    probs, unknown, logits = loaded.scores(x)
    assert torch.equal(logits, expected)  # identical outputs
    assert torch.allclose(probs, torch.softmax(expected / 1.7, dim=1))
    assert torch.allclose(unknown, open_set.unknown_score(expected).float())
    assert loaded.taxonomy == taxonomy and loaded.preprocessing == pre and loaded.temperature == 1.7
    assert loaded.taxonomy.taxa["canidae"].rank == "family"  # ancestors travel with the classes
    assert loaded.open_set == open_set and loaded.metrics == {"test.top1": 0.5}
    assert loaded.version == checkpoint_version(path) and len(loaded.version) == 16
    assert not loaded.network.training


def test_a_test_time_flip_checkpoint_scores_each_crop_with_its_mirror_image(tiny_taxa: dict, tmp_path: Path) -> None:
    classes = ["vulpes_vulpes", "meles_meles", "sus_scrofa"]
    torch.manual_seed(0)
    network = build_backbone("resnet18_half", len(classes), pretrained=False).eval()
    train = torch.randn(12, 3, 32, 32)
    with torch.no_grad():
        plain, _ = embeddings_and_logits(network, train)
        mirrored, _ = embeddings_and_logits(network, torch.flip(train, dims=[3]))
    bank = embedding_bank((plain + mirrored) / 2, torch.arange(3).repeat(4), per_class=4).half().float()
    common = {"network": network, "model_name": "tiny", "backbone": "resnet18_half",
              "taxonomy": ClassTaxonomy.from_taxa(tiny_taxa, classes),
              "preprocessing": Preprocessing(geometry=CropGeometry(crop_size=40, padding=0.2), input_size=32),
              "temperature": 1.5, "open_set": OpenSetCalibration("knn", -0.9, 0.05, 0.95, k=1, bank=bank)}
    flipped = load_classifier(save_classifier(tmp_path / "flip.ckpt", test_time_flip=True, **common))
    single = load_classifier(save_classifier(tmp_path / "one.ckpt", **common))
    assert flipped.test_time_flip and not single.test_time_flip
    x = train[:5]
    with torch.no_grad():
        expected = (network(x) + network(torch.flip(x, dims=[3]))) / 2
    probs, unknown, logits = flipped.scores(x)
    assert torch.allclose(logits, expected, atol=1e-5)  # the mean of the crop's and its mirror image's logits
    assert torch.allclose(probs, torch.softmax(expected / 1.5, dim=1), atol=1e-6)
    # the knn score takes the averaged embedding: each crop is its own bank entry (cos 1), as trained
    expected_unknown = torch.sigmoid(torch.tensor((-1.0 + 0.9) / 0.05)).repeat(5)
    assert unknown.tolist() == pytest.approx(expected_unknown.tolist(), abs=1e-3)
    assert not torch.allclose(single.scores(x)[2], logits, atol=1e-3)  # without the flag: one pass, other logits
    record = torch.load(tmp_path / "flip.ckpt", weights_only=True)
    del record["test_time_flip"]  # a checkpoint written before the flag: one pass per crop
    torch.save(record, tmp_path / "older.ckpt")
    assert not load_classifier(tmp_path / "older.ckpt").test_time_flip


def test_a_compact_copy_halves_the_file_and_scores_alike(tiny_taxa: dict, tmp_path: Path) -> None:
    classes = ["vulpes_vulpes", "meles_meles", "sus_scrofa"]
    torch.manual_seed(0)
    network = build_backbone("resnet18", len(classes), pretrained=False).eval()
    path = save_classifier(tmp_path / "m.ckpt", network=network, model_name="tiny", backbone="resnet18",
                           taxonomy=ClassTaxonomy.from_taxa(tiny_taxa, classes),
                           preprocessing=Preprocessing(geometry=CropGeometry(crop_size=40, padding=0.2), input_size=32),
                           temperature=1.5, open_set=OpenSetCalibration("energy", -2.5, 0.7, 0.95))
    compact = compact_classifier(path, tmp_path / "bundled" / "m16.ckpt")
    assert compact.stat().st_size < 0.55 * path.stat().st_size
    record = torch.load(compact, weights_only=True)
    assert record["weights_dtype"] == "float16" and record["state_dict"]["fc.weight"].dtype == torch.float16
    assert record["state_dict"]["bn1.num_batches_tracked"].dtype == torch.int64  # counters keep their type
    full, half = load_classifier(path), load_classifier(compact)
    assert half.version != full.version and half.network.fc.weight.dtype == torch.float32  # float32 once loaded
    x = torch.randn(8, 3, 32, 32)
    (p_full, u_full, l_full), (p_half, u_half, l_half) = full.scores(x), half.scores(x)
    assert not torch.equal(l_full, l_half)  # the weights were rounded ...
    assert torch.allclose(p_full, p_half, atol=1e-3) and torch.allclose(u_full, u_half, atol=1e-3)  # ... barely
    assert half.taxonomy == full.taxonomy and half.open_set == full.open_set and half.temperature == 1.5
    (tmp_path / "junk.ckpt").write_bytes(b"junk")
    with pytest.raises(ModelNotFoundError):
        compact_classifier(tmp_path / "junk.ckpt", tmp_path / "out.ckpt")
    assert not (tmp_path / "out.ckpt").exists()


def test_a_knn_checkpoint_carries_its_embedding_bank_and_class_biases(tiny_taxa: dict, tmp_path: Path) -> None:
    classes = ["vulpes_vulpes", "meles_meles", "sus_scrofa"]
    torch.manual_seed(0)
    network = build_backbone("mobilenet_v3_small", len(classes), pretrained=False).eval()
    train = torch.randn(12, 3, 32, 32)
    with torch.no_grad():
        embeddings, _ = embeddings_and_logits(network, train)
    bank = embedding_bank(embeddings, torch.arange(3).repeat(4), per_class=4).half().float()  # float16 exactly
    open_set = OpenSetCalibration("knn", threshold=-0.9, scale=0.05, known_recall=0.95, k=1, bank=bank)
    path = save_classifier(tmp_path / "m.ckpt", network=network, model_name="tiny", backbone="mobilenet_v3_small",
                           taxonomy=ClassTaxonomy.from_taxa(tiny_taxa, classes),
                           preprocessing=Preprocessing(geometry=CropGeometry(crop_size=40, padding=0.2), input_size=32),
                           temperature=2.0, open_set=open_set, class_bias=torch.tensor([0.5, -0.25, -0.25]))
    loaded = load_classifier(path)
    assert loaded.open_set == open_set and loaded.open_set.bank.dtype == torch.float32
    probs, unknown, logits = loaded.scores(train[:3])
    assert torch.allclose(probs, torch.softmax(logits / 2.0 + torch.tensor([0.5, -0.25, -0.25]), dim=1))
    with torch.no_grad():
        assert torch.allclose(unknown, open_set.unknown_score(logits, embeddings[:3]).float())
    assert unknown.tolist() == pytest.approx(torch.sigmoid(torch.tensor((-1.0 + 0.9) / 0.05)).repeat(3).tolist(),
                                             abs=1e-3)  # each crop is in the bank: cos 1 to its nearest


def test_loader_refuses_what_is_not_a_classifier_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="not found"):
        load_classifier(tmp_path / "absent.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelNotFoundError, match="not a readable classifier checkpoint"):
        load_classifier(junk)
    other = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(ModelNotFoundError, match="not an ecowatch species-classifier checkpoint"):
        load_classifier(other)
