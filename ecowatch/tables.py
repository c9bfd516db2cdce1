"""Input tables: the deployments table and the taxonomy table (data contract v1).

Both are plain CSV files. They are validated where they enter: a missing column, an unparsable
timestamp or coordinate, a duplicated id or a dangling parent is an :class:`InputDataError`
that names the file, the row and the fix.

Deployments CSV (ecowatch's own layout; a Camtrap DP ``deployments.csv`` is accepted too):

=================  ===========================================================================
column             meaning
=================  ===========================================================================
deployment_id      unique id of one camera placement (a camera at a location for a period)
location_id        id of the location (several deployments may share one)
location_name      human name of the location
latitude           WGS84 decimal degrees, -90..90
longitude          WGS84 decimal degrees, -180..180
deployment_start   ISO 8601 with UTC offset, e.g. ``2026-03-01T10:00:00+01:00``
deployment_end     ISO 8601 with UTC offset; must not precede the start
camera_id          the operator's id of the camera unit (optional)
camera_serial      the serial number the camera writes into EXIF (optional, used to assign media)
camera_make        camera manufacturer (optional)
camera_model       camera model (optional)
setup_notes        free text (optional)
habitat            the habitat of the camera site, a short category such as ``woodland`` or
                   ``settlement edge`` (optional; the context priors learn what lives in each)
=================  ===========================================================================

Camera clocks record local time without a zone; the deployment's UTC offset (from its start
timestamp) is the zone of every media timestamp assigned to it.

Taxonomy CSV: one row per taxon at every rank from kingdom to species, so that every
``parent_id`` resolves: ``taxon_id, scientific_name, rank, parent_id, common_name``. Extra
columns (``kingdom`` ... ``species``) are kept. Ranks: kingdom, phylum, class, order, family,
genus, species. Labels everywhere are taxon ids; common names appear only in reports.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ecowatch.errors import InputDataError

RANKS: tuple[str, ...] = ("kingdom", "phylum", "class", "order", "family", "genus", "species")

DEPLOYMENT_COLUMNS: tuple[str, ...] = (
    "deployment_id",
    "location_id",
    "location_name",
    "latitude",
    "longitude",
    "deployment_start",
    "deployment_end",
    "camera_id",
    "camera_serial",
    "camera_make",
    "camera_model",
    "setup_notes",
    "habitat",
)
_DEPLOYMENT_REQUIRED = ("deployment_id", "latitude", "longitude", "deployment_start", "deployment_end")

# Camtrap DP 1.0 deployments.csv column -> ecowatch column.
_CAMTRAP_DP_DEPLOYMENTS = {
    "deploymentID": "deployment_id",
    "locationID": "location_id",
    "locationName": "location_name",
    "latitude": "latitude",
    "longitude": "longitude",
    "deploymentStart": "deployment_start",
    "deploymentEnd": "deployment_end",
    "cameraID": "camera_id",
    "cameraModel": "camera_model",
    "deploymentComments": "setup_notes",
    "habitat": "habitat",
}

TAXONOMY_COLUMNS: tuple[str, ...] = ("taxon_id", "scientific_name", "rank", "parent_id", "common_name")


@dataclass(frozen=True)
class Deployment:
    """One camera placement. Times are naive camera-local times plus the deployment's offset.

    Attributes:
        start: deployment start in camera-local time (naive).
        end: deployment end in camera-local time (naive).
        utc_offset_min: minutes east of UTC of the camera's local time.
    """

    deployment_id: str
    location_id: str
    location_name: str
    latitude: float
    longitude: float
    start: dt.datetime
    end: dt.datetime
    utc_offset_min: int
    camera_id: str = ""
    camera_serial: str = ""
    camera_make: str = ""
    camera_model: str = ""
    setup_notes: str = ""
    habitat: str = ""

    def contains(self, local_time: dt.datetime, *, tolerance: dt.timedelta = dt.timedelta(0)) -> bool:
        """True if a camera-local timestamp lies in ``[start - tolerance, end + tolerance]``."""
        return self.start - tolerance <= local_time <= self.end + tolerance


def taxon_id_for(scientific_name: str) -> str:
    """The stable ecowatch taxon id of a scientific name: ``"Vulpes vulpes"`` -> ``"vulpes_vulpes"``.

    Every source of labels (generated data, Camtrap DP, COCO Camera Traps, ...) derives taxon
    ids with this one rule. Accents are stripped, letters lower-cased and every run of other
    characters becomes one underscore (leading/trailing ones removed). An empty name gives "".
    """
    ascii_name = unicodedata.normalize("NFKD", str(scientific_name)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")


@dataclass(frozen=True)
class Taxon:
    """One node of the taxonomy. ``parent_id`` is empty for a kingdom."""

    taxon_id: str
    scientific_name: str
    rank: str
    parent_id: str
    common_name: str


def normalise_habitat(value: object) -> str:
    """A habitat as the context model compares it: trimmed, lower case, inner spaces collapsed (the
    deployments table and the store keep it as written)."""
    return " ".join(str(value or "").split()).lower()


def _parse_offset_timestamp(value: str, *, path: Path, row: int, column: str) -> tuple[dt.datetime, int]:
    try:
        stamp = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputDataError(
            f"{path}: row {row}, column {column!r}: {value!r} is not an ISO 8601 timestamp. "
            "Write it like 2026-03-01T10:00:00+01:00 (local time with its UTC offset)."
        ) from exc
    if stamp.tzinfo is None:
        raise InputDataError(
            f"{path}: row {row}, column {column!r}: {value!r} has no UTC offset. "
            "Add the camera's offset, e.g. 2026-03-01T10:00:00+01:00."
        )
    offset = stamp.utcoffset()
    assert offset is not None  # tzinfo is set; utcoffset cannot be None here
    return stamp.replace(tzinfo=None), int(offset.total_seconds() // 60)


def _read_csv(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: file not found. Check the path in data_catalog/catalog.yaml.")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputDataError(f"{path}: not a readable CSV file ({exc}).") from exc


def read_deployments(path: Path) -> list[Deployment]:
    """Read and validate a deployments table.

    Args:
        path: ecowatch deployments CSV or a Camtrap DP ``deployments.csv``.

    Returns:
        The deployments in file order.

    Raises:
        InputDataError: missing columns, bad coordinates or timestamps, end before start,
            duplicated ``deployment_id``.
    """
    path = Path(path)
    frame = _read_csv(path)
    if "deploymentID" in frame.columns:
        frame = frame.rename(columns=_CAMTRAP_DP_DEPLOYMENTS)
    missing = [c for c in _DEPLOYMENT_REQUIRED if c not in frame.columns]
    if missing:
        raise InputDataError(
            f"{path}: missing column(s) {missing}. A deployments table needs {list(_DEPLOYMENT_REQUIRED)}; "
            f"optional: {[c for c in DEPLOYMENT_COLUMNS if c not in _DEPLOYMENT_REQUIRED]}."
        )
    deployments: list[Deployment] = []
    seen: set[str] = set()
    for index, rec in enumerate(frame.to_dict("records"), start=2):  # row 1 is the header
        dep_id = str(rec["deployment_id"]).strip()
        if not dep_id:
            raise InputDataError(f"{path}: row {index}: empty deployment_id.")
        if dep_id in seen:
            raise InputDataError(f"{path}: row {index}: deployment_id {dep_id!r} appears twice; ids must be unique.")
        seen.add(dep_id)
        coords = {}
        for column, bound in (("latitude", 90.0), ("longitude", 180.0)):
            try:
                value = float(rec[column])
            except ValueError as exc:
                raise InputDataError(f"{path}: row {index}, column {column!r}: {rec[column]!r} is not a number.") from exc
            if not -bound <= value <= bound:
                raise InputDataError(
                    f"{path}: row {index}, column {column!r}: {value} is outside -{bound}..{bound} (WGS84 degrees)."
                )
            coords[column] = value
        start, offset = _parse_offset_timestamp(rec["deployment_start"], path=path, row=index, column="deployment_start")
        end, _ = _parse_offset_timestamp(rec["deployment_end"], path=path, row=index, column="deployment_end")
        if end < start:
            raise InputDataError(
                f"{path}: row {index}: deployment_end {rec['deployment_end']!r} is before deployment_start "
                f"{rec['deployment_start']!r}."
            )
        deployments.append(
            Deployment(
                deployment_id=dep_id,
                location_id=str(rec.get("location_id", "") or dep_id),
                location_name=str(rec.get("location_name", "")),
                latitude=coords["latitude"],
                longitude=coords["longitude"],
                start=start,
                end=end,
                utc_offset_min=offset,
                camera_id=str(rec.get("camera_id", "")),
                camera_serial=str(rec.get("camera_serial", "")),
                camera_make=str(rec.get("camera_make", "")),
                camera_model=str(rec.get("camera_model", "")),
                setup_notes=str(rec.get("setup_notes", "")),
                habitat=str(rec.get("habitat", "")).strip(),
            )
        )
    return deployments


def read_taxonomy(path: Path) -> dict[str, Taxon]:
    """Read and validate a taxonomy table.

    Args:
        path: taxonomy CSV with at least ``taxon_id, scientific_name, rank, parent_id, common_name``.

    Returns:
        Taxa by taxon id.

    Raises:
        InputDataError: missing columns, unknown rank, duplicated id, or a parent id that is
            not in the table.
    """
    path = Path(path)
    frame = _read_csv(path)
    missing = [c for c in TAXONOMY_COLUMNS if c not in frame.columns]
    if missing:
        raise InputDataError(f"{path}: missing column(s) {missing}; a taxonomy table needs {list(TAXONOMY_COLUMNS)}.")
    taxa: dict[str, Taxon] = {}
    for index, rec in enumerate(frame.to_dict("records"), start=2):
        taxon = Taxon(**{c: str(rec[c]).strip() for c in TAXONOMY_COLUMNS})
        if taxon.rank not in RANKS:
            raise InputDataError(f"{path}: row {index}: rank {taxon.rank!r} is not one of {list(RANKS)}.")
        if taxon.taxon_id in taxa:
            raise InputDataError(f"{path}: row {index}: taxon_id {taxon.taxon_id!r} appears twice.")
        taxa[taxon.taxon_id] = taxon
    for taxon in taxa.values():
        if taxon.parent_id and taxon.parent_id not in taxa:
            raise InputDataError(
                f"{path}: taxon {taxon.taxon_id!r} has parent_id {taxon.parent_id!r}, which is not in the table. "
                "Add a row for every rank from kingdom to species."
            )
    return taxa
