"""Timelapse CSV files: labels people entered in Timelapse, and review worklists, read back as labels.

`Timelapse <https://timelapse.ucalgary.ca>`_ exports one CSV row per image file: ``File`` (the
file name), ``RelativePath`` (its folder relative to the image set's root folder; ``\\`` on
Windows), ``DateTime`` (``YYYY-MM-DD HH:MM:SS``, camera-local; older exports: ``Date`` and
``Time``) and the user-defined data fields of the template (e.g. ``Species``, ``Count``).
The review worklist (:mod:`ecowatch.retrain.worklist`) is written in the same layout with these
extra fields, so a filled-in worklist reads back with the same reader:

=================  =============================================================================
column             meaning
=================  =============================================================================
Species            the species: scientific name, common name or taxon id (empty: not labelled)
BboxX, BboxY,      the box, ``bbox_xywhn`` (normalised top-left x, y, width, height); empty: the
BboxWidth,         label is for the whole image
BboxHeight
Location           the location id (else from ``Deployment``, or from a folder named like a
Deployment         deployment id in the deployments table, or the first folder of RelativePath)
DetectionId        the detection the row is about (the label id when present)
Predicted, ...     what the classifier said and why the crop was chosen (informative; not read)
=================  =============================================================================

Species names are matched to the taxonomy like station/species folders are
(:class:`ecowatch.formats.folders_import.TaxonMatcher`: scientific name, taxon id, then common
name; case, spaces and punctuation ignored); ``blank``, ``human``, ``vehicle``, ``unknown`` and the
like are not species and are left out.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

import pandas as pd

from ecowatch.errors import InputDataError
from ecowatch.formats.folders_import import TaxonMatcher
from ecowatch.retrain.intake import (
    NO_IMAGE_FILE,
    NO_LOCATION,
    NOT_A_SPECIES,
    NOT_IN_TAXONOMY,
    UNLABELLED,
    SetIntake,
    finish_set,
)
from ecowatch.retrain.labels import LabelledBox, image_key
from ecowatch.tables import Deployment, Taxon

FILE = "File"
RELATIVE_PATH = "RelativePath"
DATETIME = "DateTime"
BBOX_COLUMNS = ("BboxX", "BboxY", "BboxWidth", "BboxHeight")
LOCATION = "Location"
DEPLOYMENT = "Deployment"
DETECTION_ID = "DetectionId"


def relative_path(folder: str) -> str:
    """A Timelapse ``RelativePath`` as a POSIX path ("" for the root folder)."""
    return PurePosixPath(str(folder).replace("\\", "/").strip("/")).as_posix().removeprefix(".")


def _timestamp(row: Mapping[str, str]) -> str:
    text = row.get(DATETIME) or " ".join(filter(None, (row.get("Date", ""), row.get("Time", ""))))
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d-%b-%Y %H:%M:%S", "%d-%b-%Y %H:%M"):
        try:
            return dt.datetime.strptime(text.strip(), fmt).isoformat()
        except ValueError:
            continue
    return ""


def _csv_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.glob("*.csv") if not p.name.startswith("."))


def read_timelapse_table(path: Path, *, species_column: str) -> pd.DataFrame:
    """One Timelapse CSV file as strings, its columns checked.

    Raises:
        InputDataError: unreadable, or without ``File``, ``RelativePath`` or the species column.
    """
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise InputDataError(f"{path}: not a readable CSV file ({exc}).") from exc
    missing = [c for c in (FILE, RELATIVE_PATH, species_column) if c not in table.columns]
    if missing:
        raise InputDataError(
            f"{path}: missing column(s) {missing} of a Timelapse export (found {list(table.columns)}). Export the "
            f"image set's CSV from Timelapse, or set species_column to the data field that holds the species."
        )
    return table


def labels_from_timelapse(path: Path, images_root: Path, *, name: str, images_name: str,
                          taxa: Mapping[str, Taxon], deployments: Sequence[Deployment] = (),
                          species_column: str = "Species") -> SetIntake:
    """Labels of a Timelapse CSV export, or of every ``*.csv`` in a folder (sorted by name).

    Args:
        path: a CSV file or a folder of them.
        images_root: the image set's root folder (``RelativePath`` is relative to it).
        name: the set's catalog name.
        images_name: the catalog name of ``images_root``.
        taxa: the taxonomy table species names are matched against.
        deployments: the deployments table (locations of rows without a ``Location``).
        species_column: the data field holding the species.

    Returns:
        The set: one label per row with a species (a box when the bbox columns are filled, else
        the whole image); rows of the same box in a later file replace earlier ones when the sets
        are merged.

    Raises:
        InputDataError: a file is unreadable, lacks a required column, or has a box value
            outside 0..1 (the message names the file and row).
    """
    matcher = TaxonMatcher(taxa)
    location_of = {d.deployment_id: d.location_id for d in deployments}
    skipped: Counter[str] = Counter()
    labels: list[LabelledBox] = []
    root = Path(images_root)
    for csv in _csv_files(Path(path)):
        table = read_timelapse_table(csv, species_column=species_column)
        for index, row in enumerate(table.to_dict("records")):
            species = row[species_column].strip()
            if not species:
                skipped[UNLABELLED] += 1
                continue
            label = matcher.label(species)
            if label.observation_type != "animal":
                skipped[NOT_A_SPECIES] += 1
                continue
            if not label.matched or label.taxon_id not in taxa:
                skipped[NOT_IN_TAXONOMY] += 1
                continue
            folder = relative_path(row[RELATIVE_PATH])
            image = root / folder / row[FILE] if folder else root / row[FILE]
            if not image.is_file():
                skipped[NO_IMAGE_FILE] += 1
                continue
            deployment, location = _place(row, folder, location_of)
            if not location:
                skipped[NO_LOCATION] += 1
                continue
            labels.append(LabelledBox(
                label_id=row.get(DETECTION_ID) or f"{csv.name}:{index + 2}", image_path=image,
                image_key=image_key(images_name, image, root), bbox_xywhn=_bbox(row, csv, index),
                taxon_id=str(label.taxon_id), location_id=location, deployment_id=deployment,
                source=f"timelapse_csv:{name}", timestamp=_timestamp(row),
            ))
    return finish_set(name, "timelapse_csv", labels, skipped)


def _place(row: Mapping[str, str], folder: str, location_of: Mapping[str, str]) -> tuple[str, str]:
    """(deployment id, location id) of a row (see the module docstring)."""
    deployment = (row.get(DEPLOYMENT) or "").strip()
    if not deployment:
        deployment = next((part for part in reversed(folder.split("/")) if part in location_of), "")
    location = (row.get(LOCATION) or "").strip() or location_of.get(deployment, deployment)
    if not location and folder:
        location = folder.split("/")[0]
    return deployment, location


def _bbox(row: Mapping[str, str], csv: Path, index: int) -> tuple[float, float, float, float] | None:
    values = [(row.get(c) or "").strip() for c in BBOX_COLUMNS]
    if not all(values):
        return None
    try:
        box = tuple(float(v) for v in values)
    except ValueError:
        box = ()
    if len(box) != 4 or not all(0.0 <= v <= 1.0 for v in box) or box[2] <= 0 or box[3] <= 0:
        raise InputDataError(f"{csv}: row {index + 2}: box {values} is not normalised x, y, width, height within 0..1 "
                             f"(columns {list(BBOX_COLUMNS)}); fix the values or empty them for a whole-image label.")
    return box  # type: ignore[return-value]
