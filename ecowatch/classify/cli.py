"""``ecowatch train classifier``: train, calibrate, evaluate and register a species classifier.

:data:`classifier_command` is a plain click command; the CLI registers it in its ``train`` group
with ``train.add_command(classifier_command)``.
"""

from __future__ import annotations

from typing import Any

import click
import yaml

DEFAULT_CONFIG = "conf/classifier.yaml"


def _parse_overrides(pairs: tuple[str, ...]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE (e.g. train.max_epochs=5)", param_hint="--set")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


@click.command("classifier")
@click.option("--config", "-c", "config_path", default=DEFAULT_CONFIG, show_default=True,
              type=click.Path(dir_okay=False), help="Classifier training configuration.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a configuration key, e.g. --set train.max_epochs=5 (repeatable).")
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

    loaded = load_classifier_config(config_path, overrides=_parse_overrides(overrides))
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
    click.echo(f"  temperature {result.temperature:.3f}; unknown threshold ({result.open_set.method}) "
               f"{result.open_set.threshold:.3f}; {result.train_images_per_second:.1f} training crops/s")
    if result.mlflow_run_id:
        click.echo(f"  MLflow run: {result.mlflow_run_id}")
    if result.registered_uri:
        alias = f" (alias {cfg.registry.alias})" if cfg.registry.alias else ""
        click.echo(f"  registered: {result.registered_uri}{alias}")
