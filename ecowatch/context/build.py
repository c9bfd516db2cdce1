"""Building the context-model artefact from ``conf/context.yaml`` (datasets by catalog name).

:func:`build_context_model` reads the configured labels (a COCO Camera Traps file and/or the
results store's human observations), deployments, taxonomy, region polygons and range maps,
builds the knowledge graph and writes it to the catalog's context dataset (a JSON file; its
content hash is its version). ``ecowatch train context --config conf/context.yaml``
runs it; the nightly run's ``fuse.context`` names the same dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ecowatch.catalog import Catalog
from ecowatch.config import load_validated
from ecowatch.context.graph import KnowledgeGraph, build_knowledge_graph
from ecowatch.context.labels import LabelledObservation
from ecowatch.context.priors import PriorSettings
from ecowatch.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContextDatasets(_Strict):
    """Catalog names of what the build reads and writes (None: not used).

    Attributes:
        labels: COCO Camera Traps labels (taxon ids, ``location`` and ``datetime`` per image).
        store: the results store, whose human observations are labels too.
        deployments: the deployments table (coordinates and UTC offsets of the locations).
        taxonomy: the taxonomy table.
        regions: region polygons (GeoJSON / GeoPackage / Shapefile).
        range_maps: range polygons per taxon (GeoPackage / Shapefile).
        context: the artefact written (a ``model_dir`` dataset naming the JSON file).
    """

    labels: str | None = "sample_labels"
    store: str | None = None
    deployments: str = "sample_deployments"
    taxonomy: str = "sample_taxonomy"
    regions: str | None = "sample_regions"
    range_maps: str | None = "sample_range_maps"
    context: str = "context_model"


class PriorsConfig(_Strict):
    """Smoothing strengths in pseudo-events (see :class:`~ecowatch.context.priors.PriorSettings`)."""

    site_strength: float = Field(20.0, gt=0)
    region_strength: float = Field(20.0, gt=0)
    habitat_strength: float = Field(20.0, gt=0)
    season_strength: float = Field(50.0, gt=0)
    taxonomy_strength: float = Field(2.0, gt=0)
    activity_strength: float = Field(10.0, gt=0)


class ContextBuildConfig(_Strict):
    """``conf/context.yaml``.

    Attributes:
        catalog: the data catalog, relative to the project root.
        datasets: catalog names.
        exclude_taxa: labelled taxa left out (people are the detector's ``person`` class).
        label_sources: ``observations.source`` values of the store taken as labels.
        priors: smoothing strengths.
    """

    catalog: str = "data_catalog/catalog.yaml"
    datasets: ContextDatasets = ContextDatasets()
    exclude_taxa: tuple[str, ...] = ("homo_sapiens",)
    label_sources: tuple[str, ...] = ("human",)
    priors: PriorsConfig = PriorsConfig()


@dataclass(frozen=True)
class BuiltContext:
    """The outcome of :func:`build_context_model`.

    Attributes:
        graph: the knowledge graph.
        path: the artefact written.
        observations: labelled frame/taxon pairs read.
    """

    graph: KnowledgeGraph
    path: Path
    observations: int


def build_context_model(config_path: str | Path, *, overrides: dict[str, object] | None = None) -> BuiltContext:
    """Build the knowledge graph from the configured datasets and write the artefact.

    Args:
        config_path: ``conf/context.yaml`` (its catalog path is relative to the project root).
        overrides: dotted keys to override, e.g. ``{"priors.site_strength": 50}``.

    Returns:
        The graph, where it was written, and how many labels it learnt from.

    Raises:
        ConfigError: an invalid configuration, or neither ``labels`` nor ``store`` named.
        CatalogError: the catalog is invalid.
        InputDataError: an input table or polygon file is missing or malformed.
    """
    config, catalog, _ = load_validated(config_path, ContextBuildConfig, overrides=overrides)
    return _build(config, catalog)


def refit_context_model(config_path: str | Path, observations: Sequence[LabelledObservation], *,
                        out_path: Path) -> BuiltContext:
    """Build the knowledge graph from given labelled observations (a retrain's labelled set).

    The taxonomy, deployments, regions, range maps and smoothing come from ``conf/context.yaml``;
    its own label sources are not read.

    Args:
        config_path: ``conf/context.yaml``.
        observations: the labels (see :mod:`ecowatch.context.labels`).
        out_path: where to write the artefact.

    Returns:
        The graph, where it was written, and how many labels it learnt from.

    Raises:
        ConfigError, CatalogError, InputDataError: as :func:`build_context_model`.
    """
    config, catalog, _ = load_validated(config_path, ContextBuildConfig)
    excluded = set(config.exclude_taxa)
    return _graph([o for o in observations if o.taxon_id not in excluded], config, catalog, out_path)


def _build(config: ContextBuildConfig, catalog: Catalog) -> BuiltContext:
    from ecowatch.context.labels import observations_from_coco, observations_from_store  # noqa: F401 (store)

    names = config.datasets
    if names.labels is None and names.store is None:
        raise ConfigError("datasets.labels and datasets.store are both null: name at least one source of labels.")
    observations = []
    if names.labels is not None:
        observations += observations_from_coco(catalog.input_path(names.labels), exclude_taxa=config.exclude_taxa)
    if names.store is not None:
        from ecowatch.store import open_store

        store = open_store(catalog.location(names.store))
        try:
            excluded = set(config.exclude_taxa)
            observations += [o for o in observations_from_store(store, sources=config.label_sources)
                             if o.taxon_id not in excluded]
        finally:
            store.dispose()
    return _graph(observations, config, catalog, catalog.output_path(names.context))


def _graph(observations: Sequence[LabelledObservation], config: ContextBuildConfig, catalog: Catalog,
           out_path: Path) -> BuiltContext:
    from ecowatch.context.places import read_range_maps, read_regions
    from ecowatch.tables import read_deployments, read_taxonomy

    names = config.datasets
    graph = build_knowledge_graph(
        observations,
        taxa=read_taxonomy(catalog.input_path(names.taxonomy)),
        deployments=read_deployments(catalog.input_path(names.deployments)),
        regions=read_regions(catalog.input_path(names.regions)) if names.regions else (),
        range_maps=read_range_maps(catalog.input_path(names.range_maps)) if names.range_maps else (),
        settings=PriorSettings(**config.priors.model_dump()),
    )
    path = graph.save(out_path)
    return BuiltContext(graph, path, len(observations))
