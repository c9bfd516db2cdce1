"""The ``ecowatch`` command line: thin wrappers over the pipelines, with progress bars."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml

from ecowatch.config import LoadedConfig, load_config
from ecowatch.errors import EcowatchError
from ecowatch.synth.cli import generate_dump_command

log = logging.getLogger("ecowatch")

DEFAULT_CONFIG = "conf/nightly.yaml"


def _parse_overrides(pairs: tuple[str, ...]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE (e.g. ingest.workers=0)", param_hint="--set")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def _load(config: str, overrides: tuple[str, ...]) -> LoadedConfig:
    return load_config(config, overrides=_parse_overrides(overrides))


config_option = click.option("--config", "-c", default=DEFAULT_CONFIG, show_default=True,
                             type=click.Path(dir_okay=False), help="Run configuration (conf/*.yaml).")
set_option = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                          help="Override a configuration key, e.g. --set ingest.workers=0 (repeatable).")


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


def _progress(desc: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="file", disable=None, dynamic_ncols=True)
    return bar.update, bar.close


def _nightly(loaded: LoadedConfig) -> None:
    from pipelines.nightly import run_nightly

    update, close = _progress("ingest")
    try:
        summary = run_nightly(loaded, on_progress=update)
    finally:
        close()
    ing = summary.ingest
    click.echo(f"nightly run {summary.run_id} on {summary.dump_id!r} finished in {summary.seconds:.1f} s")
    click.echo(f"  files: {ing.files_seen} seen, {ing.files_new} new, {ing.files_already_ingested} already ingested")
    click.echo(f"  media: {ing.media_ok} ok, {ing.media_failed} failed, {ing.media_skipped} skipped; "
               f"{ing.sequences} sequences")
    for deployment, count in summary.media_per_deployment.items():
        click.echo(f"    {deployment}: {count} media")
    if summary.flags_total:
        click.echo("  flags: " + ", ".join(f"{flag}={n}" for flag, n in summary.flags_total.items()))
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
    _nightly(_load(config, overrides + ("tracking.enabled=false",)))


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


main.add_command(generate_dump_command)


if __name__ == "__main__":  # pragma: no cover
    main()
