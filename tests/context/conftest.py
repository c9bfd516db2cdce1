"""Fixtures of the context tests: the tiny seeded places, labels and polygons of :mod:`tests.context.data`."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import data


@pytest.fixture(scope="session")
def polygons(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(regions.geojson, range_maps.gpkg) of the tiny world."""
    return data.write_polygons(tmp_path_factory.mktemp("context-polygons"))


@pytest.fixture(scope="session")
def graph(polygons: tuple[Path, Path]):
    """The knowledge graph of the tiny world (labels at N1 and S1, regions, range maps)."""
    from ecowatch.context.graph import build_knowledge_graph
    from ecowatch.context.places import read_range_maps, read_regions

    regions, ranges = polygons
    return build_knowledge_graph(data.observations(), taxa=data.taxa(), deployments=data.deployments(),
                                 regions=read_regions(regions), range_maps=read_range_maps(ranges))


@pytest.fixture(scope="session")
def class_taxonomy():
    """A classifier's classes: every species of the generator's taxonomy except people."""
    from ecowatch.classify.taxonomy import ClassTaxonomy

    taxa = data.taxa()
    return ClassTaxonomy.from_taxa(taxa, sorted(t for t, x in taxa.items() if x.rank == "species"
                                                and t != "homo_sapiens"))
