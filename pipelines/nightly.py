"""The nightly run: SD-card dump -> ingest -> detect -> static false positives -> [classify] ->
observations -> exports (MegaDetector JSON) -> [fuse] -> HTML report (classify and fuse run when a
classifier is configured; fused observations are written beside the detector's, see
:mod:`ecowatch.context.stage`).

Each stage is a library function; this module only wires them, records the run in the results
store and in MLflow, and returns a summary. Stages are idempotent, so a killed run is resumed by
running it again: ingest skips files it has, detection skips images done by the same detector
version, and the derived rows (flags, observations, exports) are recomputed whole.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ecowatch.config import LoadedConfig
from ecowatch.context.stage import FuseSummary
from ecowatch.detect import DetectSummary, detect_stage
from ecowatch.detect.observations import DetectorObservationSummary, write_detector_observations
from ecowatch.detect.static_fp import StaticFPSummary, flag_static_false_positives
from ecowatch.distributed import ProcessWorld, init_process_group, launch_world
from ecowatch.formats.megadetector_json import export_megadetector_json
from ecowatch.ingest import IngestSummary, ingest_dump
from ecowatch.report import ReportSummary
from ecowatch.store import Store, open_store
from ecowatch.store.queries import flag_counts, media_per_deployment, write_flagged_media_csv
from ecowatch.tables import read_deployments
from ecowatch.tracking import RunLogger, tracked_run, tracking_target
from pipelines.report import run_report

if TYPE_CHECKING:  # importing the classify stage imports torch
    from ecowatch.classify.stage import ClassifySummary


@dataclass(frozen=True)
class NightlySummary:
    """What one nightly run did.

    Attributes:
        flags_total: every media flag of the dump in the store (not only this run's).
        exports: files written (``megadetector``: the MegaDetector 1.6 batch-output JSON).
        report: the HTML report (None for an ingest-only run).
    """

    run_id: str
    mlflow_run_id: str | None
    dump_id: str
    store: str
    ingest: IngestSummary
    detect: DetectSummary | None
    static_fp: StaticFPSummary | None
    observations: DetectorObservationSummary | None
    exports: dict[str, Path]
    report: ReportSummary | None
    media_per_deployment: dict[str, int]
    flags_total: dict[str, int]
    seconds: float
    fuse: FuseSummary | None = None
    classify: ClassifySummary | None = None


def run_nightly(loaded: LoadedConfig, *, on_progress: Callable[[int], None] | None = None,
                on_stage: Callable[[str], None] | None = None, progress_bar: bool = False,
                ingest_only: bool = False) -> NightlySummary | None:
    """Run every nightly stage that exists on the configured dump.

    With several prediction processes (``detect.devices`` x ``detect.num_nodes`` > 1, or torchrun /
    SLURM; see :mod:`ecowatch.distributed`) every process runs this function: rank 0 runs the whole
    night, the others only the prediction stages (detect, classify), whose rows rank 0 merges.

    Args:
        loaded: a validated configuration (see :func:`ecowatch.config.load_config`).
        on_progress: called with the number of files just ingested (drives a progress bar).
        on_stage: called with a stage's name when it starts (``ingest``, ``detect``, ...).
        progress_bar: show the detector's (Lightning) progress bar.
        ingest_only: stop after the ingest stage (``ecowatch ingest``).

    Returns:
        The run's summary (also recorded in the store's ``runs`` table and in MLflow); None in the
        prediction processes other than rank 0.

    Raises:
        CatalogError: the dump or deployments table is missing.
        InputDataError: the deployments table is malformed.
        StoreError: the results store cannot be opened.
        ModelNotFoundError: the configured detector cannot be found (the message says where to put it).
    """
    cfg, catalog, names = loaded.config, loaded.catalog, loaded.config.datasets
    started = time.perf_counter()
    stage = on_stage or (lambda _name: None)
    dump_root = catalog.input_path(names.dump)
    deployments = read_deployments(catalog.input_path(names.deployments)) if names.deployments else []
    target = tracking_target(catalog.location(names.tracking)) if cfg.tracking.enabled else None
    models_dir = Path(catalog.location(names.models))
    exports_dir = Path(catalog.location(names.exports))
    params = {"dump": names.dump, "dump_root": str(dump_root), "deployments": len(deployments),
              "config": str(loaded.source), **{f"ingest.{k}": v for k, v in cfg.ingest.model_dump().items()},
              **_flat("detect", cfg.detect.model_dump())}
    world = launch_world(devices=cfg.detect.devices, num_nodes=cfg.detect.num_nodes)
    if not world.is_main:  # started beside rank 0 (by Lightning, torchrun or SLURM): predict only, no run of its own
        if not ingest_only:
            _prediction_process(loaded, world, dump_root=dump_root, models_dir=models_dir,
                                tracking_uri=target.tracking_uri if target else None)
        return None
    if not ingest_only:  # torchrun / SLURM: join the others now; they wait for the ingest in the detect stage
        init_process_group(world, accelerator=cfg.detect.accelerator)
    store = open_store(catalog.location(names.store))
    run_id = store.start_run("nightly", params)
    try:
        with tracked_run(target, experiment=cfg.tracking.experiment, run_name=f"nightly-{names.dump}",
                         tags={"ecowatch.kind": "nightly", "ecowatch.run_id": run_id}) as tracker:
            tracker.log_params(params)
            stage("ingest")
            ingest = ingest_dump(store, dump_root=dump_root, dump_id=names.dump, deployments=deployments,
                                 config=cfg.ingest, run_id=run_id, on_progress=on_progress)
            tracker.log_metrics(ingest_metrics(ingest))
            detect = static_fp = classify = observations = fuse = None
            exports: dict[str, Path] = {}
            if not ingest_only:
                detect, static_fp, classify, observations, exports = _detect_stages(
                    loaded, store, tracker, dump_root=dump_root, run_id=run_id, models_dir=models_dir,
                    exports_dir=exports_dir, tracking_uri=target.tracking_uri if target else None,
                    stage=stage, progress_bar=progress_bar, world=world)
                fuse = _fuse_stage(loaded, store, tracker, run_id=run_id, models_dir=models_dir, stage=stage,
                                   tracking_uri=target.tracking_uri if target else None,
                                   detector_version=detect.detector_version)
            if tracker.enabled:
                with tempfile.TemporaryDirectory() as tmp:
                    failures = Path(tmp) / "flagged_media.csv"
                    write_flagged_media_csv(store, names.dump, failures)
                    tracker.log_artifact(failures)
                for path in exports.values():
                    tracker.log_artifact(path, "exports")
            counts = {"ingest": asdict(ingest)}
            if detect is not None:
                counts.update({"detect": asdict(detect), "observations": observations.per_type,
                               "static_fp": static_fp.flagged})
            if fuse is not None:
                counts["fuse"] = asdict(fuse)
            # the data stages are done: the report shows this run as finished (a failing report marks it failed)
            store.finish_run(run_id, status="finished", counts=counts, mlflow_run_id=tracker.run_id)
            report = None
            if not ingest_only:
                stage("report")
                report = run_report(loaded, tracker=tracker)
            summary = NightlySummary(run_id, tracker.run_id, names.dump, catalog.location(names.store), ingest,
                                     detect, static_fp, observations, exports, report,
                                     media_per_deployment(store, names.dump), flag_counts(store, names.dump),
                                     time.perf_counter() - started, fuse, classify)
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


def detect_metrics(summary: DetectSummary) -> dict[str, float]:
    """The detection figures logged to MLflow (counts, failures, throughput)."""
    metrics = {
        "detect.media_selected": summary.media_selected,
        "detect.media_already_done": summary.media_already_done,
        "detect.media_done": summary.media_done,
        "detect.media_failed": summary.media_failed,
        "detect.detections": summary.detections,
        "detect.seconds": summary.seconds,
        "detect.images_per_s": summary.images_per_second,
        "detect.threads": summary.threads,
        "detect.imgsz": summary.imgsz,
    }
    metrics.update({f"detect.category.{name}": count for name, count in summary.per_category.items()})
    return metrics


def _flat(prefix: str, value: object) -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, item in value.items():
            out.update(_flat(f"{prefix}.{key}", item))
        return out
    return {prefix: value}


def _detect_stages(loaded: LoadedConfig, store: Store, tracker: RunLogger, *, dump_root: Path, run_id: str,
                   models_dir: Path, exports_dir: Path, tracking_uri: str | None, stage: Callable[[str], None],
                   progress_bar: bool, world: ProcessWorld
                   ) -> tuple[DetectSummary, StaticFPSummary, ClassifySummary | None, DetectorObservationSummary,
                              dict[str, Path]]:
    """Detection, static false positives, classification, detector observations and the MegaDetector export."""
    cfg, dump_id = loaded.config, loaded.config.datasets.dump
    stage("detect")
    detect = detect_stage(store, dump_root=dump_root, dump_id=dump_id, config=cfg.detect, run_id=run_id,
                          cache_dir=models_dir, tracking_uri=tracking_uri, progress_bar=progress_bar, world=world)
    tracker.set_tags({"ecowatch.detector": detect.detector_name, "ecowatch.detector_version": detect.detector_version})
    tracker.log_metrics(detect_metrics(detect))
    stage("static false positives")
    static_fp = flag_static_false_positives(store, dump_id=dump_id, detector_version=detect.detector_version,
                                            config=cfg.detect.static_fp)
    classify = None
    if cfg.classify.model:  # species scores per animal box (the fuse stage turns them into observations)
        from ecowatch.classify import classify_stage

        stage("classify")
        classify = classify_stage(store, dump_root=dump_root, dump_id=dump_id, config=cfg.classify, run_id=run_id,
                                  cache_dir=models_dir, tracking_uri=tracking_uri,
                                  detector_version=detect.detector_version, progress_bar=progress_bar,
                                  world=world)
        tracker.set_tags({"ecowatch.classifier": classify.model_name,
                          "ecowatch.classifier_version": classify.model_version})
        tracker.log_metrics({f"classify.{k}": float(v) for k, v in asdict(classify).items()
                             if isinstance(v, (int, float))})
    observations = write_detector_observations(store, dump_id=dump_id, detector_version=detect.detector_version,
                                               threshold=cfg.detect.observation_threshold, run_id=run_id)
    tracker.log_metrics({"static_fp.flagged": static_fp.flagged, "static_fp.candidates": static_fp.candidates,
                         **{f"observations.{k}": v for k, v in observations.per_type.items()}})
    stage("export")
    # this run's classifier: a store that an earlier model also classified (a retrain, an upgrade) holds both
    exports = {"megadetector": export_megadetector_json(
        store, exports_dir / dump_id / "megadetector.json", dump_id=dump_id, detector_version=detect.detector_version,
        classifier=(classify.model_name, classify.model_version) if classify and classify.model_name else None)}
    return detect, static_fp, classify, observations, exports


def _fuse_stage(loaded: LoadedConfig, store: Store, tracker: RunLogger, *, run_id: str, models_dir: Path,
                stage: Callable[[str], None], tracking_uri: str | None, detector_version: str) -> FuseSummary | None:
    """Fused observations (classifier x context prior, sequence vote, roll-up) beside the detector's.

    Skipped without a classifier (the detector's taxon-less observations stay the only ones) or
    with ``fuse.enabled: false``.
    """
    cfg = loaded.config
    if not (cfg.classify.model and cfg.fuse.enabled):
        return None
    from ecowatch.context import fuse_stage

    stage("fuse")
    fuse = fuse_stage(store, dump_id=cfg.datasets.dump, classify=cfg.classify, config=cfg.fuse, run_id=run_id,
                      cache_dir=models_dir, tracking_uri=tracking_uri, detector_version=detector_version,
                      context_path=loaded.catalog.get(cfg.fuse.context).path if cfg.fuse.context else None)
    tracker.set_tags({"ecowatch.context_version": fuse.context_version or "none"})
    tracker.log_metrics({"fuse.detections": fuse.detections, "fuse.prior_applied": fuse.prior_applied,
                         "fuse.media": fuse.media, "fuse.events": fuse.events, "fuse.seconds": fuse.seconds,
                         **{f"fuse.source.{k}": v for k, v in fuse.per_source.items()}})
    return fuse

def _prediction_process(loaded: LoadedConfig, world: ProcessWorld, *, dump_root: Path, models_dir: Path,
                        tracking_uri: str | None) -> None:
    """A process of a distributed run other than rank 0: the prediction stages, in rank 0's order.

    Rank 0 ingests, records the run and merges every process's shard into the store; this process
    selects the same pending items as rank 0 (after rank 0's ingest and merges), predicts its share
    into its shard, and returns.
    """
    cfg, dump_id = loaded.config, loaded.config.datasets.dump
    store = open_store(loaded.catalog.location(cfg.datasets.store))
    try:
        init_process_group(world, accelerator=cfg.detect.accelerator)
        # run_id "": the rows of this process go to its shard without one; rank 0 records its run's
        detect = detect_stage(store, dump_root=dump_root, dump_id=dump_id, config=cfg.detect, run_id="",
                              cache_dir=models_dir, tracking_uri=tracking_uri, world=world)
        if cfg.classify.model:
            from ecowatch.classify import classify_stage

            classify_stage(store, dump_root=dump_root, dump_id=dump_id, config=cfg.classify, run_id="",
                           cache_dir=models_dir, tracking_uri=tracking_uri,
                           detector_version=detect.detector_version, world=world)
    finally:
        store.dispose()
