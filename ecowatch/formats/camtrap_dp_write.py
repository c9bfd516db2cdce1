"""Export the results store as a Camtrap DP 1.0.2 data package.

:func:`export_camtrap_dp` writes ``datapackage.json``, ``deployments.csv``, ``media.csv`` and
``observations.csv`` (columns in the order of the official 1.0.2 table schemas) to a folder.
How store rows become Camtrap DP rows:

deployments
    every deployment that an exported media file or observation refers to (all deployments
    when no ``dump_id`` is given). ``deploymentStart``/``deploymentEnd`` are the camera-local
    times with the deployment's ``utc_offset_min`` written as the offset (``+02:00``);
    ``cameraModel`` is ``make-model``; ``deploymentComments`` the setup notes.
media
    media rows with status ``ok``, a deployment and a timestamp. Failed and skipped media
    (and ok media without deployment or time) are left out: their count is written into the
    package ``description`` and their ids into a log line. ``filePath`` is the relative path
    of the file under its dump root (prefixed with the dump id when several dumps are
    exported) or the URL kept by an import; ``filePublic`` is true only for http(s) URLs;
    ``fileMediatype`` is guessed from the file extension (``image/jpeg`` for images whose
    name says nothing, ``video/mp4`` for such videos); ``captureMethod`` is
    :attr:`ProjectInfo.capture_method` for every file.
observations
    ``observationLevel`` is the store ``level``; ``eventID`` the media's / observation's
    ``sequence_id``. Media-level rows have ``eventStart = eventEnd =`` the media timestamp;
    event-level rows span the first to the last exported media file of their sequence (rows
    whose sequence has no exported media are left out and logged). ``scientificName`` comes
    from ``taxonomy[taxon_id]``; a taxon id missing from it is turned back into a name
    (``vulpes_vulpes`` -> ``Vulpes vulpes``, logged). ``classificationMethod`` is ``human`` for
    source ``human`` and ``machine`` for every other source except ``imported`` (the method was
    unknown in the imported package: left empty). The bounding box is that of the detection
    whose ``detection_id`` equals the ``observation_id``, or, for a machine media-level
    observation, of the only detection of the matching category on its media file.
    ``classifiedBy`` is the top-1 classification model (``name version``) or the detector of
    that detection, for machine rows without either ``ecowatch (<source>)``, for human rows
    empty (the store records no person). ``classificationTimestamp`` is the end (else start)
    of the run that wrote the row, in UTC; empty for imported rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import mimetypes
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ecowatch.detect.observations import superseded_unnamed_ids
from ecowatch.errors import ConfigError, InputDataError
from ecowatch.store import Store
from ecowatch.store import schema as S
from ecowatch.tables import RANKS, Taxon

logger = logging.getLogger(__name__)

CAMTRAP_DP_VERSION = "1.0.2"
_BASE_URL = f"https://raw.githubusercontent.com/tdwg/camtrap-dp/{CAMTRAP_DP_VERSION}"
PROFILE_URL = f"{_BASE_URL}/camtrap-dp-profile.json"

DEPLOYMENT_COLUMNS: tuple[str, ...] = (
    "deploymentID", "locationID", "locationName", "latitude", "longitude", "coordinateUncertainty",
    "deploymentStart", "deploymentEnd", "setupBy", "cameraID", "cameraModel", "cameraDelay", "cameraHeight",
    "cameraDepth", "cameraTilt", "cameraHeading", "detectionDistance", "timestampIssues", "baitUse",
    "featureType", "habitat", "deploymentGroups", "deploymentTags", "deploymentComments",
)  # fmt: skip
MEDIA_COLUMNS: tuple[str, ...] = (
    "mediaID", "deploymentID", "captureMethod", "timestamp", "filePath", "filePublic", "fileName",
    "fileMediatype", "exifData", "favorite", "mediaComments",
)  # fmt: skip
OBSERVATION_COLUMNS: tuple[str, ...] = (
    "observationID", "deploymentID", "mediaID", "eventID", "eventStart", "eventEnd", "observationLevel",
    "observationType", "cameraSetupType", "scientificName", "count", "lifeStage", "sex", "behavior",
    "individualID", "individualPositionRadius", "individualPositionAngle", "individualSpeed", "bboxX", "bboxY",
    "bboxWidth", "bboxHeight", "classificationMethod", "classifiedBy", "classificationTimestamp",
    "classificationProbability", "observationTags", "observationComments",
)  # fmt: skip
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "deployments": DEPLOYMENT_COLUMNS,
    "media": MEDIA_COLUMNS,
    "observations": OBSERVATION_COLUMNS,
}

CONTRIBUTOR_ROLES = ("contact", "principalInvestigator", "rightsHolder", "publisher", "contributor")
SAMPLING_DESIGNS = ("simpleRandom", "systematicRandom", "clusteredRandom", "experimental", "targeted", "opportunistic")
CAPTURE_METHODS = ("activityDetection", "timeLapse")
# Store sources whose classification method is unknown (an imported package left it empty).
UNKNOWN_METHOD_SOURCES = frozenset({"imported"})
# Store sources written by an import: their run time is not the classification time.
IMPORTED_SOURCES = frozenset({"imported", "imported_machine"})
_DETECTION_CATEGORY = {"animal": "animal", "human": "person", "vehicle": "vehicle"}
_FALLBACK_MEDIATYPE = {"image": "image/jpeg", "video": "video/mp4"}


@dataclass(frozen=True)
class Contributor:
    """A person or organisation credited in the package (``contributors``).

    Attributes:
        title: name of the person or organisation.
        role: one of :data:`CONTRIBUTOR_ROLES`.
        email, path (ORCID or website URL), organization: optional.
    """

    title: str
    role: str = "contributor"
    email: str = ""
    path: str = ""
    organization: str = ""


@dataclass(frozen=True)
class License:
    """A licence of the package: ``scope`` ``data`` (the tables) or ``media`` (the files).

    Attributes:
        scope: ``data`` or ``media``.
        name: SPDX identifier (e.g. ``CC0-1.0``); give it or ``path``.
        path: URL of the licence text.
    """

    scope: str
    name: str = ""
    path: str = ""


@dataclass(frozen=True)
class ProjectInfo:
    """Package and project metadata that the data cannot supply (Camtrap DP ``project`` etc.).

    Attributes:
        title: package title.
        description: package description (Markdown); a note on left-out media is appended.
        contributors: at least one.
        licenses: one with scope ``data`` and one with scope ``media``.
        project_id: unique id of the project.
        project_title: project title (default: ``title``).
        project_acronym, project_description, project_path (URL): optional.
        sampling_design: one of :data:`SAMPLING_DESIGNS`.
        capture_method: one of :data:`CAPTURE_METHODS`, written for every media file.
        individual_animals: whether individuals are identified.
        name: package name (lower case, ``-._/``); default from the title.
        package_id: package id; default ``project_id``.
        created: creation time (aware or UTC); default now. Fix it for reproducible output.
        keywords, homepage, bibliographic_citation, coordinate_precision: optional.
    """

    title: str
    description: str
    contributors: tuple[Contributor, ...]
    licenses: tuple[License, ...]
    project_id: str
    project_title: str = ""
    project_acronym: str = ""
    project_description: str = ""
    project_path: str = ""
    sampling_design: str = "opportunistic"
    capture_method: str = "activityDetection"
    individual_animals: bool = False
    name: str = ""
    package_id: str = ""
    created: dt.datetime | None = None
    keywords: tuple[str, ...] = field(default=())
    homepage: str = ""
    bibliographic_citation: str = ""
    coordinate_precision: float | None = None

    def __post_init__(self) -> None:
        problems = []
        if not self.title.strip() or not self.project_id.strip():
            problems.append("title and project_id must not be empty")
        if not self.contributors:
            problems.append("give at least one contributor")
        problems += [
            f"contributor {c.title!r} has role {c.role!r}, not one of {list(CONTRIBUTOR_ROLES)}"
            for c in self.contributors
            if c.role not in CONTRIBUTOR_ROLES
        ]
        scopes = {lic.scope for lic in self.licenses}
        if not {"data", "media"} <= scopes or not scopes <= {"data", "media"}:
            problems.append(f"licenses need scopes 'data' and 'media' (only), got {sorted(scopes)}")
        problems += [f"licence of scope {lic.scope!r} needs a name or a path" for lic in self.licenses if not (lic.name or lic.path)]
        if self.sampling_design not in SAMPLING_DESIGNS:
            problems.append(f"sampling_design {self.sampling_design!r} is not one of {list(SAMPLING_DESIGNS)}")
        if self.capture_method not in CAPTURE_METHODS:
            problems.append(f"capture_method {self.capture_method!r} is not one of {list(CAPTURE_METHODS)}")
        if self.name and not re.fullmatch(r"[-a-z0-9._/]+", self.name):
            problems.append(f"name {self.name!r} may hold only lower-case letters, digits and -._/")
        if problems:
            raise ConfigError("invalid Camtrap DP project info: " + "; ".join(problems) + ".")


def _local_iso(local: dt.datetime, offset_min: int) -> str:
    zone = dt.timezone(dt.timedelta(minutes=int(offset_min)))
    return local.replace(microsecond=0, tzinfo=zone).isoformat()


def _utc_iso(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.replace(microsecond=0).isoformat() + "Z"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])


def _name_from_slug(taxon_id: str) -> str:
    words = taxon_id.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _mediatype(relpath: str, media_type: str) -> str:
    guessed, _ = mimetypes.guess_type(relpath.split("?")[0])
    if guessed and re.match(r"^(image|video|audio)/", guessed):
        return guessed
    return _FALLBACK_MEDIATYPE.get(media_type, "image/jpeg")


def _is_url(path: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*://", path))


def _select(store: Store, stmt: sa.Select) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def _media(store: Store, dump_id: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    stmt = sa.select(S.media).order_by(S.media.c.deployment_id, S.media.c.timestamp, S.media.c.media_id)
    if dump_id is not None:
        stmt = stmt.where(S.media.c.dump_id == dump_id)
    rows = _select(store, stmt)
    kept = [r for r in rows if r["status"] == "ok" and r["deployment_id"] and r["timestamp"] is not None]
    kept_ids = {r["media_id"] for r in kept}
    left_out = [r for r in rows if r["media_id"] not in kept_ids]
    return kept, left_out


def _media_rows(media: list[dict[str, Any]], offsets: dict[str, int], project: ProjectInfo) -> list[dict[str, Any]]:
    several_dumps = len({m["dump_id"] for m in media}) > 1
    rows = []
    for m in media:
        path = m["relpath"]
        if several_dumps and not _is_url(path):
            path = f"{m['dump_id']}/{path}"
        rows.append(
            {
                "mediaID": m["media_id"],
                "deploymentID": m["deployment_id"],
                "captureMethod": project.capture_method,
                "timestamp": _local_iso(m["timestamp"], offsets[m["deployment_id"]]),
                "filePath": path,
                "filePublic": _is_url(path) and path.startswith(("http://", "https://")),
                "fileName": "" if _is_url(path) else path.rsplit("/", 1)[-1],
                "fileMediatype": _mediatype(m["relpath"], m["media_type"]),
            }
        )
    return rows


def _deployment_rows(deployments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for d in deployments:
        make, model = d["camera_make"].strip(), d["camera_model"].strip()
        camera = f"{make}-{model}" if make and model and not model.lower().startswith(make.lower()) else (model or make)
        rows.append(
            {
                "deploymentID": d["deployment_id"],
                "locationID": d["location_id"],
                "locationName": d["location_name"],
                "latitude": d["latitude"],
                "longitude": d["longitude"],
                "deploymentStart": _local_iso(d["start"], d["utc_offset_min"]),
                "deploymentEnd": _local_iso(d["end"], d["utc_offset_min"]),
                "cameraID": d["camera_id"],
                "cameraModel": camera,
                "habitat": d["habitat"],
                "deploymentComments": d["setup_notes"],
            }
        )
    return rows


@dataclass(frozen=True)
class _Context:
    """Lookups the observation rows need."""

    media: dict[str, dict[str, Any]]
    offsets: dict[str, int]
    sequence_span: dict[str, tuple[dt.datetime, dt.datetime, str]]
    detections: dict[str, dict[str, Any]]
    detections_by_media: dict[str, list[dict[str, Any]]]
    top1: dict[str, dict[str, Any]]
    run_times: dict[str, dt.datetime | None]
    taxonomy: dict[str, Taxon]


def _context(store: Store, media: list[dict[str, Any]], offsets: dict[str, int], taxonomy: dict[str, Taxon]) -> _Context:
    by_id = {m["media_id"]: m for m in media}
    spans: dict[str, tuple[dt.datetime, dt.datetime, str]] = {}
    for m in media:
        seq = m["sequence_id"]
        if seq:
            lo, hi, dep = spans.get(seq, (m["timestamp"], m["timestamp"], m["deployment_id"]))
            spans[seq] = (min(lo, m["timestamp"]), max(hi, m["timestamp"]), dep)
    detections = [d for d in _select(store, sa.select(S.detections)) if d["media_id"] in by_id]
    by_media: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in detections:
        by_media[d["media_id"]].append(d)
    top1 = {c["detection_id"]: c for c in _select(store, sa.select(S.classifications).where(S.classifications.c.rank == 1))}
    runs = {r["run_id"]: r["finished_at"] or r["started_at"] for r in _select(store, sa.select(S.runs))}
    return _Context(by_id, offsets, spans, {d["detection_id"]: d for d in detections}, by_media, top1, runs, taxonomy)


def _linked_detection(obs: dict[str, Any], ctx: _Context, machine: bool) -> dict[str, Any] | None:
    if obs["observation_id"] in ctx.detections:
        return ctx.detections[obs["observation_id"]]
    category = _DETECTION_CATEGORY.get(obs["observation_type"])
    if not machine or obs["level"] != "media" or category is None:
        return None
    candidates = [d for d in ctx.detections_by_media.get(obs["media_id"], []) if d["category"] == category and not d["static_fp"]]
    return candidates[0] if len(candidates) == 1 else None


def _observation_row(obs: dict[str, Any], ctx: _Context, names: dict[str, str], unnamed: set[str]) -> dict[str, Any] | None:
    if obs["level"] == "media":
        media = ctx.media.get(obs["media_id"] or "")
        if media is None:
            return None
        deployment, event_id = media["deployment_id"], media["sequence_id"] or ""
        start = end = media["timestamp"]
    else:
        span = ctx.sequence_span.get(obs["sequence_id"] or "")
        if span is None:
            return None
        start, end, deployment = span
        deployment, event_id = obs["deployment_id"] or deployment, obs["sequence_id"]
    offset = ctx.offsets[deployment]
    source = obs["source"]
    machine = source != "human" and source not in UNKNOWN_METHOD_SOURCES
    method = "human" if source == "human" else ("" if source in UNKNOWN_METHOD_SOURCES else "machine")
    taxon_id = obs["taxon_id"] or ""
    name = ""
    if taxon_id:
        if taxon_id in ctx.taxonomy:
            name = ctx.taxonomy[taxon_id].scientific_name
        else:
            name = _name_from_slug(taxon_id)
            unnamed.add(taxon_id)
        names[taxon_id] = name
    row: dict[str, Any] = {
        "observationID": obs["observation_id"],
        "deploymentID": deployment,
        "mediaID": obs["media_id"] if obs["level"] == "media" else "",
        "eventID": event_id,
        "eventStart": _local_iso(start, offset),
        "eventEnd": _local_iso(end, offset),
        "observationLevel": obs["level"],
        "observationType": obs["observation_type"],
        "scientificName": name,
        "count": obs["count"] if obs["count"] is not None and obs["count"] >= 1 else None,
        "classificationMethod": method,
        "classificationProbability": obs["probability"],
    }
    if source not in IMPORTED_SOURCES:
        row["classificationTimestamp"] = _utc_iso(ctx.run_times.get(obs["run_id"]))
    detection = _linked_detection(obs, ctx, machine)
    if detection is not None:
        row.update(bboxX=detection["x"], bboxY=detection["y"], bboxWidth=detection["w"], bboxHeight=detection["h"])
    if machine:
        top = ctx.top1.get(detection["detection_id"]) if detection is not None else None
        if top is not None and source not in IMPORTED_SOURCES:
            row["classifiedBy"] = f"{top['model_name']} {top['model_version']}".strip()
        elif detection is not None:
            row["classifiedBy"] = f"{detection['detector_name']} {detection['detector_version']}".strip()
        else:
            row["classifiedBy"] = f"ecowatch ({source})"
    return row


def _taxonomic(names: dict[str, str], taxonomy: dict[str, Taxon]) -> list[dict[str, Any]]:
    entries = []
    for taxon_id, name in sorted(names.items(), key=lambda kv: kv[1]):
        entry: dict[str, Any] = {"scientificName": name}
        taxon = taxonomy.get(taxon_id)
        if taxon is not None and taxon.rank in (*RANKS, "subspecies"):
            entry["taxonRank"] = taxon.rank
        if taxon is not None and taxon.common_name:
            entry["vernacularNames"] = {"eng": taxon.common_name}
        entries.append(entry)
    return entries


def _spatial(deployments: list[dict[str, Any]]) -> dict[str, Any]:
    lats = [d["latitude"] for d in deployments]
    lons = [d["longitude"] for d in deployments]
    if not lats:
        return {"type": "Point", "coordinates": [0.0, 0.0]}
    s, n, w, e = min(lats), max(lats), min(lons), max(lons)
    if s == n or w == e:
        return {"type": "Point", "coordinates": [w, s]} if s == n and w == e else {
            "type": "LineString", "coordinates": [[w, s], [e, n]]}  # fmt: skip
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "camtrap-dp-package"


def _descriptor(project: ProjectInfo, deployments: list[dict[str, Any]], levels: list[str],
                taxonomic: list[dict[str, Any]], note: str) -> dict[str, Any]:  # fmt: skip
    created = project.created or dt.datetime.now(dt.UTC)
    project_block: dict[str, Any] = {"id": project.project_id, "title": project.project_title or project.title}
    for key, value in (("acronym", project.project_acronym), ("description", project.project_description),
                       ("path", project.project_path)):  # fmt: skip
        if value:
            project_block[key] = value
    project_block.update(
        samplingDesign=project.sampling_design,
        captureMethod=[project.capture_method],
        individualAnimals=project.individual_animals,
        observationLevel=levels or ["media"],
    )
    descriptor: dict[str, Any] = {
        "resources": [
            {
                "name": name,
                "path": f"{name}.csv",
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": f"{_BASE_URL}/{name}-table-schema.json",
            }
            for name in TABLE_COLUMNS
        ],
        "profile": PROFILE_URL,
        "name": project.name or _slug(project.title),
        "id": project.package_id or project.project_id,
        "created": _utc_iso(created),
        "title": project.title,
        "contributors": [
            {k: v for k, v in (("title", c.title), ("email", c.email), ("path", c.path), ("role", c.role),
                               ("organization", c.organization)) if v}  # fmt: skip
            for c in project.contributors
        ],
        "description": (project.description + note).strip(),
        "version": CAMTRAP_DP_VERSION,
        "licenses": [{k: v for k, v in (("name", x.name), ("path", x.path), ("scope", x.scope)) if v} for x in project.licenses],
        "project": project_block,
        "spatial": _spatial(deployments),
        "temporal": {
            "start": min(d["start"] for d in deployments).date().isoformat() if deployments else created.date().isoformat(),
            "end": max(d["end"] for d in deployments).date().isoformat() if deployments else created.date().isoformat(),
        },
        "taxonomic": taxonomic,
    }
    for key, value in (("keywords", list(project.keywords)), ("homepage", project.homepage),
                       ("bibliographicCitation", project.bibliographic_citation),
                       ("coordinatePrecision", project.coordinate_precision)):  # fmt: skip
        if value:
            descriptor[key] = value
    return descriptor


def export_camtrap_dp(
    store: Store,
    out_dir: str | Path,
    *,
    dump_id: str | None = None,
    project: ProjectInfo,
    taxonomy: dict[str, Taxon] | None = None,
) -> Path:
    """Write the store's deployments, media and observations as a Camtrap DP 1.0.2 package.

    Args:
        store: the results store.
        out_dir: folder to write into (created; the four files in it are overwritten).
        dump_id: export only this dump's media, their observations and deployments; None: all.
        project: package and project metadata.
        taxonomy: taxon id -> :class:`~ecowatch.tables.Taxon`, for scientific names, ranks and
            common names; ids missing from it are turned back into names (see module docstring).

    Returns:
        The folder written (holding ``datapackage.json``).

    Raises:
        ConfigError: ``project`` is invalid (raised when it is built).
        InputDataError: ``dump_id`` names no dump in the store.
    """
    taxonomy = taxonomy or {}
    out = Path(out_dir)
    if dump_id is not None and not _select(store, sa.select(S.dumps.c.dump_id).where(S.dumps.c.dump_id == dump_id)):
        raise InputDataError(f"dump {dump_id!r} is not in the results store; give a dump id that was ingested, or None.")
    all_deployments = {d["deployment_id"]: d for d in _select(store, sa.select(S.deployments).order_by(S.deployments.c.deployment_id))}
    offsets = {k: d["utc_offset_min"] for k, d in all_deployments.items()}
    media, left_out = _media(store, dump_id)
    if left_out:
        logger.warning(
            "Camtrap DP export leaves out %d media file(s) that are failed/skipped or lack a deployment or time: %s",
            len(left_out), ", ".join(f"{m['media_id']} ({m['relpath']}, {m['status']})" for m in left_out),
        )  # fmt: skip
    ctx = _context(store, media, offsets, taxonomy)
    dump_media = {m["media_id"] for m in media} | {m["media_id"] for m in left_out}
    unnamed: set[str] = set()
    names: dict[str, str] = {}
    obs_rows, dropped = [], 0
    stored = list(_select(store, sa.select(S.observations).order_by(S.observations.c.observation_id)))
    superseded = superseded_unnamed_ids(stored)  # the detector's "an animal" where a species is named
    for obs in stored:
        if dump_id is not None and (
            (obs["level"] == "event" and obs["sequence_id"] not in ctx.sequence_span)
            or (obs["level"] == "media" and obs["media_id"] not in dump_media)
        ):
            continue  # another dump's observation
        if obs["observation_id"] in superseded:
            continue
        row = _observation_row(obs, ctx, names, unnamed)
        if row is None:
            dropped += 1
            continue
        obs_rows.append(row)
    if dropped:
        logger.warning("Camtrap DP export leaves out %d observation(s) of left-out media or of sequences without media", dropped)
    if unnamed:
        logger.warning("taxon ids not in the taxonomy, names derived from the id: %s", sorted(unnamed))
    used = {m["deployment_id"] for m in media} | {r["deploymentID"] for r in obs_rows}
    deployments = [d for k, d in all_deployments.items() if dump_id is None or k in used]
    levels = sorted({r["observationLevel"] for r in obs_rows})
    note = ""
    if left_out:
        note = (f"\n\n{len(left_out)} media file(s) were left out of this package because ingest marked them "
                "failed or skipped, or they had no deployment or timestamp (ids in the ecowatch export log).")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "deployments.csv", DEPLOYMENT_COLUMNS, _deployment_rows(deployments))
    _write_csv(out / "media.csv", MEDIA_COLUMNS, _media_rows(media, offsets, project))
    _write_csv(out / "observations.csv", OBSERVATION_COLUMNS, obs_rows)
    descriptor = _descriptor(project, deployments, levels, _taxonomic(names, taxonomy), note)
    (out / "datapackage.json").write_text(json.dumps(descriptor, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    logger.info("Camtrap DP package %s: %d deployments, %d media, %d observations",
                out, len(deployments), len(media), len(obs_rows))  # fmt: skip
    return out
