"""The ``ecowatch`` command line: thin wrappers over the pipelines, with progress bars."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Any

import click

from ecowatch.config import LoadedConfig
from ecowatch.errors import EcowatchError
from ecowatch.synth.cli import generate_dump_command
from pipelines.options import config_option, load, progress, set_option

log = logging.getLogger("ecowatch")

# the shared options, under the names the commands below use
_load, _progress = load, progress


class _Group(click.Group):
    """Turns ecowatch's own errors into a one-line message and exit status 2, without a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EcowatchError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """ecowatch: camera-trap and drone imagery to the numbers ecologists publish."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", logging.getLevelName(level))
    # Lightning's per-Trainer banners (GPU/TPU availability, tips) only with -v; Lightning sets
    # the level of its "lightning.pytorch" logger on import, not that of the module loggers below it
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(level)
    # a deprecation inside Lightning 2.6's own code, not ours: nothing a user can act on
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def _nightly(loaded: LoadedConfig, *, ingest_only: bool = False) -> None:
    from pipelines.nightly import run_nightly

    update, close = _progress("ingest")
    closed = False

    def on_stage(name: str) -> None:
        nonlocal closed
        if name != "ingest" and not closed:
            close()
            closed = True
        if name != "ingest":
            log.info("stage: %s", name)

    try:
        summary = run_nightly(loaded, on_progress=update, on_stage=on_stage, progress_bar=sys.stderr.isatty(),
                              ingest_only=ingest_only)
    finally:
        if not closed:
            close()
    if summary is None:  # a prediction process beside rank 0 (several processes): rank 0 reports the run
        return
    ing, det = summary.ingest, summary.detect
    click.echo(f"nightly run {summary.run_id} on {summary.dump_id!r} finished in {summary.seconds:.1f} s")
    click.echo(f"  files: {ing.files_seen} seen, {ing.files_new} new, {ing.files_already_ingested} already ingested")
    click.echo(f"  media: {ing.media_ok} ok, {ing.media_failed} failed, {ing.media_skipped} skipped; "
               f"{ing.sequences} sequences")
    for deployment, count in summary.media_per_deployment.items():
        click.echo(f"    {deployment}: {count} media")
    if summary.flags_total:
        click.echo("  flags: " + ", ".join(f"{flag}={n}" for flag, n in summary.flags_total.items()))
    if det is None:
        click.echo(f"  store: {summary.store}")
        return
    click.echo(f"  detector: {det.detector_name} (version {det.detector_version}, {det.imgsz} px): "
               f"{det.media_selected} images run, {det.media_already_done} already done, {det.media_failed} failed, "
               f"{det.detections} boxes" + (f", {det.images_per_second:.1f} images/s" if det.media_selected else ""))
    if summary.observations.per_type:
        click.echo("  images by detector: " + ", ".join(f"{kind}={n}" for kind, n in
                                                          summary.observations.per_type.items())
                   + f"; static false positives flagged: {summary.static_fp.flagged}")
    cls, fuse = summary.classify, summary.fuse
    if cls is not None:
        name = cls.model_name or (fuse.model_name if fuse is not None else "")
        click.echo(f"  classifier: {name} (version {cls.model_version}): {cls.detections_done} animal boxes "
                   f"classified, {cls.detections_already_done} already done, {cls.unknown} unlike any known species"
                   + (f", {cls.crops_per_second:.1f} crops/s" if cls.detections_selected else ""))
    if fuse is not None:
        click.echo(f"  fused labels ({fuse.media} images, {fuse.events} sequences; context "
                   f"{fuse.context_version or 'none'}, prior applied to {fuse.prior_applied} of {fuse.detections} "
                   "boxes): " + ", ".join(f"{source}={n}" for source, n in sorted(fuse.per_source.items())))
    for name, path in summary.exports.items():
        click.echo(f"  export {name}: {path}")
    if summary.report is not None:
        click.echo(f"  report: {summary.report.path}")
    click.echo(f"  store: {summary.store}")
    if summary.mlflow_run_id:
        click.echo(f"  MLflow run: {summary.mlflow_run_id}")


@main.command()
@config_option
@set_option
def nightly(config: str, overrides: tuple[str, ...]) -> None:
    """Run the nightly pipeline on the configured dump (resumes where a killed run stopped)."""
    _nightly(_load(config, overrides))


@main.command()
@config_option
@set_option
def ingest(config: str, overrides: tuple[str, ...]) -> None:
    """Ingest the configured dump into the results store (the nightly run's first stage)."""
    _nightly(_load(config, overrides + ("tracking.enabled=false",)), ingest_only=True)


@main.command()
@config_option
@set_option
def demo(config: str, overrides: tuple[str, ...]) -> None:
    """Generate the sample SD-card dump if absent, then run the nightly pipeline on it.

    Running it again resumes the nightly run; delete the work/ folder to start from scratch.
    """
    from ecowatch.synth import DumpSpec, generate_dump
    from ecowatch.synth.cli import describe_summary

    loaded = _load(config, overrides)
    sample_root = loaded.catalog.get("sample").path
    if not (sample_root / "manifest.json").is_file():
        click.echo(f"generating the sample SD-card dump in {sample_root} ...")
        generated = generate_dump(sample_root, DumpSpec.preset("sample"), overwrite=True)
        click.echo(describe_summary(generated))
    _nightly(loaded)


@main.command()
@config_option
@set_option
def status(config: str, overrides: tuple[str, ...]) -> None:
    """Print row counts of the results store and its latest runs."""
    import sqlalchemy as sa

    from ecowatch.store import open_store
    from ecowatch.store.schema import metadata, runs

    loaded = _load(config, overrides)
    store = open_store(loaded.catalog.location(loaded.config.datasets.store))
    for table in metadata.sorted_tables:
        click.echo(f"{table.name:16s} {store.count(table):>9d}")
    with store.engine.connect() as conn:
        for row in conn.execute(sa.select(runs).order_by(runs.c.started_at.desc()).limit(5)):
            click.echo(f"run {row.run_id} {row.kind} {row.status} started {row.started_at:%Y-%m-%d %H:%M:%S}")
    store.dispose()


@main.command()
@config_option
@set_option
def report(config: str, overrides: tuple[str, ...]) -> None:
    """Write the HTML report of the configured dump (--set report.scope=store: of the whole store)."""
    from pipelines.report import run_report

    summary = run_report(_load(config, overrides))
    click.echo(f"report written to {summary.path}")
    click.echo(f"  {summary.n_deployments} deployments, {summary.n_media} media, {summary.n_events} independent "
               f"events, {summary.n_taxa} taxa")
    if summary.empty_sections:
        click.echo("  nothing to show yet in: " + ", ".join(summary.empty_sections))
    if summary.mlflow_run_id:
        click.echo(f"  MLflow run: {summary.mlflow_run_id}")


@main.command()
@config_option
@set_option
@click.option("--month", type=click.IntRange(1, 12), required=True, help="Month, 1-12 (the season follows the "
              "place's hemisphere).")
@click.option("--location", default=None, help="A location id the context model knows.")
@click.option("--deployment", default=None, help="A deployment id the context model knows.")
@click.option("--lat", type=float, default=None, help="Latitude (WGS84) of a place the model does not know.")
@click.option("--lon", type=float, default=None, help="Longitude (WGS84) of a place the model does not know.")
@click.option("--habitat", default=None, help="The site's habitat, e.g. woodland (as in the deployments table).")
@click.option("--min-probability", type=click.FloatRange(0, 1), default=0.01, show_default=True,
              help="Leave out species less probable than this.")
def plausible(config: str, overrides: tuple[str, ...], month: int, location: str | None, deployment: str | None,
              lat: float | None, lon: float | None, habitat: str | None, min_probability: float) -> None:
    """Which species are plausible at a place in a month: the context model's prior (fuse.context of the
    configuration), range maps applied, most probable first."""
    from ecowatch.context.graph import load_knowledge_graph
    from ecowatch.errors import ConfigError

    if (lat is None) != (lon is None):
        raise click.BadParameter("give both --lat and --lon, or neither", param_hint="--lat/--lon")
    cfg = _load(config, overrides)
    if not cfg.config.fuse.context:
        raise ConfigError(f"{config}: fuse.context names no context model; set it (e.g. --set "
                          "fuse.context=context_model) or build one with `ecowatch train context`.")
    graph = load_knowledge_graph(cfg.catalog.get(cfg.config.fuse.context).path)
    where = graph.place(location_id=location, deployment_id=deployment, latitude=lat, longitude=lon, habitat=habitat)
    answers = graph.plausible_at(where, month=month, min_probability=min_probability)
    known = where.location_id or "a place the model has no labels from"
    click.echo(f"context model {graph.version}: {known}, region {where.region_id or 'none'}, habitat "
               f"{where.habitat or 'unknown'}, month {month}; prior from the {answers[0].level if answers else '-'} "
               "level")
    for a in answers:
        name = graph.taxa[a.taxon_id].common_name
        inside = {True: "in range", False: "OUT OF RANGE", None: "no range map"}[a.in_range]
        click.echo(f"  {a.probability:6.3f}  {a.taxon_id:24s} {name:24s} {inside:13s} {a.events} labelled events")


main.add_command(generate_dump_command)

from pipelines.exchange import export_group, import_group  # noqa: E402

main.add_command(import_group)
main.add_command(export_group)

from pipelines.train import train_group  # noqa: E402

main.add_command(train_group)

from pipelines.retrain import models_group, retrain_command, tracking_group, worklist_command  # noqa: E402

main.add_command(retrain_command)
main.add_command(models_group)
main.add_command(worklist_command)
main.add_command(tracking_group)


if __name__ == "__main__":  # pragma: no cover
    main()
