"""``ecowatch generate-dump``: write a synthetic SD-card dump (or drone flight) with ground truth."""

from __future__ import annotations

import re
from pathlib import Path

import click

from ecowatch.errors import ConfigError
from ecowatch.synth.dump import DumpSummary, generate_dump
from ecowatch.synth.spec import PRESETS, DumpSpec


def _parse_size(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
    if not match:
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT, e.g. 1280x720.", param_hint="--image-size")
    return int(match.group(1)), int(match.group(2))


@click.command("generate-dump")
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="sample", show_default=True,
              help="Size and mode of the dump.")
@click.option("--seed", type=int, default=None, help="Seed of every random choice (default: the preset's, 0).")
@click.option("--frames", type=click.IntRange(min=1), default=None, help="Approximate number of frames.")
@click.option("--image-size", default=None, metavar="WxH", help="Frame size in pixels, e.g. 640x360.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Render processes (0 = in-process; default: the preset's).")
@click.option("--site-habitats/--no-site-habitats", default=True, show_default=True,
              help="Camera sites have a habitat that shapes which species live there (--no-site-habitats: the "
                   "dumps of ecowatch before habitats).")
@click.option("--overwrite", is_flag=True, help="Replace a previous dump in a non-empty OUT.")
def generate_dump_command(out: Path, preset: str, seed: int | None, frames: int | None, image_size: str | None,
                          workers: int | None, site_habitats: bool, overwrite: bool) -> None:
    """Generate a seeded synthetic camera-trap dump in OUT: OUT/dump (the cards), deployments.csv,
    taxonomy.csv, coco_camera_traps.json, regions.geojson, range_maps.gpkg, manifest.json.

    The same options give byte-identical files, whatever --workers.
    """
    overrides: dict = {"site_habitats": site_habitats}
    if seed is not None:
        overrides["seed"] = seed
    if frames is not None:
        overrides["n_frames"] = frames
    size = _parse_size(image_size)
    if size is not None:
        overrides["image_size"] = size
    if workers is not None:
        overrides["workers"] = workers
    try:
        spec = DumpSpec.preset(preset, **overrides)
        with click.progressbar(length=1, label=f"generating {preset} dump", show_pos=True) as bar:
            state = {"done": 0}

            def progress(done: int, total: int) -> None:
                bar.length = total
                bar.update(done - state["done"])
                state["done"] = done

            summary = generate_dump(out, spec, overwrite=overwrite, progress=progress)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(describe_summary(summary))


def describe_summary(summary: DumpSummary) -> str:
    """A few human-readable lines about a generated dump (frames, boxes, broken files, species)."""
    seen = {k: v for k, v in summary.species_counts.items() if v}
    return (
        f"{summary.n_frames} frames ({summary.n_empty} empty) in {len(summary.media_files)} files under "
        f"{summary.dump_dir}\n"
        f"boxes: {summary.n_animals} animals, {summary.n_people} people, {summary.n_vehicles} vehicles; "
        f"{summary.n_broken_files} broken/odd files {summary.broken_by_kind or ''}\n"
        f"species: {', '.join(f'{k} {v}' for k, v in sorted(seen.items(), key=lambda kv: -kv[1]))}\n"
        f"{summary.seconds:.1f} s ({summary.frames_per_second:.1f} frames/s); ground truth in {summary.out_dir}"
    )
