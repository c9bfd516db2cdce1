"""Preprocessing and augmentation shapes; location splits; class-balanced sampling."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from ecowatch.classify.crops import CropCache, CropGeometry
from ecowatch.classify.datamodule import ClassifierDataModule, LabelledCrop, balanced_weights
from ecowatch.classify.split import split_locations
from ecowatch.classify.taxonomy import ClassTaxonomy
from ecowatch.classify.transforms import (
    Preprocessing,
    eval_transform,
    grey_level_percentiles,
    stretch_contrast,
    train_transform,
)
from ecowatch.errors import ConfigError


def test_transforms_give_normalised_tensors_of_the_input_size() -> None:
    pre = Preprocessing(geometry=CropGeometry(crop_size=48), input_size=32)
    crop = np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8)
    for transform in (eval_transform(pre), train_transform(pre)):
        out = transform(image=crop)["image"]
        assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    evaluated = eval_transform(pre)
    assert torch.equal(evaluated(image=crop)["image"], evaluated(image=crop)["image"])  # no randomness at eval
    assert Preprocessing.from_record(pre.to_record()) == pre
    older = pre.to_record()
    del older["geometry"]["max_aspect"]  # a checkpoint from before elongated windows: square crops
    assert Preprocessing.from_record(older) == pre and pre.geometry.max_aspect == 1.0
    with pytest.raises(ValueError, match="input_size 64 is larger than crop_size 48"):
        Preprocessing(geometry=CropGeometry(crop_size=48), input_size=64)


def test_eval_zoom_shows_the_network_the_centre_of_the_crop() -> None:
    import cv2

    rng = np.random.default_rng(3)
    crop = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    crop[:, :6] = 0  # a dark rim outside the centre 90 %: it must not reach the stretch
    whole = Preprocessing(geometry=CropGeometry(crop_size=128), input_size=96)
    zoomed = Preprocessing(geometry=CropGeometry(crop_size=128), input_size=96, eval_zoom=0.9)
    centre = crop[6:121, 6:121]  # round(128 * 0.9) = 115 px, centred
    expected = cv2.resize(stretch_contrast(centre), (96, 96), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    expected = (expected - np.array(zoomed.mean, np.float32)) / np.array(zoomed.std, np.float32)
    got = eval_transform(zoomed)(image=crop)["image"]
    assert np.allclose(got.permute(1, 2, 0).numpy(), expected, atol=1e-5)
    assert not torch.allclose(eval_transform(whole)(image=crop)["image"], got, atol=1e-2)
    older = zoomed.to_record()
    del older["eval_zoom"]  # a checkpoint from before the field: the whole crop, as it was evaluated
    assert Preprocessing.from_record(older) == whole and Preprocessing.from_record(zoomed.to_record()) == zoomed
    with pytest.raises(ValueError, match="eval_zoom 0.3 must be within 0.5..1"):
        Preprocessing(geometry=CropGeometry(crop_size=128), input_size=96, eval_zoom=0.3)


def test_contrast_stretch_spreads_dark_crops_and_spares_flat_ones() -> None:
    dark = np.random.default_rng(0).integers(10, 40, (32, 32, 3), dtype=np.uint8)
    stretched = stretch_contrast(dark)
    assert stretched.min() == 0 and stretched.max() >= 250
    flat = np.full((32, 32, 3), 20, dtype=np.uint8)
    flat[0, 0] = 24
    assert stretch_contrast(flat).max() < 100  # a near-flat crop is not blown up into noise


def test_histogram_percentiles_are_numpys_bit_for_bit() -> None:
    rng = np.random.default_rng(1)
    for i in range(400):
        h, w = (int(v) for v in rng.integers(1, 130, 2))
        if i % 3 == 0:
            image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        elif i % 3 == 1:  # dark, narrow histograms, as infrared crops at night
            image = np.clip(rng.normal(rng.uniform(0, 255), rng.uniform(0, 30), (h, w, 3)), 0, 255).astype(np.uint8)
        else:
            image = np.full((h, w, 3), int(rng.integers(0, 256)), dtype=np.uint8)
        q = (1.0, 99.0) if i % 2 else tuple(rng.uniform(0, 100, 3))
        assert np.array_equal(grey_level_percentiles(image, q), np.percentile(image, q)), (image.shape, q)
        lo, hi = np.percentile(image, (1.0, 99.0))  # the stretch as it was first written: same bytes
        lut = np.clip((np.arange(256, dtype=np.float32) - lo) * (255.0 / max(float(hi - lo), 12.0)), 0, 255)
        assert np.array_equal(stretch_contrast(image), lut.astype(np.uint8)[image])


def _counts(spec: dict[str, dict[str, int]]) -> dict[str, Counter]:
    return {loc: Counter(classes) for loc, classes in spec.items()}


def test_location_split_is_disjoint_seeded_and_keeps_every_class_in_training() -> None:
    counts = _counts({f"L{i}": {"a": 10 + i, "b": 5, **({"rare": 2} if i in (3, 7) else {})} for i in range(10)})
    split = split_locations(counts, val_fraction=0.2, test_fraction=0.2, seed=1)
    parts = [set(split.train), set(split.val), set(split.test)]
    assert all(parts) and set.union(*parts) == set(counts)
    assert sum(len(p) for p in parts) == len(counts)  # disjoint
    assert any(loc in split.train for loc in ("L3", "L7"))  # the rare class is in training
    assert split_locations(counts, val_fraction=0.2, test_fraction=0.2, seed=1) == split
    forced = split_locations(counts, val_fraction=0.2, test_fraction=0.2, seed=1, test_locations=["L0"])
    assert forced.test == ("L0",) and "L0" not in forced.train + forced.val


def test_location_split_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="cannot make disjoint"):
        split_locations(_counts({"A": {"a": 1}, "B": {"a": 1}}), val_fraction=0.2, test_fraction=0.2, seed=0)
    with pytest.raises(ConfigError, match=r"split.test_locations: \['Z'\] have no labelled crops"):
        split_locations(_counts({"A": {"a": 1}, "B": {"a": 1}, "C": {"a": 1}}), val_fraction=0.2, test_fraction=0.2,
                        seed=0, test_locations=["Z"])


def test_balanced_sampler_draws_classes_equally_often(tiny_sources: list, tiny_taxa: dict, tmp_path: Path) -> None:
    weights = balanced_weights([0] * 90 + [1] * 10, power=1.0)
    assert weights[:90].sum() == pytest.approx(weights[90:].sum())
    pre = Preprocessing(geometry=CropGeometry(crop_size=40), input_size=32)
    paths = CropCache(tmp_path, pre.geometry).build(tiny_sources)
    crops = [LabelledCrop(s.crop_id, p, s.taxon_id, s.location_id, s.deployment_id)
             for s, p in zip(tiny_sources, paths)]
    locations = sorted({c.location_id for c in crops})
    from ecowatch.classify.split import LocationSplit

    split = LocationSplit(tuple(locations), (), ())  # every location trains: enough crops to count draws
    taxonomy = ClassTaxonomy.from_taxa(tiny_taxa, sorted({c.taxon_id for c in crops}))
    dm = ClassifierDataModule(crops, taxonomy=taxonomy, split=split, preprocessing=pre, batch_size=len(crops),
                              balance_power=1.0, seed=0, preload=False)
    sampler = dm.train_dataloader().sampler
    labels = dm.datasets["train"].labels
    draws = Counter(labels[i] for _ in range(40) for i in sampler)
    shares = np.array([draws[k] for k in set(labels)]) / sum(draws.values())
    assert shares.max() - shares.min() < 0.08  # as often as each other, however rare in the data
    images, targets = next(iter(dm.train_dataloader()))
    assert images.shape == (len(crops), 3, 32, 32) and targets.dtype == torch.int64


def test_datamodule_splits_by_location_and_sets_held_out_species_apart(tiny_sources: list, tiny_taxa: dict,
                                                                         tmp_path: Path) -> None:
    pre = Preprocessing(geometry=CropGeometry(crop_size=40), input_size=32)
    paths = CropCache(tmp_path, pre.geometry).build(tiny_sources)
    crops = [LabelledCrop(s.crop_id, p, s.taxon_id, s.location_id, s.deployment_id)
             for s, p in zip(tiny_sources, paths)]
    held_out = Counter(c.taxon_id for c in crops).most_common()[1][0]
    counts: dict[str, Counter] = {}
    for c in crops:
        counts.setdefault(c.location_id, Counter())[c.taxon_id] += c.taxon_id != held_out
    split = split_locations(counts, val_fraction=0.25, test_fraction=0.25, seed=0)
    taxonomy = ClassTaxonomy.from_taxa(tiny_taxa, sorted({c.taxon_id for c in crops} - {held_out}))
    dm = ClassifierDataModule(crops, taxonomy=taxonomy, split=split, preprocessing=pre, preload=False)
    dm.setup()
    seen = {name: {c.location_id for c in dm.members(name)} for name in ("train", "val", "test")}
    assert seen["train"].isdisjoint(seen["val"]) and seen["train"].isdisjoint(seen["test"])
    assert seen["val"].isdisjoint(seen["test"])
    deployments = {name: {c.deployment_id for c in dm.members(name)} for name in ("train", "val", "test")}
    assert deployments["train"].isdisjoint(deployments["val"] | deployments["test"])
    assert all(c.taxon_id != held_out for name in ("train", "val", "test") for c in dm.members(name))
    unknown = dm.members("unknown_val") + dm.members("unknown_test")
    assert all(c.taxon_id == held_out for c in unknown)
    assert set(dm.datasets["unknown_test"].labels) <= {-1}


def test_augmentation_is_seeded_and_differs_between_workers() -> None:
    """albumentations ignores global seeds: the pipeline's own seed makes runs repeat, per worker."""
    from torch.utils.data import DataLoader

    from ecowatch.classify.datamodule import CropDataset

    pre = Preprocessing(geometry=CropGeometry(48, 0.15), input_size=32, autocontrast=False)
    image = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)

    def batches() -> list[torch.Tensor]:
        torch.manual_seed(7)
        data = CropDataset([LabelledCrop(f"c{i}", Path("unused"), "a", "L", "D") for i in range(8)], [0] * 8,
                           train_transform(pre))
        data._pixels = [image] * 8  # the same crop eight times
        loader = DataLoader(data, batch_size=4, num_workers=2, generator=torch.Generator().manual_seed(7))
        return [images for images, _ in loader]

    first, second = batches(), batches()
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))  # the same run twice
    assert not torch.equal(first[0], first[1])  # worker 0 and worker 1 do not repeat each other
