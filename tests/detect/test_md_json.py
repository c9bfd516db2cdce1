"""MegaDetector batch-output 1.6 export: checked by MegaDetector's own validator and by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecowatch.errors import InputDataError, StoreError
from ecowatch.formats.megadetector_json import FORMAT_VERSION, export_megadetector_json
from ecowatch.store import Store
from ecowatch.store import schema as S
from ecowatch.tables import Taxon

from .fake_store import (
    DETECTOR_NAME,
    DETECTOR_VERSION,
    RUN_ID,
    FakeBox,
    add_classifications,
    add_dump,
    add_media,
)

DUMP = "dump-md"

TAXONOMY = {
    t.taxon_id: t
    for t in (
        Taxon("tx-animalia", "Animalia", "kingdom", "", ""),
        Taxon("tx-mammalia", "Mammalia", "class", "tx-animalia", "mammals"),
        Taxon("tx-canidae", "Canidae", "family", "tx-mammalia", ""),
        Taxon("tx-fox", "Vulpes vulpes", "species", "tx-canidae", "red fox"),
        Taxon("tx-wolf", "Canis lupus", "species", "tx-canidae", "grey wolf"),
        Taxon("tx-ursus", "Ursus arctos", "species", "tx-mammalia", ""),
    )
}


def _populate(store: Store, root: Path) -> dict[str, str]:
    """A dump with every kind of entry; creates empty files under ``root`` for each path.

    Returns:
        Detection ids by name: ``fox`` (classified, 3 scores), ``wolf`` (classified), ``rock`` (static_fp).
    """
    add_dump(store, DUMP, root=str(root), deployments=("dep-a",))
    ids: dict[str, str] = {}
    a = add_media(store, DUMP, "dep-a/a.JPG", deployment_id="dep-a", index=0, boxes=[
        FakeBox("animal", 0.93, 0.10, 0.20, 0.30, 0.40),
        FakeBox("person", 0.51, 0.50, 0.10, 0.10, 0.60),
        FakeBox("vehicle", 0.32, 0.70, 0.70, 0.25, 0.20),
    ])
    ids["fox"] = f"{a}:{DETECTOR_VERSION}:0"
    add_media(store, DUMP, "dep-a/b.JPG", deployment_id="dep-a", index=1, boxes=[])
    add_media(store, DUMP, "dep-a/c.JPG", deployment_id="dep-a", index=2, status="failed",
              flags=[("truncated", "JPEG file ends before its header is complete (12 bytes)")])
    add_media(store, DUMP, "dep-a/d.JPG", deployment_id="dep-a", index=3, detected=False,
              flags=[("detect_unreadable", "cannot decode the image data")])
    e = add_media(store, DUMP, "dep-a/e.JPG", deployment_id="dep-a", index=4, boxes=[
        FakeBox("animal", 0.88, 0.40, 0.40, 0.20, 0.20),
        FakeBox("animal", 0.40, 0.60, 0.70, 0.08, 0.06),
    ])
    ids["wolf"], ids["rock"] = f"{e}:{DETECTOR_VERSION}:0", f"{e}:{DETECTOR_VERSION}:1"
    add_media(store, DUMP, "dep-a/f.JPG", deployment_id="dep-a", index=5,
              boxes=[FakeBox("animal", 0.7, -0.01, 0.5, 1.05, 0.6)])  # a box poking out of the frame
    add_media(store, DUMP, "dep-a/g.JPG", deployment_id="dep-a", index=6, detected=False)  # not yet detected
    add_media(store, DUMP, "dep-a/clip.MP4", deployment_id="dep-a", index=7, status="skipped", media_type="video")
    add_classifications(store, ids["fox"], [("tx-fox", 0.7), ("tx-wolf", 0.2), ("tx-ursus", 0.1)])
    add_classifications(store, ids["wolf"], [("tx-wolf", 0.9)])
    with store.transaction() as conn:
        conn.execute(S.detections.update().where(S.detections.c.detection_id == ids["rock"]).values(static_fp=True))
    with store.engine.connect() as conn:
        for relpath in conn.execute(S.media.select().with_only_columns(S.media.c.relpath)).scalars():
            (root / relpath).parent.mkdir(parents=True, exist_ok=True)
            (root / relpath).write_bytes(b"")
    return ids


@pytest.fixture
def exported(store: Store, tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    root = tmp_path / "dump"
    ids = _populate(store, root)
    out = export_megadetector_json(store, tmp_path / "out" / "md.json", dump_id=DUMP, taxonomy=TAXONOMY)
    return out, root, ids


def test_megadetector_validator_accepts_export(exported: tuple[Path, Path, dict[str, str]], md_validator) -> None:
    validate = md_validator
    out, root, _ = exported
    options = validate.ValidateBatchResultsOptions()
    options.check_image_existence = True  # every "file" must exist relative to the dump root
    options.relative_path_base = str(root)
    options.raise_errors = False

    results = validate.validate_batch_results(str(out), options)["validation_results"]

    assert results["errors"] == []
    assert results["warnings"] == []
    assert dict(results["detection_category_id_to_count"]) == {"1": 3, "2": 1, "3": 1}
    assert dict(results["classification_category_id_to_count"]) == {"0": 1, "1": 1, "2": 2}


def test_validator_rejects_a_broken_file(exported: tuple[Path, Path, dict[str, str]], md_validator) -> None:
    """The validator really looks at what we check: a failure with a detections list is an error."""
    validate = md_validator
    data = json.loads(exported[0].read_text())
    broken = next(im for im in data["images"] if "failure" in im)
    broken["detections"] = []
    results = validate.validate_batch_results(data)["validation_results"]
    assert results["errors"] and "non-null detections" in results["errors"][0]


def test_structure_by_hand(exported: tuple[Path, Path, dict[str, str]]) -> None:
    out, _, _ = exported
    data = json.loads(out.read_text(encoding="utf-8"))

    info = data["info"]
    assert info["format_version"] == FORMAT_VERSION == "1.6"
    assert info["detector"] == DETECTOR_NAME
    assert info["detection_completion_time"] == "2026-05-01 07:00:00"  # the detect run's finish
    assert info["detector_metadata"] == {"megadetector_version": DETECTOR_VERSION,
                                         "typical_detection_threshold": 0.2,
                                         "conservative_detection_threshold": 0.05}
    assert info["classifier"] == "tiny-clf/v1"
    assert data["detection_categories"] == {"1": "animal", "2": "person", "3": "vehicle"}
    assert data["classification_categories"] == {"0": "red fox", "1": "Ursus arctos", "2": "grey wolf"}
    assert data["classification_category_descriptions"] == {
        "0": "animalia;mammalia;canidae;vulpes vulpes",
        "1": "animalia;mammalia;ursus arctos",
        "2": "animalia;mammalia;canidae;canis lupus",
    }

    images = {im["file"]: im for im in data["images"]}
    assert list(images) == sorted(images)
    assert set(images) == {f"dep-a/{n}.JPG" for n in "abcdefg"}  # the video is left out
    a = images["dep-a/a.JPG"]
    assert [d["category"] for d in a["detections"]] == ["1", "2", "3"]
    assert [d["conf"] for d in a["detections"]] == [0.93, 0.51, 0.32]
    assert a["detections"][0]["bbox"] == [0.1, 0.2, 0.3, 0.4]
    assert a["detections"][0]["classifications"] == [["0", 0.7], ["2", 0.2], ["1", 0.1]]
    assert "classifications" not in a["detections"][1]
    assert images["dep-a/b.JPG"] == {"file": "dep-a/b.JPG", "detections": []}
    assert images["dep-a/c.JPG"]["detections"] is None
    assert images["dep-a/c.JPG"]["failure"].startswith("image access failure: truncated: JPEG file ends")
    assert images["dep-a/d.JPG"]["failure"] == "image access failure: detect_unreadable: cannot decode the image data"
    assert images["dep-a/g.JPG"]["failure"] == f"not processed by detector version {DETECTOR_VERSION}"
    assert [d["conf"] for d in images["dep-a/e.JPG"]["detections"]] == [0.88]  # the static_fp box is left out
    assert images["dep-a/f.JPG"]["detections"][0]["bbox"] == [0.0, 0.5, 1.0, 0.5]  # clipped to the image
    for im in data["images"]:
        for d in im["detections"] or []:
            x, y, w, h = d["bbox"]
            assert 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0 and w >= 0.0 and h >= 0.0
            assert x + w <= 1.0 + 1e-9 and y + h <= 1.0 + 1e-9
            assert isinstance(d["conf"], float) and 0.0 <= d["conf"] <= 1.0


def test_options(store: Store, tmp_path: Path) -> None:
    ids = _populate(store, tmp_path / "dump")
    out = export_megadetector_json(store, tmp_path / "all.json", dump_id=DUMP, include_static_fp=True,
                                   include_classifications=False)
    data = json.loads(out.read_text())
    e = next(im for im in data["images"] if im["file"] == "dep-a/e.JPG")
    assert [d["conf"] for d in e["detections"]] == [0.88, 0.4]
    assert "classification_categories" not in data and "classifier" not in data["info"]
    assert all("classifications" not in d for im in data["images"] for d in im["detections"] or [])
    # without a taxonomy the category names are the taxon ids, and there are no descriptions
    plain = json.loads(export_megadetector_json(store, tmp_path / "plain.json", dump_id=DUMP).read_text())
    assert plain["classification_categories"] == {"0": "tx-fox", "1": "tx-ursus", "2": "tx-wolf"}
    assert "classification_category_descriptions" not in plain
    # the same store exports the same bytes
    again = export_megadetector_json(store, tmp_path / "plain2.json", dump_id=DUMP)
    assert again.read_bytes() == (tmp_path / "plain.json").read_bytes()
    assert ids


def test_completion_time_of_an_undetected_dump_is_its_ingest_time(store: Store, tmp_path: Path) -> None:
    add_dump(store, DUMP, root=str(tmp_path / "dump"), deployments=("dep-a",))
    for index in range(2):
        add_media(store, DUMP, f"dep-a/{index}.JPG", deployment_id="dep-a", index=index, detected=False)
    first = json.loads(export_megadetector_json(store, tmp_path / "a.json", dump_id=DUMP).read_text())
    assert first["info"]["detection_completion_time"] == "2026-05-01 07:00:00"  # the ingest run's finish, not now
    assert {im["failure"] for im in first["images"]} == {"not processed by detector version (none)"}
    with store.transaction() as conn:  # an ingest that never recorded its finish: its start stands in
        conn.execute(S.runs.update().where(S.runs.c.run_id == RUN_ID).values(finished_at=None))
    second = json.loads(export_megadetector_json(store, tmp_path / "b.json", dump_id=DUMP).read_text())
    assert second["info"]["detection_completion_time"] == "2026-05-01 06:00:00"


def test_errors(store: Store, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no media"):
        export_megadetector_json(store, tmp_path / "x.json", dump_id=DUMP)
    _populate(store, tmp_path / "dump")
    with pytest.raises(StoreError, match="no images processed by detector version 'nope'"):
        export_megadetector_json(store, tmp_path / "x.json", dump_id=DUMP, detector_version="nope")
    with store.transaction() as conn:
        conn.execute(S.detector_done.insert().values(
            media_id=next(iter(conn.execute(S.media.select().with_only_columns(S.media.c.media_id)).scalars())),
            detector_version="fedcba9876543210", run_id=RUN_ID))
    with pytest.raises(StoreError, match="several detector versions"):
        export_megadetector_json(store, tmp_path / "x.json", dump_id=DUMP)
    with pytest.raises(InputDataError, match="tx-ursus"):
        export_megadetector_json(store, tmp_path / "x.json", dump_id=DUMP, detector_version=DETECTOR_VERSION,
                                 taxonomy={k: v for k, v in TAXONOMY.items() if k != "tx-ursus"})
    assert not (tmp_path / "x.json").exists()
