"""Preprocessing (stored in every checkpoint) and the albumentations pipelines for training and inference.

:class:`Preprocessing` is everything needed to turn an image and a box into network input: the
crop geometry (:class:`~ecowatch.classify.crops.CropGeometry`), the network input size, the
optional per-crop contrast stretch, and the normalisation mean/std. :func:`eval_transform` is the
only way crops become input tensors at validation, test and inference time.

Training augmentations (:func:`train_transform`) imitate what differs between camera traps and
between nights: a box that is too tight or too loose (random resized crop), an animal walking the
other way (horizontal flip), colour casts and white balance (colour jitter), infrared night
frames (to greyscale), motion and focus blur, exposure (brightness, contrast, gamma), sensor noise
and JPEG compression.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2

from ecowatch.classify.crops import CropGeometry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Contrast stretch: the darkest and brightest share of pixels mapped to 0 and 255.
STRETCH_PERCENTILES = (1.0, 99.0)
#: ... unless the crop's range between them is smaller than this many grey levels (pure noise).
STRETCH_MIN_RANGE = 12.0


@dataclass(frozen=True)
class Preprocessing:
    """From an image and a box to network input.

    Attributes:
        geometry: how the square crop is cut (crop size, context padding, fill).
        input_size: side of the network input in pixels (the crop is resized to it).
        autocontrast: stretch each crop's grey levels between its 1st and 99th percentiles (dark
            infrared frames of distant animals become visible; colour crops keep their hues).
        eval_zoom: share of the crop's side that evaluation and inference show the network: the
            centre, resized to ``input_size``. Training's random resized crops keep part of the crop
            and enlarge it, so the network learns animals larger than a whole crop shows them; a
            centre crop of about the square root of the mean kept area shows them at that size
            again (the train-test resolution discrepancy of FixRes, Touvron et al. 2019). 1: the
            whole crop (checkpoints written before this field).
        mean: per-channel mean (RGB, 0..1) subtracted before the network.
        std: per-channel standard deviation (RGB, 0..1) divided by.
    """

    geometry: CropGeometry = field(default_factory=CropGeometry)
    input_size: int = 112
    autocontrast: bool = True
    eval_zoom: float = 1.0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if not 16 <= self.input_size <= 1024:
            raise ValueError(f"input_size {self.input_size} must be within 16..1024 pixels")
        if not 0.5 <= self.eval_zoom <= 1.0:
            raise ValueError(f"eval_zoom {self.eval_zoom} must be within 0.5..1 (the share of the crop's side shown)")
        if self.input_size > self.geometry.crop_size:
            raise ValueError(
                f"input_size {self.input_size} is larger than crop_size {self.geometry.crop_size}; "
                "cache crops at least as large as the network input"
            )

    def to_record(self) -> dict[str, Any]:
        """Plain dict for checkpoints."""
        record = asdict(self)
        record["mean"], record["std"] = list(self.mean), list(self.std)
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Preprocessing:
        """Rebuild from :meth:`to_record` output."""
        values = dict(record)
        values["geometry"] = CropGeometry(**values["geometry"])
        values["mean"], values["std"] = tuple(values["mean"]), tuple(values["std"])
        return cls(**values)


def grey_level_percentiles(image: np.ndarray, percentiles: tuple[float, ...]) -> np.ndarray:
    """``np.percentile(image, percentiles)`` of a ``uint8`` array, bit for bit, from its 256-bin histogram.

    The same linear interpolation between order statistics as numpy's default method, without
    sorting: 0.05 ms instead of 0.1-0.5 ms for a 96-128 px crop, where the contrast stretch was the
    costliest of the training augmentations.
    """
    cumulative = np.cumsum(np.bincount(image.ravel(), minlength=256))
    n = int(cumulative[-1])
    virtual = np.asarray(percentiles, dtype=np.float64) / 100 * (n - 1)
    below = np.floor(virtual)
    gamma = virtual - below
    lower = below.astype(np.int64)
    # the k-th smallest value (0-based) is the first grey level whose cumulative count exceeds k
    a = np.searchsorted(cumulative, lower, side="right").astype(np.float64)
    b = np.searchsorted(cumulative, np.minimum(lower + 1, n - 1), side="right").astype(np.float64)
    diff = b - a
    return np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)  # numpy's _lerp


def stretch_contrast(image: np.ndarray) -> np.ndarray:
    """Map a crop's 1st..99th percentile grey levels linearly to 0..255 (all channels alike).

    Crops whose range is below :data:`STRETCH_MIN_RANGE` are stretched only to that range, so that
    flat, noisy crops are not turned into loud noise.

    Args:
        image: ``uint8`` array (H, W, 3).

    Returns:
        ``uint8`` array of the same shape.
    """
    lo, hi = grey_level_percentiles(image, STRETCH_PERCENTILES)
    span = max(float(hi - lo), STRETCH_MIN_RANGE)
    lut = np.clip((np.arange(256, dtype=np.float32) - lo) * (255.0 / span), 0, 255).astype(np.uint8)
    return cv2.LUT(np.ascontiguousarray(image), lut)


class StretchContrast(A.ImageOnlyTransform):
    """:func:`stretch_contrast` as an albumentations transform (always applied)."""

    def __init__(self, p: float = 1.0) -> None:
        super().__init__(p=p)

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return stretch_contrast(img)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ()


def _contrast_step(pre: Preprocessing) -> list[Any]:
    return [StretchContrast()] if pre.autocontrast else []


def eval_transform(pre: Preprocessing) -> Any:
    """Cached crop (crop_size) -> normalised ``float32`` tensor (3, input_size, input_size).

    With ``pre.eval_zoom`` below 1 the centre of the crop is cut first (as training's random crops
    are, before their contrast stretch; never smaller than the input size), then resized to the
    input size.

    Returns:
        An ``albumentations.Compose``: call it as ``transform(image=crop)["image"]``.
    """
    side = pre.geometry.crop_size
    steps: list[Any] = []
    if pre.eval_zoom < 1.0:
        side = max(pre.input_size, round(pre.geometry.crop_size * pre.eval_zoom))
        steps.append(A.CenterCrop(side, side))
    steps += _contrast_step(pre)
    if pre.input_size != side:
        steps.append(A.Resize(pre.input_size, pre.input_size, interpolation=cv2.INTER_AREA))
    steps += [A.Normalize(mean=pre.mean, std=pre.std, max_pixel_value=255.0), ToTensorV2()]
    return A.Compose(steps)


def train_transform(pre: Preprocessing, *, scale: tuple[float, float] = (0.55, 1.0)) -> Any:
    """Cached crop -> augmented, normalised ``float32`` tensor (3, input_size, input_size).

    Args:
        pre: the preprocessing (sizes, contrast stretch, mean/std).
        scale: area range (fraction of the crop) of the random resized crop.

    Returns:
        An ``albumentations.Compose`` with its own random generator (albumentations 2 ignores the
        global numpy/Python seeds), seeded from torch's seed: :class:`~ecowatch.classify.datamodule.CropDataset`
        reseeds it in each DataLoader worker from that worker's torch seed, so a seeded run
        augments the same way every time and no two workers repeat each other.
    """
    size = pre.input_size
    return A.Compose(seed=torch.initial_seed() % 2**32, transforms=[
        A.RandomResizedCrop(size=(size, size), scale=scale, ratio=(0.8, 1.25), interpolation=cv2.INTER_AREA),
        A.HorizontalFlip(p=0.5),
        A.OneOf([  # exposure: under/over-exposed frames, flash fall-off
            A.RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=0.3),
            A.RandomGamma(gamma_limit=(70, 140)),
        ], p=0.6),
        A.ColorJitter(brightness=0.0, contrast=0.0, saturation=0.3, hue=0.03, p=0.5),  # white balance, colour casts
        A.ToGray(num_output_channels=3, p=0.15),  # infrared night frames
        A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.MotionBlur(blur_limit=(3, 7))], p=0.2),  # focus, motion
        A.GaussNoise(std_range=(0.01, 0.06), p=0.2),  # sensor noise at night
        A.ImageCompression(quality_range=(50, 95), p=0.2),  # camera JPEG settings
        *_contrast_step(pre),
        A.Normalize(mean=pre.mean, std=pre.std, max_pixel_value=255.0),
        ToTensorV2(),
    ])
