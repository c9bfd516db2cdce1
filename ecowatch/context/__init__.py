"""The context fuser: a knowledge graph of taxa, places and seasons, priors, and fused labels.

Modules:

- :mod:`~ecowatch.context.seasons`: season by hemisphere, time of day from the sun.
- :mod:`~ecowatch.context.places`: region polygons, the region of a point, range maps (geopandas).
- :mod:`~ecowatch.context.labels`: labelled observations from COCO Camera Traps or the store.
- :mod:`~ecowatch.context.graph`: :func:`build_knowledge_graph`, the versioned JSON artefact,
  ``plausible_taxa`` queries.
- :mod:`~ecowatch.context.priors`: p(taxon | place, season) with hierarchical smoothing, activity by
  time of day, range maps as soft geofences.
- :mod:`~ecowatch.context.fusion`: the pure decision function :func:`fuse_detection` (unknown,
  prior, roll-up), top-k completion, the sequence vote.
- :mod:`~ecowatch.context.weights`: the bounded prior weights fitted on validation sites.
- :mod:`~ecowatch.context.stage`: :func:`fuse_stage`, the nightly stage writing observations.
- :mod:`~ecowatch.context.build`: the artefact from ``conf/context.yaml``
  (``ecowatch train context``).

Importing this package imports neither torch nor geopandas; the names below load on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ecowatch.context.fusion import (
        ContextFactors,
        FusedLabel,
        FusionThresholds,
        FusionWeights,
        Rollup,
        full_probabilities,
        fuse_detection,
        vote_sequence,
    )
    from ecowatch.context.graph import KnowledgeGraph, build_knowledge_graph, load_knowledge_graph
    from ecowatch.context.priors import ContextPriors, PriorSettings
    from ecowatch.context.stage import FuseSummary, fuse_stage

__all__ = [
    "ContextFactors",
    "ContextPriors",
    "FuseSummary",
    "FusedLabel",
    "FusionThresholds",
    "FusionWeights",
    "KnowledgeGraph",
    "PriorSettings",
    "Rollup",
    "build_knowledge_graph",
    "full_probabilities",
    "fuse_detection",
    "fuse_stage",
    "load_knowledge_graph",
    "vote_sequence",
]

_LAZY = {
    "ContextFactors": "ecowatch.context.fusion",
    "FusedLabel": "ecowatch.context.fusion",
    "FusionThresholds": "ecowatch.context.fusion",
    "FusionWeights": "ecowatch.context.fusion",
    "Rollup": "ecowatch.context.fusion",
    "full_probabilities": "ecowatch.context.fusion",
    "fuse_detection": "ecowatch.context.fusion",
    "vote_sequence": "ecowatch.context.fusion",
    "KnowledgeGraph": "ecowatch.context.graph",
    "build_knowledge_graph": "ecowatch.context.graph",
    "load_knowledge_graph": "ecowatch.context.graph",
    "ContextPriors": "ecowatch.context.priors",
    "PriorSettings": "ecowatch.context.priors",
    "FuseSummary": "ecowatch.context.stage",
    "fuse_stage": "ecowatch.context.stage",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
