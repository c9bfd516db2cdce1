"""The classify stage: every animal detection of a dump through the species classifier, into the store.

Order of work in :func:`classify_stage`:

1. resolve the configured classifier (a checkpoint path or a ``models:/`` URI) to a local
   checkpoint; its version is the file's sha256 prefix;
2. select the dump's animal detections with at least ``min_detection_conf``, not flagged as static
   false positives, that have no ``classifications`` rows of that version (so a re-run, or a run
   after a kill, only does what is left);
3. load the checkpoint once (it carries its classes, taxonomy, preprocessing, temperature and
   unknown threshold; nothing else is read);
4. ``lightning.Trainer.predict`` over a DataLoader whose workers decode images and cut crops; the
   :class:`~ecowatch.classify.writer.StoreClassificationWriter` callback commits each batch in one
   transaction (top-k taxon scores, unknown score, temperature).

The run is idempotent and resumable at batch granularity; per-image decode failures are flags,
never exceptions.

Several processes (the nightly run's ``detect.devices`` x ``detect.num_nodes``, or torchrun /
SLURM): as in the detect stage, every process selects the same pending detections, predicts a
disjoint share into its own shard, and rank 0 merges the shards (and, before selecting, those a
dead run left) into the store (:mod:`ecowatch.shards`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ecowatch.classify.checkpoint import checkpoint_version
from ecowatch.classify.crops import CropSource, sources_from_store
from ecowatch.config import ClassifyConfig
from ecowatch.distributed import (
    ProcessWorld,
    cpu_threads,
    init_process_group,
    launch_world,
    main_process_first,
    pad_to_world,
)
from ecowatch.errors import ConfigError, InputDataError, ModelNotFoundError
from ecowatch.shards import ShardPlace, ShardSink, content_key, merge_leftovers
from ecowatch.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolvedClassifier:
    """A classifier checkpoint ready to load.

    Attributes:
        path: the local checkpoint file.
        version: first 16 hex digits of its sha256.
        source: ``bundled``, ``path`` or ``mlflow``.
        origin: the name, path or ``models:/`` URI it was resolved from.
    """

    path: Path
    version: str
    source: str
    origin: str


@dataclass
class ClassifySummary:
    """What one classify run did.

    Attributes:
        model_name: the checkpoint's model name (when nothing was loaded, the name its rows in the store
            carry; "" with none).
        model_version: sha256 prefix of the checkpoint (the rows' ``model_version``).
        model_source: ``path`` or ``mlflow``.
        detections_selected: detections this run processed.
        detections_already_done: qualifying detections that already had rows of this version.
        detections_done: detections that received rows.
        detections_failed: detections whose image could not be decoded (media flagged).
        rows: ``classifications`` rows inserted.
        unknown: detections with an unknown score of at least 0.5.
        seconds: wall time of the run.
        crops_per_second: detections per second of the prediction loop (0 if nothing ran).
        accelerator: the Lightning accelerator used.
    """

    model_name: str
    model_version: str
    model_source: str
    detections_selected: int = 0
    detections_already_done: int = 0
    detections_done: int = 0
    detections_failed: int = 0
    rows: int = 0
    unknown: int = 0
    seconds: float = 0.0
    crops_per_second: float = 0.0
    accelerator: str = ""


#: Classifiers shipped with ecowatch, by name: file in :data:`BUNDLED_DIR`. ``ecowatch-species-synth`` is
#: trained on generated dumps (the demo's species model; see ``ecowatch/classify/bundled/README.md``).
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
BUNDLED_CLASSIFIERS = {"ecowatch-species-synth": "ecowatch-species-synth.ckpt"}


def resolve_configured_classifier(config: ClassifyConfig, *, cache_dir: Path,
                                  tracking_uri: str | None = None) -> ResolvedClassifier:
    """``classify.model``, or ``classify.fallback`` while the registry does not hold that model yet.

    The nightly run points at ``models:/ecowatch-species@champion``; until a retrain has promoted a
    champion the registry answers "no such model or alias", and the fallback (e.g. the bundled
    classifier) is used, with a warning. An unreachable registry is an error, never a fallback.

    Raises:
        ConfigError: ``classify.model`` is not set.
        ModelNotFoundError: as :func:`resolve_classifier`, for the model and then the fallback.
    """
    if not config.model:
        raise ConfigError("classify.model is not set; name a classifier checkpoint or models:/ URI.")
    try:
        return resolve_classifier(config.model, cache_dir=cache_dir, tracking_uri=tracking_uri)
    except ModelNotFoundError as exc:
        from ecowatch.tracking import TrackingError, TrackingUnavailable

        cause = exc.__cause__
        registry_miss = isinstance(cause, TrackingError) and not isinstance(cause, TrackingUnavailable)
        if not (config.fallback and config.model.startswith("models:/") and registry_miss):
            raise
        log.warning("classifier %s is not in the registry yet (%s); using classify.fallback %s",
                    config.model, cause, config.fallback)
        fallback = resolve_classifier(config.fallback, cache_dir=cache_dir, tracking_uri=tracking_uri)
        return replace(fallback, origin=f"{fallback.origin} (classify.fallback: {config.model} not registered)")


def resolve_classifier(spec: str, *, cache_dir: Path, tracking_uri: str | None = None) -> ResolvedClassifier:
    """Resolve a classifier spec to a local checkpoint file.

    Args:
        spec: a bundled classifier's name (:data:`BUNDLED_CLASSIFIERS`), a checkpoint path (absolute, or
            relative to ``cache_dir``), or ``models:/<name>@<alias>`` / ``models:/<name>/<version>``
            (optionally ``/<file>``).
        cache_dir: the catalog's ``models`` folder (MLflow downloads go to ``<it>/mlflow``).
        tracking_uri: the MLflow tracking URI, needed for ``models:/`` specs.

    Returns:
        The resolved checkpoint.

    Raises:
        ModelNotFoundError: a missing file, an MLflow URI without tracking URI, or one that cannot be
            fetched, or an artefact without exactly one ``.ckpt`` file.
    """
    text = spec.strip()
    if text.startswith("models:/"):
        from ecowatch.tracking import TrackingError, fetch_model_artifact

        if not tracking_uri:
            raise ModelNotFoundError(
                f"classifier {text}: an MLflow registry URI needs the tracking store; give tracking_uri "
                "(the catalog's tracking dataset, e.g. sqlite:///abs/path/mlflow.db)."
            )
        try:
            artifact = fetch_model_artifact(text, Path(cache_dir) / "mlflow", tracking_uri=tracking_uri)
        except TrackingError as exc:
            raise ModelNotFoundError(f"classifier {text}: {exc}") from exc
        path = artifact.single_file(".ckpt", uri=text, what="classifier",
                                    example="models:/<name>@<alias>/<file>.ckpt")
        return ResolvedClassifier(path, checkpoint_version(path), "mlflow", text)
    if text in BUNDLED_CLASSIFIERS:
        path = BUNDLED_DIR / BUNDLED_CLASSIFIERS[text]
        if not path.is_file():
            raise ModelNotFoundError(
                f"the bundled classifier {text!r} is missing from this installation ({path}); reinstall ecowatch "
                "from its repository, or set classify.model to a checkpoint of your own (`ecowatch train classifier`)."
            )
        return ResolvedClassifier(path, checkpoint_version(path), "bundled", text)
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = Path(cache_dir) / path
    if not path.is_file():
        raise ModelNotFoundError(
            f"classifier checkpoint {path} not found (classify.model = {spec!r}). Train one with "
            "`ecowatch train classifier`, then set classify.model to the .ckpt it wrote (relative to the models "
            "folder) or to its models:/<name>@<alias> URI."
        )
    return ResolvedClassifier(path, checkpoint_version(path), "path", text)


def classify_stage(
    store: Store,
    *,
    dump_root: Path,
    dump_id: str,
    config: ClassifyConfig,
    run_id: str,
    cache_dir: Path,
    tracking_uri: str | None = None,
    detector_version: str | None = None,
    progress_bar: bool = False,
    world: ProcessWorld | None = None,
    shards_dir: Path | None = None,
) -> ClassifySummary:
    """Classify every not-yet-classified animal detection of a dump; idempotent and resumable.

    Args:
        store: the results store (``detections`` rows from the detect stage).
        dump_root: folder of the dump.
        dump_id: the dump's catalog name.
        config: the ``classify`` section of the run configuration.
        run_id: id of the current run, written to ``classifications.run_id``.
        cache_dir: the catalog's ``models`` folder (relative checkpoint paths, MLflow downloads).
        tracking_uri: MLflow tracking URI, needed when ``config.model`` is a ``models:/`` URI.
        detector_version: only detections of this detector version (e.g. the detect stage's
            ``summary.detector_version``); every version when None.
        progress_bar: show Lightning's progress bar (for the CLI).
        world: the processes of the run (the nightly run passes the detect stage's); None: one
            process, unless torchrun / SLURM started several (see
            :func:`ecowatch.distributed.launch_world`).
        shards_dir: where the processes of a distributed run write their shards; None:
            ``<cache_dir>/shards``.

    Returns:
        Counts of what this run selected and wrote. In a distributed run rank 0's counts are those
        of every process; the other processes return their own share's.

    Raises:
        ConfigError: ``classify.model`` is not set.
        InputDataError: ``dump_root`` is not a folder.
        ModelNotFoundError: the checkpoint cannot be resolved or loaded.
    """
    started = time.perf_counter()
    if not config.model:
        raise ConfigError(
            "classify.model is not set: give the classifier checkpoint (a .ckpt path relative to the models folder, "
            "or models:/<name>@<alias>) in the run configuration, or skip the classify stage."
        )
    root = Path(dump_root)
    if not root.is_dir():
        raise InputDataError(f"dump {dump_id!r}: {root} is not a folder; point the catalog's dump entry at it.")
    world = world or launch_world()
    init_process_group(world, accelerator=config.accelerator)  # torchrun / SLURM: join before selecting
    # rank 0 fetches the checkpoint and merges leftover shards; the others select after it (and after
    # rank 0's steps between the stages, e.g. static false positives, which change what qualifies)
    with main_process_first(world):
        resolved = resolve_configured_classifier(config, cache_dir=cache_dir, tracking_uri=tracking_uri)
        place = ShardPlace(Path(shards_dir) if shards_dir else Path(cache_dir) / "shards", "classify",
                           resolved.version, dump_id)
        if world.is_main:
            from ecowatch.classify.writer import CLASSIFY_TABLES

            merge_leftovers(store, place, tables=CLASSIFY_TABLES, run_id=run_id)
    common = dict(dump_root=root.resolve(), dump_id=dump_id, min_conf=config.min_detection_conf,
                  detector_version=detector_version)
    pending = sources_from_store(store, **common, not_classified_by=resolved.version)
    already = len(sources_from_store(store, **common)) - len(pending)
    summary = ClassifySummary("", resolved.version, resolved.source, detections_selected=len(pending),
                              detections_already_done=already)
    if pending:  # nothing to do: the checkpoint is not even loaded
        _predict(store, pending, resolved=resolved, config=config, run_id=run_id, progress_bar=progress_bar,
                 summary=summary, world=world, place=place)
    else:
        summary.model_name = _stored_model_name(store, resolved.version)
        log.info("classify %s: all %d detections already classified by version %s", dump_id, already,
                 resolved.version)
    summary.seconds = time.perf_counter() - started
    return summary


def _stored_model_name(store: Store, version: str) -> str:
    """The model name the store's classifications of a model version carry ("" when it has none)."""
    import sqlalchemy as sa

    from ecowatch.store import schema as S

    with store.engine.connect() as conn:
        name = conn.execute(sa.select(S.classifications.c.model_name)
                            .where(S.classifications.c.model_version == version).limit(1)).scalar()
    return name or ""


def _predict(store: Store, pending: list[CropSource], *, resolved: ResolvedClassifier, config: ClassifyConfig,
             run_id: str, progress_bar: bool, summary: ClassifySummary, world: ProcessWorld,
             place: ShardPlace) -> None:
    import lightning as L
    import torch
    from lightning.pytorch.accelerators import CUDAAccelerator
    from torch.utils.data import DataLoader

    from ecowatch.classify.checkpoint import load_classifier
    from ecowatch.classify.predict import ClassifierModule, DetectionCropDataset, collate_crops
    from ecowatch.classify.writer import CLASSIFY_TABLES, StoreClassificationWriter

    classifier = load_classifier(resolved.path)
    if classifier.version != resolved.version:  # pragma: no cover - the file changed between hashing and loading
        raise ModelNotFoundError(f"classifier checkpoint {resolved.path} changed while it was being loaded; run again.")
    summary.model_name = classifier.model_name
    log.info("classify: %d detections to do, %d already done by %s (version %s)%s", len(pending),
             summary.detections_already_done, classifier.model_name, classifier.version,
             f"; process {world.rank} of {world.size}" if world.distributed else "")
    shards = None
    if world.distributed:  # each process appends its share to its shard; rank 0 merges them at the end
        shards = ShardSink(place, content_key(source.crop_id for source in pending), rank=world.rank,
                           world_size=world.size, tables=CLASSIFY_TABLES)
        pending = pad_to_world(pending, world.size)
    writer = StoreClassificationWriter(store, model_name=classifier.model_name, model_version=classifier.version,
                                       temperature=classifier.temperature, run_id=run_id, shards=shards)
    gpu = config.accelerator != "cpu" and torch.cuda.is_available()
    precision = "32-true"
    if gpu and config.half:
        precision = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    trainer = L.Trainer(accelerator=config.accelerator, **world.trainer_kwargs(), precision=precision, logger=False,
                        enable_checkpointing=False, enable_progress_bar=progress_bar, enable_model_summary=False,
                        callbacks=[writer])
    loader = DataLoader(DetectionCropDataset(pending, classifier.preprocessing), batch_size=config.batch_size,
                        shuffle=False, num_workers=config.workers, collate_fn=collate_crops,
                        pin_memory=isinstance(trainer.accelerator, CUDAAccelerator))
    torch.set_num_threads(cpu_threads(config.threads, world))
    summary.accelerator = type(trainer.accelerator).__name__.removesuffix("Accelerator").lower()
    loop_started = time.perf_counter()
    trainer.predict(ClassifierModule(classifier, top_k=config.top_k), dataloaders=loader, return_predictions=False)
    loop_seconds = time.perf_counter() - loop_started
    counts = writer.counts
    summary.detections_done, summary.detections_failed = counts.detections_done, counts.detections_failed
    summary.rows, summary.unknown = counts.rows, counts.unknown
    summary.crops_per_second = summary.detections_selected / loop_seconds if loop_seconds > 0 else 0.0
