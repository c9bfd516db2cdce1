"""``ecowatch import ...`` and ``ecowatch export ...``: exchange formats in and out of the results store.

Thin wrappers over :mod:`ecowatch.formats`; every command takes ``--config/--set`` like the
other commands and works on the configured results store. The groups are registered on the
``ecowatch`` command in :mod:`pipelines.cli`; the shared options come from :mod:`pipelines.options`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ecowatch.config import LoadedConfig
from ecowatch.ingest.assign import STATION_COLUMNS
from ecowatch.tables import Taxon, read_taxonomy
from pipelines.options import config_option, set_option
from pipelines.options import load as _load
from pipelines.options import progress as _progress

if TYPE_CHECKING:  # the formats and the store load SQLAlchemy: imported when a command runs
    from ecowatch.formats.camtrap_dp_write import Contributor
    from ecowatch.store import Store

# Package metadata used when the command line gives none (printed, so nobody publishes them unaware).
DEFAULT_CONTRIBUTOR = "unknown"
DEFAULT_DATA_LICENSE = "CC0-1.0"
DEFAULT_MEDIA_LICENSE = "CC-BY-4.0"


def _store(loaded: LoadedConfig) -> Store:
    from ecowatch.store import open_store

    return open_store(loaded.catalog.location(loaded.config.datasets.store))


def _taxonomy(loaded: LoadedConfig, path: Path | None) -> dict[str, Taxon] | None:
    """The taxonomy given on the command line, else the configured one when its file exists."""
    if path is not None:
        return read_taxonomy(path)
    name = loaded.config.datasets.taxonomy
    if name is None or name not in loaded.catalog:
        return None
    dataset = loaded.catalog.get(name)
    return read_taxonomy(dataset.path) if not dataset.is_url and dataset.path.is_file() else None


def _exports_dir(loaded: LoadedConfig) -> Path:
    return loaded.catalog.get(loaded.config.datasets.exports).path


def _counts(title: str, counts: dict[str, int]) -> None:
    if counts:
        click.echo(f"  {title}: " + ", ".join(f"{name}={n}" for name, n in counts.items()))


@click.group("import")
def import_group() -> None:
    """Import labelled data (Camtrap DP packages, station/species folders) into the results store."""


@import_group.command("camtrap-dp")
@click.argument("package", type=click.Path(exists=True, path_type=Path))
@click.option("--dump-id", required=True, help="Id to record the package's media under (media ids derive from it).")
@config_option
@set_option
def import_camtrap_dp_command(package: Path, dump_id: str, config: str, overrides: tuple[str, ...]) -> None:
    """Import a Camtrap DP 1.x PACKAGE (its folder or datapackage.json); a re-import adds nothing."""
    from ecowatch.formats.camtrap_dp_import import import_camtrap_dp

    store = _store(_load(config, overrides))
    try:
        summary = import_camtrap_dp(store, package, dump_id=dump_id)
    finally:
        store.dispose()
    click.echo(f"imported {summary.package_path} as dump {dump_id!r}")
    click.echo(f"  deployments: {summary.deployments_written} new or updated")
    click.echo(f"  media: {summary.media_inserted} new of {summary.media_in_package} "
               f"({summary.media_hashed} files found beside the package and hashed)")  # fmt: skip
    click.echo(f"  observations: {summary.observations_inserted} new of {summary.observations_in_package}; "
               f"detections: {summary.detections_inserted} new")  # fmt: skip


@import_group.command("folders")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--deployments", "deployments_csv", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Deployments CSV (ecowatch's, or a Camtrap DP deployments.csv).")  # fmt: skip
@click.option("--taxonomy", "taxonomy_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Taxonomy CSV to match species folder names against.")  # fmt: skip
@click.option("--dump-id", required=True, help="Id to record the media under (media ids derive from it).")
@click.option("--station-column", type=click.Choice(STATION_COLUMNS), default="location_name", show_default=True,
              help="The deployments column that the station folders name.")  # fmt: skip
@click.option("--camera-folders", is_flag=True,
              help="The layout is <station>/<camera>/<species>/<image> (camera = camera_id).")  # fmt: skip
@config_option
@set_option
def import_folders_command(root: Path, deployments_csv: Path, taxonomy_csv: Path | None, dump_id: str,
                           station_column: str, camera_folders: bool, config: str,
                           overrides: tuple[str, ...]) -> None:  # fmt: skip
    """Import images sorted into ROOT/<station>/<species>/ folders (camtrapR's layout).

    Every readable image gets a human observation of its folder's species (or blank/human/vehicle
    for folders named so); media get EXIF time, flags, sequences and the deployment of their
    station at that time. A re-import adds nothing.
    """
    from ecowatch.formats.folders_import import import_species_folders

    loaded = _load(config, overrides)
    store = _store(loaded)
    update, close = _progress("import")
    try:
        summary = import_species_folders(store, root, dump_id=dump_id, deployments=deployments_csv,
                                         taxonomy=taxonomy_csv, station_column=station_column,
                                         camera_folders=camera_folders, config=loaded.config.ingest,
                                         on_progress=update)  # fmt: skip
    finally:
        close()
        store.dispose()
    ing = summary.ingest
    click.echo(f"imported {summary.root} as dump {dump_id!r} (run {summary.run_id})")
    click.echo(f"  files: {ing.files_seen} seen, {ing.files_new} new, {ing.files_already_ingested} already imported")
    click.echo(f"  labels: {summary.media_labelled} images, {summary.observations_inserted} new observations")
    _counts("types", summary.observation_types)
    _counts("taxa", summary.taxa)
    _counts("species folders not in the taxonomy", summary.unmatched_species)
    _counts("stations not in the deployments table (files)", summary.stations_not_in_deployments)
    if summary.media_without_deployment:
        click.echo(f"  media without deployment: {summary.media_without_deployment}")
    if summary.media_not_labelled or summary.media_outside_layout:
        click.echo(f"  not labelled: {summary.media_not_labelled} failed or skipped, "
                   f"{summary.media_outside_layout} outside the folder layout")  # fmt: skip
    _counts("flags", ing.flags)


@click.group("export")
def export_group() -> None:
    """Export the results store (Camtrap DP package, MegaDetector batch-output JSON)."""


def _contributor(text: str) -> Contributor:
    from ecowatch.formats.camtrap_dp_write import CONTRIBUTOR_ROLES, Contributor

    name, _, role = text.rpartition(":") if ":" in text else (text, "", "contact")
    if role not in CONTRIBUTOR_ROLES:
        raise click.BadParameter(f"{text!r}: role {role!r} is not one of {list(CONTRIBUTOR_ROLES)}",
                                 param_hint="--contributor")  # fmt: skip
    return Contributor(name.strip(), role=role)


@export_group.command("camtrap-dp")
@click.option("--dump", "dump_id", default=None, help="Export only this dump (default: every dump in the store).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Package folder (default: <dump>/camtrap-dp, or camtrap-dp for every dump, in the catalog's "
                   "exports folder).")  # fmt: skip
@click.option("--validate/--no-validate", default=True, show_default=True,
              help="Validate the package offline against the Camtrap DP 1.0.2 profile and table schemas.")  # fmt: skip
@click.option("--taxonomy", "taxonomy_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Taxonomy CSV for scientific names (default: the configured taxonomy, if present).")
@click.option("--title", default=None, help="Package title (default: 'ecowatch results: <dump>').")
@click.option("--project-id", default=None, help="Project id (default: the dump id, or 'ecowatch').")
@click.option("--contributor", "contributors", multiple=True, metavar="NAME[:ROLE]",
              help=f"Person or organisation credited (repeatable; role default 'contact'; "
                   f"default {DEFAULT_CONTRIBUTOR!r}).")  # fmt: skip
@click.option("--data-license", default=DEFAULT_DATA_LICENSE, show_default=True, help="SPDX licence of the tables.")
@click.option("--media-license", default=DEFAULT_MEDIA_LICENSE, show_default=True, help="SPDX licence of the media.")
@config_option
@set_option
def export_camtrap_dp_command(dump_id: str | None, out: Path | None, validate: bool, taxonomy_csv: Path | None,
                              title: str | None, project_id: str | None, contributors: tuple[str, ...],
                              data_license: str, media_license: str, config: str,
                              overrides: tuple[str, ...]) -> None:  # fmt: skip
    """Write the store (or one dump) as a Camtrap DP 1.0.2 package and validate it offline.

    Exits with status 1 when the package is not valid (the problems are printed).
    """
    from ecowatch.formats.camtrap_dp_validate import validate_camtrap_dp
    from ecowatch.formats.camtrap_dp_write import License, ProjectInfo, export_camtrap_dp

    loaded = _load(config, overrides)
    project = ProjectInfo(
        title=title or f"ecowatch results: {dump_id or 'all dumps'}",
        description="Camera-trap observations exported by ecowatch.",
        contributors=tuple(_contributor(c) for c in contributors or (DEFAULT_CONTRIBUTOR,)),
        licenses=(License("data", name=data_license), License("media", name=media_license)),
        project_id=project_id or dump_id or "ecowatch",
    )
    out = out or _exports_dir(loaded) / (dump_id or "") / "camtrap-dp"
    store = _store(loaded)
    try:
        written = export_camtrap_dp(store, out, dump_id=dump_id, project=project,
                                    taxonomy=_taxonomy(loaded, taxonomy_csv))  # fmt: skip
    finally:
        store.dispose()
    click.echo(f"wrote Camtrap DP package {written}")
    if not contributors:
        click.echo(f"  note: contributor {DEFAULT_CONTRIBUTOR!r} and licences {data_license}/{media_license} are "
                   "defaults; give --contributor/--data-license/--media-license before publishing")  # fmt: skip
    if validate:
        report = validate_camtrap_dp(written)
        if report.valid:
            click.echo("  validation: valid (Camtrap DP 1.0.2 profile and table schemas, offline)")
        else:
            click.echo(f"  validation: {len(report.errors)} problem(s)\n{report.summary()}")
            raise SystemExit(1)


@export_group.command("megadetector")
@click.option("--dump", "dump_id", default=None, help="The dump to export (default: the configured dump).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON file (default: <dump>/megadetector.json in the catalog's exports folder, where the "
                   "nightly run writes it).")  # fmt: skip
@click.option("--detector-version", default=None, help="Detector version to export (default: the only one).")
@click.option("--classifier", "classifier_id", default=None, metavar="NAME/VERSION",
              help="Whose species scores to export, e.g. ecowatch-species/d1df7cf2a806dbea (default: the only "
                   "model that classified the dump; needed once several have).")
@click.option("--include-static-fp", is_flag=True, help="Keep boxes flagged as static false positives.")
@click.option("--taxonomy", "taxonomy_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Taxonomy CSV for category names (default: the configured taxonomy, if present).")
@config_option
@set_option
def export_megadetector_command(dump_id: str | None, out: Path | None, detector_version: str | None,
                                classifier_id: str | None, include_static_fp: bool, taxonomy_csv: Path | None,
                                config: str, overrides: tuple[str, ...]) -> None:  # fmt: skip
    """Write one dump's detections as a MegaDetector 1.6 batch-output JSON file (for Timelapse)."""
    from ecowatch.formats.megadetector_json import export_megadetector_json

    classifier = None
    if classifier_id is not None:
        name, _, version = classifier_id.rpartition("/")
        if not name or not version:
            raise click.BadParameter(f"{classifier_id!r}: expected NAME/VERSION, e.g. "
                                     "ecowatch-species/d1df7cf2a806dbea (a model name and version of the store's "
                                     "classifications).",
                                     param_hint="--classifier")
        classifier = (name, version)
    loaded = _load(config, overrides)
    dump_id = dump_id or loaded.config.datasets.dump
    out = out or _exports_dir(loaded) / dump_id / "megadetector.json"
    store = _store(loaded)
    try:
        written = export_megadetector_json(store, out, dump_id=dump_id, detector_version=detector_version,
                                           include_static_fp=include_static_fp, classifier=classifier,
                                           taxonomy=_taxonomy(loaded, taxonomy_csv))  # fmt: skip
    finally:
        store.dispose()
    click.echo(f"wrote MegaDetector batch-output file {written}")
