"""Standalone classifier checkpoints: everything needed to run the model, in one file.

A checkpoint (``torch.save`` of plain values and tensors, loadable with ``weights_only=True``)
holds:

=================  ===================================================================
key                content
=================  ===================================================================
format             ``"ecowatch-species-classifier"``; ``format_version``: 1
model_name         the name recorded in ``classifications.model_name``
backbone           registered backbone name (:mod:`ecowatch.classify.backbones`)
taxonomy           class ids in output order and every ancestor (id, name, rank, parent)
preprocessing      crop size, context padding, fill, input size, contrast stretch, evaluation zoom, mean/std
temperature        calibration temperature (divide the logits by it)
test_time_flip     score each crop and its mirror image, averaging logits and embeddings (absent in
                   older checkpoints: false); the calibration and unknown threshold were fitted so
class_bias         calibration bias per class, added after (absent in older checkpoints: zeros)
open_set           unknown-species method, threshold, scale, known recall (knn: k and the embedding bank)
state_dict         the network's weights (float32; float16 in a copy made by :func:`compact_classifier`)
metrics            evaluation figures at training time (informative)
=================  ===================================================================

:func:`load_classifier` needs nothing but the file; the model version is the first 16 hex digits
of the file's sha256, so the same weights give the same version wherever they came from.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ecowatch.classify.backbones import build_backbone, channels_last
from ecowatch.classify.calibration import calibrated
from ecowatch.classify.openset import OpenSetCalibration, embeddings_and_logits
from ecowatch.classify.taxonomy import ClassTaxonomy
from ecowatch.classify.transforms import Preprocessing
from ecowatch.errors import ConfigError, InputDataError, ModelNotFoundError

CHECKPOINT_FORMAT = "ecowatch-species-classifier"
CHECKPOINT_FORMAT_VERSION = 1
#: Hex digits of the checkpoint file's sha256 kept as the model version.
VERSION_HEX_DIGITS = 16


@dataclass
class SpeciesClassifier:
    """A loaded classifier, ready for inference.

    Attributes:
        network: the torchvision network in eval mode.
        model_name: name recorded with its classifications.
        version: sha256 prefix of the checkpoint file ("" for a model not loaded from a file).
        backbone: registered backbone name.
        taxonomy: classes and ancestors.
        preprocessing: how crops become input.
        temperature: calibration temperature.
        open_set: unknown-species scoring.
        metrics: evaluation figures stored at training time.
        path: the checkpoint file, when loaded from one.
        class_bias: calibration bias per class (``softmax(logits / temperature + class_bias)``), or
            None (zeros).
        test_time_flip: every crop is scored with its mirror image (see
            :func:`~ecowatch.classify.openset.embeddings_and_logits`); its calibration was fitted so.
    """

    network: nn.Module
    model_name: str
    version: str
    backbone: str
    taxonomy: ClassTaxonomy
    preprocessing: Preprocessing
    temperature: float
    open_set: OpenSetCalibration
    metrics: dict[str, float] = field(default_factory=dict)
    path: Path | None = None
    class_bias: torch.Tensor | None = None
    test_time_flip: bool = False

    @torch.no_grad()
    def scores(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Calibrated probabilities, unknown scores and raw logits of a batch of input tensors.

        Args:
            images: (N, 3, S, S) ``float32`` from :func:`~ecowatch.classify.transforms.eval_transform`.

        Returns:
            probabilities (N, classes) = ``softmax(logits / temperature + class_bias)``, unknown scores (N,) in
            0..1, logits (N, classes); all ``float32``.
        """
        return score_batch(self.network, images, temperature=self.temperature, class_bias=self.class_bias,
                           open_set=self.open_set, flip=self.test_time_flip)


def score_batch(network: nn.Module, images: torch.Tensor, *, temperature: float, class_bias: torch.Tensor | None,
                open_set: OpenSetCalibration, flip: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One forward pass: calibrated probabilities, unknown scores and raw logits (``float32``).

    The image embeddings are read from the same pass when the open-set score needs them. With
    ``flip`` (a checkpoint's ``test_time_flip``) the logits and embeddings are those of each crop
    averaged with its mirror image's.
    """
    embeddings, logits = embeddings_and_logits(network, channels_last(images), flip=flip)
    if not open_set.needs_embeddings:
        embeddings = None
    probs = torch.softmax(calibrated(logits, temperature, class_bias), dim=1).float()
    return probs, open_set.unknown_score(logits, embeddings).float(), logits


def save_classifier(
    path: Path,
    *,
    network: nn.Module,
    model_name: str,
    backbone: str,
    taxonomy: ClassTaxonomy,
    preprocessing: Preprocessing,
    temperature: float,
    open_set: OpenSetCalibration,
    metrics: Mapping[str, float] | None = None,
    class_bias: torch.Tensor | None = None,
    test_time_flip: bool = False,
) -> Path:
    """Write a standalone checkpoint (atomically: a temporary file renamed into place).

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "model_name": model_name,
        "backbone": backbone,
        "taxonomy": taxonomy.to_record(),
        "preprocessing": preprocessing.to_record(),
        "temperature": float(temperature),
        "class_bias": [float(v) for v in class_bias] if class_bias is not None else None,
        "open_set": open_set.to_record(),
        "test_time_flip": bool(test_time_flip),
        "state_dict": {k: v.detach().cpu().clone() for k, v in network.state_dict().items()},
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
        "created_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return _save_record(record, path)


def _save_record(record: dict[str, Any], path: Path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then renamed over it (no half-written checkpoint)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(record, tmp)
    tmp.replace(path)
    return path


def compact_classifier(source: Path, target: Path) -> Path:
    """Copy a checkpoint with its floating-point weights stored as float16: half the size on disk (a
    ResNet18 classifier 45 -> 23 MB), for a checkpoint that ships inside a package. Loading casts them
    back to float32 (``load_state_dict`` copies into the float32 network), so inference is unchanged
    but for the weights' rounding (relative error below 0.05 %); the copy is a new model version
    (its own sha256) and records ``weights_dtype: float16``.

    Returns:
        The path written (atomically).

    Raises:
        ModelNotFoundError: ``source`` is not a readable classifier checkpoint.
    """
    load_classifier(source)  # the same checks as any load: format, version, weights fitting the backbone
    record: dict[str, Any] = torch.load(source, map_location="cpu", weights_only=True)
    record["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in record["state_dict"].items()}
    record["weights_dtype"] = "float16"
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return _save_record(record, target)


def checkpoint_version(path: Path) -> str:
    """The model version of a checkpoint file: the first 16 hex digits of its sha256."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:VERSION_HEX_DIGITS]


def load_classifier(path: Path, *, map_location: str | torch.device = "cpu") -> SpeciesClassifier:
    """Load a standalone checkpoint; nothing else (taxonomy table, config, weights cache) is read.

    Args:
        path: a file written by :func:`save_classifier`.
        map_location: device to load the tensors to.

    Returns:
        The classifier, network in eval mode.

    Raises:
        ModelNotFoundError: the file is missing, not a checkpoint, of another format or version, or
            its weights do not fit its backbone.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(
            f"classifier checkpoint {path} not found; train one with `ecowatch train classifier` or give the "
            "path (or models:/ URI) of an existing one."
        )
    try:
        record: dict[str, Any] = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle, zip and torch errors: all mean "not a checkpoint"
        raise ModelNotFoundError(
            f"{path} is not a readable classifier checkpoint: {type(exc).__name__}: {exc}"
        ) from exc
    found = record.get("format") if isinstance(record, dict) else type(record).__name__
    if found != CHECKPOINT_FORMAT:
        raise ModelNotFoundError(
            f"{path} is not an ecowatch species-classifier checkpoint (format {found!r}); a Lightning training "
            "checkpoint is not enough: use the file `ecowatch train classifier` writes."
        )
    if record.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        raise ModelNotFoundError(
            f"{path} has checkpoint format version {record.get('format_version')!r}; this ecowatch reads version "
            f"{CHECKPOINT_FORMAT_VERSION}. Retrain or use a matching ecowatch."
        )
    try:
        taxonomy = ClassTaxonomy.from_record(record["taxonomy"])
        network = build_backbone(record["backbone"], taxonomy.num_classes, pretrained=False)
        network.load_state_dict(record["state_dict"])
        classifier = SpeciesClassifier(
            network=network.eval().to(map_location).to(memory_format=torch.channels_last),
            model_name=str(record["model_name"]),
            version=checkpoint_version(path),
            backbone=str(record["backbone"]),
            taxonomy=taxonomy,
            preprocessing=Preprocessing.from_record(record["preprocessing"]),
            temperature=float(record["temperature"]),
            open_set=OpenSetCalibration.from_record(record["open_set"]),
            metrics=dict(record.get("metrics", {})),
            path=path,
            class_bias=_class_bias(record.get("class_bias"), taxonomy.num_classes),
            test_time_flip=bool(record.get("test_time_flip", False)),
        )
    except (KeyError, TypeError, ValueError, RuntimeError, InputDataError, ConfigError) as exc:
        raise ModelNotFoundError(f"{path}: damaged classifier checkpoint ({type(exc).__name__}: {exc}).") from exc
    return classifier


def _class_bias(values: Any, num_classes: int) -> torch.Tensor | None:
    """A checkpoint's class biases (None: none recorded, e.g. an older checkpoint)."""
    if values is None:
        return None
    bias = torch.tensor([float(v) for v in values], dtype=torch.float32)
    if bias.shape != (num_classes,):
        raise ValueError(f"class_bias has {len(bias)} values for {num_classes} classes")
    return bias
