"""The nightly run: SD-card dump -> ingest -> (detect -> classify -> fuse -> export -> report).

Each stage is a library function; this module only wires them, records the run in the results
store and in MLflow, and returns a summary. Stages are idempotent, so a killed run is resumed by
running it again.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from ecowatch.config import LoadedConfig
from ecowatch.ingest import IngestSummary, ingest_dump
from ecowatch.store import open_store
from ecowatch.store.queries import flag_counts, media_per_deployment, write_flagged_media_csv
from ecowatch.tables import read_deployments
from ecowatch.tracking import tracked_run, tracking_target


@dataclass(frozen=True)
class NightlySummary:
    """What one nightly run did.

    Attributes:
        flags_total: every media flag of the dump in the store (not only this run's).
    """

    run_id: str
    mlflow_run_id: str | None
    dump_id: str
    store: str
    ingest: IngestSummary
    media_per_deployment: dict[str, int]
    flags_total: dict[str, int]
    seconds: float


def run_nightly(loaded: LoadedConfig, *, on_progress: Callable[[int], None] | None = None) -> NightlySummary:
    """Run every nightly stage that exists on the configured dump.

    Args:
        loaded: a validated configuration (see :func:`ecowatch.config.load_config`).
        on_progress: called with the number of files just ingested (drives a progress bar).

    Returns:
        The run's summary (also recorded in the store's ``runs`` table and in MLflow).

    Raises:
        CatalogError: the dump or deployments table is missing.
        InputDataError: the deployments table is malformed.
        StoreError: the results store cannot be opened.
    """
    cfg, catalog, names = loaded.config, loaded.catalog, loaded.config.datasets
    started = time.perf_counter()
    dump_root = catalog.input_path(names.dump)
    deployments = read_deployments(catalog.input_path(names.deployments)) if names.deployments else []
    target = tracking_target(catalog.location(names.tracking)) if cfg.tracking.enabled else None
    params = {"dump": names.dump, "dump_root": str(dump_root), "deployments": len(deployments),
              "config": str(loaded.source), **{f"ingest.{k}": v for k, v in cfg.ingest.model_dump().items()}}
    store = open_store(catalog.location(names.store))
    run_id = store.start_run("nightly", params)
    try:
        with tracked_run(target, experiment=cfg.tracking.experiment, run_name=f"nightly-{names.dump}",
                         tags={"ecowatch.kind": "nightly", "ecowatch.run_id": run_id}) as tracker:
            tracker.log_params(params)
            ingest = ingest_dump(store, dump_root=dump_root, dump_id=names.dump, deployments=deployments,
                                 config=cfg.ingest, run_id=run_id, on_progress=on_progress)
            tracker.log_metrics(ingest_metrics(ingest))
            if tracker.enabled:
                with tempfile.TemporaryDirectory() as tmp:
                    failures = Path(tmp) / "flagged_media.csv"
                    write_flagged_media_csv(store, names.dump, failures)
                    tracker.log_artifact(failures)
            summary = NightlySummary(run_id, tracker.run_id, names.dump, catalog.location(names.store), ingest,
                                     media_per_deployment(store, names.dump), flag_counts(store, names.dump),
                                     time.perf_counter() - started)
        store.finish_run(run_id, status="finished", counts=asdict(ingest), mlflow_run_id=summary.mlflow_run_id)
        return summary
    except BaseException:
        store.finish_run(run_id, status="failed", counts={})
        raise
    finally:
        store.dispose()


def ingest_metrics(summary: IngestSummary) -> dict[str, float]:
    """The ingest figures logged to MLflow (counts, flags, throughput)."""
    metrics = {
        "ingest.files_seen": summary.files_seen,
        "ingest.files_new": summary.files_new,
        "ingest.media_ok": summary.media_ok,
        "ingest.media_failed": summary.media_failed,
        "ingest.media_skipped": summary.media_skipped,
        "ingest.sequences": summary.sequences,
        "ingest.seconds": summary.seconds,
        "ingest.files_per_s": summary.files_new / summary.seconds if summary.seconds > 0 else 0.0,
    }
    metrics.update({f"ingest.flag.{flag}": count for flag, count in summary.flags.items()})
    return metrics
