"""The classes of a species classifier and the taxonomy above them.

A classifier predicts one of its ``class_ids`` (taxon ids, normally at species rank; labels are
always taxon ids, never display names). :class:`ClassTaxonomy` keeps those classes together with
every ancestor taxon (id, scientific name, rank, parent, common name), so that a checkpoint
carries its own taxonomy and can roll scores up to genus or family without the taxonomy table.

:meth:`ClassTaxonomy.group_matrix` gives, for one rank, which classes belong to which taxon of
that rank; the taxonomy-aware loss sums class probabilities through it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ecowatch.errors import InputDataError
from ecowatch.tables import RANKS, Taxon


@dataclass(frozen=True)
class ClassTaxonomy:
    """The output classes of a classifier and their ancestors.

    Attributes:
        class_ids: taxon ids in the order of the network's outputs.
        taxa: every class and every ancestor of a class, by taxon id.
    """

    class_ids: tuple[str, ...]
    taxa: Mapping[str, Taxon] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.class_ids:
            raise InputDataError("a classifier needs at least one class; the class list is empty.")
        if len(set(self.class_ids)) != len(self.class_ids):
            raise InputDataError(f"class ids appear twice in {list(self.class_ids)}; each class must be listed once.")
        missing = [c for c in self.class_ids if c not in self.taxa]
        if missing:
            raise InputDataError(
                f"classes {missing} are not in the taxonomy; add them (and every ancestor) to the taxonomy table."
            )

    @classmethod
    def from_taxa(cls, taxa: Mapping[str, Taxon], class_ids: Iterable[str]) -> ClassTaxonomy:
        """The classes with their ancestors taken from a full taxonomy table.

        Args:
            taxa: a taxonomy by id (see :func:`ecowatch.tables.read_taxonomy`).
            class_ids: the classes, in output order.

        Raises:
            InputDataError: a class is not in ``taxa``, or a class is listed twice.
        """
        ids = tuple(class_ids)
        unknown = [c for c in ids if c not in taxa]
        if unknown:
            raise InputDataError(
                f"classes {unknown} are not in the taxonomy table; add a row for each (and their ancestors)."
            )
        kept: dict[str, Taxon] = {}
        for class_id in ids:
            node: str = class_id
            while node and node not in kept:
                kept[node] = taxa[node]
                node = taxa[node].parent_id
        return cls(ids, dict(sorted(kept.items())))

    @property
    def num_classes(self) -> int:
        """Number of output classes."""
        return len(self.class_ids)

    def index(self, taxon_id: str) -> int:
        """Output index of a class.

        Raises:
            KeyError: ``taxon_id`` is not a class of this classifier.
        """
        try:
            return self.class_ids.index(taxon_id)
        except ValueError:
            raise KeyError(f"{taxon_id!r} is not one of the classifier's classes {list(self.class_ids)}") from None

    def ancestor(self, taxon_id: str, rank: str) -> str | None:
        """The taxon of ``rank`` above (or equal to) ``taxon_id``, or None when there is none."""
        node = taxon_id
        while node:
            taxon = self.taxa[node]
            if taxon.rank == rank:
                return node
            node = taxon.parent_id
        return None

    def group_matrix(self, rank: str) -> tuple[tuple[str, ...], np.ndarray]:
        """Which classes belong to which taxon of one rank.

        A class without an ancestor at that rank forms a group of its own (named by its own id).

        Args:
            rank: one of :data:`ecowatch.tables.RANKS`.

        Returns:
            The group taxon ids (sorted) and a ``float32`` 0/1 matrix (classes, groups) with
            exactly one 1 per row.

        Raises:
            ValueError: an unknown rank.
        """
        if rank not in RANKS:
            raise ValueError(f"rank {rank!r} is not one of {list(RANKS)}")
        parents = [self.ancestor(c, rank) or c for c in self.class_ids]
        groups = tuple(sorted(set(parents)))
        matrix = np.zeros((len(self.class_ids), len(groups)), dtype=np.float32)
        for row, parent in enumerate(parents):
            matrix[row, groups.index(parent)] = 1.0
        return groups, matrix

    def scientific_name(self, taxon_id: str) -> str:
        """The scientific name of a class or ancestor."""
        return self.taxa[taxon_id].scientific_name

    def to_record(self) -> dict[str, Any]:
        """A JSON/torch-serialisable record (plain lists and strings) for checkpoints."""
        return {
            "class_ids": list(self.class_ids),
            "taxa": [
                {"taxon_id": t.taxon_id, "scientific_name": t.scientific_name, "rank": t.rank,
                 "parent_id": t.parent_id, "common_name": t.common_name}
                for t in self.taxa.values()
            ],
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ClassTaxonomy:
        """Rebuild from :meth:`to_record` output.

        Raises:
            InputDataError: the record lacks fields or its classes are not in its taxa.
        """
        try:
            taxa = {t["taxon_id"]: Taxon(**t) for t in record["taxa"]}
            return cls(tuple(record["class_ids"]), taxa)
        except (KeyError, TypeError) as exc:
            raise InputDataError(f"not a classifier taxonomy record ({exc}); the checkpoint is damaged.") from exc


def species_ids(taxa: Mapping[str, Taxon], *, exclude: Sequence[str] = ()) -> list[str]:
    """Every species-rank taxon id of a taxonomy, sorted, minus ``exclude``."""
    excluded = set(exclude)
    return sorted(t.taxon_id for t in taxa.values() if t.rank == "species" and t.taxon_id not in excluded)
