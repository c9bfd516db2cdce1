"""Orchestration: plan a dump, render it (in parallel if asked), write the ground truth.

Planning is cheap and runs in the calling process; every frame is then an independent job
whose randomness comes from its own seed, so any number of workers writes byte-identical files.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ecowatch.errors import ConfigError
from ecowatch.synth.broken import BrokenFile, appledouble_bytes, appledouble_for, assign_card_paths, write_broken
from ecowatch.synth.deployments import plan_deployments
from ecowatch.synth.events import FrameJob, plan_frames
from ecowatch.synth.geo import REGIONS_BY_KEY, write_range_maps, write_regions_geojson
from ecowatch.synth.parallel import ProgressFn, run_jobs
from ecowatch.synth.render import FrameRenderer, FrameResult
from ecowatch.synth.spec import DumpSpec
from ecowatch.synth.truth import (
    ImageRecord,
    count_boxes,
    write_coco,
    write_deployments,
    write_manifest,
    write_taxonomy,
)
from ecowatch.tables import Deployment

logger = logging.getLogger(__name__)

GENERATOR_VERSION = "1.0.0"
OUTPUT_FILES = {
    "deployments": "deployments.csv",
    "taxonomy": "taxonomy.csv",
    "coco": "coco_camera_traps.json",
    "regions": "regions.geojson",
    "range_maps": "range_maps.gpkg",
    "manifest": "manifest.json",
}
DUMP_FOLDER = "dump"


@dataclass(frozen=True)
class DumpSummary:
    """What :func:`generate_dump` wrote.

    Attributes:
        out_dir: the output folder.
        dump_dir: the SD-card dump (``<out>/dump``).
        files: the table/label files by name (``deployments``, ``taxonomy``, ``coco``,
            ``regions``, ``range_maps``, ``manifest``).
        media_files: every file written under the dump, sorted.
        n_frames: readable image frames (the COCO images).
        n_empty: of those, frames with nothing visible.
        n_animals: animal boxes.
        n_people: person boxes.
        n_vehicles: vehicle boxes.
        n_broken_files: entries of the manifest's broken-file list (clock-reset frames included).
        broken_by_kind: broken-file count per kind.
        species_counts: animal boxes per species key.
        seconds: wall time of the generation.
    """

    out_dir: Path
    dump_dir: Path
    files: dict[str, Path]
    media_files: tuple[Path, ...]
    n_frames: int
    n_empty: int
    n_animals: int
    n_people: int
    n_vehicles: int
    n_broken_files: int
    broken_by_kind: dict[str, int] = field(default_factory=dict)
    species_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def frames_per_second(self) -> float:
        """Readable frames generated per second of wall time."""
        return self.n_frames / self.seconds if self.seconds > 0 else 0.0


def _prepare(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir} exists and is not a folder; choose another output folder.")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"{out_dir} is not empty. Choose an empty or new folder, or pass overwrite=True "
                "(CLI: --overwrite) to replace a previous dump there."
            )
        if (out_dir / DUMP_FOLDER).is_dir():
            shutil.rmtree(out_dir / DUMP_FOLDER)
        for name in OUTPUT_FILES.values():
            (out_dir / name).unlink(missing_ok=True)
        left = sorted(p.name for p in out_dir.iterdir())
        if left:
            logger.warning("overwrite: left unrelated entries in %s untouched: %s", out_dir, left)
    out_dir.mkdir(parents=True, exist_ok=True)


def _execute(renderer: FrameRenderer, job: FrameJob) -> FrameResult:
    if job.file_kind == "image":
        return renderer.render(job)
    width, height, size = write_broken(job, renderer, renderer.dump_dir)
    return FrameResult(job.rel_path, width, height, (), job.file_kind, size)


def generate_dump(
    out_dir: Path, spec: DumpSpec, *, overwrite: bool = False, progress: ProgressFn | None = None
) -> DumpSummary:
    """Generate a synthetic SD-card (or drone) dump with its ground truth.

    Args:
        out_dir: output folder; ``<out>/dump`` gets the card folders, ``<out>`` the tables.
        spec: what to generate (see :class:`DumpSpec` and ``DumpSpec.preset``).
        overwrite: replace a previous dump in a non-empty ``out_dir`` (only ecowatch's own
            outputs are removed).
        progress: called as ``progress(done, total)`` after each file.

    Returns:
        Paths written and counts.

    Raises:
        ConfigError: ``out_dir`` is not empty and ``overwrite`` is False, or is a file.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    _prepare(out_dir, overwrite)
    dump_dir = out_dir / DUMP_FOLDER
    if spec.mode == "drone":
        from ecowatch.synth.drone import generate_flights

        rows, records, broken, region_keys = generate_flights(spec, dump_dir, progress=progress)
    else:
        rows, records, broken, region_keys = _generate_cards(spec, dump_dir, progress)
    files = {name: out_dir / file for name, file in OUTPUT_FILES.items()}
    write_deployments(files["deployments"], rows)
    write_taxonomy(files["taxonomy"])
    write_coco(files["coco"], records, description=f"ecowatch synthetic {spec.mode} dump, seed {spec.seed}",
               version=GENERATOR_VERSION, year=spec.start_date.year, date_created=spec.start_date.isoformat())
    write_regions_geojson(files["regions"], tuple(REGIONS_BY_KEY[k] for k in region_keys))
    write_range_maps(files["range_maps"])
    box_counts = count_boxes(records)
    broken_by_kind: dict[str, int] = {}
    for item in broken:
        broken_by_kind[item.kind] = broken_by_kind.get(item.kind, 0) + 1
    counts = {
        "deployments": len(rows),
        "frames": len(records),
        "empty_frames": sum(1 for r in records if not r.boxes),
        "animal_boxes": sum(v for k, v in box_counts.items() if k not in ("human", "vehicle")),
        "person_boxes": box_counts["human"],
        "vehicle_boxes": box_counts["vehicle"],
        "broken_files": len(broken),
    }
    write_manifest(
        files["manifest"], spec_record=spec.to_record(), version=GENERATOR_VERSION, counts=counts,
        box_counts=box_counts, broken=broken, files={**OUTPUT_FILES, "dump": DUMP_FOLDER},
        notes=[
            "Paths are relative to the dump folder.",
            "COCO datetime is the true camera-local time, also where the camera clock was wrong (clock_reset).",
            "seq_num_frames counts the frames the camera took, including any broken one.",
            "Ground truth of broken files is in broken_files only; range maps are coarse sketches, not survey data.",
        ],
    )
    media = tuple(sorted(p for p in dump_dir.rglob("*") if p.is_file()))
    summary = DumpSummary(
        out_dir=out_dir, dump_dir=dump_dir, files=files, media_files=media, n_frames=counts["frames"],
        n_empty=counts["empty_frames"], n_animals=counts["animal_boxes"], n_people=counts["person_boxes"],
        n_vehicles=counts["vehicle_boxes"], n_broken_files=len(broken), broken_by_kind=broken_by_kind,
        species_counts={k: v for k, v in box_counts.items() if k not in ("human", "vehicle")},
        seconds=time.perf_counter() - started,
    )
    logger.info("generated %d frames (%d empty) and %d broken files in %s in %.1f s (%.1f frames/s)",
                summary.n_frames, summary.n_empty, summary.n_broken_files, out_dir, summary.seconds,
                summary.frames_per_second)
    return summary


def _generate_cards(spec: DumpSpec, dump_dir: Path, progress: ProgressFn | None
                    ) -> tuple[list[Deployment], list[ImageRecord], list[BrokenFile], list[str]]:
    deployments = plan_deployments(spec)
    frames = {plan.index: plan_frames(spec, plan) for plan in deployments}
    jobs, broken = assign_card_paths(spec, deployments, frames)
    extra = appledouble_for(spec, jobs, deployments)
    if extra is not None:
        broken.append(extra)
    records: list[ImageRecord] = []
    results = run_jobs(jobs, workers=spec.workers, make_state=FrameRenderer,
                       state_args=(deployments, dump_dir, spec.jpeg_quality, spec.seed), execute=_execute,
                       progress=progress)
    for job, result in zip(jobs, results):
        if result.file_kind != "image":
            continue
        plan = deployments[job.deployment]
        records.append(ImageRecord(job.rel_path, result.width, result.height, plan.location.location_id,
                                   job.true_time, job.seq_id, job.seq_num_frames, job.frame_num,
                                   plan.deployment_id, result.boxes))
    if extra is not None:
        (dump_dir / extra.path).write_bytes(appledouble_bytes(extra.path.rsplit("/", 1)[1][2:]))
    rows = [
        Deployment(p.deployment_id, p.location.location_id, p.location.name, p.location.latitude,
                   p.location.longitude, p.start, p.end, p.utc_offset_min, p.camera_id, p.camera_serial,
                   p.camera.make, p.camera.model, p.setup_notes, p.location.habitat)
        for p in deployments
    ]
    region_keys = sorted({p.location.region.key for p in deployments}, key=list(REGIONS_BY_KEY).index)
    return rows, records, broken, region_keys
