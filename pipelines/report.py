"""The report run: results store -> one self-contained HTML report in the catalog's reports folder.

Reads the catalog names of the configuration (store, taxonomy, reports, tracking, and the
optional ``report.regions`` polygons), writes ``<reports>/report-<dump>.html`` (or
``report-store.html`` with ``report.scope: store``) and logs the file as an MLflow artefact when
tracking is on. The store is only read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from pathlib import Path

from ecowatch.catalog import Catalog
from ecowatch.config import LoadedConfig
from ecowatch.errors import ConfigError, StoreError
from ecowatch.report import ReportSummary, build_report
from ecowatch.store import open_store
from ecowatch.tables import Taxon, read_taxonomy
from ecowatch.tracking import RunLogger, tracked_run, tracking_target

log = logging.getLogger(__name__)

_REGION_TYPES = ("geojson", "geopackage")


def report_filename(dump_id: str | None) -> str:
    """``report-<dump>.html`` (characters other than letters, digits, ``._-`` become ``_``), or
    ``report-store.html`` for a report on the whole store (``dump_id=None``)."""
    if dump_id is None:
        return "report-store.html"
    return f"report-{re.sub(r'[^A-Za-z0-9._-]+', '_', dump_id)}.html"


def run_report(loaded: LoadedConfig, *, tracker: RunLogger | None = None) -> ReportSummary:
    """Write the HTML report configured by ``loaded.config.report``.

    Args:
        loaded: a validated configuration (see :func:`ecowatch.config.load_config`).
        tracker: an MLflow run already open (the nightly run's) to log the report into; when None,
            the report opens its own run (kind ``report``) if tracking is enabled.

    Returns:
        The report's summary, with the MLflow run it was logged to.

    Raises:
        StoreError: the results store does not exist yet.
        ConfigError: ``report.regions`` is not a polygon dataset of the catalog.
        ReportError: the configured dump is not in the store.
    """
    cfg, catalog, names = loaded.config, loaded.catalog, loaded.config.datasets
    store_location = catalog.location(names.store)
    store_dataset = catalog.get(names.store)
    if not store_dataset.is_url and not store_dataset.path.exists():
        raise StoreError(
            f"no results store at {store_dataset.path} (dataset {names.store!r}). Run `ecowatch nightly` "
            "first, or point datasets.store at an existing store."
        )
    notes: dict[str, object] = {}
    taxonomy = _taxonomy(catalog, names.taxonomy, notes)
    regions = _regions(loaded, notes)
    dump_id = names.dump if cfg.report.scope == "dump" else None
    out = catalog.get(names.reports).path / report_filename(dump_id)
    provenance = {
        "generated_at_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "config_file": str(loaded.source),
        "catalog_file": str(catalog.source),
        "store": store_location,
        **notes,
        **cfg.model_dump(exclude={"report", "catalog"}),
    }
    store = open_store(store_location)
    try:
        kwargs = dict(dump_ids=None if dump_id is None else [dump_id], taxonomy=taxonomy, regions_path=regions,
                      config=cfg.report, provenance=provenance)  # fmt: skip
        if tracker is not None:
            summary = build_report(store, out, **kwargs)  # type: ignore[arg-type]
            tracker.log_artifact(summary.path, "report")
            return dataclasses.replace(summary, mlflow_run_id=tracker.run_id)
        target = tracking_target(catalog.location(names.tracking)) if cfg.tracking.enabled else None
        with tracked_run(target, experiment=cfg.tracking.experiment, run_name=f"report-{dump_id or 'store'}",
                         tags={"ecowatch.kind": "report"}) as run:  # fmt: skip
            run.log_params({"dump": dump_id or "(all)", "config": str(loaded.source),
                            **{f"report.{k}": v for k, v in cfg.report.model_dump().items()}})  # fmt: skip
            summary = build_report(store, out, **kwargs)  # type: ignore[arg-type]
            run.log_metrics({"report.deployments": summary.n_deployments, "report.media": summary.n_media,
                             "report.events": summary.n_events, "report.taxa": summary.n_taxa})  # fmt: skip
            run.log_artifact(summary.path, "report")
        return dataclasses.replace(summary, mlflow_run_id=run.run_id)
    finally:
        store.dispose()


def _taxonomy(catalog: Catalog, name: str | None, notes: dict[str, object]) -> dict[str, Taxon] | None:
    """The taxonomy table for display names; a missing file is noted, not fatal (ids are shown)."""
    if name is None:
        notes["taxonomy"] = "none configured (taxon ids shown)"
        return None
    path = catalog.get(name).path
    if not path.exists():
        log.warning("taxonomy %r not found at %s: the report shows taxon ids", name, path)
        notes["taxonomy"] = f"{name}: not found at {path} (taxon ids shown)"
        return None
    notes["taxonomy"] = f"{name}: {path}"
    return read_taxonomy(path)


def _regions(loaded: LoadedConfig, notes: dict[str, object]) -> Path | None:
    """The region polygons file named by ``report.regions``; a missing file is noted, not fatal."""
    name = loaded.config.report.regions
    if name is None:
        return None
    catalog = loaded.catalog
    if name not in catalog:
        raise ConfigError(
            f"{loaded.source}: report.regions: {name!r} is not in the catalog {catalog.source}. "
            f"Known datasets: {', '.join(catalog.names)}; or set report.regions: null."
        )
    dataset = catalog.get(name)
    if dataset.type not in _REGION_TYPES:
        raise ConfigError(
            f"{loaded.source}: report.regions: {name!r} is a {dataset.type} dataset; it must be one of "
            f"{list(_REGION_TYPES)} (region polygons)."
        )
    if not dataset.path.exists():
        log.warning("regions %r not found at %s: the map is drawn without them", name, dataset.path)
        notes["regions"] = f"{name}: not found at {dataset.path} (map drawn without regions)"
        return None
    notes["regions"] = f"{name}: {dataset.path}"
    return dataset.path
