"""The review worklist: most informative crops first, in a CSV the Timelapse reader reads back as labels."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest

from ecowatch.retrain.timelapse import labels_from_timelapse
from ecowatch.retrain.worklist import COLUMNS, WorklistWeights, select_worklist, write_worklist
from ecowatch.store import Store, open_store
from ecowatch.store import schema as S
from ecowatch.tables import read_taxonomy

DUMP = "cards"
MODEL = "ecowatch-species"


def _relpaths(rounds_data, count: int) -> list[str]:
    coco = json.loads((rounds_data.root / "new_sites.json").read_text())
    return [img["file_name"] for img in coco["images"][:count]]


@pytest.fixture
def store(rounds_data, tmp_path: Path) -> Store:
    """Six images of a dump with detections and classifications of two versions of the model.

    img0: two boxes, one a coin toss (0.50 / 0.45), one sure; img1: sure but unlike any known species
    (unknown 0.9); img2: the prior-based observation names another taxon; img3: labelled by a person;
    img4: a detection below the confidence threshold; img5: a static false positive.
    """
    store = open_store(tmp_path / "results.sqlite")
    relpaths = _relpaths(rounds_data, 6)
    t = dt.datetime(2025, 10, 5, 10, 0, 0)
    with store.transaction() as conn:
        conn.execute(S.dumps.insert(), [{"dump_id": DUMP, "root": str(rounds_data.dump)}])
        conn.execute(S.deployments.insert(), [{"deployment_id": "dep-1", "location_id": "loc-1", "latitude": 50.0,
                                               "longitude": -1.0, "start": t, "end": t + dt.timedelta(days=30),
                                               "utc_offset_min": 0}])
        conn.execute(S.runs.insert(), [{"run_id": r, "kind": "nightly", "started_at": t + dt.timedelta(days=i),
                                        "status": "finished"} for i, r in enumerate(("old", "new"))])
        conn.execute(S.media.insert(), [{
            "media_id": f"m{i}", "dump_id": DUMP, "relpath": rel, "deployment_id": "dep-1", "sha256": f"{i:064d}",
            "size_bytes": 1, "media_type": "image", "status": "ok", "timestamp": t + dt.timedelta(minutes=i),
            "timestamp_source": "exif_datetimeoriginal", "ingest_run_id": "ingest"} for i, rel in enumerate(relpaths)])
        detections = [("d0a", "m0", 0.9, False), ("d0b", "m0", 0.9, False), ("d1", "m1", 0.8, False),
                      ("d2", "m2", 0.8, False), ("d3", "m3", 0.8, False), ("d4", "m4", 0.1, False),
                      ("d5", "m5", 0.9, True)]
        conn.execute(S.detections.insert(), [{
            "detection_id": d, "media_id": m, "category": "animal", "conf": conf, "x": 0.1, "y": 0.2, "w": 0.3,
            "h": 0.4, "detector_name": "det", "detector_version": "1", "static_fp": fp, "run_id": "new"}
            for d, m, conf, fp in detections])
        scores = {"d0a": (0.50, 0.45, 0.1), "d0b": (0.95, 0.03, 0.1), "d1": (0.9, 0.05, 0.99), "d2": (0.9, 0.05, 0.1),
                  "d3": (0.4, 0.35, 0.9), "d4": (0.4, 0.35, 0.9), "d5": (0.4, 0.35, 0.9)}
        rows = []
        for d, (p1, p2, unknown) in scores.items():
            for version, rank, taxon, score, unknown_score, run in (
                    ("v2", 1, "cervus_elaphus", p1, unknown, "new"), ("v2", 2, "sus_scrofa", p2, unknown, "new"),
                    ("v1", 1, "vulpes_vulpes", 0.34, 0.99, "old")):
                rows.append({"detection_id": d, "model_name": MODEL, "model_version": version, "rank": rank,
                             "taxon_id": taxon, "score": score, "temperature": 1.0, "unknown_score": unknown_score,
                             "run_id": run})
        conn.execute(S.classifications.insert(), rows)
        conn.execute(S.observations.insert(), [
            {"observation_id": "o2", "level": "media", "media_id": "m2", "observation_type": "animal",
             "taxon_id": "vulpes_vulpes", "source": "classifier+prior", "run_id": "new"},
            {"observation_id": "o3", "level": "media", "media_id": "m3", "observation_type": "animal",
             "taxon_id": "cervus_elaphus", "source": "human", "run_id": "import"}])
    yield store
    store.dispose()


def test_most_informative_first_one_per_image(store: Store) -> None:
    rows = select_worklist(store, dump_id=DUMP, model_name=MODEL, size=10)
    # newest version (v2) only; d3 labelled by a person, d4 below the threshold, d5 a static false positive
    assert [r.detection_id for r in rows] == ["d2", "d1", "d0a"]
    assert [r.reason for r in rows] == ["disagrees_with_prior", "unknown", "uncertain"]
    assert [r.informativeness for r in rows] == pytest.approx([0.15 + 0.1 + 1.0, 0.15 + 0.99, 0.95 + 0.1])
    assert rows[0].prior_taxon == "vulpes_vulpes" and rows[1].prior_taxon == ""
    assert rows[2].location_id == "loc-1" and rows[2].bbox_xywhn == (0.1, 0.2, 0.3, 0.4)
    both = select_worklist(store, dump_id=DUMP, model_name=MODEL, one_per_image=False, size=10)
    assert {"d0a", "d0b"} <= {r.detection_id for r in both}
    assert [r.detection_id for r in select_worklist(store, dump_id=DUMP, model_name=MODEL, size=1)] == ["d2"]
    no_prior = select_worklist(store, dump_id=DUMP, model_name=MODEL, weights=WorklistWeights(prior=0.0))
    assert [r.detection_id for r in no_prior] == ["d1", "d0a", "d2"]
    older = select_worklist(store, dump_id=DUMP, model_name=MODEL, model_version="v1", size=10)
    assert {r.predicted for r in older} == {"vulpes_vulpes"}
    assert select_worklist(store, dump_id=DUMP, model_name="another-model") == []
    assert [r.detection_id for r in select_worklist(store, dump_id=DUMP, model_name=MODEL,
                                                    exclude_relpaths={rows[0].relpath})][0] == "d1"


def test_worklist_round_trips_through_the_timelapse_reader(store: Store, rounds_data, tmp_path: Path) -> None:
    taxa = read_taxonomy(rounds_data.taxonomy)
    rows = select_worklist(store, dump_id=DUMP, model_name=MODEL, size=10)
    path = write_worklist(rows, tmp_path / "worklists" / "worklist.csv", taxa=taxa)
    with path.open(newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert tuple(table[0]) == COLUMNS and [r["DetectionId"] for r in table] == ["d2", "d1", "d0a"]
    assert "\\" in table[0]["RelativePath"] and table[0]["Predicted"] == "Cervus elaphus"  # as Timelapse writes
    assert table[0]["DateTime"] == "2025-10-05 10:02:00"
    # a reviewer fills in two rows (a common name, a scientific name) and leaves one
    table[0]["Species"], table[1]["Species"] = "wild boar", "Vulpes vulpes"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(table)
    got = labels_from_timelapse(path.parent, rounds_data.dump, name="worklists", images_name="images", taxa=taxa)
    assert got.skipped == {"unlabelled": 1}
    boar, fox = got.labels
    assert (boar.label_id, boar.taxon_id, fox.label_id, fox.taxon_id) == ("d2", "sus_scrofa", "d1", "vulpes_vulpes")
    assert boar.bbox_xywhn == (0.1, 0.2, 0.3, 0.4) and boar.location_id == "loc-1" and boar.deployment_id == "dep-1"
    assert boar.image_key == f"images/{rows[0].relpath}" and boar.timestamp == "2025-10-05T10:02:00"
