"""Data-quality and provenance sections: what went wrong, what is uncertain, what produced the numbers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ecowatch.config import ReportConfig
from ecowatch.report.data import UNCLASSIFIED, ReportData, superseded_unnamed
from ecowatch.report.sections import Analysis, taxon_name
from ecowatch.tables import Taxon

_EXAMPLES = 3  # example files shown per flag
_UNCERTAIN_LISTED = 25  # uncertain observations listed


@dataclass(frozen=True)
class FlagRow:
    """Media carrying one flag, with a few examples (``relpath: message``)."""

    flag: str
    n_media: int
    examples: tuple[str, ...]


@dataclass(frozen=True)
class ClockRow:
    """Image times outside one deployment's window."""

    deployment_id: str
    issue: str
    n_images: int
    earliest: pd.Timestamp
    latest: pd.Timestamp


@dataclass(frozen=True)
class CountRow:
    """A labelled count."""

    label: str
    count: int


@dataclass(frozen=True)
class UncertainRow:
    """One uncertain observation."""

    deployment_id: str
    where: str
    observation_type: str
    taxon: str
    rank: str
    probability: float
    source: str
    reasons: str


@dataclass(frozen=True)
class QualitySection:
    """Failed/flagged files, clock problems, records left out, uncertain and unknown animals."""

    flags: tuple[FlagRow, ...]
    clock: tuple[ClockRow, ...]
    left_out: tuple[CountRow, ...]
    uncertain_counts: tuple[CountRow, ...]
    uncertain: tuple[UncertainRow, ...]
    n_uncertain: int
    threshold: float


def quality_section(data: ReportData, analysis: Analysis, taxonomy: Mapping[str, Taxon] | None,
                    config: ReportConfig) -> QualitySection:  # fmt: skip
    """The data-quality section.

    Uncertain observations: ``observation_type`` ``unknown`` or ``unclassified``; animals without
    a species-rank taxon (no taxon at all, or a genus, family ...; the rank is the observation's
    ``taxon_rank``, else the taxonomy's); and animals with a probability below
    ``config.uncertain_probability``. A detector's unnamed animal on an image where another
    observation names the taxon is not listed (it is the same animal, now named).
    """
    flags = tuple(
        FlagRow(str(flag), int(group["media_id"].nunique()),
                tuple(f"{r.relpath}: {r.message}" for r in group.head(_EXAMPLES).itertuples()))
        for flag, group in data.flags.groupby("flag", sort=True)
    )  # fmt: skip
    issues = analysis.clock_issues
    clock = tuple(
        ClockRow(str(dep), str(issue), len(g), g["timestamp"].min(), g["timestamp"].max())
        for (dep, issue), g in issues.groupby(["deployment_id", "issue"], sort=True)
    )
    records = analysis.records
    unassigned = int(data.media["deployment_id"].isna().sum())
    left_out = tuple(
        row
        for row in (
            CountRow("media without a deployment", unassigned),
            CountRow("animal observations without a time or deployment (not analysed)", records.n_untimed),
            CountRow("animal observations outside their deployment window (not analysed)", records.n_outside_window),
        )
        if row.count
    )
    obs = data.observations
    rank = obs["taxon_rank"].fillna(obs["taxon_id"].map(lambda t: getattr((taxonomy or {}).get(t), "rank", None)))
    unknown_type = obs["observation_type"].isin(["unknown", "unclassified"])
    animal = obs["observation_type"] == "animal"
    has_taxon = obs["taxon_id"].notna() & (obs["taxon_id"] != "")
    no_taxon = animal & ~has_taxon & ~superseded_unnamed(obs)
    coarse = animal & has_taxon & (rank.fillna("") != "species")
    low = animal & (obs["probability"].astype(float) < config.uncertain_probability) & ~superseded_unnamed(obs)
    uncertain_counts = tuple(
        CountRow(label, int(mask.sum()))
        for label, mask in (
            ("observation type unknown or unclassified", unknown_type),
            (f"animal without a taxon ({UNCLASSIFIED})", no_taxon),
            ("animal identified above species rank (genus, family, ...)", coarse),
            (f"animal with a probability below {config.uncertain_probability:g}", low),
        )
    )
    any_uncertain = unknown_type | no_taxon | coarse | low
    chosen = obs[any_uncertain].assign(p_=obs["probability"].astype(float)).sort_values(
        ["p_", "deployment_id", "observation_id"], na_position="first", kind="stable")  # fmt: skip
    reason_masks = (("unknown type", unknown_type), ("no taxon", no_taxon), ("above species", coarse),
                    ("low probability", low))
    rows = []
    for r in chosen.head(_UNCERTAIN_LISTED).itertuples():
        reasons = [text for text, mask in reason_masks if mask[r.Index]]
        taxon = taxon_name(r.taxon_id, taxonomy).display if isinstance(r.taxon_id, str) and r.taxon_id else ""
        where = r.relpath if isinstance(r.relpath, str) and r.relpath else f"event {r.sequence_id or '?'}"
        rows.append(UncertainRow(str(r.deployment_id or ""), where, str(r.observation_type), taxon,
                                 _text(rank[r.Index]), float(r.p_) if pd.notna(r.p_) else np.nan,
                                 str(r.source), ", ".join(reasons)))  # fmt: skip
    return QualitySection(flags, clock, left_out, uncertain_counts, tuple(rows), int(any_uncertain.sum()),
                          config.uncertain_probability)  # fmt: skip


@dataclass(frozen=True)
class RunRow:
    """One pipeline run recorded in the store."""

    run_id: str
    kind: str
    status: str
    started_at: pd.Timestamp | None
    finished_at: pd.Timestamp | None
    mlflow_run_id: str


@dataclass(frozen=True)
class ModelRow:
    """A detector or classifier and how many rows it produced."""

    name: str
    version: str
    n_rows: int


@dataclass(frozen=True)
class ProvenanceSection:
    """Runs, models, observation sources and settings behind the report."""

    runs: tuple[RunRow, ...]
    mlflow_run_ids: tuple[str, ...]
    detectors: tuple[ModelRow, ...]
    classifiers: tuple[ModelRow, ...]
    sources: tuple[CountRow, ...]
    settings: tuple[tuple[str, str], ...]


def provenance_section(data: ReportData, config: ReportConfig, provenance: Mapping[str, object]) -> ProvenanceSection:
    """Runs (ids, kinds, status, MLflow run ids), detector and classifier versions, settings.

    Args:
        data: the report data.
        config: the report configuration (listed under ``report.*``).
        provenance: further settings to list (e.g. the run configuration's thresholds); nested
            mappings are flattened to dotted keys.
    """
    runs = tuple(
        RunRow(str(r.run_id), str(r.kind), str(r.status), _ts(r.started_at), _ts(r.finished_at),
               str(r.mlflow_run_id or ""))
        for r in data.runs.itertuples()
    )  # fmt: skip
    mlflow_ids = tuple(sorted({r.mlflow_run_id for r in runs if r.mlflow_run_id}))
    det = data.detections
    detectors = tuple(
        ModelRow(str(name), str(version) or "(not recorded)", len(g))
        for (name, version), g in det.groupby(["detector_name", "detector_version"], sort=True)
    )
    classifiers = tuple(
        ModelRow(str(name), str(version), int(g["n_detections"].sum()))
        for (name, version), g in data.classifications.groupby(["model_name", "model_version"], sort=True)
    )
    obs = data.observations
    sources = tuple(
        CountRow(f"{level}-level, {source}", len(g))
        for (level, source), g in obs.groupby(["level", "source"], sort=True)
    )
    settings = dict(_flatten(provenance))
    settings.update(_flatten({"report": config.model_dump()}))
    return ProvenanceSection(runs, mlflow_ids, detectors, classifiers, sources,
                             tuple((k, settings[k]) for k in sorted(settings)))  # fmt: skip


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _ts(value: object) -> pd.Timestamp | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value)


def _flatten(mapping: Mapping[str, object], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out += _flatten(value, f"{name}.")
        elif isinstance(value, (list, tuple)):
            out.append((name, ", ".join(str(v) for v in value)))
        else:
            out.append((name, "" if value is None else str(value)))
    return out
