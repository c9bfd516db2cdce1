"""Open-set ("unknown species") scores: k-nearest-neighbour, energy, max-logit or MSP, thresholded on validation.

A crop of a species the model was never trained on still gets a softmax over the known classes. Its
raw logits, though, tend to be lower: the **energy** score ``-logsumexp(logits)`` (Liu et al., 2020)
and the **max-logit** score ``-max(logits)`` (Hendrycks et al., 2022) are higher for unfamiliar
inputs; so is the baseline ``-max(softmax(logits))`` (**msp**, Hendrycks & Gimpel, 2017). All are
computed from the raw (un-tempered) logits.

The **knn** score (Sun et al., 2022, "Out-of-distribution detection with deep nearest neighbors")
looks at the image embedding instead (the input of the network's classification head, L2-normalised):
``-cos(x, k-th nearest training crop)``. The checkpoint carries the bank of training embeddings (at
most ``bank_per_class`` per class, drawn with a fixed seed, stored as float16); nothing about
unknown species is needed to build it. It is the default: on generated data, test sites, a
held-out species, it separates unknown from known crops better than the logit scores
(``bench/classifier_accuracy.py`` prints the AUROC of every method).

The threshold ``tau`` is chosen on validation crops of *known* species only, so no unknown species
are needed to fit it: ``tau`` is the ``known_recall`` quantile of their raw scores (0.95: 95 % of
known-species crops at new sites stay "known").

What the store records is ``unknown_score = sigmoid((raw - tau) / scale)``, in 0..1 and exactly
0.5 at the threshold, with ``scale`` the robust spread (IQR / 1.349) of the validation scores. It
is monotone in the raw score (AUROC is unchanged) and lets the fuse stage compare with 0.5 without
knowing the model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ecowatch.classify.backbones import channels_last

OpenSetMethod = Literal["knn", "energy", "max_logit", "msp"]
OPEN_SET_METHODS: tuple[str, ...] = ("knn", "energy", "max_logit", "msp")
#: Methods computed from the logits alone.
LOGIT_METHODS: tuple[str, ...] = ("energy", "max_logit", "msp")

#: The unknown score at the threshold.
UNKNOWN_AT_THRESHOLD = 0.5


def raw_open_set_score(logits: torch.Tensor, method: OpenSetMethod, *, embeddings: torch.Tensor | None = None,
                       bank: torch.Tensor | None = None, k: int = 1) -> torch.Tensor:
    """Higher means less like any known class.

    Args:
        logits: (N, classes) raw logits.
        method: ``knn`` (``-cos`` to the k-th nearest bank embedding), ``energy`` (``-logsumexp``),
            ``max_logit`` (``-max``) or ``msp`` (``-max softmax``).
        embeddings: (N, D) image embeddings (``knn`` only; see :func:`embeddings_and_logits`).
        bank: (M, D) L2-normalised training embeddings (``knn`` only).
        k: the neighbour (``knn`` only; at most M).

    Returns:
        (N,) ``float64`` scores.

    Raises:
        ValueError: an unknown method, or ``knn`` without embeddings or bank.
    """
    x = logits.detach().double()
    if method == "knn":
        if embeddings is None or bank is None or not len(bank):
            raise ValueError("the knn open-set score needs the crops' embeddings and a bank of training embeddings")
        if not len(embeddings):
            return torch.zeros(0, dtype=torch.float64)
        query = torch.nn.functional.normalize(embeddings.detach().double(), dim=1)
        similarity = query @ bank.double().T
        kth = similarity.topk(min(max(int(k), 1), similarity.shape[1]), dim=1).values[:, -1]
        return -kth
    if method == "energy":
        return -torch.logsumexp(x, dim=1)
    if method == "max_logit":
        return -x.max(dim=1).values
    if method == "msp":
        return -torch.softmax(x, dim=1).max(dim=1).values
    raise ValueError(f"open-set method {method!r} is not one of {OPEN_SET_METHODS}")


def embedding_layer(network: nn.Module) -> nn.Module:
    """The layer whose input is the network's image embedding: the first linear layer of its head.

    The head is the container of the last ``nn.Linear`` (torchvision's ``classifier`` or ``fc``):
    MobileNetV3's ``classifier[0]`` (the pooled features), ResNet's and RegNet's ``fc``,
    EfficientNet's and ConvNeXt's last layer.
    """
    last = None
    for name, module in network.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    if last is None:
        raise ValueError(f"{type(network).__name__} has no linear classification layer")
    parent_name = last.rpartition(".")[0]
    parent = network.get_submodule(parent_name) if parent_name else network
    if isinstance(parent, nn.Sequential):
        return next(m for m in parent if isinstance(m, nn.Linear))
    return network.get_submodule(last)


@contextmanager
def tap_embeddings(network: nn.Module) -> Iterator[list[torch.Tensor]]:
    """While open, every forward pass of ``network`` appends its (N, D) image embeddings to the list yielded."""
    captured: list[torch.Tensor] = []
    handle = embedding_layer(network).register_forward_hook(
        lambda _module, inputs, _output: captured.append(inputs[0].detach().flatten(1).float()))
    try:
        yield captured
    finally:
        handle.remove()


def embeddings_and_logits(network: nn.Module, images: torch.Tensor, *,
                          flip: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass: (N, D) image embeddings and (N, classes) raw logits, ``float32``.

    Args:
        network: a backbone from :func:`~ecowatch.classify.backbones.build_backbone`, in eval mode.
        images: (N, 3, S, S) input tensors.
        flip: test-time flip: the batch and its mirror image (left-right) go through the network
            together, and each crop's embedding and logits are the mean of the two.
    """
    n = len(images)
    if flip:
        images = channels_last(torch.cat([images, torch.flip(images, dims=[3])]))
    with tap_embeddings(network) as captured:
        logits = network(images).float()
    embeddings = captured[-1]
    if flip:
        return (embeddings[:n] + embeddings[n:]) / 2, (logits[:n] + logits[n:]) / 2
    return embeddings, logits


@dataclass(frozen=True, eq=False)
class OpenSetCalibration:
    """How raw logits (and embeddings) become an unknown score.

    Attributes:
        method: ``knn``, ``energy``, ``max_logit`` or ``msp``.
        threshold: raw score above which a crop is called unknown.
        scale: spread of the raw scores (the sigmoid's width).
        known_recall: share of known validation crops below the threshold when it was chosen.
        k: the neighbour of the ``knn`` score.
        bank: (M, D) L2-normalised training embeddings of the ``knn`` score, else None.
    """

    method: OpenSetMethod
    threshold: float
    scale: float
    known_recall: float
    k: int = 0
    bank: torch.Tensor | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OpenSetCalibration):
            return NotImplemented
        same_bank = (self.bank is None) == (other.bank is None) and (
            self.bank is None or (self.bank.shape == other.bank.shape and bool(torch.equal(self.bank, other.bank))))
        return (self.method, self.threshold, self.scale, self.known_recall, self.k) == (
            other.method, other.threshold, other.scale, other.known_recall, other.k) and same_bank

    __hash__ = None  # type: ignore[assignment]  # holds a tensor

    @property
    def needs_embeddings(self) -> bool:
        """The score reads the image embeddings (:func:`embeddings_and_logits`), not only the logits."""
        return self.method == "knn"

    def raw(self, logits: torch.Tensor, embeddings: torch.Tensor | None = None) -> torch.Tensor:
        """(N,) raw scores."""
        return raw_open_set_score(logits, self.method, embeddings=embeddings, bank=self.bank, k=self.k)

    def unknown_score(self, logits: torch.Tensor, embeddings: torch.Tensor | None = None) -> torch.Tensor:
        """(N,) scores in 0..1; at or above 0.5 the crop is called unknown."""
        return torch.sigmoid((self.raw(logits, embeddings) - self.threshold) / self.scale)

    def to_record(self) -> dict[str, Any]:
        """Plain dict for checkpoints (the bank as a float16 tensor)."""
        record: dict[str, Any] = {"method": self.method, "threshold": self.threshold, "scale": self.scale,
                                  "known_recall": self.known_recall}
        if self.bank is not None:
            record.update(k=int(self.k), bank=self.bank.detach().cpu().to(torch.float16))
        return record

    def summary(self) -> dict[str, Any]:
        """JSON-ready settings (the bank by its size)."""
        record = self.to_record()
        if self.bank is not None:
            record["bank"] = list(self.bank.shape)
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> OpenSetCalibration:
        """Rebuild from :meth:`to_record` output."""
        values = dict(record)
        if values.get("bank") is not None:
            values["bank"] = torch.as_tensor(values["bank"]).float()
        return cls(**values)


def embedding_bank(embeddings: torch.Tensor, labels: torch.Tensor, *, per_class: int, seed: int = 0) -> torch.Tensor:
    """At most ``per_class`` L2-normalised embeddings of each class, drawn with a fixed seed.

    Args:
        embeddings: (N, D) training crops' embeddings (without augmentation).
        labels: (N,) their class indices.
        per_class: crops kept per class (classes balanced, as the training sampler balances them).
        seed: the draw's seed.

    Returns:
        (M, D) ``float32``.
    """
    generator = torch.Generator().manual_seed(seed)
    keep = []
    for label in torch.unique(labels).tolist():
        rows = torch.nonzero(labels == label).flatten()
        keep.append(rows[torch.randperm(len(rows), generator=generator)[:per_class]])
    rows = torch.sort(torch.cat(keep)).values if keep else torch.zeros(0, dtype=torch.long)
    return torch.nn.functional.normalize(embeddings[rows].float(), dim=1)


def fit_open_set(known_logits: torch.Tensor, *, method: OpenSetMethod = "energy", known_recall: float = 0.95,
                 known_embeddings: torch.Tensor | None = None, bank: torch.Tensor | None = None,
                 k: int = 0) -> OpenSetCalibration:
    """Choose the threshold on validation crops of known species.

    Args:
        known_logits: (N, classes) raw logits of validation crops of the model's classes.
        method: ``knn``, ``energy``, ``max_logit`` or ``msp``.
        known_recall: share (0..1, exclusive) of those crops to keep as known.
        known_embeddings: (N, D) their embeddings (``knn``).
        bank: (M, D) the training embeddings of :func:`embedding_bank` (``knn``).
        k: the neighbour (``knn``; at most M).

    Returns:
        The calibration.

    Raises:
        ValueError: no crops, ``known_recall`` outside (0, 1), or ``knn`` without embeddings and bank.
    """
    if not 0.0 < known_recall < 1.0:
        raise ValueError(f"known_recall {known_recall} must be within (0, 1)")
    if not len(known_logits):
        raise ValueError("no validation crops of known species to choose an unknown-species threshold on")
    if method == "knn":
        if bank is None or not len(bank) or k < 1:
            raise ValueError("the knn open-set score needs a bank of training embeddings and k >= 1")
        k = min(int(k), len(bank))
    else:
        bank, k = None, 0
    raw = raw_open_set_score(known_logits, method, embeddings=known_embeddings, bank=bank, k=k).numpy()
    threshold = float(np.quantile(raw, known_recall))
    q25, q75 = np.quantile(raw, [0.25, 0.75])
    scale = max(float(q75 - q25) / 1.349, 1e-3)
    return OpenSetCalibration(method, threshold, scale, float(known_recall), k, bank)


def open_set_aurocs(known_logits: torch.Tensor, unknown_logits: torch.Tensor, *,
                    known_embeddings: torch.Tensor | None = None, unknown_embeddings: torch.Tensor | None = None,
                    bank: torch.Tensor | None = None, k: int = 1) -> dict[str, float]:
    """The AUROC of every open-set method at telling unknown crops from known ones.

    Args:
        known_logits: (N, classes) raw logits of crops of known species.
        unknown_logits: (M, classes) raw logits of crops of species the model was not trained on.
        known_embeddings: (N, D) their embeddings (for ``knn``).
        unknown_embeddings: (M, D) likewise.
        bank: (B, D) training embeddings (``knn`` is left out without them or without embeddings).
        k: the neighbour of ``knn`` (clipped to 1..B).

    Returns:
        Method -> AUROC, in the order of :data:`OPEN_SET_METHODS`.
    """
    with_knn = bank is not None and len(bank) > 0 and known_embeddings is not None and unknown_embeddings is not None
    k = min(max(int(k), 1), len(bank)) if with_knn else 1
    return {method: auroc(raw_open_set_score(known_logits, method, embeddings=known_embeddings, bank=bank, k=k),
                          raw_open_set_score(unknown_logits, method, embeddings=unknown_embeddings, bank=bank, k=k))
            for method in OPEN_SET_METHODS if method != "knn" or with_knn}


def choose_open_set_method(known_logits: torch.Tensor, unknown_logits: torch.Tensor, *,
                           known_embeddings: torch.Tensor | None = None,
                           unknown_embeddings: torch.Tensor | None = None, bank: torch.Tensor | None = None,
                           k: int = 1) -> tuple[OpenSetMethod, dict[str, float]]:
    """The open-set method that best tells held-out species from known ones on validation sites.

    Which score separates best depends on the trained network (the kNN score on some runs, energy
    on others), and the validation ranking of the methods has matched the test ranking on generated
    data; so ``open_set.method: auto`` picks it on validation crops of the species held out of
    training (``data.holdout_species``), never on test crops.

    Args:
        known_logits: (N, classes) raw logits of validation crops of known species.
        unknown_logits: (M, classes) raw logits of validation crops of held-out species.
        known_embeddings, unknown_embeddings, bank, k: as :func:`open_set_aurocs`.

    Returns:
        The method with the highest AUROC (ties: the first of :data:`OPEN_SET_METHODS`) and each
        method's AUROC.

    Raises:
        ValueError: no held-out or no known crops.
    """
    if not len(known_logits) or not len(unknown_logits):
        raise ValueError("choosing the open-set method needs validation crops of known and of held-out species")
    aurocs = open_set_aurocs(known_logits, unknown_logits, known_embeddings=known_embeddings,
                             unknown_embeddings=unknown_embeddings, bank=bank, k=k)
    best = max(aurocs, key=lambda m: (aurocs[m], -OPEN_SET_METHODS.index(m)))
    return best, aurocs  # type: ignore[return-value]


def auroc(known_scores: torch.Tensor | np.ndarray, unknown_scores: torch.Tensor | np.ndarray) -> float:
    """Area under the ROC curve of telling unknown (positive) from known crops by score.

    Returns:
        AUROC in 0..1 (ties count half); NaN when either group is empty.
    """
    known = np.asarray(known_scores, dtype=np.float64)
    unknown = np.asarray(unknown_scores, dtype=np.float64)
    if not len(known) or not len(unknown):
        return float("nan")
    scores = np.concatenate([known, unknown])
    ranks = _average_ranks(scores)
    rank_sum = ranks[len(known):].sum()
    n_pos, n_neg = len(unknown), len(known)
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their average rank (the Mann-Whitney U convention)."""
    from scipy.stats import rankdata

    return rankdata(values, method="average")
