"""The detect stage: every ingested image of a dump through the detector, into the results store.

Order of work in :func:`detect_stage`:

1. resolve the configured detector to a verified local weights file (registry name, path or
   MLflow URI; see :mod:`ecowatch.detect.weights`); its version is the file's sha256 prefix;
2. select the media of the dump with status ``ok``, type ``image`` and no ``detector_done`` row
   for that version (so a re-run, or a run after a kill, only does what is left);
3. load the network once (ultralytics imported lazily, offline, threads set deliberately);
4. ``lightning.Trainer.predict`` over a DataLoader whose workers decode and letterbox the images;
   the :class:`~ecowatch.detect.writer.StoreDetectionWriter` callback commits each batch in one
   transaction.

Tiling (``detect.tiling``, see :class:`~ecowatch.config.TilingConfig`): unless its mode is
``never``, the workers cut frames larger than ``min_side_for_tiling`` into tiles
(:class:`~ecowatch.detect.data.TiledImageDataset`); a frame that is not tiled is one whole-frame
input, exactly as in an untiled run. ``batch_size`` then counts network inputs: a DataLoader batch
holds ``max(1, batch_size // n)`` frames, ``n`` being the most inputs any pending frame needs (from
the sizes ingest recorded), and the network runs ``batch_size`` inputs at a time. A store
transaction still holds whole frames, so resuming works as before.

The run is idempotent and resumable at batch granularity; per-image decode failures are flags,
never exceptions.

Several processes (``detect.devices`` x ``detect.num_nodes`` > 1, or torchrun / SLURM; see
:mod:`ecowatch.distributed`): every process selects the same pending images, Lightning's
distributed sampler gives each a disjoint share, each writes its batches to its own shard, and
rank 0 merges the shards into the store when prediction ends (:mod:`ecowatch.shards`). Before
selecting, rank 0 merges the shards a run that died left behind, so a re-run of the same command
only predicts what is still missing. With one process nothing of this happens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import sqlalchemy as sa

from ecowatch.config import DetectConfig
from ecowatch.detect.data import MediaImageDataset, MediaItem, TiledImageDataset, collate_samples, collate_tiled
from ecowatch.detect.network import LoadedNetwork, load_network
from ecowatch.detect.registry import DETECTION_CATEGORIES
from ecowatch.detect.tiling import TilingParams, inputs_per_frame, resolve_tiling
from ecowatch.detect.weights import ResolvedDetector, resolve_detector
from ecowatch.detect.yolo_env import set_torch_threads
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
from ecowatch.store import schema as S

log = logging.getLogger(__name__)

#: Size used when neither the config, the registry nor the checkpoint gives one (ultralytics' default).
FALLBACK_IMGSZ = 640


@dataclass
class DetectSummary:
    """What one detect run did.

    Attributes:
        detector_name: registry name, file stem or MLflow ``name/version``.
        detector_version: sha256 prefix of the weights (the ``detector_version`` of the rows).
        detector_source: ``registry``, ``path`` or ``mlflow``.
        imgsz: network input size in pixels (0 when nothing ran and neither config nor registry gives one).
        media_selected: images this run processed (ok images without a ``detector_done`` row).
        media_already_done: ok images of the dump that already had one (skipped).
        media_done: images recorded as done by this run.
        media_failed: images that could not be decoded (flagged ``detect_unreadable``).
        media_tiled: of the images done, those cut into tiles (``detect.tiling``).
        detections: detection rows inserted.
        per_category: detections per category.
        seconds: wall-clock duration of the run.
        images_per_second: ``media_selected / seconds`` of the prediction loop (0 if nothing ran).
        threads: torch CPU threads used for the forward pass.
        accelerator: the Lightning accelerator that ran it (``cpu``, ``cuda``, ...).
    """

    detector_name: str
    detector_version: str
    detector_source: str
    imgsz: int
    media_selected: int = 0
    media_already_done: int = 0
    media_done: int = 0
    media_failed: int = 0
    media_tiled: int = 0
    detections: int = 0
    per_category: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    images_per_second: float = 0.0
    threads: int = 0
    accelerator: str = ""


def pending_media(store: Store, *, dump_root: Path, dump_id: str, detector_version: str) -> tuple[list[MediaItem], int]:
    """The images of a dump still to be run through a detector version.

    Args:
        store: the results store.
        dump_root: folder of the dump (media relpaths are relative to it).
        dump_id: the dump's catalog name.
        detector_version: the detector version whose ``detector_done`` rows count as done.

    Returns:
        The pending images (status ``ok``, type ``image``, not done, with the size ingest
        recorded), sorted by relpath, and the number of ok images of the dump already done.
    """
    done = sa.exists().where(
        S.detector_done.c.media_id == S.media.c.media_id,
        S.detector_done.c.detector_version == detector_version,
    )
    base = sa.and_(S.media.c.dump_id == dump_id, S.media.c.status == "ok", S.media.c.media_type == "image")
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(S.media.c.media_id, S.media.c.relpath, S.media.c.width, S.media.c.height)
            .where(base, ~done).order_by(S.media.c.relpath)
        ).all()
        already = conn.execute(sa.select(sa.func.count()).select_from(S.media).where(base, done)).scalar_one()
    root = Path(dump_root)
    items = [MediaItem(media_id, root / relpath, width, height) for media_id, relpath, width, height in rows]
    return items, int(already)


def detect_stage(
    store: Store,
    *,
    dump_root: Path,
    dump_id: str,
    config: DetectConfig,
    run_id: str,
    cache_dir: Path,
    tracking_uri: str | None = None,
    progress_bar: bool = False,
    world: ProcessWorld | None = None,
    shards_dir: Path | None = None,
) -> DetectSummary:
    """Run the detector on every not-yet-detected image of a dump; idempotent and resumable.

    Args:
        store: the results store (its ``media`` rows come from the ingest stage).
        dump_root: folder of the dump.
        dump_id: the dump's catalog name.
        config: the ``detect`` section of the run configuration.
        run_id: id of the current run, written to ``detections.run_id`` and ``detector_done.run_id``.
        cache_dir: the catalog's ``models`` folder: downloaded weights go to ``detectors/``,
            MLflow artefacts to ``mlflow/``, ultralytics' settings to ``ultralytics/`` (unless
            ``YOLO_CONFIG_DIR`` is set).
        tracking_uri: MLflow tracking URI, needed when ``config.detector`` is a ``models:/`` URI.
        progress_bar: show Lightning's progress bar (for the CLI).
        world: the processes of the run; None: from ``config.devices`` and ``config.num_nodes``
            (or from torchrun / SLURM, see :func:`ecowatch.distributed.launch_world`).
        shards_dir: where the processes of a distributed run write their shards; None:
            ``<cache_dir>/shards``. Every process must see it (a shared file system across machines).

    Returns:
        Counts of what this run selected and wrote. In a distributed run rank 0's counts are those
        of every process; the other processes return their own share's.

    Raises:
        InputDataError: ``dump_root`` is not a folder.
        ModelNotFoundError: the detector cannot be resolved or loaded, or its classes are not
            MegaDetector's categories.
        ConfigError: ``detect.imgsz`` is not a multiple of the detector's stride, or the tiling
            overlap is not smaller than the tile.
    """
    started = time.perf_counter()
    root = Path(dump_root)
    if not root.is_dir():
        raise InputDataError(f"dump {dump_id!r}: {root} is not a folder; point the catalog's dump entry at it.")
    world = world or launch_world(devices=config.devices, num_nodes=config.num_nodes)
    init_process_group(world, accelerator=config.accelerator)  # torchrun / SLURM: join before selecting
    with main_process_first(world):  # rank 0 downloads weights and merges leftovers; then the others select
        resolved = resolve_detector(
            config.detector, cache_dir=cache_dir, offline=not config.allow_download, tracking_uri=tracking_uri
        )
        place = ShardPlace(Path(shards_dir) if shards_dir else Path(cache_dir) / "shards", "detect",
                           resolved.version, dump_id)
        if world.is_main:
            from ecowatch.detect.writer import DETECT_TABLES

            merge_leftovers(store, place, tables=DETECT_TABLES, run_id=run_id)
    items, already = pending_media(store, dump_root=root.resolve(), dump_id=dump_id, detector_version=resolved.version)
    summary = DetectSummary(resolved.name, resolved.version, resolved.source, config.imgsz or resolved.imgsz or 0,
                            media_selected=len(items), media_already_done=already)
    if items:  # nothing to do: the weights are not even loaded
        network = load_network(resolved.path, config_dir=Path(cache_dir) / "ultralytics", threads=config.threads)
        class_map = _class_map(resolved, network)
        summary.imgsz = _imgsz(config, resolved, network)
        log.info("detect %s: %d images to do, %d already done by %s (version %s, imgsz %d)%s",
                 dump_id, len(items), already, resolved.name, resolved.version, summary.imgsz,
                 f"; process {world.rank} of {world.size}" if world.distributed else "")
        _predict(store, items, network=network, resolved=resolved, class_map=class_map, imgsz=summary.imgsz,
                 config=config, run_id=run_id, progress_bar=progress_bar, summary=summary, world=world, place=place)
    else:
        log.info("detect %s: all %d images already done by %s (version %s)", dump_id, already, resolved.name,
                 resolved.version)
    summary.seconds = time.perf_counter() - started
    return summary


def _predict(
    store: Store,
    items: list[MediaItem],
    *,
    network: LoadedNetwork,
    resolved: ResolvedDetector,
    class_map: Mapping[int, str],
    imgsz: int,
    config: DetectConfig,
    run_id: str,
    progress_bar: bool,
    summary: DetectSummary,
    world: ProcessWorld,
    place: ShardPlace,
) -> None:
    import lightning as L
    from lightning.pytorch.accelerators import CUDAAccelerator
    from torch.utils.data import DataLoader, Dataset

    from ecowatch.detect.module import DetectorModule, PostprocessConfig
    from ecowatch.detect.writer import DETECT_TABLES, StoreDetectionWriter

    shards = None
    if world.distributed:  # each process appends its share to its shard; rank 0 merges them at the end
        shards = ShardSink(place, content_key(item.media_id for item in items), rank=world.rank,
                           world_size=world.size, tables=DETECT_TABLES)
        items = pad_to_world(items, world.size)
    resize_mode = resolved.resize_mode or ("stretch" if network.kind == "rtdetr" else "letterbox")
    tiling: TilingParams | None = None
    if config.tiling.mode == "never":
        stride = network.stride if config.padding == "minimal" and resize_mode == "letterbox" else None
        dataset: Dataset = MediaImageDataset(items, imgsz=imgsz, resize_mode=resize_mode, stride=stride)
        collate, images_per_batch = partial(collate_samples, stride=stride), config.batch_size
    else:
        tiling = resolve_tiling(config.tiling, imgsz)
        dataset = TiledImageDataset(items, imgsz=imgsz, params=tiling, resize_mode=resize_mode)
        most = max(inputs_per_frame(item.width, item.height, tiling) for item in items)
        collate, images_per_batch = collate_tiled, max(1, config.batch_size // most)
        log.info("detect: tiling %s (tile %d px, overlap %d px, whole-frame pass %s); up to %d inputs per frame, "
                 "%d frames per batch", tiling.mode, tiling.tile_size, tiling.overlap_px, tiling.full_frame_pass,
                 most, images_per_batch)
    module = DetectorModule(
        network,
        postprocess=PostprocessConfig(config.conf_threshold, config.iou_threshold, config.max_det, config.agnostic_nms),
        half=config.half,
        tiling=tiling,
        max_inputs=config.batch_size,
    )
    writer = StoreDetectionWriter(store, detector_name=resolved.name, detector_version=resolved.version,
                                  class_map=class_map, run_id=run_id, shards=shards)
    trainer = L.Trainer(
        accelerator=config.accelerator,
        **world.trainer_kwargs(),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        callbacks=[writer],
    )
    loader = DataLoader(
        dataset,
        batch_size=images_per_batch,
        shuffle=False,
        num_workers=config.workers,
        collate_fn=collate,
        pin_memory=isinstance(trainer.accelerator, CUDAAccelerator),
    )
    summary.threads = set_torch_threads(cpu_threads(config.threads, world))  # after ultralytics' import (1 thread)
    summary.accelerator = type(trainer.accelerator).__name__.removesuffix("Accelerator").lower()
    loop_started = time.perf_counter()
    trainer.predict(module, dataloaders=loader, return_predictions=False)
    loop_seconds = time.perf_counter() - loop_started
    counts = writer.counts
    summary.media_done, summary.media_failed = counts.media_done, counts.media_failed
    summary.media_tiled = counts.media_tiled
    summary.detections, summary.per_category = counts.detections, dict(sorted(counts.per_category.items()))
    summary.images_per_second = summary.media_selected / loop_seconds if loop_seconds > 0 else 0.0


def _class_map(resolved: ResolvedDetector, network: LoadedNetwork) -> dict[int, str]:
    """The class map to record: the registry's for registry detectors, else the checkpoint's names."""
    if resolved.class_map is not None:
        if dict(network.names) != dict(resolved.class_map):
            log.warning("detector %s: checkpoint class names %s differ from the registry's %s; using the registry's",
                        resolved.name, dict(network.names), dict(resolved.class_map))
        class_map = dict(resolved.class_map)
    else:
        class_map = {k: v.strip().lower() for k, v in network.names.items()}
    unknown = sorted(set(class_map.values()) - DETECTION_CATEGORIES)
    if unknown:
        raise ModelNotFoundError(
            f"detector {resolved.name!r} ({resolved.path}) predicts classes {unknown}; the results store records "
            f"only {sorted(DETECTION_CATEGORIES)}. Use a camera-trap detector whose class names are those "
            "(MegaDetector's 0=animal, 1=person, 2=vehicle)."
        )
    return class_map


def _imgsz(config: DetectConfig, resolved: ResolvedDetector, network: LoadedNetwork) -> int:
    imgsz = config.imgsz or resolved.imgsz or network.trained_imgsz or FALLBACK_IMGSZ
    if imgsz % network.stride:
        raise ConfigError(
            f"detect.imgsz {imgsz} is not a multiple of the detector's stride {network.stride}; "
            f"use {imgsz // network.stride * network.stride or network.stride}."
        )
    return imgsz
