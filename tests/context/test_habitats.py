"""Site habitats in the knowledge graph: a new camera site is known by its region *and* its habitat.

A tiny world on the two regions of :mod:`tests.context.data`: in the north a woodland site full of
pine martens and a settlement-edge site full of stone martens and cats; in the south only a
settlement-edge site is labelled, so what woodland means there is learnt from the north.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ecowatch.context.graph import build_knowledge_graph, load_knowledge_graph
from ecowatch.context.labels import LabelledObservation
from ecowatch.context.places import read_range_maps, read_regions
from ecowatch.context.priors import ContextPriors, PriorSettings
from ecowatch.errors import ModelNotFoundError
from ecowatch.tables import Deployment, read_deployments

from . import data

#: location -> (latitude, longitude, habitat as an operator might type it, events per taxon)
SITES = {
    "NW": (50.5, 0.5, "Woodland", {"martes_martes": 20, "vulpes_vulpes": 5}),
    "NS": (50.3, 0.3, " settlement  EDGE", {"martes_foina": 20, "felis_catus": 10, "vulpes_vulpes": 5}),
    "SS": (45.5, 10.5, "settlement edge", {"martes_foina": 15, "vulpes_vulpes": 5}),
}
PINE, STONE = "martes_martes", "martes_foina"


def _deployments(*, habitats: bool = True) -> list[Deployment]:
    start, end = dt.datetime(2025, 1, 1), dt.datetime(2025, 12, 31)
    return [Deployment(f"D-{loc}", loc, loc, lat, lon, start, end, 0, habitat=habitat if habitats else "")
            for loc, (lat, lon, habitat, _) in SITES.items()]


def _observations() -> list[LabelledObservation]:
    rng = np.random.default_rng(0)
    out = []
    for loc, (*_, counts) in SITES.items():
        for taxon, n in counts.items():
            for k in range(n):
                stamp = dt.datetime(2025, 1, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365)))
                out.append(LabelledObservation(taxon, loc, f"D-{loc}", f"{loc}-{taxon}-{k}", stamp, 1))
    return out


@pytest.fixture(scope="module")
def world(polygons, class_taxonomy):
    regions, ranges = polygons
    graph = build_knowledge_graph(_observations(), taxa=data.taxa(), deployments=_deployments(),
                                  regions=read_regions(regions), range_maps=read_range_maps(ranges))
    return graph, ContextPriors(graph, class_taxonomy)


def _p(priors: ContextPriors, prior, taxon: str) -> float:
    return float(prior.probabilities[priors.class_ids.index(taxon)])


def test_a_new_site_is_known_by_its_habitat(world) -> None:
    graph, priors = world
    assert {loc: graph.locations[loc].habitat for loc in SITES} == {"NW": "woodland", "NS": "settlement edge",
                                                                   "SS": "settlement edge"}
    north = {"latitude": 50.9, "longitude": 0.1}  # a camera the graph has no labels from
    wood = priors.place_prior(graph.place(**north, habitat="woodland"), None)
    town = priors.place_prior(graph.place(**north, habitat="Settlement Edge"), None)
    plain = priors.place_prior(graph.place(**north), None)
    odd = priors.place_prior(graph.place(**north, habitat="wetland"), None)  # a habitat nobody labelled
    assert (wood.level, town.level, plain.level, odd.level) == ("habitat", "habitat", "region", "region")
    assert np.array_equal(odd.probabilities, plain.probabilities)
    assert _p(priors, wood, PINE) > 3 * _p(priors, town, PINE)
    assert _p(priors, town, STONE) > 3 * _p(priors, wood, STONE)
    assert _p(priors, wood, PINE) > _p(priors, plain, PINE) > _p(priors, town, PINE)
    assert wood.events[priors.class_ids.index(PINE)] == 20  # the north's woodland labels


def test_the_habitat_cell_formula(world) -> None:
    graph, priors = world
    s = graph.settings.habitat_strength
    region = priors.place_prior(graph.place(latitude=50.9, longitude=0.1), None).probabilities
    glob = priors.global_prior
    n_wood = np.array([20.0 if c == PINE else 5.0 if c == "vulpes_vulpes" else 0.0 for c in priors.class_ids])
    ratio = (n_wood + s * glob) / (n_wood.sum() + s) / glob  # what woodland does, over all regions
    base = region * ratio / (region * ratio).sum()
    expected = (n_wood + s * base) / (n_wood.sum() + s)  # the north's own woodland labels (all of them)
    got = priors.place_prior(graph.place(latitude=50.9, longitude=0.1, habitat="woodland"), None).probabilities
    assert np.allclose(got, expected)
    site = priors.place_prior(graph.place(location_id="NW"), None)  # a labelled site shrinks towards it
    assert site.level == "site"
    assert np.allclose(site.probabilities, (n_wood + graph.settings.site_strength * expected)
                       / (n_wood.sum() + graph.settings.site_strength))


def test_what_a_habitat_means_is_learnt_across_regions(world) -> None:
    graph, priors = world
    south = {"latitude": 45.2, "longitude": 10.8}  # no woodland labelled in the south
    wood = priors.place_prior(graph.place(**south, habitat="woodland"), None)
    plain = priors.place_prior(graph.place(**south), None)
    assert wood.level == "habitat" and plain.level == "region"
    assert _p(priors, wood, PINE) > 2 * _p(priors, plain, PINE)
    assert _p(priors, wood, STONE) < _p(priors, plain, STONE)


def test_without_habitats_the_priors_are_as_before(polygons, class_taxonomy) -> None:
    regions, ranges = polygons
    bare = build_knowledge_graph(_observations(), taxa=data.taxa(), deployments=_deployments(habitats=False),
                                 regions=read_regions(regions), range_maps=read_range_maps(ranges))
    priors = ContextPriors(bare, class_taxonomy)
    asked = priors.place_prior(bare.place(latitude=50.9, longitude=0.1, habitat="woodland"), None)
    assert asked.level == "region"
    assert np.array_equal(asked.probabilities, priors.place_prior(bare.place(latitude=50.9, longitude=0.1), None)
                          .probabilities)


def test_habitats_travel_in_the_artefact_and_an_old_one_is_refused(world, tmp_path: Path) -> None:
    graph, _ = world
    path = graph.save(tmp_path / "context.json")
    loaded = load_knowledge_graph(path)
    assert loaded.locations == graph.locations and loaded.version == graph.version
    assert loaded.plausible_taxa(month=5, latitude=50.9, longitude=0.1, habitat="woodland")[0].taxon_id == PINE
    assert loaded.plausible_taxa(month=5, latitude=50.9, longitude=0.1, habitat="settlement edge")[0].taxon_id == STONE
    strong = replace(graph, settings=PriorSettings(habitat_strength=5.0), version="")
    assert strong.version != graph.version  # the strength is part of the content
    record = json.loads(path.read_text())
    record["format_version"] = 1
    path.write_text(json.dumps(record))
    with pytest.raises(ModelNotFoundError, match="version 2 added site habitats.*ecowatch train context"):
        load_knowledge_graph(path)


def test_deployments_tables_carry_the_habitat(tmp_path: Path) -> None:
    own = tmp_path / "deployments.csv"
    own.write_text("deployment_id,latitude,longitude,deployment_start,deployment_end,habitat\n"
                   "A,50.5,0.5,2025-01-01T00:00:00+00:00,2025-02-01T00:00:00+00:00,  Open   Upland \n"
                   "B,50.5,0.5,2025-01-01T00:00:00+00:00,2025-02-01T00:00:00+00:00,\n")
    assert [d.habitat for d in read_deployments(own)] == ["Open   Upland", ""]  # kept as written (trimmed)
    dp = tmp_path / "dp" / "deployments.csv"
    dp.parent.mkdir()
    dp.write_text("deploymentID,latitude,longitude,deploymentStart,deploymentEnd,habitat\n"
                  "A,50.5,0.5,2025-01-01T00:00:00Z,2025-02-01T00:00:00Z,Woodland\n")
    assert [d.habitat for d in read_deployments(dp)] == ["Woodland"]
    start, end = dt.datetime(2025, 1, 1), dt.datetime(2025, 2, 1)  # the graph compares them normalised
    graph = build_knowledge_graph([], taxa=data.taxa(), deployments=[
        Deployment("A", "A", "A", 50.5, 0.5, start, end, 0, habitat="  Open   Upland ")])
    assert graph.locations["A"].habitat == "open upland"
    assert graph.place(latitude=50.5, longitude=0.5, habitat="OPEN upland").habitat == "open upland"


def test_cli_answers_which_species_are_plausible_here(tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from pipelines.cli import main

    conf = str(data.REPO / "conf" / "nightly.yaml")  # its fuse.context: the bundled context model
    monkeypatch.chdir(tmp_path)
    ask = ["plausible", "--config", conf, "--month", "7", "--lat", "46.68", "--lon", "10.2", "--min-probability", "0"]
    upland = CliRunner().invoke(main, [*ask, "--habitat", "Open Upland"])
    village = CliRunner().invoke(main, [*ask, "--habitat", "settlement edge"])
    assert upland.exit_code == 0 and village.exit_code == 0, upland.output + village.output
    assert "region engadin, habitat open upland" in upland.output and "habitat level" in upland.output

    def probability(output: str, taxon: str) -> float:
        return float(next(line.split()[0] for line in output.splitlines() if f" {taxon} " in line))

    assert probability(upland.output, "lepus_timidus") > 3 * probability(village.output, "lepus_timidus")
    assert probability(village.output, "felis_catus") > 3 * probability(upland.output, "felis_catus")
    wessex = CliRunner().invoke(main, ["plausible", "--config", conf, "--month", "7", "--lat", "50.87", "--lon", "-1.6",
                                       "--min-probability", "0"])
    assert next(line for line in wessex.output.splitlines() if " lepus_timidus " in line).split()[4:6] == ["OUT", "OF"]
    half = CliRunner().invoke(main, ["plausible", "--config", conf, "--month", "7", "--lat", "50.0"])
    assert half.exit_code == 2 and "give both --lat and --lon" in half.output
    missing = CliRunner().invoke(main, ["plausible", "--config", conf, "--month", "7", "--set", "fuse.context=null"])
    assert missing.exit_code == 2 and "fuse.context names no context model" in missing.output
