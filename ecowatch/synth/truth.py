"""Ground-truth writers: deployments and taxonomy tables, COCO Camera Traps JSON, manifest.

The tables follow :mod:`ecowatch.tables` exactly, so ``read_deployments`` and
``read_taxonomy`` accept them. COCO Camera Traps follows the LILA conventions: string image ids,
``datetime`` as ``YYYY-MM-DD HH:MM:SS`` camera-local *true* time (also where the camera clock
was wrong), one ``empty`` annotation per empty image, boxes ``[x, y, width, height]`` in absolute
pixels of the visible part of each object.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecowatch.synth.taxa import HUMAN, LOOKALIKE_PAIRS, SPECIES, taxonomy_rows
from ecowatch.tables import DEPLOYMENT_COLUMNS, RANKS, TAXONOMY_COLUMNS, Deployment, taxon_id_for

COCO_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
EMPTY_CATEGORY_ID = 0


@dataclass(frozen=True)
class Box:
    """A visible object in a written frame.

    Attributes:
        category: species key, ``human`` or ``vehicle``.
        object_id: the individual's id (stable across a burst).
        bbox: [x, y, width, height] in absolute pixels of the visible part.
    """

    category: str
    object_id: str
    bbox: tuple[int, int, int, int]


@dataclass(frozen=True)
class ImageRecord:
    """One readable image for the COCO file.

    Attributes:
        file_name: path relative to the dump root.
        width: pixels.
        height: pixels.
        location: location id.
        datetime: true camera-local time.
        seq_id: burst id.
        seq_num_frames: frames the camera took in that burst.
        frame_num: 0-based position in the burst.
        deployment_id: deployment id.
        boxes: visible objects (empty tuple for an empty image).
    """

    file_name: str
    width: int
    height: int
    location: str
    datetime: dt.datetime
    seq_id: str
    seq_num_frames: int
    frame_num: int
    deployment_id: str
    boxes: tuple[Box, ...]


def categories() -> list[dict[str, Any]]:
    """COCO categories: ``empty`` (id 0), each species, ``human``, ``vehicle``."""
    out: list[dict[str, Any]] = [{"id": EMPTY_CATEGORY_ID, "name": "empty", "taxon_id": None}]
    for i, s in enumerate(SPECIES, start=1):
        out.append({"id": i, "name": s.common_name, "species_key": s.key, "scientific_name": s.scientific_name,
                    "taxon_id": taxon_id_for(s.scientific_name)})
    out.append({"id": len(SPECIES) + 1, "name": "human", "species_key": "human", "scientific_name": HUMAN[1],
                "taxon_id": taxon_id_for(HUMAN[1])})
    out.append({"id": len(SPECIES) + 2, "name": "vehicle", "species_key": "vehicle", "taxon_id": None})
    return out


def _iso(stamp: dt.datetime, offset_min: int) -> str:
    zone = dt.timezone(dt.timedelta(minutes=offset_min))
    return stamp.replace(tzinfo=zone).isoformat(timespec="seconds")


def write_deployments(path: Path, rows: list[Deployment]) -> None:
    """Write ``deployments.csv`` with exactly ``DEPLOYMENT_COLUMNS``, times ISO 8601 with offset."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(DEPLOYMENT_COLUMNS)
        for r in rows:
            writer.writerow([r.deployment_id, r.location_id, r.location_name, f"{r.latitude:.5f}", f"{r.longitude:.5f}",
                             _iso(r.start, r.utc_offset_min), _iso(r.end, r.utc_offset_min), r.camera_id,
                             r.camera_serial, r.camera_make, r.camera_model, r.setup_notes, r.habitat])


def write_taxonomy(path: Path) -> None:
    """Write ``taxonomy.csv``: ``TAXONOMY_COLUMNS`` plus ``kingdom`` .. ``species``, parents first."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(list(TAXONOMY_COLUMNS) + list(RANKS))
        for row in taxonomy_rows():
            writer.writerow([row.taxon_id, row.scientific_name, row.rank, row.parent_id, row.common_name]
                            + [row.lineage.get(rank, "") for rank in RANKS])


def write_coco(path: Path, images: list[ImageRecord], *, description: str, version: str, year: int,
               date_created: str) -> None:
    """Write COCO Camera Traps JSON for readable images (broken files are in the manifest only)."""
    cats = categories()
    by_key = {c.get("species_key"): c for c in cats if c.get("species_key")}
    image_entries, annotations = [], []
    for record in images:
        image_entries.append({
            "id": record.file_name,
            "file_name": record.file_name,
            "width": record.width,
            "height": record.height,
            "location": record.location,
            "datetime": record.datetime.strftime(COCO_TIME_FORMAT),
            "seq_id": record.seq_id,
            "seq_num_frames": record.seq_num_frames,
            "frame_num": record.frame_num,
            "deployment_id": record.deployment_id,
        })
        if not record.boxes:
            annotations.append({"id": f"{record.file_name}#0", "image_id": record.file_name,
                                "category_id": EMPTY_CATEGORY_ID, "taxon_id": None})
        for k, box in enumerate(record.boxes):
            cat = by_key[box.category]
            annotations.append({"id": f"{record.file_name}#{k}", "image_id": record.file_name,
                                "category_id": cat["id"], "bbox": list(box.bbox), "taxon_id": cat["taxon_id"],
                                "individual_id": box.object_id})
    document = {
        "info": {"version": version, "description": description, "year": year, "contributor": "ecowatch.synth",
                 "date_created": date_created},
        "images": image_entries,
        "annotations": annotations,
        "categories": cats,
    }
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def count_boxes(images: list[ImageRecord]) -> dict[str, int]:
    """Boxes per category key over all images (every species key present, zero if unseen)."""
    counts = {s.key: 0 for s in SPECIES} | {"human": 0, "vehicle": 0}
    for record in images:
        for box in record.boxes:
            counts[box.category] += 1
    return counts


def write_manifest(path: Path, *, spec_record: dict[str, Any], version: str, counts: dict[str, int],
                   box_counts: dict[str, int], broken: list, files: dict[str, str], notes: list[str]) -> None:
    """Write ``manifest.json``: spec, generator version, counts, broken files with kind and path."""
    document = {
        "generator": "ecowatch.synth",
        "generator_version": version,
        "spec": spec_record,
        "counts": counts,
        "box_counts": box_counts,
        "lookalike_pairs": [{"a": a, "b": b, "trait": trait} for a, b, trait in LOOKALIKE_PAIRS],
        "broken_files": [dataclasses.asdict(b) for b in broken],
        "files": files,
        "notes": notes,
    }
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
