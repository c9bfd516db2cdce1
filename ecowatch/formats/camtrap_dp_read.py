"""Read a Camtrap DP 1.x data package into ecowatch tables.

Camtrap DP (https://camtrap-dp.tdwg.org) is a Frictionless data package: ``datapackage.json``
(metadata, including ``taxonomic``) plus three CSV resources, ``deployments``, ``media`` and
``observations``. :func:`read_camtrap_dp` validates what the analyses rely on and returns a
:class:`CamtrapPackage` with these DataFrames (Camtrap DP columns renamed to snake_case;
columns not listed are kept, renamed the same way, as strings):

deployments
    ``deployment_id`` (deploymentID), ``location_id`` (locationID, the deployment id when
    empty), ``location_name``, ``latitude``, ``longitude`` (float), ``start`` / ``end``
    (deploymentStart / deploymentEnd), ``utc_offset_min``, ``camera_id``, ``camera_model``,
    ``camera_delay``, ``camera_height``, ``camera_tilt``, ``camera_heading``,
    ``detection_distance``, ``timestamp_issues``, ``bait_use``, ``feature_type``, ``habitat``,
    ``deployment_groups``, ``deployment_tags``, ``deployment_comments`` ...
media
    ``media_id``, ``deployment_id``, ``capture_method``, ``timestamp``, ``utc_offset_min``,
    ``file_path``, ``file_public``, ``file_name``, ``file_mediatype``, ``exif_data``,
    ``favorite``, ``media_comments``.
observations
    ``observation_id``, ``deployment_id``, ``media_id`` ("" for event-level rows),
    ``event_id``, ``event_start``, ``event_end``, ``utc_offset_min``, ``observation_level``
    (media/event), ``observation_type`` (animal/human/vehicle/blank/unknown/unclassified),
    ``camera_setup_type``, ``scientific_name``, ``taxon_id`` (:func:`ecowatch.tables.taxon_id_for` of it, "" when
    empty), ``count`` (nullable Int64), ``life_stage``, ``sex``, ``behavior``,
    ``individual_id``, ``bbox_x``, ``bbox_y``, ``bbox_width``, ``bbox_height`` (together the
    ``bbox_xywhn`` box: normalised top-left x, y, width, height), ``classification_method``
    (human/machine), ``classified_by``, ``classification_timestamp`` (UTC, tz-aware),
    ``classification_probability`` ...
taxa
    ``taxon_id``, ``scientific_name``, ``taxon_rank``, ``taxon_source_id`` (the package's
    ``taxonID``, e.g. a Catalogue of Life URL), ``vernacular_<lang>`` per language; one row per
    taxon in ``taxonomic`` or in the observations.

Times: Camtrap DP timestamps carry a UTC offset (observations are often in UTC, ``Z``). Every
camera time (deployment start/end, media timestamp, event start/end) is converted to the
deployment's local clock, i.e. the offset written on its ``deploymentStart`` (camera clocks do
not follow daylight saving time), and stored naive (``datetime64[ns]``); the offset applied is
kept in ``utc_offset_min`` (minutes east of UTC). UTC instant = local time - offset.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from ecowatch.errors import InputDataError
from ecowatch.tables import taxon_id_for

logger = logging.getLogger(__name__)

RESOURCES: tuple[str, ...] = ("deployments", "media", "observations")
_REQUIRED = {
    "deployments": ("deploymentID", "latitude", "longitude", "deploymentStart", "deploymentEnd"),
    "media": ("mediaID", "deploymentID", "timestamp", "filePath", "filePublic", "fileMediatype"),
    "observations": ("observationID", "deploymentID", "eventStart", "eventEnd", "observationLevel", "observationType"),
}
_RENAME = {"deploymentStart": "start", "deploymentEnd": "end"}
_FLOAT = {
    "latitude", "longitude", "cameraHeight", "cameraDepth", "detectionDistance", "individualPositionRadius",
    "individualPositionAngle", "individualSpeed", "bboxX", "bboxY", "bboxWidth", "bboxHeight",
    "classificationProbability",
}  # fmt: skip
_INT = {"coordinateUncertainty", "cameraDelay", "cameraTilt", "cameraHeading", "count"}
_BOOL = {"timestampIssues", "baitUse", "filePublic", "favorite"}
_LOCAL_TIME = {"deploymentStart", "deploymentEnd", "timestamp", "eventStart", "eventEnd"}
_UTC_TIME = {"classificationTimestamp"}
_ENUMS = {
    "observationLevel": ("media", "event"),
    "observationType": ("animal", "human", "vehicle", "blank", "unknown", "unclassified"),
}
_TRUE, _FALSE = {"true", "True", "TRUE", "1"}, {"false", "False", "FALSE", "0"}
_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")

ObservationLevel = Literal["event", "media"]


@dataclass(frozen=True)
class CamtrapPackage:
    """A Camtrap DP package read into DataFrames (columns in the module docstring).

    Attributes:
        path: the ``datapackage.json`` read.
        profile_version: Camtrap DP version from the ``profile`` URL (e.g. ``"1.0.2"``), or ""
            when the URL names none.
        metadata: the ``datapackage.json`` descriptor as parsed JSON (an open-ended document:
            title, contributors, project, licenses, taxonomic, resources ...).
        deployments, media, observations, taxa: the tables.
    """

    path: Path
    profile_version: str
    metadata: dict[str, Any] = field(repr=False)
    deployments: pd.DataFrame = field(repr=False)
    media: pd.DataFrame = field(repr=False)
    observations: pd.DataFrame = field(repr=False)
    taxa: pd.DataFrame = field(repr=False)


def _snake(name: str) -> str:
    if name in _RENAME:
        return _RENAME[name]
    name = name.replace("ID", "Id")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _descriptor(path: Path) -> tuple[Path, dict[str, Any]]:
    path = Path(path)
    if path.is_dir():
        path = path / "datapackage.json"
    if not path.is_file():
        raise InputDataError(f"{path}: no such file. Give a Camtrap DP datapackage.json or the folder holding it.")
    try:
        descriptor = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputDataError(f"{path}: not valid JSON ({exc}).") from exc
    if not isinstance(descriptor, dict) or not isinstance(descriptor.get("resources"), list):
        raise InputDataError(f"{path}: a data package descriptor needs a 'resources' list.")
    return path, descriptor


def _profile_version(path: Path, descriptor: dict[str, Any]) -> str:
    profile = str(descriptor.get("profile", ""))
    if "camtrap-dp" not in profile:
        raise InputDataError(
            f"{path}: profile {profile!r} is not a Camtrap DP profile (expected e.g. "
            "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/camtrap-dp-profile.json)."
        )
    match = re.search(r"camtrap-dp/(\d+(?:\.\d+)*)/", profile)
    version = match.group(1) if match else ""
    if version and not version.startswith("1."):
        raise InputDataError(
            f"{path}: Camtrap DP version {version} is not supported (1.x only; 0.x packages use other columns). "
            "Upgrade the package, e.g. with the R package camtrapdp (upgrade())."
        )
    return version


def _read_resource(package_path: Path, descriptor: dict[str, Any], name: str) -> tuple[str, pd.DataFrame]:
    resource = next((r for r in descriptor["resources"] if isinstance(r, dict) and r.get("name") == name), None)
    if resource is None:
        raise InputDataError(f"{package_path}: no resource named {name!r}; Camtrap DP needs {list(RESOURCES)}.")
    if "data" in resource and "path" not in resource:
        rows = resource["data"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise InputDataError(f"{package_path}: resource {name!r}: inline 'data' must be a list of objects.")
        frame = pd.DataFrame(rows).astype(object).where(lambda f: f.notna(), "")
        return f"{package_path} (resource {name!r})", frame.astype(str)
    paths = resource.get("path")
    paths = [paths] if isinstance(paths, str) else paths
    if not paths or not all(isinstance(p, str) for p in paths):
        raise InputDataError(f"{package_path}: resource {name!r} has no 'path'.")
    delimiter = (resource.get("dialect") or {}).get("delimiter", ",")
    frames = []
    for relative in paths:
        if re.match(r"^[a-z]+://", relative):
            raise InputDataError(
                f"{package_path}: resource {name!r} points to {relative!r}; only local files can be read "
                "(download the package first)."
            )
        file = package_path.parent / relative
        if not file.is_file():
            raise InputDataError(f"{file}: file of resource {name!r} not found.")
        try:
            frames.append(pd.read_csv(file, dtype=str, keep_default_na=False, sep=delimiter, encoding="utf-8"))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise InputDataError(f"{file}: not a readable CSV file ({exc}).") from exc
    label = str(package_path.parent / paths[0]) if len(paths) == 1 else f"{package_path} (resource {name!r})"
    return label, pd.concat(frames, ignore_index=True)


def _fail(label: str, frame: pd.DataFrame, mask: pd.Series, column: str, expected: str) -> None:
    if mask.any():
        index = int(mask.to_numpy().nonzero()[0][0])
        raise InputDataError(
            f"{label}: row {index + 2}, column {column!r}: {frame[column].iloc[index]!r} is not {expected}."
        )


def _parse_instants(label: str, frame: pd.DataFrame, column: str) -> tuple[pd.Series, pd.Series]:
    """UTC instants (naive, UTC) and the written offsets (minutes) of an ISO 8601 column."""
    text = frame[column].str.strip()
    empty = text == ""
    offsets = text.str.extract(_OFFSET, expand=False)
    _fail(label, frame, ~empty & offsets.isna(), column, "an ISO 8601 timestamp with a UTC offset (e.g. +02:00 or Z)")
    instants = pd.to_datetime(text.where(~empty), format="ISO8601", utc=True, errors="coerce")
    _fail(label, frame, ~empty & instants.isna(), column, "an ISO 8601 timestamp")
    sign = offsets.str[0].map({"+": 1, "-": -1}).fillna(0)
    digits = offsets.str.replace(":", "", regex=False).str[1:]
    hours = pd.to_numeric(digits.str[:2], errors="coerce")
    minutes = sign * (hours * 60 + pd.to_numeric(digits.str[2:4], errors="coerce"))
    return instants.dt.tz_convert(None).astype("datetime64[ns]"), minutes.fillna(0).astype("int64")


def _convert(label: str, frame: pd.DataFrame, local_offsets: pd.Series) -> pd.DataFrame:
    """Type and rename the columns of one resource; times go to the deployment's local clock."""
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        text = frame[column].astype(str).str.strip()
        empty = text == ""
        if column in _FLOAT or column in _INT:
            numbers = pd.to_numeric(text.where(~empty), errors="coerce")
            _fail(label, frame, ~empty & numbers.isna(), column, "a number")
            if column in _INT:
                _fail(label, frame, numbers.notna() & (numbers != numbers.round()), column, "a whole number")
                numbers = numbers.astype("Int64")
            out[_snake(column)] = numbers
        elif column in _BOOL:
            _fail(label, frame, ~empty & ~text.isin(_TRUE | _FALSE), column, "true or false")
            out[_snake(column)] = text.map(lambda v: True if v in _TRUE else (False if v in _FALSE else pd.NA)).astype(
                "boolean"
            )
        elif column in _LOCAL_TIME:
            instants, _ = _parse_instants(label, frame, column)
            out[_snake(column)] = instants + pd.to_timedelta(local_offsets, unit="min")
        elif column in _UTC_TIME:
            out[_snake(column)] = _parse_instants(label, frame, column)[0].dt.tz_localize("UTC")
        else:
            if column in _ENUMS:
                _fail(label, frame, ~text.isin(_ENUMS[column]), column, f"one of {list(_ENUMS[column])}")
            out[_snake(column)] = text.astype(str)
    out["utc_offset_min"] = local_offsets.astype("int64").to_numpy()
    return out


def _check(label: str, frame: pd.DataFrame, name: str) -> None:
    missing = [c for c in _REQUIRED[name] if c not in frame.columns]
    if missing:
        raise InputDataError(f"{label}: missing required column(s) {missing} of the Camtrap DP {name} table.")
    for column in _REQUIRED[name]:
        _fail(label, frame, frame[column].str.strip() == "", column, "empty (the column is required)")
    id_column = {"deployments": "deploymentID", "media": "mediaID", "observations": "observationID"}[name]
    _fail(label, frame, frame[id_column].duplicated(), id_column, "unique (it appears twice)")


def _references(label: str, frame: pd.DataFrame, column: str, known: Iterable[str], target: str) -> None:
    known_set = set(known)
    _fail(label, frame, (frame[column] != "") & ~frame[column].isin(known_set), column, f"a {column} in {target}")


def _taxa(descriptor: dict[str, Any], observations: pd.DataFrame, path: Path) -> pd.DataFrame:
    rows: dict[str, dict[str, str]] = {}
    for entry in descriptor.get("taxonomic") or []:
        if not isinstance(entry, dict) or not entry.get("scientificName"):
            raise InputDataError(f"{path}: every 'taxonomic' entry needs a scientificName; got {entry!r}.")
        row = {
            "taxon_id": taxon_id_for(entry["scientificName"]),
            "scientific_name": str(entry["scientificName"]),
            "taxon_rank": str(entry.get("taxonRank", "")),
            "taxon_source_id": str(entry.get("taxonID", "")),
        }
        for language, name in (entry.get("vernacularNames") or {}).items():
            row[f"vernacular_{language}"] = str(name)
        rows[row["taxon_id"]] = row
    for name in sorted(set(observations["scientific_name"]) - {""}):
        slug = taxon_id_for(name)
        if slug in rows and rows[slug]["scientific_name"] != name:
            raise InputDataError(
                f"{path}: scientific names {rows[slug]['scientific_name']!r} and {name!r} give the same taxon id "
                f"{slug!r}; spell them the same way."
            )
        rows.setdefault(slug, {"taxon_id": slug, "scientific_name": name, "taxon_rank": "", "taxon_source_id": ""})
    frame = pd.DataFrame(list(rows.values()), columns=["taxon_id", "scientific_name", "taxon_rank", "taxon_source_id"])
    extra = pd.DataFrame(list(rows.values()))
    for column in sorted(set(extra.columns) - set(frame.columns)):
        frame[column] = extra[column].fillna("").astype(str).to_numpy()
    return frame.sort_values("taxon_id").reset_index(drop=True)


def read_camtrap_dp(path: str | Path) -> CamtrapPackage:
    """Read and validate a Camtrap DP 1.x package.

    Args:
        path: the package's ``datapackage.json`` or the folder holding it.

    Returns:
        :class:`CamtrapPackage` (tables and time conventions in the module docstring).

    Raises:
        InputDataError: naming the file and the problem: missing/unparsable descriptor or
            CSV, not a Camtrap DP 1.x profile, a missing required column or value, a bad number,
            boolean, enum value or timestamp (with its row), a duplicated id, a media or
            observation pointing to an unknown deployment or media.
    """
    package_path, descriptor = _descriptor(Path(path))
    version = _profile_version(package_path, descriptor)
    raw = {name: _read_resource(package_path, descriptor, name) for name in RESOURCES}
    for name, (label, frame) in raw.items():
        _check(label, frame, name)

    dep_label, dep_raw = raw["deployments"]
    _, dep_offsets = _parse_instants(dep_label, dep_raw, "deploymentStart")
    deployments = _convert(dep_label, dep_raw, dep_offsets)
    if "location_id" not in deployments.columns:
        deployments["location_id"] = ""
    deployments["location_id"] = deployments["location_id"].where(
        deployments["location_id"] != "", deployments["deployment_id"]
    )
    if "location_name" not in deployments.columns:
        deployments["location_name"] = ""
    for column, bound in (("latitude", 90), ("longitude", 180)):
        _fail(dep_label, dep_raw, deployments[column].abs() > bound, column, f"within -{bound}..{bound}")
    _fail(dep_label, dep_raw, deployments["end"] < deployments["start"], "deploymentEnd", "after deploymentStart")
    offset_of = pd.Series(dep_offsets.to_numpy(), index=dep_raw["deploymentID"].to_numpy())

    tables = {}
    for name in ("media", "observations"):
        label, frame = raw[name]
        _references(label, frame, "deploymentID", dep_raw["deploymentID"], "deployments")
        tables[name] = _convert(label, frame, frame["deploymentID"].map(offset_of).reset_index(drop=True))
    obs_label, obs_raw = raw["observations"]
    if "mediaID" in obs_raw.columns:
        _references(obs_label, obs_raw, "mediaID", raw["media"][1]["mediaID"], "media")
    _fail(obs_label, obs_raw, tables["observations"]["event_end"] < tables["observations"]["event_start"],
          "eventEnd", "after eventStart")  # fmt: skip
    if "count" in obs_raw.columns:
        _fail(obs_label, obs_raw, tables["observations"]["count"].fillna(1) < 1, "count", "a count >= 1")
    observations = tables["observations"]
    for column in ("media_id", "event_id", "scientific_name", "camera_setup_type"):
        if column not in observations.columns:
            observations[column] = ""
    observations["taxon_id"] = observations["scientific_name"].map(taxon_id_for)
    return CamtrapPackage(
        path=package_path,
        profile_version=version,
        metadata=descriptor,
        deployments=deployments,
        media=tables["media"],
        observations=observations,
        taxa=_taxa(descriptor, observations, package_path),
    )


def records_from_camtrap_dp(
    pkg: CamtrapPackage,
    *,
    observation_type: str | Iterable[str] = "animal",
    level: ObservationLevel = "event",
    include_setup: bool = False,
) -> pd.DataFrame:
    """The records table of the analyses from a Camtrap DP package.

    Camtrap DP packages may describe the same animals twice: once per media file
    (``observationLevel = "media"``) and once per event (``"event"``). Records come from one
    level only, so nothing is counted twice:

    * ``level = "event"`` (default): one record per event-level observation, kept at the
      event start (``timestamp = event_start``, ``media_id = ""``); ``count`` is the event's
      count. Event-level observations are not expanded to the event's media.
    * ``level = "media"``: one record per media-level observation, at its media file's
      timestamp, with its ``media_id``.

    Observations without a scientific name, and setup/calibration observations
    (``camera_setup_type`` set) unless ``include_setup``, are left out. A missing ``count`` is 1.

    Args:
        pkg: a package from :func:`read_camtrap_dp`.
        observation_type: the observation type(s) kept (``"animal"``, ``"human"`` ...).
        level: ``"event"`` or ``"media"`` (see above).
        include_setup: keep observations of the camera being set up or calibrated.

    Returns:
        ``deployment_id, timestamp`` (naive local), ``taxon_id, count`` (int64), ``media_id``,
        ``sequence_id`` (the event id), ``scientific_name``, ``observation_id``,
        ``utc_offset_min``; sorted by deployment and time.

    Raises:
        InputDataError: ``level`` is unknown.
    """
    if level not in ("event", "media"):
        raise InputDataError(f"level {level!r} is not one of ['event', 'media'].")
    types = {observation_type} if isinstance(observation_type, str) else set(observation_type)
    obs = pkg.observations
    keep = obs["observation_type"].isin(types) & (obs["observation_level"] == level)
    if not include_setup:
        keep &= obs["camera_setup_type"] == ""
    unnamed = keep & (obs["scientific_name"] == "")
    if unnamed.any():
        logger.info("%d %s-level observation(s) without scientific name left out", int(unnamed.sum()), level)
    chosen = obs[keep & ~unnamed]
    if level == "event" and not (obs["observation_level"] == "event").any():
        logger.warning("%s has no event-level observations; use level='media'", pkg.path)
    timestamp = chosen["event_start"]
    if level == "media":
        media_time = pd.Series(pkg.media["timestamp"].to_numpy(), index=pkg.media["media_id"].to_numpy())
        timestamp = chosen["media_id"].map(media_time).fillna(chosen["event_start"])
    counts = chosen["count"] if "count" in chosen.columns else pd.Series(1, index=chosen.index)
    records = pd.DataFrame(
        {
            "deployment_id": chosen["deployment_id"].astype(str),
            "timestamp": timestamp.astype("datetime64[ns]"),
            "taxon_id": chosen["taxon_id"],
            "count": counts.fillna(1).astype("int64"),
            "media_id": chosen["media_id"] if level == "media" else "",
            "sequence_id": chosen["event_id"],
            "scientific_name": chosen["scientific_name"],
            "observation_id": chosen["observation_id"],
            "utc_offset_min": chosen["utc_offset_min"],
        }
    )
    return records.sort_values(["deployment_id", "timestamp", "taxon_id"], kind="stable").reset_index(drop=True)
