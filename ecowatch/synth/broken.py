"""Card numbering and the broken files real cards contain.

Cards number their files in the order the camera writes them, so broken files take a number
like any other: a zero-byte JPEG (power lost while writing), a truncated JPEG, a ``.JPG`` that
is not an image (file-system corruption), a short MJPEG ``.AVI`` clip from a hybrid-mode
camera, and next to one frame a macOS AppleDouble ``._IMG_0001.JPG`` left by copying the card
on a Mac. The camera whose clock reset after a battery change writes ordinary frames with
2000-01-01 timestamps; those are listed too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ecowatch.synth.deployments import DeploymentPlan
from ecowatch.synth.events import FrameJob
from ecowatch.synth.spec import DumpSpec

BROKEN_KINDS = ("zero_byte", "truncated", "not_an_image", "appledouble", "video", "clock_reset")
VIDEO_FRAMES = 10
VIDEO_FPS = 8.0


@dataclass(frozen=True)
class BrokenFile:
    """One deliberately broken (or misleading) file, for ``manifest.json``.

    Attributes:
        path: path relative to the dump root.
        kind: one of :data:`BROKEN_KINDS`.
        deployment_id: the deployment whose card holds it.
        true_datetime: true local time of the capture (ISO 8601 without offset).
        camera_datetime: what the camera clock said (clock resets), else equal to the true time.
        categories: what was in front of the camera (species keys, ``human``, ``vehicle``).
    """

    path: str
    kind: str
    deployment_id: str
    true_datetime: str
    camera_datetime: str
    categories: tuple[str, ...] = ()


def assign_card_paths(
    spec: DumpSpec, deployments: list[DeploymentPlan], frames: dict[int, list[FrameJob]]
) -> tuple[list[FrameJob], list[BrokenFile]]:
    """Insert the broken files and give every job its path on its card.

    Args:
        spec: the dump spec (``include_broken_files``, ``files_per_folder``, ``seed``).
        deployments: the deployment plans.
        frames: frame jobs per deployment index, in time order.

    Returns:
        (all jobs with ``rel_path`` set, in card order per deployment; the broken-file list
        without the AppleDouble entry, which :func:`appledouble_for` adds).
    """
    frames = {k: list(v) for k, v in frames.items()}
    if spec.include_broken_files:
        rng = np.random.default_rng([spec.seed, 505])
        _plant(frames, deployments, rng)
    jobs: list[FrameJob] = []
    broken: list[BrokenFile] = []
    for plan in deployments:
        for number, job in enumerate(frames[plan.index]):
            ext = (plan.camera.video_ext or ".AVI") if job.file_kind == "video" else ".JPG"
            rel = f"{plan.card_folder}/DCIM/{plan.camera.file_name(number, spec.files_per_folder, ext=ext)}"
            job = dataclasses.replace(job, rel_path=rel)
            jobs.append(job)
            camera_time = plan.camera_time(job.true_time)
            kind = job.file_kind
            if kind == "image":
                kind = "clock_reset" if camera_time != job.true_time else ""
            if kind:
                broken.append(BrokenFile(rel, kind, plan.deployment_id, job.true_time.isoformat(),
                                         camera_time.isoformat(), tuple(p.category for p in job.placements)))
    return jobs, broken


def _plant(frames: dict[int, list[FrameJob]], deployments: list[DeploymentPlan], rng: np.random.Generator) -> None:
    """Mark or insert the broken slots (in place)."""
    order = [p.index for p in deployments if frames[p.index]]
    video_deps = [p.index for p in deployments if p.camera.video_ext and frames[p.index]] or order
    dep = video_deps[int(rng.integers(len(video_deps)))]
    jobs = frames[dep]
    animal = [i for i, j in enumerate(jobs) if j.placements and j.placements[0].individual is not None]
    animal = animal or list(range(len(jobs)))
    i = _burst_end(jobs, animal[int(rng.integers(len(animal)))])
    frames[dep].insert(i + 1, dataclasses.replace(jobs[i], true_time=jobs[i].true_time + dt.timedelta(seconds=2),
                                                   file_kind="video", frame_num=0, seq_num_frames=1,
                                                   seq_id=jobs[i].seq_id + "-video"))
    taken: set[tuple[int, int]] = set()
    for kind in ("zero_byte", "truncated"):
        dep = order[int(rng.integers(len(order)))]
        candidates = [k for k, j in enumerate(frames[dep]) if j.file_kind == "image" and (dep, k) not in taken]
        k = candidates[int(rng.integers(len(candidates)))]
        taken.add((dep, k))
        frames[dep][k] = dataclasses.replace(frames[dep][k], file_kind=kind)
    dep = order[int(rng.integers(len(order)))]
    k = _burst_end(frames[dep], int(rng.integers(len(frames[dep]))))
    junk_time = frames[dep][k].true_time + dt.timedelta(seconds=3)
    frames[dep].insert(k + 1, dataclasses.replace(frames[dep][k], true_time=junk_time, placements=(),
                                                  file_kind="not_an_image", seq_id=frames[dep][k].seq_id + "-junk",
                                                  frame_num=0, seq_num_frames=1))


def _burst_end(jobs: list[FrameJob], i: int) -> int:
    """Index of the last frame of the burst that frame ``i`` belongs to."""
    while i + 1 < len(jobs) and jobs[i + 1].seq_id == jobs[i].seq_id:
        i += 1
    return i


def appledouble_for(spec: DumpSpec, jobs: list[FrameJob], deployments: list[DeploymentPlan]) -> BrokenFile | None:
    """Pick the frame that gets a macOS ``._`` sidecar (None unless broken files are wanted)."""
    if not spec.include_broken_files:
        return None
    rng = np.random.default_rng([spec.seed, 506])
    images = [j for j in jobs if j.file_kind == "image"]
    job = images[int(rng.integers(len(images)))]
    folder, name = job.rel_path.rsplit("/", 1)
    plan = deployments[job.deployment]
    return BrokenFile(f"{folder}/._{name}", "appledouble", plan.deployment_id, job.true_time.isoformat(),
                      plan.camera_time(job.true_time).isoformat())


def appledouble_bytes(name: str) -> bytes:
    """An AppleDouble (``._``) file as macOS writes next to a copied file: header, Finder info, xattrs."""
    finder_info = b"JPEGprvw" + bytes(24)
    attr_name = b"com.apple.quarantine\x00"
    attr_value = f"0083;00000000;Preview;{name}".encode()
    entries = 2
    header = struct.pack(">II16sH", 0x00051607, 0x00020000, b"Mac OS X        ", entries)
    offset = len(header) + entries * 12
    body = finder_info + struct.pack(">H", len(attr_name)) + attr_name + attr_value
    descriptors = struct.pack(">III", 9, offset, len(finder_info) + 2 + len(attr_name) + len(attr_value))
    descriptors += struct.pack(">III", 2, offset + len(body), 286)
    return (header + descriptors + body + bytes(286)).ljust(4096, b"\x00")


def write_broken(job: FrameJob, renderer, dump_dir: Path) -> tuple[int, int, int]:
    """Write a broken-kind job's file.

    Args:
        job: a job whose ``file_kind`` is not ``image``.
        renderer: the :class:`~ecowatch.synth.render.FrameRenderer` (for truncated frames and videos).
        dump_dir: root of the dump.

    Returns:
        (width, height, bytes written); width and height are 0 where there is no picture.

    Raises:
        ValueError: unknown kind (a programming error).
    """
    path = Path(dump_dir) / job.rel_path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([job.seed, 7])
    if job.file_kind == "zero_byte":
        path.write_bytes(b"")
        return 0, 0, 0
    if job.file_kind == "not_an_image":
        data = rng.integers(0, 256, int(rng.integers(2048, 24576)), dtype=np.uint8).tobytes()
        path.write_bytes(data)
        return 0, 0, len(data)
    if job.file_kind == "truncated":
        pixels, _ = renderer.compose(job)
        data = renderer.encode(job, pixels)
        cut = data[: int(len(data) * float(rng.uniform(0.35, 0.7)))]
        path.write_bytes(cut)
        return pixels.shape[1], pixels.shape[0], len(cut)
    if job.file_kind == "video":
        return _write_video(job, renderer, path)
    raise ValueError(f"unknown broken-file kind {job.file_kind!r}")


def _write_video(job: FrameJob, renderer, path: Path) -> tuple[int, int, int]:
    """A short MJPEG AVI of the scene with the burst's animals walking on."""
    plan = renderer.deployments[job.deployment]
    width = (plan.scene.view.width // 2) & ~1
    height = (plan.scene.view.height // 2) & ~1
    fourcc = cv2.VideoWriter_fourcc(*"MJPG")
    writer = cv2.VideoWriter(str(path), cv2.CAP_OPENCV_MJPEG, fourcc, VIDEO_FPS, (width, height))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write an MJPEG AVI to {path}")
    try:
        for f in range(VIDEO_FRAMES):
            step = f / VIDEO_FPS
            placements = tuple(
                dataclasses.replace(p, lateral_m=p.lateral_m + p.facing * 0.8 * step,
                                    pose=dataclasses.replace(p.pose, gait_phase=p.pose.gait_phase + 5.0 * step))
                for p in job.placements
            )
            pixels, _ = renderer.compose(dataclasses.replace(job, placements=placements, seed=job.seed + f))
            small = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)
            writer.write(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return width, height, path.stat().st_size
