"""The report's data layer: results-store rows -> the pandas tables :mod:`ecowatch.analysis` takes.

:func:`load_report_data` reads what the report needs of one or more dumps (read-only);
:func:`animal_records` turns its observations into the analyses' records table.

Which observations become records (one level only, so nothing is counted twice):

* Per deployment, event-level observations when the deployment has any (a Camtrap DP import),
  otherwise media-level observations (the nightly run's detector and classifier output).
* Only ``observation_type = "animal"``. An animal without a taxon (the detector's media-level
  observations before classification) is recorded under the label :data:`UNCLASSIFIED`, unless
  another observation of the same media file names a taxon (then it is the same animal).
* Time: a media-level observation is at its media file's timestamp; an event-level observation at
  the earliest timestamp of the media of its event (same deployment and ``sequence_id``, which is
  the Camtrap DP ``eventID`` on import).
* Left out, and counted in :class:`RecordsResult` for the data-quality section: observations
  without a time or deployment, and records outside their deployment's window (a wrong camera
  clock; camtrapR drops them too).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ecowatch.detect.observations import superseded_unnamed_ids
from ecowatch.errors import EcowatchError
from ecowatch.store import Store
from ecowatch.store import schema as S

log = logging.getLogger(__name__)

#: Label of animal observations that have no taxon (detector output not yet classified).
UNCLASSIFIED = "animal (unclassified)"

_DEPLOYMENT_EXTRA = ("utc_offset_min", "camera_id", "camera_serial", "camera_model", "setup_notes")


class ReportError(EcowatchError):
    """The report cannot be built from what was asked (e.g. a dump the store does not hold)."""


@dataclass(frozen=True)
class ReportData:
    """What the report reads from the store, as DataFrames (camera-local naive times).

    Attributes:
        dump_ids: the dumps reported on, sorted.
        dump_roots: dump id -> the dump's root folder when last ingested.
        deployments: the analyses' deployments table plus ``utc_offset_min, camera_id,
            camera_serial, camera_model, setup_notes``; the deployments with media in the dumps
            (every deployment of the store when the report covers the whole store).
        media: ``media_id, dump_id, relpath, deployment_id, media_type, status, timestamp,
            sequence_id, ingest_run_id``.
        flags: ``media_id, dump_id, relpath, deployment_id, flag, message``.
        observations: every observation of the dumps' media and events: the store columns plus
            ``timestamp`` (see the module docstring; NaT when unknown) and ``relpath``, ``dump_id``
            of media-level observations.
        detections: detections on the dumps' media (store columns).
        classifications: ``model_name, model_version, n_detections, run_id`` (top-1 rows).
        runs: ``run_id, kind, status, started_at, finished_at, mlflow_run_id`` of the runs that
            wrote any of these rows or that name one of the dumps in their parameters.
    """

    dump_ids: tuple[str, ...]
    dump_roots: dict[str, str]
    deployments: pd.DataFrame
    media: pd.DataFrame
    flags: pd.DataFrame
    observations: pd.DataFrame
    detections: pd.DataFrame
    classifications: pd.DataFrame
    runs: pd.DataFrame


def _frame(conn: sa.Connection, stmt: sa.Select, columns: Sequence[str]) -> pd.DataFrame:
    rows = conn.execute(stmt).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=list(columns))


def _naive(series: pd.Series) -> pd.Series:
    if series.empty:
        return pd.Series([], index=series.index, dtype="datetime64[ns]")
    return pd.to_datetime(series, errors="coerce").astype("datetime64[ns]")


def lookup(keys: pd.Series, table: pd.Series) -> pd.Series:
    """``table[key]`` for each key (NaN/NaT where absent), keeping ``table``'s dtype even when empty.

    (``Series.map`` of an empty Series casts a datetime result to float.)
    """
    return pd.Series(table.reindex(keys.to_numpy()).to_numpy(), index=keys.index, dtype=table.dtype)


def _select_dumps(conn: sa.Connection, dump_ids: Sequence[str] | None) -> dict[str, str]:
    known = dict(conn.execute(sa.select(S.dumps.c.dump_id, S.dumps.c.root)).all())
    if dump_ids is None:
        return dict(sorted(known.items()))
    missing = sorted(set(dump_ids) - set(known))
    if missing:
        raise ReportError(
            f"the results store holds no dump(s) {missing}; it holds {sorted(known) or 'none'}. "
            "Run `ecowatch nightly` on that dump first, or report on another dump."
        )
    return {d: known[d] for d in sorted(set(dump_ids))}


def load_report_data(store: Store, dump_ids: Sequence[str] | None = None) -> ReportData:
    """Read the rows of some dumps (or of the whole store) that the report needs.

    Args:
        store: the results store (only read).
        dump_ids: dump ids (catalog names) to report on; None for every dump in the store.

    Returns:
        :class:`ReportData`.

    Raises:
        ReportError: a dump id is not in the store (the message lists those it holds).
    """
    with store.engine.connect() as conn:
        roots = _select_dumps(conn, dump_ids)
        dumps = list(roots)
        m = S.media
        media = _frame(
            conn,
            sa.select(m.c.media_id, m.c.dump_id, m.c.relpath, m.c.deployment_id, m.c.media_type, m.c.status,
                      m.c.timestamp, m.c.sequence_id, m.c.ingest_run_id).where(m.c.dump_id.in_(dumps)),
            ["media_id", "dump_id", "relpath", "deployment_id", "media_type", "status", "timestamp", "sequence_id",
             "ingest_run_id"],
        )  # fmt: skip
        media["timestamp"] = _naive(media["timestamp"])
        flags = _frame(
            conn,
            sa.select(S.media_flags.c.media_id, m.c.dump_id, m.c.relpath, m.c.deployment_id, S.media_flags.c.flag,
                      S.media_flags.c.message)
            .join(m, m.c.media_id == S.media_flags.c.media_id).where(m.c.dump_id.in_(dumps)),
            ["media_id", "dump_id", "relpath", "deployment_id", "flag", "message"],
        )  # fmt: skip
        dep_cols = [c.name for c in S.deployments.columns]
        deployments = _frame(conn, sa.select(S.deployments), dep_cols)
        obs_cols = [c.name for c in S.observations.columns]
        observations = _frame(conn, sa.select(S.observations), obs_cols)
        det_cols = [c.name for c in S.detections.columns]
        detections = _frame(
            conn,
            sa.select(S.detections).join(m, m.c.media_id == S.detections.c.media_id).where(m.c.dump_id.in_(dumps)),
            det_cols,
        )
        c = S.classifications
        classifications = _frame(
            conn,
            sa.select(c.c.model_name, c.c.model_version, sa.func.count(), c.c.run_id)
            .join(S.detections, S.detections.c.detection_id == c.c.detection_id)
            .join(m, m.c.media_id == S.detections.c.media_id)
            .where(m.c.dump_id.in_(dumps), c.c.rank == 1)
            .group_by(c.c.model_name, c.c.model_version, c.c.run_id),
            ["model_name", "model_version", "n_detections", "run_id"],
        )
        runs = _frame(conn, sa.select(S.runs), [col.name for col in S.runs.columns])

    whole_store = dump_ids is None
    if not whole_store:
        used = set(media["deployment_id"].dropna())
        deployments = deployments[deployments["deployment_id"].isin(used)]
    deployments = _deployments_table(deployments)
    observations = _dump_observations(observations, media, whole_store=whole_store)
    runs = _relevant_runs(runs, dumps, media, observations, detections, classifications)
    return ReportData(
        dump_ids=tuple(dumps),
        dump_roots=roots,
        deployments=deployments,
        media=media.sort_values(["dump_id", "relpath"]).reset_index(drop=True),
        flags=flags.sort_values(["flag", "dump_id", "relpath"]).reset_index(drop=True),
        observations=observations,
        detections=detections.sort_values("detection_id").reset_index(drop=True),
        classifications=classifications.sort_values(["model_name", "model_version"]).reset_index(drop=True),
        runs=runs,
    )


def _deployments_table(rows: pd.DataFrame) -> pd.DataFrame:
    out = rows.copy()
    out["start"], out["end"] = _naive(out["start"]), _naive(out["end"])
    for column in ("deployment_id", "location_id", "location_name", *_DEPLOYMENT_EXTRA[1:]):
        out[column] = out[column].fillna("").astype(str)
    out["location_id"] = out["location_id"].where(out["location_id"] != "", out["deployment_id"])
    columns = ["deployment_id", "location_id", "location_name", "latitude", "longitude", "start", "end",
               *_DEPLOYMENT_EXTRA]  # fmt: skip
    return out[columns].sort_values("deployment_id").reset_index(drop=True)


def _dump_observations(obs: pd.DataFrame, media: pd.DataFrame, *, whole_store: bool) -> pd.DataFrame:
    """The observations of the dumps' media and events, each with a resolved ``timestamp``."""
    is_media = obs["level"] == "media"
    info = media[["media_id", "timestamp", "relpath", "dump_id", "deployment_id"]].rename(
        columns={"deployment_id": "media_deployment_id"})  # fmt: skip
    media_level = obs[is_media].merge(info, on="media_id", how="inner")
    media_level["deployment_id"] = media_level["deployment_id"].fillna(media_level["media_deployment_id"])
    media_level = media_level.drop(columns="media_deployment_id")

    seq = media.dropna(subset=["sequence_id", "deployment_id"])
    first = pd.DataFrame(
        {
            "timestamp": seq.groupby(["deployment_id", "sequence_id"])["timestamp"].min(),
            "dump_id": seq.groupby(["deployment_id", "sequence_id"])["dump_id"].first(),
        }
    ).reset_index()
    events = obs[~is_media].merge(first, on=["deployment_id", "sequence_id"], how="left")
    events["relpath"] = None
    if not whole_store:  # an event belongs to the report when its media are in the dumps
        events = events[events["dump_id"].notna()]
    out = pd.concat([frame for frame in (media_level, events) if len(frame)] or [media_level], ignore_index=True)
    out["timestamp"] = _naive(out["timestamp"])
    return out.sort_values("observation_id").reset_index(drop=True)


def _relevant_runs(runs: pd.DataFrame, dumps: Sequence[str], *tables: pd.DataFrame) -> pd.DataFrame:
    ids: set[str] = set()
    for table in tables:
        for column in ("ingest_run_id", "run_id"):
            if column in table.columns:
                ids |= set(table[column].dropna().astype(str))

    def names_dump(params: str) -> bool:
        try:
            value = json.loads(params or "{}")
        except json.JSONDecodeError:
            return False
        return isinstance(value, dict) and (value.get("dump") in dumps or value.get("dump_id") in dumps)

    keep = runs["run_id"].isin(ids) | runs["params_json"].map(names_dump).astype(bool)
    out = runs.loc[keep, ["run_id", "kind", "status", "started_at", "finished_at", "mlflow_run_id"]].copy()
    return out.sort_values(["started_at", "run_id"]).reset_index(drop=True)


@dataclass(frozen=True)
class RecordsResult:
    """The records table of the animal observations, and what was left out of it.

    Attributes:
        records: the analyses' records table: ``deployment_id, timestamp, taxon_id`` (the label:
            a taxon id or :data:`UNCLASSIFIED`), ``count``, ``media_id``, ``sequence_id``,
            ``observation_id``, ``level``.
        level_by_deployment: deployment id -> ``"event"`` or ``"media"``, the level used there.
        n_untimed: animal observations left out for lack of a timestamp or a deployment.
        n_outside_window: animal observations left out because their time lies outside their
            deployment's window.
    """

    records: pd.DataFrame
    level_by_deployment: dict[str, str]
    n_untimed: int
    n_outside_window: int


def animal_records(data: ReportData) -> RecordsResult:
    """The records table of the analyses from the report's observations (module docstring rules).

    Args:
        data: from :func:`load_report_data`.

    Returns:
        :class:`RecordsResult`.
    """
    obs = data.observations
    deps = data.deployments
    with_events = set(obs.loc[obs["level"] == "event", "deployment_id"].dropna())
    level_of = {d: ("event" if d in with_events else "media") for d in deps["deployment_id"]}
    animal = obs[obs["observation_type"] == "animal"].copy()
    wanted = lookup(animal["deployment_id"], pd.Series(level_of, dtype=object))
    animal = animal[(animal["level"] == wanted) | wanted.isna()]
    animal = animal[~superseded_unnamed(animal)]
    known = animal["deployment_id"].isin(deps["deployment_id"]) & animal["timestamp"].notna()
    n_untimed = int((~known).sum())
    animal = animal[known]
    window = deps.set_index("deployment_id")[["start", "end"]]
    start = lookup(animal["deployment_id"], window["start"])
    end = lookup(animal["deployment_id"], window["end"])
    inside = (animal["timestamp"] >= start) & (animal["timestamp"] <= end)
    n_outside = int((~inside).sum())
    animal = animal[inside]
    counts = pd.to_numeric(animal["count"], errors="coerce")
    records = pd.DataFrame(
        {
            "deployment_id": animal["deployment_id"].astype(str),
            "timestamp": animal["timestamp"].astype("datetime64[ns]"),
            "taxon_id": animal["taxon_id"].where(animal["taxon_id"].notna() & (animal["taxon_id"] != ""),
                                                 UNCLASSIFIED).astype(str),
            "count": counts.where(counts >= 1, np.nan).fillna(1).astype("int64"),
            "media_id": animal["media_id"].fillna("").astype(str),
            "sequence_id": animal["sequence_id"].fillna("").astype(str),
            "observation_id": animal["observation_id"].astype(str),
            "level": animal["level"].astype(str),
        }
    )  # fmt: skip
    records = records.sort_values(["deployment_id", "timestamp", "taxon_id", "observation_id"], kind="stable")
    return RecordsResult(records.reset_index(drop=True), level_of, n_untimed, n_outside)


def superseded_unnamed(observations: pd.DataFrame) -> pd.Series:
    """The detector's unnamed animal observations that a named one on the same media file replaces.

    See :func:`ecowatch.detect.observations.superseded_unnamed_ids` (the rule exports share).

    Returns:
        A boolean mask aligned with ``observations``.
    """
    columns = ["observation_id", "level", "observation_type", "media_id", "taxon_id"]
    return observations["observation_id"].isin(superseded_unnamed_ids(observations[columns].to_dict("records")))


def image_times(data: ReportData) -> pd.DataFrame:
    """``deployment_id, timestamp`` of every readable, timed image of a known deployment.

    The input of :func:`ecowatch.analysis.detect_outages` (gaps between images).
    """
    media = data.media
    keep = (
        (media["status"] == "ok")
        & media["timestamp"].notna()
        & media["deployment_id"].isin(data.deployments["deployment_id"])
    )
    return media.loc[keep, ["deployment_id", "timestamp"]].reset_index(drop=True)
