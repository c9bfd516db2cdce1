"""Import a Camtrap DP 1.x package into the results store.

The package is read (and checked) with :func:`~ecowatch.formats.camtrap_dp_read.read_camtrap_dp`;
its rows become store rows under the given ``dump_id``:

deployments
    as in the package (``cameraModel`` -> ``camera_model``, ``deploymentComments`` ->
    ``setup_notes``, ``habitat`` kept), times on the deployment's local clock with its ``utc_offset_min``.
media
    ``relpath`` is the package's ``filePath`` (a URL stays a URL), so ``media_id`` is
    ``sha1(dump_id + '/' + filePath)`` as for ingested media; status ``ok``; ``media_type``
    from ``fileMediatype``; ``timestamp_source`` and ``deployment_source`` ``camtrap_dp``;
    ``sequence_id`` the ``eventID`` of the file's media-level observations, ``sequence_frame``
    its rank in time within that event. ``sha256`` and ``size_bytes`` are computed when the
    file lies beside the package (``filePath`` relative to it, or ``fileName`` in the package
    folder or its ``media/`` folder); otherwise ``sha256`` is the empty string and
    ``size_bytes`` 0 (no real digest is empty, so ingest's duplicate lookup never matches it).
observations
    ``observation_id`` is ``sha1(dump_id + '/observation/' + observationID)``; ``source`` is
    ``human`` (classificationMethod human), ``imported_machine`` (machine) or ``imported``
    (method not given); ``taxon_id`` is :func:`ecowatch.tables.taxon_id_for` of the scientific name. An
    observation with a bounding box also gets a detection row with the same id (category from
    the observation type, ``conf`` its probability or 1.0, ``detector_name`` its
    ``classifiedBy``), which is how the exporter finds the box and the classifier again.

Importing the same package again under the same ``dump_id`` adds nothing (ids are derived from
the package's ids, writes are idempotent).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ecowatch.formats.camtrap_dp_read import CamtrapPackage, read_camtrap_dp
from ecowatch.ingest.records import media_id_for, upsert_deployments, upsert_dump
from ecowatch.store import Store
from ecowatch.store import schema as S
from ecowatch.tables import Deployment, Taxon

logger = logging.getLogger(__name__)

SOURCE_BY_METHOD = {"human": "human", "machine": "imported_machine", "": "imported"}
_CATEGORY = {"animal": "animal", "human": "person", "vehicle": "vehicle"}


@dataclass(frozen=True)
class ImportSummary:
    """What :func:`import_camtrap_dp` wrote.

    Attributes:
        dump_id: the dump the media were recorded under.
        package_path: the ``datapackage.json`` read.
        deployments_written: deployments inserted or updated.
        media_inserted, observations_inserted, detections_inserted: new rows (0 on a re-import).
        media_in_package, observations_in_package: rows in the package.
        media_hashed: media files found beside the package and hashed.
        taxa: taxon id -> :class:`Taxon` from the package's ``taxonomic`` list and observations
            (rank and English common name where given), to pass to the exporter.
    """

    dump_id: str
    package_path: Path
    deployments_written: int
    media_inserted: int
    media_in_package: int
    observations_inserted: int
    observations_in_package: int
    detections_inserted: int
    media_hashed: int
    taxa: dict[str, Taxon]


def _none(value: Any) -> Any:
    return None if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)) else value


def _local_file(package_dir: Path, file_path: str, file_name: str) -> Path | None:
    candidates = []
    if "://" not in file_path:
        candidates.append(package_dir / file_path)
    if file_name:
        candidates += [package_dir / file_name, package_dir / "media" / file_name]
    return next((p for p in candidates if p.is_file()), None)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _deployments(pkg: CamtrapPackage) -> list[Deployment]:
    out = []
    for row in pkg.deployments.to_dict("records"):
        out.append(
            Deployment(
                deployment_id=row["deployment_id"],
                location_id=row["location_id"],
                location_name=row.get("location_name", ""),
                latitude=float(row["latitude"]),
                longitude=float(row["longitude"]),
                start=pd.Timestamp(row["start"]).to_pydatetime(),
                end=pd.Timestamp(row["end"]).to_pydatetime(),
                utc_offset_min=int(row["utc_offset_min"]),
                camera_id=row.get("camera_id", ""),
                camera_model=row.get("camera_model", ""),
                setup_notes=row.get("deployment_comments", ""),
                habitat=row.get("habitat", ""),
            )
        )
    return out


def _media_rows(pkg: CamtrapPackage, dump_id: str, run_id: str) -> tuple[list[dict[str, Any]], dict[str, str], int]:
    obs = pkg.observations
    media_obs = obs[(obs["observation_level"] == "media") & (obs["event_id"] != "")]
    event_of = media_obs.drop_duplicates("media_id").set_index("media_id")["event_id"].to_dict()
    media = pkg.media.copy()
    media["sequence_id"] = media["media_id"].map(event_of)
    media["sequence_frame"] = media.groupby("sequence_id", dropna=True)["timestamp"].rank(method="first")
    package_dir = pkg.path.parent
    rows, id_map, hashed = [], {}, 0
    for m in media.to_dict("records"):
        file_path = m["file_path"]
        store_id = media_id_for(dump_id, file_path)
        id_map[m["media_id"]] = store_id
        local = _local_file(package_dir, file_path, m.get("file_name", ""))
        hashed += local is not None
        kind = str(m["file_mediatype"]).split("/")[0]
        rows.append(
            {
                "media_id": store_id,
                "dump_id": dump_id,
                "relpath": file_path,
                "deployment_id": m["deployment_id"],
                "sha256": _sha256(local) if local else "",
                "size_bytes": local.stat().st_size if local else 0,
                "media_type": kind if kind in ("image", "video") else "other",
                "status": "ok",
                "timestamp": pd.Timestamp(m["timestamp"]).to_pydatetime(),
                "timestamp_source": "camtrap_dp",
                "deployment_source": "camtrap_dp",
                "sequence_id": _none(m["sequence_id"]),
                "sequence_frame": None if pd.isna(m["sequence_frame"]) else int(m["sequence_frame"]),
                "ingest_run_id": run_id,
            }
        )
    return rows, id_map, hashed


def _observation_rows(pkg: CamtrapPackage, dump_id: str, run_id: str, id_map: dict[str, str],
                      ranks: dict[str, str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    obs_rows, det_rows = [], []
    has_bbox = "bbox_x" in pkg.observations.columns
    for o in pkg.observations.to_dict("records"):
        obs_id = hashlib.sha1(f"{dump_id}/observation/{o['observation_id']}".encode()).hexdigest()
        probability = _none(o.get("classification_probability"))
        media_id = id_map.get(o["media_id"]) if o["observation_level"] == "media" else None
        obs_rows.append(
            {
                "observation_id": obs_id,
                "level": o["observation_level"],
                "deployment_id": o["deployment_id"],
                "media_id": media_id,
                "sequence_id": o["event_id"] or None,
                "observation_type": o["observation_type"],
                "taxon_id": o["taxon_id"] or None,
                "taxon_rank": ranks.get(o["taxon_id"]) or None,
                "probability": probability,
                "count": None if _none(o.get("count")) is None else int(o["count"]),
                "source": SOURCE_BY_METHOD.get(o.get("classification_method", ""), "imported"),
                "run_id": run_id,
            }
        )
        if has_bbox and media_id and _none(o["bbox_x"]) is not None and _none(o["bbox_width"]) is not None:
            det_rows.append(
                {
                    "detection_id": obs_id,
                    "media_id": media_id,
                    "category": _CATEGORY.get(o["observation_type"], "animal"),
                    "conf": 1.0 if probability is None else float(probability),
                    "x": float(o["bbox_x"]), "y": float(o["bbox_y"]),
                    "w": float(o["bbox_width"]), "h": float(o["bbox_height"]),
                    "detector_name": o.get("classified_by", "") or "camtrap_dp_import",
                    "detector_version": "",
                    "tile": "full",
                    "static_fp": False,
                    "run_id": run_id,
                }
            )  # fmt: skip
    return obs_rows, det_rows


def _taxa(pkg: CamtrapPackage) -> dict[str, Taxon]:
    taxa = {}
    for row in pkg.taxa.to_dict("records"):
        taxa[row["taxon_id"]] = Taxon(
            taxon_id=row["taxon_id"],
            scientific_name=row["scientific_name"],
            rank=row.get("taxon_rank", ""),
            parent_id="",
            common_name=str(row.get("vernacular_eng", "") or ""),
        )
    return taxa


def import_camtrap_dp(store: Store, package_path: str | Path, *, dump_id: str) -> ImportSummary:
    """Import a Camtrap DP 1.x package's deployments, media and observations into the store.

    Args:
        store: the results store.
        package_path: the package folder or its ``datapackage.json``.
        dump_id: the dump id its media are recorded under (media ids derive from it).

    Returns:
        An :class:`ImportSummary` (row counts, and the package's taxa for the exporter).

    Raises:
        InputDataError: the package cannot be read or breaks Camtrap DP rules (see
            :func:`read_camtrap_dp`).
        StoreError: the store cannot be written.
    """
    pkg = read_camtrap_dp(package_path)
    taxa = _taxa(pkg)
    run_id = store.start_run("import_camtrap_dp", {"package": str(pkg.path), "dump_id": dump_id})
    written = upsert_deployments(store, _deployments(pkg))
    upsert_dump(store, dump_id, pkg.path.parent)
    media_rows, id_map, hashed = _media_rows(pkg, dump_id, run_id)
    obs_rows, det_rows = _observation_rows(pkg, dump_id, run_id, id_map, {k: t.rank for k, t in taxa.items()})
    with store.transaction() as conn:
        media_new = store.insert_ignore(conn, S.media, media_rows)
        det_new = store.insert_ignore(conn, S.detections, det_rows)
        obs_new = store.insert_ignore(conn, S.observations, obs_rows)
    counts = {"media": media_new, "observations": obs_new, "detections": det_new, "deployments": written}
    store.finish_run(run_id, status="finished", counts=counts)
    logger.info("imported %s as dump %r: %s", pkg.path, dump_id, counts)
    return ImportSummary(
        dump_id=dump_id,
        package_path=pkg.path,
        deployments_written=written,
        media_inserted=media_new,
        media_in_package=len(media_rows),
        observations_inserted=obs_new,
        observations_in_package=len(obs_rows),
        detections_inserted=det_new,
        media_hashed=hashed,
        taxa=taxa,
    )
