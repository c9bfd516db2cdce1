"""Station/species folder import (ecowatch.formats.folders_import) on a tiny generated tree."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ecowatch.config import IngestConfig
from ecowatch.formats.folders_import import TaxonMatcher, import_species_folders, observation_id_for
from ecowatch.ingest.records import media_id_for
from ecowatch.store import Store, open_store
from ecowatch.store import schema as S
from ecowatch.tables import Deployment, Taxon
from tests.ingest.frames import deployment, write_frame

CONFIG = IngestConfig(workers=0, batch_size=4)
T0 = dt.datetime(2026, 3, 10, 21, 0, 0)
TAXONOMY = {
    "vulpes_vulpes": Taxon("vulpes_vulpes", "Vulpes vulpes", "species", "vulpes", "Red Fox"),
    "meles_meles": Taxon("meles_meles", "Meles meles", "species", "meles", "European badger"),
    "capreolus_capreolus": Taxon("capreolus_capreolus", "Capreolus capreolus", "species", "capreolus", "deer"),
    "cervus_elaphus": Taxon("cervus_elaphus", "Cervus elaphus", "species", "cervus", "deer"),
}


def station(dep_id: str, name: str, **times: str) -> Deployment:
    return dataclasses.replace(deployment(dep_id, **times), location_name=name)


DEPLOYMENTS = [
    station("oak-1", "Oak"),
    station("oak-2", "Oak", start="2026-04-02T10:00:00", end="2026-05-01T10:00:00"),
    station("pond-1", "Pond"),
]


def write_tree(root: Path) -> dict[str, str]:
    """The tiny tree; returns relpath -> what the test expects of it."""
    files = {
        "Oak/Vulpes_vulpes/IMG_0001.JPG": "fox (scientific name), oak-1",
        "Oak/Vulpes_vulpes/IMG_0002.JPG": "fox, same sequence",
        "Oak/red fox/IMG_0003.JPG": "fox (common name), oak-2 by time",
        "Oak/EMPTY/IMG_0004.JPG": "blank",
        "Pond/People/IMG_0005.JPG": "human",
        "Pond/Unicornus_magicus/IMG_0006.JPG": "species not in the taxonomy",
        "Pond/deer/IMG_0007.JPG": "common name shared by two taxa",
        "Elm/Meles_meles/IMG_0008.JPG": "station not in the deployments table",
        "Pond/IMG_0009.JPG": "outside the layout",
    }
    times = {"IMG_0002.JPG": T0 + dt.timedelta(seconds=2), "IMG_0003.JPG": dt.datetime(2026, 4, 10, 3, 0)}
    for seed, relpath in enumerate(files):
        name = relpath.rsplit("/", 1)[-1]
        write_frame(root / relpath, seed=seed, when=times.get(name, T0 + dt.timedelta(minutes=seed)))
    (root / "Pond" / "Meles_meles").mkdir(parents=True)
    (root / "Pond" / "Meles_meles" / "notes.jpg").write_text("not a picture")  # named like an image
    (root / "Pond" / "Meles_meles" / "README.txt").write_text("ignored: no media extension")
    files["Pond/Meles_meles/notes.jpg"] = "not an image"
    return files


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(tmp_path / "results.sqlite")
    yield opened
    opened.dispose()


def observations(store: Store) -> dict[str, sa.Row]:
    media = S.media
    stmt = sa.select(media.c.relpath, S.observations).join(media, media.c.media_id == S.observations.c.media_id)
    with store.engine.connect() as conn:
        return {row.relpath: row for row in conn.execute(stmt)}


def test_import_labels_every_image_and_reports_problems(tmp_path: Path, store: Store, caplog) -> None:
    root = tmp_path / "trapper"
    files = write_tree(root)
    with caplog.at_level(logging.WARNING):
        summary = import_species_folders(store, root, dump_id="season1", deployments=DEPLOYMENTS,
                                         taxonomy=TAXONOMY, config=CONFIG)  # fmt: skip

    assert store.count(S.media) == len(files)  # every file recorded, the broken one included
    assert summary.ingest.files_new == len(files) and summary.ingest.files_ignored == 1
    assert summary.ingest.flags["not_an_image"] == 1
    assert summary.media_labelled == summary.observations_inserted == 8
    assert summary.media_not_labelled == 1 and summary.media_outside_layout == 1
    assert summary.observation_types == {"animal": 6, "blank": 1, "human": 1}
    assert summary.taxa == {"deer": 1, "meles_meles": 1, "unicornus_magicus": 1, "vulpes_vulpes": 3}
    assert summary.unmatched_species == {"Unicornus_magicus": 1, "deer": 1}
    assert summary.stations_not_in_deployments == {"Elm": 1} and summary.media_without_deployment == 1
    assert "'Unicornus_magicus' (1 images) matches no taxon" in caplog.text
    assert "'deer' (1 images) is the common name of several taxa (capreolus_capreolus, cervus_elaphus)" in caplog.text
    assert "'Elm' (1 files)" in caplog.text

    obs = observations(store)
    assert set(obs) == {p for p, what in files.items() if what not in ("outside the layout", "not an image")}
    fox = obs["Oak/Vulpes_vulpes/IMG_0001.JPG"]
    assert (fox.observation_type, fox.taxon_id, fox.taxon_rank, fox.source, fox.level) == (
        "animal", "vulpes_vulpes", "species", "human", "media")
    assert fox.deployment_id == "oak-1" and fox.observation_id == observation_id_for("season1", fox.relpath)
    assert fox.media_id == media_id_for("season1", "Oak/Vulpes_vulpes/IMG_0001.JPG")
    assert fox.sequence_id and fox.sequence_id == obs["Oak/Vulpes_vulpes/IMG_0002.JPG"].sequence_id
    common = obs["Oak/red fox/IMG_0003.JPG"]
    assert (common.taxon_id, common.deployment_id) == ("vulpes_vulpes", "oak-2")
    blank, person = obs["Oak/EMPTY/IMG_0004.JPG"], obs["Pond/People/IMG_0005.JPG"]
    assert (blank.observation_type, blank.taxon_id, person.observation_type, person.taxon_id) == (
        "blank", None, "human", None)
    unknown = obs["Pond/Unicornus_magicus/IMG_0006.JPG"]
    assert (unknown.observation_type, unknown.taxon_id, unknown.taxon_rank) == ("animal", "unicornus_magicus", None)
    elm = obs["Elm/Meles_meles/IMG_0008.JPG"]
    assert (elm.deployment_id, elm.taxon_id) == (None, "meles_meles")
    with store.engine.connect() as conn:
        media = {r.relpath: r for r in conn.execute(sa.select(S.media))}
        flags = {(r.media_id, r.flag) for r in conn.execute(sa.select(S.media_flags))}
        run = conn.execute(sa.select(S.runs)).one()
    assert media["Oak/Vulpes_vulpes/IMG_0001.JPG"].deployment_source == "station_time"
    assert (media[elm.relpath].media_id, "no_deployment") in flags
    assert media["Pond/Meles_meles/notes.jpg"].status == "failed"
    assert (run.kind, run.status) == ("import_folders", "finished") and fox.run_id == run.run_id


def test_reimport_adds_nothing(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "trapper"
    write_tree(root)
    first = import_species_folders(store, root, dump_id="season1", deployments=DEPLOYMENTS, taxonomy=TAXONOMY,
                                   config=CONFIG)  # fmt: skip
    before = store.snapshot()
    again = import_species_folders(store, root, dump_id="season1", deployments=DEPLOYMENTS, taxonomy=TAXONOMY,
                                   config=CONFIG)  # fmt: skip
    assert store.snapshot() == before
    assert (again.ingest.files_new, again.observations_inserted) == (0, 0)
    assert again.ingest.files_already_ingested == first.ingest.files_new
    assert (again.media_labelled, again.taxa, again.unmatched_species) == (
        first.media_labelled, first.taxa, first.unmatched_species)


def test_without_taxonomy_ids_come_from_folder_names(tmp_path: Path, store: Store, caplog) -> None:
    root = tmp_path / "trapper"
    write_frame(root / "Oak" / "Red-Fox" / "IMG_0001.JPG", when=T0)
    write_frame(root / "Oak" / "nothing" / "IMG_0002.JPG", seed=1, when=T0)
    with caplog.at_level(logging.WARNING):
        summary = import_species_folders(store, root, dump_id="d", deployments=DEPLOYMENTS, config=CONFIG)
    assert summary.taxa == {"red_fox": 1} and summary.unmatched_species == {}
    assert summary.observation_types == {"animal": 1, "blank": 1}
    assert "matches no taxon" not in caplog.text


def test_camera_layout_and_csv_tables(tmp_path: Path, store: Store) -> None:
    """``<station>/<camera>/<species>``, deployments as a Camtrap DP deployments.csv, taxonomy as a CSV."""
    (tmp_path / "deployments.csv").write_text(
        "deploymentID,locationID,locationName,latitude,longitude,deploymentStart,deploymentEnd,cameraID\n"
        "oak-left,L1,Oak,52.0,5.0,2026-03-01T10:00:00+01:00,2026-04-01T10:00:00+01:00,CamL\n"
        "oak-right,L1,Oak,52.0,5.0,2026-03-01T10:00:00+01:00,2026-04-01T10:00:00+01:00,CamR\n"
    )
    (tmp_path / "taxonomy.csv").write_text(
        "taxon_id,scientific_name,rank,parent_id,common_name\n"
        "animalia,Animalia,kingdom,,animals\n"
        "vulpes_vulpes,Vulpes vulpes,species,animalia,red fox\n"
    )
    root = tmp_path / "trapper"
    write_frame(root / "Oak" / "CamL" / "red_fox" / "IMG_0001.JPG", when=T0)
    write_frame(root / "Oak" / "CamR" / "red_fox" / "IMG_0001.JPG", seed=1, when=T0)
    write_frame(root / "Oak" / "red_fox" / "IMG_0002.JPG", seed=2, when=T0)  # no camera folder
    summary = import_species_folders(store, root, dump_id="d", deployments=tmp_path / "deployments.csv",
                                     taxonomy=tmp_path / "taxonomy.csv", camera_folders=True,
                                     config=CONFIG)  # fmt: skip
    obs = observations(store)
    assert obs["Oak/CamL/red_fox/IMG_0001.JPG"].deployment_id == "oak-left"
    assert obs["Oak/CamR/red_fox/IMG_0001.JPG"].deployment_id == "oak-right"
    assert {o.taxon_id for o in obs.values()} == {"vulpes_vulpes"}
    assert summary.media_outside_layout == 1 and summary.media_labelled == 2


def test_taxon_matcher_prefers_scientific_names() -> None:
    taxa = {"a": Taxon("a", "Felis catus", "species", "", "cat"), "b": Taxon("b", "Cat", "genus", "", "")}
    matcher = TaxonMatcher(taxa)
    assert matcher.label("cat").taxon_id == "b"  # scientific name 'Cat' beats common name 'cat'
    assert matcher.label("FELIS  CATUS").taxon_id == "a"
    assert matcher.label("Vehicles").observation_type == "vehicle"
    assert matcher.label("unidentified") == matcher.label("Unknown")
    assert matcher.label("unidentified").observation_type == "unknown"
