"""Label intake: the readers of each format, merging labelled sets, and the labelled set's fingerprint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ecowatch.errors import ConfigError, InputDataError
from ecowatch.retrain.config import load_retrain_config
from ecowatch.retrain.intake import labels_from_camtrap_dp, labels_from_coco, labels_from_folders, read_labelled_sets
from ecowatch.retrain.labels import LabelledBox, fingerprint, merge_labels
from ecowatch.retrain.timelapse import labels_from_timelapse
from ecowatch.tables import read_deployments, read_taxonomy

from .conftest import coco_set, write_project
from .data import SPECIES

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "camtrap_dp_example"


@pytest.fixture(scope="module")
def taxa(rounds_data):
    return read_taxonomy(rounds_data.taxonomy)


def _images(rounds_data, count: int) -> list[dict]:
    """The first ``count`` images of the holdout set with their boxes (COCO records)."""
    coco = json.loads((rounds_data.root / "holdout.json").read_text())
    anns = {}
    for ann in coco["annotations"]:
        anns.setdefault(ann["image_id"], ann)
    return [(img, anns[img["id"]]) for img in coco["images"][:count]]


def test_coco_labels_carry_boxes_locations_and_times(rounds_data, taxa) -> None:
    got = labels_from_coco(rounds_data.root / "holdout.json", rounds_data.dump, name="holdout",
                           images_name="images", taxa=taxa)
    coco = json.loads((rounds_data.root / "holdout.json").read_text())
    assert len(got.labels) == len(coco["annotations"]) and got.skipped == {}
    assert {b.location_id for b in got.labels} == set(rounds_data.holdout_locations)
    assert {b.taxon_id for b in got.labels} == set(SPECIES)
    first = got.labels[0]
    image = next(img for img in coco["images"] if img["id"] == coco["annotations"][0]["image_id"])
    assert first.image_key == f"images/{image['file_name']}" and first.image_path.is_file()
    x, y, w, h = coco["annotations"][0]["bbox"]
    assert first.bbox_xywhn == pytest.approx((x / image["width"], y / image["height"], w / image["width"],
                                              h / image["height"]))
    assert first.timestamp == image["datetime"].replace(" ", "T") and first.source == "coco_camera_traps:holdout"
    assert first.crop_source().bbox_xywhn == first.bbox_xywhn and first.crop_source().taxon_id == first.taxon_id


def test_timelapse_csv_names_species_by_any_name_and_reads_boxes(rounds_data, taxa, tmp_path: Path) -> None:
    (img1, ann1), (img2, _), (img3, _), (img4, _), (img5, _) = _images(rounds_data, 5)
    folder1, _, file1 = img1["file_name"].rpartition("/")
    rows = [
        # Timelapse writes Windows separators; a box in bbox_xywhn; the scientific name
        [file1, folder1.replace("/", "\\"), "2025-10-23 10:09:52", "Cervus elaphus", "0.1", "0.2", "0.3", "0.4", ""],
        # the common name, no box: the whole image; location from the row
        [img2["file_name"].rpartition("/")[2], img2["file_name"].rpartition("/")[0], "", "red fox", "", "", "", "",
         "SITE-X"],
        [img3["file_name"].rpartition("/")[2], img3["file_name"].rpartition("/")[0], "", "", "", "", "", "", ""],
        [img4["file_name"].rpartition("/")[2], img4["file_name"].rpartition("/")[0], "", "blank", "", "", "", "", ""],
        [img5["file_name"].rpartition("/")[2], img5["file_name"].rpartition("/")[0], "", "Dodo", "", "", "", "", ""],
        ["missing.jpg", "nowhere", "", "Sus scrofa", "", "", "", "", ""],
    ]
    header = "File,RelativePath,DateTime,Species,BboxX,BboxY,BboxWidth,BboxHeight,Location\n"
    (tmp_path / "export.csv").write_text(header + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8-sig")
    got = labels_from_timelapse(tmp_path, rounds_data.dump, name="tl", images_name="images", taxa=taxa,
                                deployments=read_deployments(rounds_data.deployments))
    assert got.skipped == {"unlabelled": 1, "not_a_species": 1, "not_in_taxonomy": 1, "no_image_file": 1}
    deer, fox = got.labels
    assert deer.taxon_id == "cervus_elaphus" and deer.bbox_xywhn == (0.1, 0.2, 0.3, 0.4)
    assert deer.image_key == f"images/{img1['file_name']}" and deer.timestamp == "2025-10-23T10:09:52"
    assert deer.location_id == img1["location"] and deer.deployment_id == img1["deployment_id"]  # from the folder
    assert fox.taxon_id == "vulpes_vulpes" and fox.bbox_xywhn is None and fox.location_id == "SITE-X"

    (tmp_path / "export.csv").write_text(header + ",".join(rows[0][:4] + ["1.5", "0", "0.1", "0.1", ""]) + "\n")
    with pytest.raises(InputDataError, match=r"export\.csv: row 2: box .* within 0\.\.1"):
        labels_from_timelapse(tmp_path, rounds_data.dump, name="tl", images_name="images", taxa=taxa)
    (tmp_path / "export.csv").write_text("File,RelativePath,Species\n")
    with pytest.raises(InputDataError, match=r"missing column\(s\) \['Animal'\].*species_column"):
        labels_from_timelapse(tmp_path, rounds_data.dump, name="tl", images_name="images", taxa=taxa,
                              species_column="Animal")


def test_station_species_folders_give_whole_image_labels(rounds_data, taxa, tmp_path: Path) -> None:
    deployments = read_deployments(rounds_data.deployments)
    dep = deployments[0]
    (img1, _), (img2, _), (img3, _) = _images(rounds_data, 3)
    for station, species, img in ((dep.location_name, "Red deer", img1), (dep.location_name, "empty", img2),
                                  ("Unknown Station", "Sus_scrofa", img3)):
        target = tmp_path / "sorted" / station / species / Path(img["file_name"]).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(rounds_data.dump / img["file_name"], target)
    (tmp_path / "sorted" / "loose.jpg").write_bytes(b"not at the layout's depth")
    got = labels_from_folders(tmp_path / "sorted", name="sorted", taxa=taxa, deployments=deployments)
    assert got.skipped == {"not_a_species": 1}
    by_taxon = {b.taxon_id: b for b in got.labels}
    assert set(by_taxon) == {"cervus_elaphus", "sus_scrofa"}
    deer = by_taxon["cervus_elaphus"]
    assert deer.bbox_xywhn is None and deer.location_id == dep.location_id
    assert deer.image_key == f"sorted/{dep.location_name}/Red deer/{Path(img1['file_name']).name}"
    assert by_taxon["sus_scrofa"].location_id == "Unknown Station"  # not in the table: the folder name


def _camtrap_package(root: Path, rounds_data) -> Path:
    """A tiny Camtrap DP 1.0.2 package: 3 media beside it, human and machine observations."""
    (root / "media").mkdir(parents=True)
    (img1, _), (img2, _), (img3, _) = _images(rounds_data, 3)
    for i, img in enumerate((img1, img2, img3), start=1):
        shutil.copy(rounds_data.dump / img["file_name"], root / "media" / f"m{i}.jpg")
    (root / "deployments.csv").write_text(
        "deploymentID,locationID,latitude,longitude,deploymentStart,deploymentEnd\n"
        "d1,loc-A,50.1,-1.2,2025-10-01T00:00:00Z,2025-12-01T00:00:00Z\n")
    (root / "media.csv").write_text(
        "mediaID,deploymentID,timestamp,filePath,filePublic,fileName,fileMediatype\n"
        "m1,d1,2025-10-05T10:00:00Z,media/m1.jpg,false,m1.jpg,image/jpeg\n"
        "m2,d1,2025-10-05T10:00:01Z,media/m2.jpg,false,m2.jpg,image/jpeg\n"
        "m3,d1,2025-10-06T08:00:00Z,media/m3.jpg,false,m3.jpg,image/jpeg\n")
    (root / "observations.csv").write_text(
        "observationID,deploymentID,mediaID,eventID,eventStart,eventEnd,observationLevel,observationType,"
        "scientificName,bboxX,bboxY,bboxWidth,bboxHeight,classificationMethod\n"
        "o1,d1,m1,e1,2025-10-05T10:00:00Z,2025-10-05T10:00:00Z,media,animal,Cervus elaphus,0.1,0.2,0.3,0.4,human\n"
        "o2,d1,m2,e1,2025-10-05T10:00:01Z,2025-10-05T10:00:01Z,media,animal,Cervus elaphus,,,,,machine\n"
        "o3,d1,,e1,2025-10-05T10:00:00Z,2025-10-05T10:00:01Z,event,animal,Cervus elaphus,,,,,human\n"
        "o4,d1,m3,e2,2025-10-06T08:00:00Z,2025-10-06T08:00:00Z,media,animal,Vulpes vulpes,,,,,human\n"
        "o5,d1,m3,e2,2025-10-06T08:00:00Z,2025-10-06T08:00:00Z,media,blank,,,,,,human\n")
    resources = [{"name": n, "path": f"{n}.csv", "profile": "tabular-data-resource"}
                 for n in ("deployments", "media", "observations")]
    (root / "datapackage.json").write_text(json.dumps({
        "profile": "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/camtrap-dp-profile.json",
        "resources": resources}))
    return root / "datapackage.json"


def test_camtrap_dp_keeps_human_classifications(rounds_data, taxa, tmp_path: Path) -> None:
    package = _camtrap_package(tmp_path / "pkg", rounds_data)
    got = labels_from_camtrap_dp(package, name="field", taxa=taxa)
    by_id = {b.label_id: b for b in got.labels}
    # o1: a media-level box; o4: a whole image; o3 (event-level, one species) labels m2, whose own
    # media-level row was a machine's; m1 keeps its media-level label
    assert set(by_id) == {"o1", "o4", "o3/m2"}
    assert by_id["o1"].bbox_xywhn == (0.1, 0.2, 0.3, 0.4) and by_id["o1"].taxon_id == "cervus_elaphus"
    assert by_id["o4"].bbox_xywhn is None and by_id["o4"].taxon_id == "vulpes_vulpes"
    assert {b.location_id for b in got.labels} == {"loc-A"} and by_id["o1"].image_key == "field/media/m1.jpg"
    assert by_id["o1"].timestamp == "2025-10-05T10:00:00"
    assert got.skipped == {"not_classified_by_a_human": 1}


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"real Camtrap DP example not at {SHARED}")
def test_camtrap_dp_official_example(tmp_path: Path) -> None:
    from ecowatch.formats.camtrap_dp_read import read_camtrap_dp
    from ecowatch.tables import Taxon

    pkg = read_camtrap_dp(SHARED)
    taxa = {t.taxon_id: Taxon(t.taxon_id, t.scientific_name, "species", "", "") for t in pkg.taxa.itertuples()}
    # its 10 local images carry machine boxes only; the human labels are of media kept online
    human = labels_from_camtrap_dp(SHARED, name="example", taxa=taxa)
    assert human.labels == () and human.skipped["no_image_file"] > 300 and human.skipped["not_classified_by_a_human"]
    machine = labels_from_camtrap_dp(SHARED, name="example", taxa=taxa, human_only=False)
    assert len({b.image_path for b in machine.labels}) == 10 and all(b.bbox_xywhn for b in machine.labels)
    assert {b.location_id for b in machine.labels} <= set(pkg.deployments["location_id"])


def test_merge_later_set_wins_and_fingerprint_tracks_labels(rounds_data, taxa) -> None:
    base = labels_from_coco(rounds_data.root / "holdout.json", rounds_data.dump, name="a", images_name="images",
                            taxa=taxa).labels
    other = next(t for t in ("sus_scrofa", "vulpes_vulpes") if t != base[0].taxon_id)  # a real change of species
    relabel = LabelledBox("fix", base[0].image_path, base[0].image_key, base[0].bbox_xywhn, other,
                          base[0].location_id, base[0].deployment_id, "timelapse_csv:fixes")
    merged = merge_labels([base, [relabel]])
    assert merged.replaced == 1 and len(merged.labels) == len(base)
    assert merged.labels[-1] is relabel and merged.per_source == {"coco_camera_traps:a": len(base) - 1,
                                                                  "timelapse_csv:fixes": 1}
    assert fingerprint(base) == fingerprint(list(reversed(base)))  # order does not matter
    assert fingerprint(merged.labels) != fingerprint(base)  # a changed species does
    assert fingerprint(base[1:]) != fingerprint(base)  # and a removed label


def test_config_names_sets_of_the_catalog(rounds_data, tmp_path: Path) -> None:
    conf = write_project(tmp_path / "p", rounds_data, labels=[coco_set("holdout_labels"),
                                                              {"dataset": "worklists", "images": "images",
                                                               "required": False}])
    loaded = load_retrain_config(conf)
    sets = read_labelled_sets(loaded, read_taxonomy(rounds_data.taxonomy))
    assert [s.name for s in sets] == ["holdout_labels", "worklists"] and sets[1].missing and not sets[1].labels
    assert loaded.label_format(1) == "timelapse_csv" and loaded.classifier.model.name == "ecowatch-species"
    with pytest.raises(ConfigError, match=r"labels\[0\]\.dataset: 'nope' is not in the catalog"):
        load_retrain_config(conf, overrides={"labels": [{"dataset": "nope", "images": "images"}]})
    with pytest.raises(ConfigError, match=r"labels\[0\]\.dataset: 'models' is a model_dir dataset, which holds no"):
        load_retrain_config(conf, overrides={"labels": [{"dataset": "models"}]})
    with pytest.raises(ConfigError, match=r"labels\[0\]\.images: a coco_camera_traps labelled set needs"):
        load_retrain_config(conf, overrides={"labels": [{"dataset": "holdout_labels"}]})
    with pytest.raises(ConfigError, match=r"promotion\.min_macro_f1_gain"):
        load_retrain_config(conf, overrides={"promotion.min_macro_f1_gain": 2})
