"""The knowledge graph: places and regions, events from labels, the versioned artefact, plausible-taxa queries."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from ecowatch.context.graph import build_knowledge_graph, load_knowledge_graph
from ecowatch.context.labels import observations_from_coco
from ecowatch.context.places import read_range_maps, read_regions
from ecowatch.errors import InputDataError, ModelNotFoundError

from . import data


def test_locations_get_the_region_polygon_that_contains_them(graph) -> None:
    regions = {loc: node.region_id for loc, node in graph.locations.items()}
    assert regions == {"N1": "north", "N2": "north", "S1": "south", "X1": None}
    assert graph.place(deployment_id="D-S1").region_id == "south"
    assert graph.place(latitude=45.1, longitude=10.9).region_id == "south"  # a new camera in the south
    assert graph.place(latitude=0.0, longitude=0.0).region_id is None


def test_links_count_events_not_frames(graph) -> None:
    n1 = {link.taxon_id: 0 for link in graph.links if link.location_id == "N1"}
    for link in graph.links:
        if link.location_id == "N1":
            n1[link.taxon_id] += link.events
    assert n1 == data.EVENTS["N1"]  # two labelled frames per event, counted once
    seasons = {link.season for link in graph.links}
    assert seasons <= {"winter", "spring", "summer", "autumn"} and len(seasons) == 4
    squirrel_times = {link.time_of_day for link in graph.links if link.taxon_id == "sciurus_carolinensis"}
    assert squirrel_times == {"day"}


def test_artefact_round_trip_and_content_version(graph, polygons, tmp_path: Path) -> None:
    path = graph.save(tmp_path / "context.json")
    loaded = load_knowledge_graph(path)
    assert loaded.version == graph.version and len(graph.version) == 16
    assert loaded.links == graph.links and loaded.locations == graph.locations
    assert loaded.plausible_taxa(month=3, location_id="S1") == graph.plausible_taxa(month=3, location_id="S1")
    regions, ranges = polygons
    again = build_knowledge_graph(data.observations(), taxa=data.taxa(), deployments=data.deployments(),
                                  regions=read_regions(regions), range_maps=read_range_maps(ranges))
    assert again.version == graph.version  # same inputs, same version
    fewer = build_knowledge_graph(data.observations()[2:], taxa=data.taxa(), deployments=data.deployments(),
                                  regions=read_regions(regions), range_maps=read_range_maps(ranges))
    assert fewer.version != graph.version
    record = json.loads(path.read_text())
    record["links"]["rows"][0][4] += 1  # edited by hand
    path.write_text(json.dumps(record))
    with pytest.raises(ModelNotFoundError, match="does not match its version"):
        load_knowledge_graph(path)
    with pytest.raises(ModelNotFoundError, match="ecowatch train context"):
        load_knowledge_graph(tmp_path / "absent.json")


def test_plausible_taxa_here_in_march(graph) -> None:
    south = graph.plausible_taxa(month=3, location_id="S1", min_probability=0.05)
    assert [t.taxon_id for t in south[:2]] == ["martes_foina", "sus_scrofa"]
    assert {t.level for t in south} == {"site"} and south[0].events == 20
    assert "martes_martes" not in {t.taxon_id for t in south}  # labelled in the north only
    north = graph.plausible_taxa(month=3, deployment_id="D-N2", min_probability=0.05)
    assert north[0].taxon_id == "vulpes_vulpes" and north[0].level == "region"
    assert sum(t.probability for t in graph.plausible_taxa(month=3, location_id="S1", min_probability=0)) == \
        pytest.approx(1.0)


def test_labels_from_coco_camera_traps(tmp_path: Path) -> None:
    coco = {
        "images": [{"id": f"i{k}", "file_name": f"i{k}.jpg", "location": "L1", "deployment_id": "L1-1",
                    "datetime": f"2025-03-01 22:00:0{k}", "seq_id": "s1"} for k in range(3)]
                  + [{"id": "j", "file_name": "j.jpg", "location": "L2", "datetime": "2025-07-01 12:00:00"}],
        "categories": [{"id": 1, "name": "fox", "taxon_id": "vulpes_vulpes"}, {"id": 2, "name": "person",
                                                                               "taxon_id": "homo_sapiens"}],
        "annotations": [{"id": "a", "image_id": "i0", "category_id": 1},
                        {"id": "b", "image_id": "i1", "category_id": 1},
                        {"id": "c", "image_id": "i1", "category_id": 1},
                        {"id": "d", "image_id": "i2", "category_id": 2},
                        {"id": "e", "image_id": "j", "category_id": 1, "taxon_id": "sus_scrofa"}],
    }
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(coco))
    found = observations_from_coco(path, exclude_taxa=["homo_sapiens"], prefix="d1/")
    assert [(o.taxon_id, o.location_id, o.event_id, o.individuals) for o in found] == [
        ("vulpes_vulpes", "d1/L1", "d1/s1", 1), ("vulpes_vulpes", "d1/L1", "d1/s1", 2),
        ("sus_scrofa", "d1/L2", "d1/j", 1)]
    deployments = [replace(d, deployment_id="d1/L1-1", location_id="d1/L1") for d in data.deployments()[:1]]
    graph = build_knowledge_graph(found, taxa=data.taxa(), deployments=deployments)
    fox = [link for link in graph.links if link.taxon_id == "vulpes_vulpes"]
    assert [(f.events, f.individuals, f.season, f.time_of_day) for f in fox] == [(1, 2, "spring", "night")]
    boar = [link for link in graph.links if link.taxon_id == "sus_scrofa"]
    assert [(b.events, b.season) for b in boar] == [(1, "")]  # L2 has no deployment: no coordinates, no season
    coco["images"][0].pop("location")
    path.write_text(json.dumps(coco))
    with pytest.raises(InputDataError, match="image 'i0' has no 'location'"):
        observations_from_coco(path)
    with pytest.raises(InputDataError, match="not in the taxonomy"):
        build_knowledge_graph([replace(found[0], taxon_id="nessiteras_rhombopteryx")], taxa=data.taxa(),
                              deployments=[])


def test_polygon_files_are_validated(tmp_path: Path) -> None:
    import geopandas as gpd
    from shapely.geometry import box

    bad = tmp_path / "bad.geojson"
    gpd.GeoDataFrame({"colour": ["red"]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326").to_file(bad, driver="GeoJSON")
    with pytest.raises(InputDataError, match="need an id column"):
        read_regions(bad)
    with pytest.raises(InputDataError, match="'taxon_id' or a 'scientific_name' column"):
        read_range_maps(bad)
    with pytest.raises(InputDataError, match="not found"):
        read_regions(tmp_path / "absent.geojson")
    named = tmp_path / "ranges.gpkg"
    gpd.GeoDataFrame({"scientific_name": ["Vulpes vulpes", "Vulpes vulpes"]},
                     geometry=[box(0, 0, 1, 1), box(2, 0, 3, 1)], crs="EPSG:4326").to_file(named, driver="GPKG")
    (fox,) = read_range_maps(named)  # two rows of one taxon, united
    assert fox.taxon_id == "vulpes_vulpes" and fox.wkt.startswith("MULTIPOLYGON")


def test_build_from_the_configured_catalog(polygons, tmp_path: Path) -> None:
    from ecowatch.context.build import build_context_model

    regions, ranges = polygons
    coco = {"images": [{"id": 1, "file_name": "a.jpg", "location": "N1", "deployment_id": "D-N1",
                        "datetime": "2025-05-01 03:00:00", "seq_id": "s"}],
            "annotations": [{"id": 1, "image_id": 1, "taxon_id": "vulpes_vulpes"}], "categories": []}
    (tmp_path / "labels.json").write_text(json.dumps(coco))
    (tmp_path / "deployments.csv").write_text(
        "deployment_id,location_id,latitude,longitude,deployment_start,deployment_end,habitat\n"
        "D-N1,N1,50.5,0.5,2025-01-01T00:00:00+00:00,2025-12-31T00:00:00+00:00,Woodland\n")
    (tmp_path / "taxonomy.csv").write_text("taxon_id,scientific_name,rank,parent_id,common_name\n" + "\n".join(
        f"{t.taxon_id},{t.scientific_name},{t.rank},{t.parent_id},{t.common_name}" for t in data.taxa().values()))
    (tmp_path / "data_catalog").mkdir()
    (tmp_path / "conf").mkdir()
    datasets = {"labels": ("coco_camera_traps", "labels.json"), "deployments": ("deployments_csv", "deployments.csv"),
                "taxonomy": ("taxonomy_csv", "taxonomy.csv"), "regions": ("geojson", str(regions)),
                "range_maps": ("geopackage", str(ranges)), "context": ("model_dir", "work/context.json")}
    (tmp_path / "data_catalog" / "catalog.yaml").write_text(yaml.safe_dump(
        {"datasets": {k: {"type": t, "path": p} for k, (t, p) in datasets.items()}}))
    (tmp_path / "conf" / "context.yaml").write_text(yaml.safe_dump({"datasets": {k: k for k in datasets}}))
    from click.testing import CliRunner

    from pipelines.train import train_group

    result = CliRunner().invoke(train_group, ["context", "--config", str(tmp_path / "conf" / "context.yaml"),
                                              "--set", "priors.site_strength=5"])
    assert result.exit_code == 0, result.output
    assert "(1 labelled frames, 1 links, 1 events, 1 locations, 2 regions, 1 habitats, 2 range maps)" in result.output
    graph = load_knowledge_graph(tmp_path / "work" / "context.json")
    assert f"context model {graph.version}: " in result.output
    assert graph.settings.site_strength == 5 and len(graph.range_maps) == 2
    assert graph.locations["N1"].habitat == "woodland" and graph.locations["N1"].region_id == "north"
    from ecowatch.errors import ConfigError

    with pytest.raises(ConfigError, match="priors.site_strenght"):
        build_context_model(tmp_path / "conf" / "context.yaml", overrides={"priors.site_strenght": 5})


def test_labels_from_the_store_human_observations(tmp_path: Path) -> None:
    import datetime as dt

    from ecowatch.context.labels import observations_from_store
    from ecowatch.store import open_store
    from ecowatch.store import schema as S

    store = open_store(tmp_path / "results.sqlite")
    stamp = dt.datetime(2025, 5, 1, 3, 0, 0)
    media = [dict(media_id=f"m{k}", dump_id="d", relpath=f"{k}.jpg", deployment_id="D-N1", sha256=str(k),
                  size_bytes=1, media_type="image", status="ok", timestamp=stamp + dt.timedelta(seconds=k),
                  timestamp_source="exif_datetimeoriginal", sequence_id="D-N1:s", ingest_run_id="i") for k in range(2)]
    obs = [dict(observation_id="o1", level="media", deployment_id="D-N1", media_id="m1", sequence_id="D-N1:s",
                observation_type="animal", taxon_id="vulpes_vulpes", count=2, source="human", run_id="r"),
           dict(observation_id="o2", level="event", deployment_id="D-N1", media_id=None, sequence_id="D-N1:s",
                observation_type="animal", taxon_id="sus_scrofa", count=3, source="human", run_id="r"),
           dict(observation_id="o3", level="media", deployment_id="D-N1", media_id="m0", sequence_id="D-N1:s",
                observation_type="animal", taxon_id="martes_martes", count=1, source="classifier", run_id="r")]  # a machine's: not a label
    with store.transaction() as conn:
        conn.execute(S.dumps.insert(), [dict(dump_id="d", root=str(tmp_path))])
        conn.execute(S.deployments.insert(), [dict(deployment_id="D-N1", location_id="N1", latitude=50.5,
                                                   longitude=0.5, start=stamp, end=stamp, utc_offset_min=0)])
        conn.execute(S.media.insert(), media)
        conn.execute(S.observations.insert(), obs)
    try:
        found = observations_from_store(store)
    finally:
        store.dispose()
    assert [(o.taxon_id, o.location_id, o.event_id, o.timestamp, o.individuals) for o in found] == [
        ("sus_scrofa", "N1", "D-N1:s", stamp, 3),  # an event starts at its first frame
        ("vulpes_vulpes", "N1", "D-N1:s", stamp + dt.timedelta(seconds=1), 2)]
