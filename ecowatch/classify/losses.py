"""A taxonomy-aware classification loss.

Species cross-entropy (with label smoothing) plus, for each higher rank (genus, family, ...), the
negative log of the probability the model gives the true taxon of that rank, obtained by summing
the probabilities of the species below it. Mistaking a red deer for a fallow deer (same family)
then costs less than mistaking it for a badger, and the model learns scores that roll up sensibly
when the fuse stage falls back to the genus or family.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ecowatch.classify.taxonomy import ClassTaxonomy


class TaxonomicLoss(nn.Module):
    """Cross-entropy at the class level plus weighted log-loss at coarser ranks.

    Args:
        taxonomy: the classes and their ancestors.
        rank_weights: weight of each coarser rank's term, e.g. ``{"genus": 0.5, "family": 0.25}``
            (ranks with weight 0 are skipped).
        label_smoothing: label smoothing of the class-level cross-entropy (0..1).
    """

    def __init__(self, taxonomy: ClassTaxonomy, *, rank_weights: Mapping[str, float] | None = None,
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = float(label_smoothing)
        self.ranks: list[str] = []
        self.weights: list[float] = []
        for rank, weight in sorted((rank_weights or {}).items()):
            if weight < 0:
                raise ValueError(f"rank weight of {rank!r} is {weight}; weights must be >= 0")
            if weight == 0:
                continue
            _, matrix = taxonomy.group_matrix(rank)
            index = len(self.ranks)
            # log of the 0/1 membership: 0 for members, -inf otherwise (a log-space sum over members)
            self.register_buffer(f"_log_member_{index}", torch.log(torch.from_numpy(matrix)), persistent=False)
            self.register_buffer(f"_group_of_{index}", torch.from_numpy(matrix.argmax(axis=1)), persistent=False)
            self.ranks.append(rank)
            self.weights.append(float(weight))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The mean loss of a batch.

        Args:
            logits: (batch, classes) raw scores.
            target: (batch,) class indices.

        Returns:
            A scalar tensor.
        """
        logits = logits.float()
        loss = F.cross_entropy(logits, target, label_smoothing=self.label_smoothing)
        if not self.ranks:
            return loss
        for index, (log_group, weight) in enumerate(zip(self.rank_log_probs(logits).values(), self.weights,
                                                        strict=True)):
            group_of = getattr(self, f"_group_of_{index}")
            loss = loss + weight * F.nll_loss(log_group, group_of[target])
        return loss

    def rank_log_probs(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """Log-probabilities of each coarser rank's taxa (batch, groups), by rank name."""
        log_p = F.log_softmax(logits.float(), dim=1)
        out = {}
        for index, rank in enumerate(self.ranks):
            log_member = getattr(self, f"_log_member_{index}")
            out[rank] = torch.logsumexp(log_p.unsqueeze(2) + log_member.unsqueeze(0), dim=1)
        return out
