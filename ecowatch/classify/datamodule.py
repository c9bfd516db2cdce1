"""Labelled crops as Lightning data: datasets, class-balanced sampling, the location split.

:class:`ClassifierDataModule` takes cached crops (see :mod:`ecowatch.classify.crops`) with their
labels and locations, a :class:`~ecowatch.classify.split.LocationSplit` and the known classes. It
serves:

- ``train``: crops of training locations, drawn with a :class:`~torch.utils.data.WeightedRandomSampler`
  whose weight per crop is ``count(class) ** -balance_power`` (1: every class equally often; 0: as
  in the data; 0.5 in between), so rare species are seen often enough without drowning the rest;
- ``val`` / ``test``: crops of known classes at validation / test locations (no augmentation);
- ``unknown_val`` / ``unknown_test``: crops of species that are not classes of the model (held-out
  species) at those locations, for open-set evaluation.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from ecowatch.classify.crops import read_crop
from ecowatch.classify.split import LocationSplit
from ecowatch.classify.taxonomy import ClassTaxonomy
from ecowatch.classify.transforms import Preprocessing, eval_transform, train_transform

SPLITS = ("train", "val", "test", "unknown_val", "unknown_test")


@dataclass(frozen=True)
class LabelledCrop:
    """A cached crop with its label.

    Attributes:
        crop_id: annotation id.
        path: the cached crop file (PNG, crop_size x crop_size, RGB).
        taxon_id: the label.
        location_id: the camera location (unit of the split).
        deployment_id: the camera placement.
    """

    crop_id: str
    path: Path
    taxon_id: str
    location_id: str
    deployment_id: str


class CropDataset(Dataset[tuple[torch.Tensor, int]]):
    """Cached crops through a transform, with integer labels (-1 for crops of no known class).

    Args:
        crops: the crops.
        labels: the class index of each crop (-1: unknown species).
        transform: an albumentations pipeline ending in ``ToTensorV2``.
        preload: decode every crop once into memory (shared with forked DataLoader workers).
    """

    def __init__(self, crops: Sequence[LabelledCrop], labels: Sequence[int], transform: Callable[..., Any],
                 *, preload: bool = False) -> None:
        if len(crops) != len(labels):
            raise ValueError(f"{len(crops)} crops but {len(labels)} labels")
        self.crops = list(crops)
        self.labels = [int(v) for v in labels]
        self.transform = transform
        self._pixels: list[np.ndarray] | None = [read_crop(c.path) for c in self.crops] if preload else None

    def __len__(self) -> int:
        return len(self.crops)

    def with_transform(self, transform: Callable[..., Any]) -> CropDataset:
        """The same crops (and preloaded pixels) through another transform."""
        other = copy.copy(self)
        other.transform = transform
        return other

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        self._seed_transform()
        pixels = self._pixels[index] if self._pixels is not None else read_crop(self.crops[index].path)
        return self.transform(image=pixels)["image"], self.labels[index]

    def _seed_transform(self) -> None:
        """Seed a random pipeline once per DataLoader worker from that worker's torch seed.

        albumentations keeps its own generator: copied into every worker it would repeat the same
        augmentations in each. Torch gives each worker ``base_seed + worker_id`` (the base seed drawn
        from the seeded main process), so this is reproducible and different per worker.
        """
        info = torch.utils.data.get_worker_info()
        key = info.id if info is not None else None
        if getattr(self, "_seeded_for", "unseeded") == key:
            return
        self._seeded_for = key
        if info is not None and hasattr(self.transform, "set_random_seed"):
            self.transform.set_random_seed(info.seed % 2**32)


def balanced_weights(labels: Sequence[int], power: float) -> np.ndarray:
    """Sampling weight of each crop: ``count(its class) ** -power``.

    Args:
        labels: class index per crop.
        power: 0 (sample as in the data) .. 1 (every class equally often).

    Returns:
        ``float64`` weights, one per crop.
    """
    counts = Counter(labels)
    return np.array([counts[label] ** -power for label in labels], dtype=np.float64)


class ClassifierDataModule(L.LightningDataModule):
    """Train/val/test (and unknown-species) crops for a species classifier.

    Args:
        crops: every labelled crop (known and held-out species, every location).
        taxonomy: the model's classes; crops of other taxa are "unknown".
        split: which locations go to train, val, test; crops of other locations are not used.
        preprocessing: crop and input sizes, contrast stretch, normalisation.
        batch_size: crops per batch.
        workers: DataLoader worker processes (0 = in-process).
        balance_power: class balancing of the training sampler (see :func:`balanced_weights`).
        seed: seed of the training sampler.
        preload: keep decoded crops in memory.
        augment_scale: area range of the training random resized crop.
    """

    def __init__(
        self,
        crops: Sequence[LabelledCrop],
        *,
        taxonomy: ClassTaxonomy,
        split: LocationSplit,
        preprocessing: Preprocessing,
        batch_size: int = 64,
        workers: int = 0,
        balance_power: float = 0.5,
        seed: int = 0,
        preload: bool = True,
        augment_scale: tuple[float, float] = (0.55, 1.0),
    ) -> None:
        super().__init__()
        self.crops = list(crops)
        self.taxonomy = taxonomy
        self.split = split
        self.preprocessing = preprocessing
        self.batch_size = batch_size
        self.workers = workers
        self.balance_power = balance_power
        self.seed = seed
        self.preload = preload
        self.augment_scale = augment_scale
        self.datasets: dict[str, CropDataset] = {}

    def members(self, name: str) -> list[LabelledCrop]:
        """The crops of one split (``train``, ``val``, ``test``, ``unknown_val``, ``unknown_test``)."""
        if name not in SPLITS:
            raise ValueError(f"split {name!r} is not one of {SPLITS}")
        known = set(self.taxonomy.class_ids)
        locations = set(getattr(self.split, name.removeprefix("unknown_")))
        want_known = not name.startswith("unknown_")
        return [c for c in self.crops if c.location_id in locations and (c.taxon_id in known) == want_known]

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets (once)."""
        if self.datasets:
            return
        evaluate = eval_transform(self.preprocessing)
        for name in SPLITS:
            members = self.members(name)
            labels = [self.taxonomy.index(c.taxon_id) if not name.startswith("unknown_") else -1 for c in members]
            transform = train_transform(self.preprocessing, scale=self.augment_scale) if name == "train" else evaluate
            self.datasets[name] = CropDataset(members, labels, transform, preload=self.preload)

    def train_dataloader(self) -> DataLoader:
        """Class-balanced, augmented training crops (one epoch = as many draws as training crops)."""
        self.setup()
        data = self.datasets["train"]
        if not len(data):
            raise ValueError("no training crops: the training locations have no crops of the model's classes")
        weights = balanced_weights(data.labels, self.balance_power)
        generator = torch.Generator().manual_seed(self.seed)
        sampler = WeightedRandomSampler(torch.as_tensor(weights), num_samples=len(data), replacement=True,
                                        generator=generator)
        return self._loader(data, sampler=sampler, drop_last=len(data) > self.batch_size)

    def val_dataloader(self) -> DataLoader:
        """Validation crops of known classes, in a fixed order."""
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        """Test crops of known classes, in a fixed order."""
        return self.loader("test")

    def loader(self, name: str) -> DataLoader:
        """Any split without augmentation (the training crops too), in a fixed order."""
        self.setup()
        data = self.datasets[name]
        if name == "train":
            data = data.with_transform(eval_transform(self.preprocessing))
        return self._loader(data)

    def _loader(self, data: CropDataset, *, sampler: Any = None, drop_last: bool = False) -> DataLoader:
        return DataLoader(data, batch_size=self.batch_size, sampler=sampler, shuffle=False, drop_last=drop_last,
                          num_workers=self.workers, persistent_workers=self.workers > 0)
