"""Section builders of the report: pure functions from analysis tables to small dataclasses.

:func:`analyse` runs :mod:`ecowatch.analysis` once on the report's tables (events, effort,
outages); each ``*_section`` function then turns that into what one section of the report shows.
Numbers are kept as numbers (the template formats them); every figure is a base64 PNG.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ecowatch.analysis import (
    accumulation_exact,
    activity_density,
    camera_operation,
    detect_outages,
    detection_history,
    effort_days,
    incidence_matrix,
    independent_events,
    naive_occupancy,
    pairwise_overlap,
    relative_abundance,
    time_of_day_radians,
)
from ecowatch.config import ReportConfig
from ecowatch.errors import InputDataError
from ecowatch.report import plots
from ecowatch.report.data import UNCLASSIFIED, RecordsResult, ReportData, lookup
from ecowatch.tables import Taxon

log = logging.getLogger(__name__)


# --- names -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaxonName:
    """How a label is shown: ``common`` and ``scientific`` name (either may be empty) and rank."""

    label: str
    common: str
    scientific: str
    rank: str

    @property
    def display(self) -> str:
        """``common (Scientific)``, or whichever is known, or the label itself."""
        if self.common and self.scientific:
            return f"{self.common} ({self.scientific})"
        return self.common or self.scientific or self.label


def taxon_name(label: str, taxonomy: Mapping[str, Taxon] | None) -> TaxonName:
    """Display names of a record label from the taxonomy table (taxon id when unknown)."""
    if label == UNCLASSIFIED:
        return TaxonName(label, UNCLASSIFIED, "", "")
    taxon = (taxonomy or {}).get(label)
    if taxon is None:
        return TaxonName(label, "", "", "")
    return TaxonName(label, taxon.common_name, taxon.scientific_name, taxon.rank)


# --- the analyses, run once --------------------------------------------------------------------


@dataclass(frozen=True)
class Analysis:
    """The analysis tables every section draws on.

    Attributes:
        deployments: the analyses' deployments table.
        records: animal records (:class:`~ecowatch.report.data.RecordsResult`).
        events: :func:`~ecowatch.analysis.independent_events` of the records.
        gaps: possible outages (trigger gaps, :func:`~ecowatch.analysis.detect_outages`).
        clock_issues: image times outside their deployment window.
        effort_outages: the outages subtracted from the effort (``gaps`` or none).
        effort: :func:`~ecowatch.analysis.effort_days` with ``effort_outages``.
    """

    deployments: pd.DataFrame
    records: RecordsResult
    events: pd.DataFrame
    gaps: pd.DataFrame
    clock_issues: pd.DataFrame
    effort_outages: pd.DataFrame | None
    effort: pd.DataFrame


def analyse(deployments: pd.DataFrame, records: RecordsResult, image_times: pd.DataFrame,
            config: ReportConfig) -> Analysis:  # fmt: skip
    """Independent events, possible outages and effort, as configured.

    Args:
        deployments: the analyses' deployments table.
        records: from :func:`ecowatch.report.data.animal_records`.
        image_times: ``deployment_id, timestamp`` of every readable image (gaps between them are
            possible outages).
        config: the report configuration.

    Returns:
        :class:`Analysis`.

    Raises:
        InputDataError: a table breaks an analysis contract.
    """
    events = independent_events(
        records.records[["deployment_id", "timestamp", "taxon_id", "count", "media_id"]],
        min_gap=dt.timedelta(minutes=config.event_gap_min),
        rule=config.event_rule,
    )
    empty_gaps = pd.DataFrame({"deployment_id": pd.Series([], dtype=str),
                               "start": pd.Series([], dtype="datetime64[ns]"),
                               "end": pd.Series([], dtype="datetime64[ns]")})  # fmt: skip
    gaps, issues = empty_gaps, pd.DataFrame(columns=["deployment_id", "timestamp", "issue"])
    if config.outage_gap_days is not None and len(deployments):
        found = detect_outages(image_times, deployments, max_gap=dt.timedelta(days=config.outage_gap_days))
        gaps, issues = found.outages, found.clock_issues
    effort_outages = gaps[["deployment_id", "start", "end"]] if config.subtract_outages else None
    effort = effort_days(deployments, effort_outages)
    return Analysis(deployments, records, events, gaps, issues, effort_outages, effort)


# --- summary -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DumpRow:
    """One dump in the summary."""

    dump_id: str
    root: str
    n_media: int


@dataclass(frozen=True)
class SummarySection:
    """Project summary: what was surveyed, when, with what effort, and what was found."""

    n_deployments: int
    n_locations: int
    n_media: int
    n_media_ok: int
    n_media_failed: int
    n_media_skipped: int
    survey_start: pd.Timestamp | None
    survey_end: pd.Timestamp | None
    first_image: pd.Timestamp | None
    last_image: pd.Timestamp | None
    trap_nights: float
    n_records: int
    n_events: int
    n_taxa: int
    n_species: int
    dumps: tuple[DumpRow, ...]
    levels: str
    effort_note: str


def summary_section(data: ReportData, analysis: Analysis, taxonomy: Mapping[str, Taxon] | None,
                    config: ReportConfig) -> SummarySection:  # fmt: skip
    """The project summary (counts, dates, effort, taxa)."""
    deps, media, events = analysis.deployments, data.media, analysis.events
    status = media["status"].value_counts()
    image_times = media.loc[(media["status"] == "ok") & _inside_windows(media, deps), "timestamp"]
    labels = sorted(set(events["taxon_id"]) - {UNCLASSIFIED})
    species = [lab for lab in labels if _rank(lab, data, taxonomy) == "species"]
    levels = sorted(set(analysis.records.level_by_deployment.values()))
    level_text = {"event": "event-level observations", "media": "media-level observations"}
    return SummarySection(
        n_deployments=len(deps),
        n_locations=int(deps["location_id"].nunique()),
        n_media=len(media),
        n_media_ok=int(status.get("ok", 0)),
        n_media_failed=int(status.get("failed", 0)),
        n_media_skipped=int(status.get("skipped", 0)),
        survey_start=deps["start"].min() if len(deps) else None,
        survey_end=deps["end"].max() if len(deps) else None,
        first_image=image_times.min() if len(image_times) else None,
        last_image=image_times.max() if len(image_times) else None,
        trap_nights=float(analysis.effort["effort_days"].sum()),
        n_records=len(analysis.records.records),
        n_events=len(events),
        n_taxa=len(labels),
        n_species=len(species),
        dumps=tuple(DumpRow(d, data.dump_roots[d], int((media["dump_id"] == d).sum())) for d in data.dump_ids),
        levels=" and ".join(level_text[lvl] for lvl in levels) or "no observations",
        effort_note=_effort_note(config),
    )


def _effort_note(config: ReportConfig) -> str:
    if config.outage_gap_days is None:
        return "Effort is the deployment windows (outage detection off)."
    if config.subtract_outages:
        return (f"Effort is the deployment windows minus image gaps longer than {config.outage_gap_days:g} days "
                "(taken as outages).")
    return (f"Effort is the deployment windows; image gaps longer than {config.outage_gap_days:g} days are shown "
            "as possible outages but not subtracted.")


def _inside_windows(media: pd.DataFrame, deps: pd.DataFrame) -> pd.Series:
    window = deps.set_index("deployment_id")
    start = lookup(media["deployment_id"], window["start"])
    end = lookup(media["deployment_id"], window["end"])
    return (media["timestamp"] >= start) & (media["timestamp"] <= end)


def _rank(label: str, data: ReportData, taxonomy: Mapping[str, Taxon] | None) -> str:
    """A taxon's rank: the taxonomy table's, else the one recorded on its observations."""
    taxon = (taxonomy or {}).get(label)
    if taxon is not None and taxon.rank:
        return taxon.rank
    ranks = data.observations.loc[data.observations["taxon_id"] == label, "taxon_rank"].dropna()
    return str(ranks.iloc[0]) if len(ranks) else ""


# --- map ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapRow:
    """One deployment on the map."""

    deployment_id: str
    location_id: str
    location_name: str
    latitude: float
    longitude: float
    region: str
    n_events: int


@dataclass(frozen=True)
class MapSection:
    """The deployment map (None when there is nothing to draw) and its table."""

    image: str | None
    rows: tuple[MapRow, ...]
    coloured_by: str
    note: str


def map_section(analysis: Analysis, regions_path: object | None) -> MapSection:
    """Deployments on a map, over region polygons when a regions file is given.

    Args:
        analysis: from :func:`analyse`.
        regions_path: a GeoJSON / GeoPackage of polygons (any CRS; drawn in WGS84), or None.

    Returns:
        :class:`MapSection`.

    Raises:
        InputDataError: the regions file cannot be read.
    """
    deps = analysis.deployments
    per_dep = analysis.events.groupby("deployment_id").size().to_dict()
    if deps.empty:
        return MapSection(None, (), "", "Nothing to show: no deployments.")
    regions = region_of = label_column = None
    note = ""
    if regions_path is not None:
        regions, label_column = _read_regions(regions_path)
        region_of = _region_of(deps, regions, label_column)
        note = f"Region polygons from {regions_path}."
    image = plots.deployment_map_png(deps, events_per_deployment=per_dep, regions=regions, region_of=region_of)
    rows = tuple(
        MapRow(r.deployment_id, r.location_id, r.location_name, float(r.latitude), float(r.longitude),
               (region_of or {}).get(r.deployment_id, ""), int(per_dep.get(r.deployment_id, 0)))
        for r in deps.itertuples()
    )  # fmt: skip
    return MapSection(image, rows, "region" if region_of is not None else "independent events", note)


def _read_regions(path: object) -> tuple[object, str | None]:
    import geopandas as gpd

    try:
        regions = gpd.read_file(path)
    except (OSError, RuntimeError, ValueError) as exc:  # pyogrio's DataSourceError is a RuntimeError
        raise InputDataError(
            f"{path}: cannot read region polygons ({exc}). Give a GeoJSON or GeoPackage file."
        ) from exc
    if regions.crs is not None and not regions.crs.equals("EPSG:4326"):
        regions = regions.to_crs("EPSG:4326")
    label = next((c for c in ("name", "region", "region_id", "id") if c in regions.columns), None)
    return regions, label


def _region_of(deps: pd.DataFrame, regions: object, label_column: str | None) -> dict[str, str]:
    import geopandas as gpd

    points = gpd.GeoDataFrame(
        {"deployment_id": deps["deployment_id"]},
        geometry=gpd.points_from_xy(deps["longitude"], deps["latitude"]),
        crs="EPSG:4326",
    )
    if label_column:
        labels = regions[label_column].astype(str).to_numpy()  # type: ignore[index]
    else:
        labels = [f"region {i + 1}" for i in range(len(regions))]  # type: ignore[arg-type]
    geometry = regions.geometry.to_numpy()  # type: ignore[attr-defined]
    polygons = gpd.GeoDataFrame({"region_label": labels}, geometry=geometry, crs="EPSG:4326")
    joined = gpd.sjoin(points, polygons, how="left", predicate="within")
    first = joined.groupby("deployment_id")["region_label"].first()
    return {d: ("" if pd.isna(v) else str(v)) for d, v in first.items()}


# --- species table -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeciesRow:
    """One taxon (or :data:`UNCLASSIFIED`) of the species table.

    Attributes:
        rai: independent events per 100 trap-nights over all deployments (NaN without effort).
        naive_occupancy: share of locations with at least one event (0..1).
        occasions_detected, occasions_surveyed: detection-history occasions (by location) with a
            detection, and with effort.
    """

    taxon_id: str
    common_name: str
    scientific_name: str
    rank: str
    unclassified: bool
    n_records: int
    n_events: int
    effort_days: float
    rai: float
    n_sites_detected: int
    n_sites: int
    naive_occupancy: float
    occasions_detected: int
    occasions_surveyed: int


@dataclass(frozen=True)
class SpeciesSection:
    """Events, RAI and naive occupancy per taxon, most events first."""

    rows: tuple[SpeciesRow, ...]
    note: str


def species_section(analysis: Analysis, data: ReportData, taxonomy: Mapping[str, Taxon] | None,
                    config: ReportConfig) -> SpeciesSection:  # fmt: skip
    """The species table, computed with :mod:`ecowatch.analysis`.

    RAI: :func:`~ecowatch.analysis.relative_abundance` ``by="overall"``; naive occupancy:
    :func:`~ecowatch.analysis.naive_occupancy` by location; occasions:
    :func:`~ecowatch.analysis.detection_history` with ``config.occasion_length_days``.
    """
    events, deps = analysis.events, analysis.deployments
    if events.empty:
        return SpeciesSection((), "Nothing to show: no animal observations with a time inside a deployment window.")
    rai = relative_abundance(events, analysis.effort, by="overall").set_index("taxon_id")
    occupancy = naive_occupancy(events, deps, by="location").set_index("taxon_id")
    n_records = analysis.records.records.groupby("taxon_id").size()
    rows = []
    for label in rai.index:
        history = detection_history(events, deps, analysis.effort_outages, taxon_id=label,
                                    occasion_length_days=config.occasion_length_days)  # fmt: skip
        detections = history.detections.to_numpy(dtype=float)
        name = taxon_name(label, taxonomy)
        rows.append(
            SpeciesRow(
                taxon_id=label,
                common_name=name.common,
                scientific_name=name.scientific,
                rank=_rank(label, data, taxonomy) if label != UNCLASSIFIED else "",
                unclassified=label == UNCLASSIFIED,
                n_records=int(n_records.get(label, 0)),
                n_events=int(rai.at[label, "n_events"]),
                effort_days=float(rai.at[label, "effort_days"]),
                rai=float(rai.at[label, "rai"]),
                n_sites_detected=int(occupancy.at[label, "n_sites_detected"]),
                n_sites=int(occupancy.at[label, "n_sites"]),
                naive_occupancy=float(occupancy.at[label, "naive_occupancy"]),
                occasions_detected=int(np.nansum(detections == 1.0)),
                occasions_surveyed=int(np.isfinite(detections).sum()),
            )
        )
    rows.sort(key=lambda r: (r.unclassified, -r.n_events, r.taxon_id))
    note = (f"Independent events: records of a taxon at a deployment less than {config.event_gap_min:g} min apart "
            f"({config.event_rule.replace('_', ' ')} rule) are one event. RAI = events per 100 trap-nights; naive "
            "occupancy = share of locations with at least one event (imperfect detection ignored).")  # fmt: skip
    return SpeciesSection(tuple(rows), note)


# --- activity ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivityPlot:
    """One taxon's activity curve."""

    taxon_id: str
    name: str
    n_events: int
    kappa: float
    image: str


@dataclass(frozen=True)
class OverlapRow:
    """Activity overlap of two taxa (``estimate`` and its bootstrap CI, NaN when not computed)."""

    name_a: str
    name_b: str
    n_a: int
    n_b: int
    estimator: str
    estimate: float
    ci_lower: float
    ci_upper: float


@dataclass(frozen=True)
class ActivitySection:
    """Activity curves, the taxa without one, and the pairwise overlap table."""

    plots: tuple[ActivityPlot, ...]
    too_few: tuple[str, ...]
    overlap: tuple[OverlapRow, ...]
    overlap_note: str
    note: str


def activity_section(analysis: Analysis, taxonomy: Mapping[str, Taxon] | None, config: ReportConfig) -> ActivitySection:
    """Kernel density of event times per taxon and the pairwise overlap coefficients.

    Curves: :func:`~ecowatch.analysis.activity_density` of the events' start times (camera clock)
    for every label with at least ``config.min_activity_records`` events. Overlap:
    :func:`~ecowatch.analysis.pairwise_overlap` over the (at most ``config.overlap_max_taxa``)
    named taxa with a curve, ``config.bootstrap_samples`` smoothed-bootstrap samples each.
    """
    events = analysis.events
    counts = events.groupby("taxon_id").size().sort_values(ascending=False, kind="stable")
    curves: list[ActivityPlot] = []
    too_few: list[str] = []
    times_of: dict[str, np.ndarray] = {}
    for label, n in counts.items():
        name = taxon_name(str(label), taxonomy).display
        if n < config.min_activity_records:
            too_few.append(f"{name} ({n})")
            continue
        times = time_of_day_radians(events.loc[events["taxon_id"] == label, "start"])
        try:
            density = activity_density(times)
        except InputDataError as exc:
            log.info("no activity curve for %s: %s", label, exc)
            too_few.append(f"{name} ({n}; times too uniform or identical for a curve)")
            continue
        image = plots.activity_png(density.grid_rad, density.density, times, title=f"{name}, n = {n}")
        curves.append(ActivityPlot(str(label), name, int(n), density.kappa, image))
        if label != UNCLASSIFIED:
            times_of[str(label)] = times
    note = "" if curves else (
        f"Nothing to show: no taxon has {config.min_activity_records} or more independent events "
        "(report.min_activity_records).")  # fmt: skip
    overlap, overlap_note = _overlap_rows(times_of, taxonomy, config)
    return ActivitySection(tuple(curves), tuple(too_few), overlap, overlap_note, note)


def _overlap_rows(times_of: dict[str, np.ndarray], taxonomy: Mapping[str, Taxon] | None,
                  config: ReportConfig) -> tuple[tuple[OverlapRow, ...], str]:  # fmt: skip
    chosen = dict(list(times_of.items())[: config.overlap_max_taxa])
    if len(chosen) < 2:
        return (), "Nothing to show: overlap needs at least two named taxa with an activity curve."
    table = pairwise_overlap(chosen, n_boot=config.bootstrap_samples, seed=config.seed)
    rows = tuple(
        OverlapRow(taxon_name(r.taxon_a, taxonomy).display, taxon_name(r.taxon_b, taxonomy).display, int(r.n_a),
                   int(r.n_b), str(r.estimator), float(r.estimate), float(r.ci_lower), float(r.ci_upper))
        for r in table.itertuples()
    )  # fmt: skip
    note = (f"Overlap coefficient Δ (0 = never active at the same time, 1 = identical patterns); 95 % CI from "
            f"{config.bootstrap_samples} smoothed-bootstrap samples (report.bootstrap_samples; at least 40 are "
            "needed for an interval).")  # fmt: skip
    if len(times_of) > len(chosen):
        note += f" Only the {len(chosen)} taxa with the most events are compared (report.overlap_max_taxa)."
    return rows, note


# --- effort ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EffortRow:
    """Effort of one deployment, in days."""

    deployment_id: str
    location_name: str
    start: pd.Timestamp
    end: pd.Timestamp
    window_days: float
    gap_days: float
    effort_days: float


@dataclass(frozen=True)
class OutageRow:
    """One possible outage (an image gap)."""

    deployment_id: str
    start: pd.Timestamp
    end: pd.Timestamp
    days: float


@dataclass(frozen=True)
class EffortSection:
    """Effort calendar (one row per camera), effort per deployment and the possible outages."""

    image: str | None
    rows: tuple[EffortRow, ...]
    outages: tuple[OutageRow, ...]
    note: str


def effort_section(analysis: Analysis, config: ReportConfig) -> EffortSection:
    """The effort calendar: :func:`~ecowatch.analysis.camera_operation` with the image gaps as outages."""
    deps = analysis.deployments
    if deps.empty:
        return EffortSection(None, (), (), "Nothing to show: no deployments.")
    gaps = analysis.gaps[["deployment_id", "start", "end"]]
    operation = camera_operation(deps, gaps, by="deployment")
    labels = [f"{d} ({loc})" if loc else d for d, loc in zip(deps["deployment_id"], deps["location_name"], strict=True)]
    image = plots.calendar_png(operation, labels)
    gap_days = effort_days(deps, gaps).set_index("deployment_id")["outage_days"]
    effort = analysis.effort.set_index("deployment_id")
    rows = tuple(
        EffortRow(r.deployment_id, r.location_name, r.start, r.end, float(effort.at[r.deployment_id, "window_days"]),
                  float(gap_days[r.deployment_id]), float(effort.at[r.deployment_id, "effort_days"]))
        for r in deps.itertuples()
    )  # fmt: skip
    outages = tuple(
        OutageRow(str(o.deployment_id), o.start, o.end, (o.end - o.start) / pd.Timedelta(days=1))
        for o in analysis.gaps.itertuples()
    )
    return EffortSection(image, rows, outages, _effort_note(config))


# --- accumulation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccumulationSection:
    """Species accumulation curve (None when it cannot be drawn)."""

    image: str | None
    unit: str
    n_units: int
    n_taxa: int
    note: str


def accumulation_section(analysis: Analysis, config: ReportConfig) -> AccumulationSection:
    """Exact sample-based rarefaction (:func:`~ecowatch.analysis.accumulation_exact`) of the named taxa."""
    unit = "camera-day" if config.accumulation_unit == "day" else "deployment"
    named = analysis.events[analysis.events["taxon_id"] != UNCLASSIFIED]
    if analysis.deployments.empty or named.empty:
        return AccumulationSection(None, unit, 0, 0, "Nothing to show: no events of a named taxon.")
    incidence = incidence_matrix(named, analysis.deployments, analysis.effort_outages, unit=config.accumulation_unit)
    n_units, n_taxa = incidence.shape
    if n_units < 2:
        return AccumulationSection(None, unit, n_units, n_taxa,
                                   f"Nothing to show: a curve needs at least two {unit}s, there is {n_units}.")
    curve = accumulation_exact(incidence)
    note = (f"Expected number of taxa in h {unit}s drawn from the {n_units} surveyed (exact sample-based "
            "rarefaction, ± 1 sd conditional on the units surveyed).")  # fmt: skip
    return AccumulationSection(plots.accumulation_png(curve, unit=unit), unit, n_units, n_taxa, note)
