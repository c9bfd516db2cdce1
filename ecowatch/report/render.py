"""Build the report: store -> analyses -> sections -> one self-contained HTML file.

The file needs nothing else to be read: CSS is inline, every figure and crop is an inline
base64 image, and it holds no script. Every string from the data is escaped by jinja2's
autoescaping (the template never marks data as safe).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

from ecowatch.config import ReportConfig
from ecowatch.report.data import animal_records, image_times, load_report_data
from ecowatch.report.gallery import gallery_section
from ecowatch.report.quality import provenance_section, quality_section
from ecowatch.report.sections import (
    SpeciesRow,
    accumulation_section,
    activity_section,
    analyse,
    effort_section,
    map_section,
    species_section,
    summary_section,
)
from ecowatch.store import Store
from ecowatch.tables import Taxon

log = logging.getLogger(__name__)

TEMPLATE = "report.html.j2"


@dataclass(frozen=True)
class ReportSummary:
    """What :func:`build_report` wrote.

    Attributes:
        path: the HTML file.
        dump_ids: the dumps reported on.
        species: the species table's rows (numbers as computed, not as formatted).
        empty_sections: ids of the sections that show a "nothing to show" note instead of content.
        mlflow_run_id: the MLflow run the file was logged to (set by the report pipeline).
    """

    path: Path
    title: str
    dump_ids: tuple[str, ...]
    n_deployments: int
    n_media: int
    n_records: int
    n_events: int
    n_taxa: int
    species: tuple[SpeciesRow, ...]
    empty_sections: tuple[str, ...]
    mlflow_run_id: str | None = None


def build_report(
    store: Store,
    out_path: str | Path,
    *,
    dump_ids: Sequence[str] | None = None,
    taxonomy: Mapping[str, Taxon] | None = None,
    regions_path: str | Path | None = None,
    config: ReportConfig = ReportConfig(),
    provenance: Mapping[str, object] | None = None,
) -> ReportSummary:
    """Write the HTML report of some dumps (or of the whole store).

    Args:
        store: the results store (only read).
        out_path: the HTML file to write (its folder is created).
        dump_ids: dump ids to report on; None for every dump in the store.
        taxonomy: taxon id -> :class:`~ecowatch.tables.Taxon` for display names (common and
            scientific) and ranks; taxon ids are shown when absent.
        regions_path: GeoJSON / GeoPackage of region polygons drawn under the map, or None.
        config: what to compute and how (:class:`~ecowatch.config.ReportConfig`).
        provenance: settings to list in the provenance section (e.g. the run configuration's
            thresholds and the configuration file); nested mappings become dotted keys.

    Returns:
        :class:`ReportSummary`.

    Raises:
        ReportError: a dump id is not in the store.
        InputDataError: the regions file cannot be read.
    """
    out = Path(out_path)
    data = load_report_data(store, dump_ids)
    records = animal_records(data)
    analysis = analyse(data.deployments, records, image_times(data), config)
    summary = summary_section(data, analysis, taxonomy, config)
    species = species_section(analysis, data, taxonomy, config)
    sections = {
        "summary": summary,
        "map": map_section(analysis, regions_path),
        "species": species,
        "activity": activity_section(analysis, taxonomy, config),
        "effort": effort_section(analysis, config),
        "accumulation": accumulation_section(analysis, config),
        "gallery": gallery_section(data, [r.taxon_id for r in species.rows], taxonomy,
                                   thumb_px=config.gallery_thumb_px),  # fmt: skip
        "quality": quality_section(data, analysis, taxonomy, config),
        "provenance": provenance_section(data, config, provenance or {}),
    }
    empty = _empty_sections(sections)
    html = render_html(title=config.title, dump_ids=data.dump_ids, sections=sections)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    log.info("report of %s written to %s (%d bytes)", list(data.dump_ids) or "an empty store", out, len(html))
    return ReportSummary(
        path=out,
        title=config.title,
        dump_ids=data.dump_ids,
        n_deployments=summary.n_deployments,
        n_media=summary.n_media,
        n_records=summary.n_records,
        n_events=summary.n_events,
        n_taxa=summary.n_taxa,
        species=species.rows,
        empty_sections=empty,
    )


def _empty_sections(sections: Mapping[str, object]) -> tuple[str, ...]:
    empty = []
    checks = {
        "map": lambda s: s.image is None,
        "species": lambda s: not s.rows,
        "activity": lambda s: not s.plots,
        "effort": lambda s: s.image is None,
        "accumulation": lambda s: s.image is None,
        "gallery": lambda s: not s.items,
    }
    for name, is_empty in checks.items():
        if is_empty(sections[name]):
            empty.append(name)
    return tuple(empty)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ecowatch.report", "templates"),
        autoescape=True,  # every {{ value }} is HTML-escaped; the template never uses |safe
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=format_number, pct=format_percent, when=format_time, day=format_day)
    return env


def render_html(*, title: str, dump_ids: Sequence[str], sections: Mapping[str, object]) -> str:
    """Render the report template with the built sections (see :func:`build_report`)."""
    return _environment().get_template(TEMPLATE).render(title=title, dump_ids=list(dump_ids), s=sections)


def format_number(value: object, digits: int = 1) -> str:
    """``1234.5`` -> ``"1,234.5"``; integers without decimals; NaN/None -> ``"–"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int):
        return f"{value:,d}"
    return f"{float(value):,.{digits}f}"


def format_percent(value: object) -> str:
    """``0.25`` -> ``"25 %"``; NaN/None -> ``"–"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value) * 100:.0f} %"


def format_time(value: object) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM``; missing -> ``"–"``."""
    if value is None or value != value:  # NaT compares unequal to itself
        return "–"
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, dt.datetime) else str(value)


def format_day(value: object) -> str:
    """A timestamp as ``YYYY-MM-DD``; missing -> ``"–"``."""
    if value is None or value != value:
        return "–"
    return value.strftime("%Y-%m-%d") if isinstance(value, dt.datetime) else str(value)
