"""``ecowatch train ...``: training compositions (labelled data in, tracked and registered model out)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from ecowatch.errors import ConfigError
from pipelines.options import parse_overrides, set_option

CLASSIFIER_CONFIG = "conf/classifier.yaml"


@click.group("train")
def train_group() -> None:
    """Train models on labelled data (tracked in MLflow, registered in its model registry)."""


@train_group.command("detector")
@click.option("--config", "-c", default="conf/nightly.yaml", show_default=True, type=click.Path(dir_okay=False),
              help="Run configuration: its catalog gives the default labels, the MLflow store and models folder.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a configuration key.")
@click.option("--coco", "coco", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="COCO Camera Traps file with boxes (repeatable; pair each with --images).")
@click.option("--images", "images", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Folder the COCO file's image paths are relative to (one per --coco).")
@click.option("--camtrap-dp", "camtrap_dp", multiple=True, type=click.Path(exists=True),
              help="Camtrap DP package whose observations carry boxes and whose media lie beside it (repeatable).")
@click.option("--architecture", default="yolo11-c256", show_default=True,
              help="yolo11-c256 / yolo11-c512 (compact, from scratch), an ultralytics YAML (yolo11n.yaml), or "
                   "weights to fine-tune: a .pt path, a registry name (mdv1000-larch) or models:/name@alias.")
@click.option("--imgsz", default=384, show_default=True, type=click.IntRange(32, 4096))
@click.option("--epochs", default=12, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--batch", default=16, show_default=True, type=click.IntRange(1, 4096))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(0, 256))
@click.option("--device", default="cpu", show_default=True, help="cpu, 0, 0,1, ... (ultralytics device string)")
@click.option("--val-fraction", default=0.2, show_default=True, type=click.FloatRange(0.01, 0.9),
              help="Share of locations held out for validation.")
@click.option("--keep-empty", default=0.3, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="Share of empty frames kept as negatives.")
@click.option("--tile-above", default=None, type=click.IntRange(64, 100_000),
              help="Cut frames whose long side exceeds this (pixels) into full-resolution tiles of --imgsz "
                   "(drone frames); default: no tiling.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--register-as", default="ecowatch-detector", show_default=True,
              help="Registered model name in MLflow ('' to skip registration).")
@click.option("--alias", default="challenger", show_default=True, help="Alias set on the new version ('' for none).")
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Training folder (default: <models>/detector-runs/<UTC time>).")
@click.option("--extra", "extra", multiple=True, metavar="KEY=VALUE",
              help="Any other ultralytics training argument, e.g. --extra fraction=0.5 (repeatable).")
def detector_command(config: str, overrides: tuple[str, ...], coco: tuple[str, ...], images: tuple[str, ...],
                     camtrap_dp: tuple[str, ...], architecture: str, imgsz: int, epochs: int, batch: int, workers: int,
                     device: str, val_fraction: float, keep_empty: float, tile_above: int | None, seed: int, register_as: str, alias: str,
                     out: str | None, extra: tuple[str, ...]) -> None:
    """Train or fine-tune the detector from COCO Camera Traps or Camtrap DP boxes.

    Without --coco/--camtrap-dp the catalog's `labels` (COCO) and `dump` datasets are used.
    """
    import yaml

    from ecowatch.detect.datasets import build_yolo_dataset, read_camtrap_dp_boxes, read_coco_camera_traps
    from ecowatch.detect.train import ARCHITECTURES, TrainSettings, train_detector
    from ecowatch.detect.weights import resolve_detector
    from ecowatch.tracking import tracking_target
    from pipelines.options import load

    loaded = load(config, overrides)
    catalog, names = loaded.catalog, loaded.config.datasets
    if len(coco) != len(images):
        raise ConfigError(f"give one --images folder per --coco file ({len(coco)} --coco, {len(images)} --images).")
    sources = [read_coco_camera_traps(c, i) for c, i in zip(coco, images)]
    sources += [read_camtrap_dp_boxes(p) for p in camtrap_dp]
    if not sources:
        if not names.labels:
            raise ConfigError("no labelled data: pass --coco FILE --images DIR or --camtrap-dp PACKAGE, or name a "
                              "`labels` dataset in the configuration.")
        sources = [read_coco_camera_traps(catalog.input_path(names.labels), catalog.input_path(names.dump))]
    models_dir = Path(catalog.location(names.models))
    target = tracking_target(catalog.location(names.tracking)) if loaded.config.tracking.enabled else None
    if architecture not in ARCHITECTURES and not architecture.endswith((".yaml", ".yml")):
        resolved = resolve_detector(architecture, cache_dir=models_dir, offline=not loaded.config.detect.allow_download,
                                    tracking_uri=target.tracking_uri if target else None)
        architecture = str(resolved.path)  # fine-tuning
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = Path(out) if out else models_dir / "detector-runs" / stamp
    dataset = build_yolo_dataset(sources, run_dir / "dataset", val_fraction=val_fraction, seed=seed,
                                 keep_empty=keep_empty, tile_above=tile_above, tile_size=imgsz)
    click.echo(f"dataset: {dataset.counts}; validation locations: {', '.join(dataset.val_locations)}")
    settings = TrainSettings(architecture=architecture, imgsz=imgsz, epochs=epochs, batch=batch, workers=workers,
                             device=device, seed=seed,
                             extra={k: yaml.safe_load(v) for k, _, v in (e.partition("=") for e in extra)})
    trained = train_detector(dataset, run_dir / "train", settings=settings, tracking=target,
                             register_as=(register_as or None) if target else None, alias=alias or None,
                             on_epoch=lambda e, m: click.echo(f"epoch {e}: " + ", ".join(
                                 f"{k.removeprefix('metrics.')}={v:.3f}" for k, v in m.items()
                                 if k.startswith("metrics."))))
    click.echo(f"trained {trained.epochs_run} epochs in {trained.seconds / 60:.1f} min; weights: {trained.weights}")
    if trained.mlflow_run_id:
        click.echo(f"MLflow run: {trained.mlflow_run_id}")
    if trained.registered:
        click.echo(f"registered: {trained.registered.uri}" + (f" (alias {trained.registered.alias}: "
                   f"models:/{trained.registered.name}@{trained.registered.alias})" if trained.registered.alias else ""))


@train_group.command("classifier")
@click.option("--config", "-c", "config_path", default=CLASSIFIER_CONFIG, show_default=True,
              type=click.Path(dir_okay=False), help="Classifier training configuration.")
@set_option
@click.option("--fast-dev-run", is_flag=True,
              help="One training and one validation batch, to check the set-up (the model is not registered).")
def classifier_command(config_path: str, overrides: tuple[str, ...], fast_dev_run: bool) -> None:
    """Train the species classifier on the configured labels; calibrate it, choose its unknown-species
    threshold, evaluate it on unseen locations, write a standalone checkpoint and register it in MLflow.
    """
    from ecowatch.classify.config import load_classifier_config
    from ecowatch.classify.crops import sources_from_coco
    from ecowatch.classify.train import train_classifier
    from ecowatch.tables import read_taxonomy
    from ecowatch.tracking import tracking_target

    loaded = load_classifier_config(config_path, overrides=parse_overrides(overrides))
    cfg, catalog, names = loaded.config, loaded.catalog, loaded.config.datasets
    labels = catalog.input_path(names.labels)
    images = catalog.input_path(names.images)
    sources = sources_from_coco(labels, images, exclude_taxa=cfg.data.exclude_taxa, min_box_px=cfg.data.min_box_px)
    taxa = read_taxonomy(catalog.input_path(names.taxonomy))
    models = catalog.output_path(names.models)
    target = tracking_target(catalog.location(names.tracking)) if cfg.tracking.enabled else None
    click.echo(f"{len(sources)} labelled boxes from {labels}")
    result = train_classifier(
        cfg, sources=sources, taxa=taxa, models_dir=models, cache_dir=models / "crop_cache", tracking=target,
        progress_bar=True,
        fast_dev_run=fast_dev_run, extra_params={"labels": str(labels), "config": str(loaded.source)},
    )
    if result is None:  # a DDP process other than rank 0: rank 0 reports
        return
    click.echo(f"classifier {result.model_name} version {result.model_version}: {result.checkpoint}")
    click.echo(f"  classes: {len(result.taxonomy.class_ids)}; crops {result.crops}")
    split = result.split
    click.echo(f"  split: train {list(split.train)} | val {list(split.val)} | test {list(split.test)}")
    for name, figures in (("val", result.val), ("test", result.test)):
        if figures is None:
            continue
        auroc = f", unknown AUROC {figures.unknown_auroc:.3f}" if figures.unknown_auroc == figures.unknown_auroc else ""
        click.echo(f"  {name}: top-1 {figures.report.top1:.3f}, macro-F1 {figures.report.macro_f1:.3f}, "
                   f"ECE {figures.ece_before:.3f} -> {figures.ece_after:.3f}{auroc}")
    click.echo(f"  temperature {result.temperature:.3f} (and a bias per class); unknown threshold "
               f"({result.open_set.method}) "
               f"{result.open_set.threshold:.3f}; {result.train_images_per_second:.1f} training crops/s")
    if result.mlflow_run_id:
        click.echo(f"  MLflow run: {result.mlflow_run_id}")
    if result.registered_uri:
        alias = f" (alias {cfg.registry.alias})" if cfg.registry.alias else ""
        click.echo(f"  registered: {result.registered_uri}{alias}")


@train_group.command("context")
@click.option("--config", "-c", "config_path", default="conf/context.yaml", show_default=True,
              type=click.Path(dir_okay=False), help="Context-model build configuration.")
@set_option
def context_command(config_path: str, overrides: tuple[str, ...]) -> None:
    """Build the context model: the knowledge graph of taxa, places and seasons, with its priors' counts,
    from labelled observations, deployments, region polygons and range maps (a versioned JSON artefact
    that the nightly fuse stage reads)."""
    from ecowatch.context.build import build_context_model

    built = build_context_model(config_path, overrides=parse_overrides(overrides))
    g = built.graph
    click.echo(f"context model {g.version}: {built.path} ({built.observations} labelled frames, {len(g.links)} links, "
               f"{sum(link.events for link in g.links)} events, {len(g.locations)} locations, {len(g.regions)} "
               f"regions, {len({loc.habitat for loc in g.locations.values()} - {''})} habitats, {len(g.range_maps)} "
               "range maps)")
