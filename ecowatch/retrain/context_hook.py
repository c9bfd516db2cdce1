"""The context-priors refit step of a retrain run.

The retrain loop refits the place/season priors from the same labelled set as the challenger: the
labelled boxes become labelled observations (one per image and taxon, individuals = boxes) and
:func:`ecowatch.context.build.refit_context_model` builds the knowledge graph with the taxonomy,
deployments, regions and range maps of ``conf/context.yaml``. The artefact is written under the
retrain's state folder and logged to the run (``context_priors/``); point ``fuse.context`` at it
to use it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ecowatch.retrain.labels import LabelledBox

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class ContextPriorsResult:
    """What the context-priors step did.

    Attributes:
        status: ``fitted``, ``skipped`` (nothing to fit with yet) or ``disabled`` (by configuration).
        message: one sentence saying why.
        artifact: the priors file or folder written (``fitted`` only).
    """

    status: str
    message: str
    artifact: Path | None = None


def refit_context_priors(labels: Sequence[LabelledBox], *, out_dir: Path, enabled: bool = True,
                         context_config: Path | None = None) -> ContextPriorsResult:
    """Refit the context priors from the labelled set, or say why not.

    Args:
        labels: the merged labelled set.
        out_dir: folder for the priors artefact (``context-model.json``).
        enabled: ``context_priors.enabled`` of ``conf/retrain.yaml``.
        context_config: ``conf/context.yaml`` (tables and smoothing); None skips the step.

    Returns:
        The step's result.

    Raises:
        ConfigError, CatalogError, InputDataError: the context configuration or its tables are bad.
    """
    if not enabled:
        return ContextPriorsResult("disabled", "context_priors.enabled is false")
    if context_config is None:
        return ContextPriorsResult("skipped", "no context_priors.config; context priors not refitted")
    from ecowatch.context.build import refit_context_model

    observations = labelled_observations(labels)
    built = refit_context_model(context_config, observations, out_path=Path(out_dir) / "context-model.json")
    log.info("context priors refitted from %d labelled images: %s (version %s)", len(observations), built.path,
             built.graph.version)
    return ContextPriorsResult("fitted", f"refitted from {len(observations)} labelled images "
                                         f"(context model {built.graph.version})", built.path)


def labelled_observations(labels: Sequence[LabelledBox]) -> list:
    """One labelled observation per (image, taxon) of the boxes, individuals = its boxes."""
    import datetime as dt

    from ecowatch.context.labels import LabelledObservation

    grouped: dict[tuple[str, str], list[LabelledBox]] = {}
    for label in labels:
        grouped.setdefault((label.image_key, label.taxon_id), []).append(label)
    out = []
    for (image_key, taxon_id), boxes in sorted(grouped.items()):
        first = boxes[0]
        stamp = dt.datetime.fromisoformat(first.timestamp) if first.timestamp else None
        out.append(LabelledObservation(taxon_id=taxon_id, location_id=first.location_id,
                                       deployment_id=first.deployment_id, event_id=image_key, timestamp=stamp,
                                       individuals=len(boxes)))
    return out
