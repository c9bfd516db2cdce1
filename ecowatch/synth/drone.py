"""Drone mode: nadir frames over open terrain with many small animals, DJI-style files.

Each flight is a deployment (one survey area, one drone). Frames follow a lawn-mower path; each
holds 20-100 deer or wild boar 10-60 pixels long (ground sampling distance from altitude), many
of them in herds, some under the edge of the forest canopy. Files are named like a DJI card
(``DCIM/100MEDIA/DJI_0001.JPG``) with EXIF GPS, altitude and DJI's XMP flight metadata.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ecowatch.synth.broken import BrokenFile
from ecowatch.synth.camera import CAMERAS_BY_KEY, build_exif
from ecowatch.synth.geo import REGIONS, sample_point
from ecowatch.synth.parallel import ProgressFn, run_jobs
from ecowatch.synth.shapes import rotate, value_noise
from ecowatch.synth.spec import DumpSpec
from ecowatch.synth.taxa import SPECIES_BY_KEY
from ecowatch.synth.topdown import DRONE_SPECIES, DroneAnimal, draw_topdown
from ecowatch.synth.truth import Box, ImageRecord
from ecowatch.tables import Deployment

DRONE = CAMERAS_BY_KEY["dji_m3e"]
SENSOR_WIDTH_MM = 17.3
FOCAL_MM = 12.29
REFERENCE_WIDTH_PX = 4000  # the sensor's full width; smaller frames are crops at the same scale
FRAME_INTERVAL_S = 4
MIN_VISIBLE_PX = 12  # fewer visible pixels than this and an animal is not annotated


def ground_sampling_m(altitude_m: float) -> float:
    """Metres of ground per pixel at ``altitude_m`` above ground (nadir, M3E wide camera)."""
    return altitude_m * SENSOR_WIDTH_MM / (FOCAL_MM * REFERENCE_WIDTH_PX)


@dataclass(frozen=True)
class DroneFrameJob:
    """One drone frame to render."""

    flight: int
    rel_path: str
    true_time: dt.datetime
    latitude: float
    longitude: float
    altitude_m: float
    ground_elevation_m: float
    yaw_deg: float
    width: int
    height: int
    terrain_seed: int
    snow: bool
    animals: tuple[DroneAnimal, ...]
    truncated: bool = False


HERD_SIZES = (1, 2, 3, 5, 8, 12, 20)
HERD_WEIGHTS = (0.25, 0.15, 0.15, 0.15, 0.12, 0.1, 0.08)


def _plan_animals(spec: DumpSpec, region_key: str, seed_parts: list[int], width: int, height: int,
                  prefix: str) -> tuple[DroneAnimal, ...]:
    """20-100 animals of one frame, mostly in herds (species weighted by the region's abundance)."""
    rng = np.random.default_rng(seed_parts)
    weights = np.asarray([SPECIES_BY_KEY[s].abundance.get(region_key, 0.0) for s in DRONE_SPECIES]) + 0.02
    target = int(rng.integers(spec.drone_animals[0], spec.drone_animals[1] + 1))
    px_per_m = 1.0 / ground_sampling_m(spec.drone_altitude_m)
    animals: list[DroneAnimal] = []
    while len(animals) < target:
        species = DRONE_SPECIES[int(rng.choice(len(DRONE_SPECIES), p=weights / weights.sum()))]
        herd = min(target - len(animals), int(rng.choice(HERD_SIZES, p=HERD_WEIGHTS)))
        cx, cy = float(rng.uniform(0, width)), float(rng.uniform(0, height))
        heading = float(rng.uniform(0, 360))
        spread = 2.0 * math.sqrt(herd) * px_per_m
        for k in range(herd):
            juvenile = k > 0 and rng.random() < (0.45 if species == "wild_boar" else 0.2)
            x = float(np.clip(cx + rng.normal(0, spread), 0, width - 1))
            y = float(np.clip(cy + rng.normal(0, spread), 0, height - 1))
            facing = heading + float(rng.normal(0, 35))
            pose = str(rng.choice(["stand", "walk", "lie"], p=[0.5, 0.3, 0.2]))
            size = (0.5 if species == "wild_boar" else 0.65) if juvenile else float(rng.uniform(0.9, 1.1))
            animals.append(DroneAnimal(species, f"{prefix}-a{len(animals) + 1:03d}", x, y, facing, pose, size,
                                       male=bool(rng.random() < 0.4), look_seed=int(rng.integers(2**31))))
    return tuple(animals)


def plan_flights(spec: DumpSpec) -> tuple[list[Deployment], list[DroneFrameJob], list[str]]:
    """Flights (as deployments) and their frames.

    Returns:
        (deployment rows, frame jobs in card order, region keys used).
    """
    rng = np.random.default_rng([spec.seed, 901])
    width, height = spec.image_size
    gsd = ground_sampling_m(spec.drone_altitude_m)
    rows, jobs, regions = [], [], []
    per_flight = np.full(spec.n_deployments, spec.n_frames // spec.n_deployments)
    per_flight[: spec.n_frames % spec.n_deployments] += 1
    for flight in range(spec.n_deployments):
        region = REGIONS[(flight + 1) % len(REGIONS)]
        regions.append(region.key)
        lat, lon = sample_point(region, rng)
        day = spec.start_date + dt.timedelta(days=int(rng.integers(0, spec.n_days)))
        start = dt.datetime.combine(day, dt.time(8)) + dt.timedelta(minutes=int(rng.integers(0, 180)))
        dep_id = f"{region.code}{flight + 1:02d}-F1"
        serial = f"{DRONE.serial_prefix}{int(rng.integers(10**9, 10**10))}"
        ground = region.elevation_m + float(rng.normal(0, 40))
        snow = region.habitat == "subalpine" and day.month in (11, 12, 1, 2, 3, 4)
        yaw = float(rng.uniform(0, 360))
        footprint_m = (width * gsd, height * gsd)
        metres_per_deg_lat = 111_320.0
        metres_per_deg_lon = metres_per_deg_lat * math.cos(math.radians(lat))
        n = int(per_flight[flight])
        for k in range(n):
            row, col = divmod(k, 4)  # lawn-mower: 4 frames per line, 70 % overlap
            along = (col if row % 2 == 0 else 3 - col) * footprint_m[0] * 0.3
            across = row * footprint_m[1] * 0.3
            dx, dy = rotate((along, across), yaw)  # metres east, north
            job_rng_parts = [spec.seed, 902, flight, k]
            jobs.append(DroneFrameJob(
                flight, f"{dep_id}/DCIM/100MEDIA/DJI_{k + 1:04d}.JPG",
                start + dt.timedelta(seconds=FRAME_INTERVAL_S * k),
                round(lat + dy / metres_per_deg_lat, 7), round(lon + dx / metres_per_deg_lon, 7),
                spec.drone_altitude_m, round(ground, 1), round(yaw, 1), width, height, int(rng.integers(2**31)), snow,
                _plan_animals(spec, region.key, job_rng_parts, width, height, f"{dep_id}-{k + 1:04d}"),
                truncated=spec.include_broken_files and flight == 0 and k == n - 1 and n > 1,
            ))
        end = start + dt.timedelta(seconds=FRAME_INTERVAL_S * n + 60)
        rows.append(Deployment(dep_id, f"{region.code}{flight + 1:02d}", f"{region.name.split(',')[0]} survey area",
                               lat, lon, start - dt.timedelta(minutes=5), end, region.utc_offset_min,
                               f"UAV-{flight + 1:02d}", serial, DRONE.make, DRONE.model,
                               f"nadir survey at {spec.drone_altitude_m:.0f} m AGL, GSD {gsd * 100:.1f} cm/px"))
    return rows, jobs, sorted(set(regions), key=[r.key for r in REGIONS].index)


class DroneRenderer:
    """Renders drone frame jobs (one per worker process)."""

    def __init__(self, rows: list[Deployment], dump_dir: Path, jpeg_quality: int, altitude_m: float) -> None:
        self.rows = rows
        self.dump_dir = Path(dump_dir)
        self.jpeg_quality = jpeg_quality
        self.px_per_m = 1.0 / ground_sampling_m(altitude_m)

    def render(self, job: DroneFrameJob) -> tuple[tuple[Box, ...], int]:
        """Write one frame; returns its visible boxes and bytes written."""
        rng = np.random.default_rng(job.terrain_seed)
        frame, canopy_alpha, canopy_rgb = _terrain(job, rng, self.px_per_m)
        owner = np.full((job.height, job.width), -1, np.int32)
        rects: dict[int, tuple[int, int, int, int]] = {}
        sun = float(rng.uniform(0, 360))
        for index, animal in enumerate(job.animals):
            sprite = draw_topdown(animal, px_per_m=self.px_per_m, month=job.true_time.month, sun_deg=sun)
            x0 = int(round(animal.x_px - sprite.anchor[0]))
            y0 = int(round(animal.y_px - sprite.anchor[1]))
            sh, sw = sprite.rgba.shape[:2]
            fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(job.width, x0 + sw), min(job.height, y0 + sh)
            if fx0 >= fx1 or fy0 >= fy1:
                continue
            part = sprite.rgba[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0].astype(np.float32)
            alpha = part[..., 3:] / 255.0
            region = frame[fy0:fy1, fx0:fx1]
            region += (part[..., :3] - region) * alpha
            body = (part[..., 3] > 160) & (part[..., :3].sum(axis=2) > 75)  # the shadow is not the animal
            owner[fy0:fy1, fx0:fx1][body] = index
            rects[index] = (fx0, fy0, fx1, fy1)
        frame = frame * (1 - canopy_alpha[..., None]) + canopy_rgb * canopy_alpha[..., None]
        owner[canopy_alpha > 0.5] = -1
        grain = rng.normal(0, 2.0, (job.height // 4 + 1, job.width // 4 + 1)).astype(np.float32)
        frame += cv2.resize(grain, (job.width, job.height), interpolation=cv2.INTER_NEAREST)[..., None]
        pixels = np.clip(frame, 0, 255).astype(np.uint8)
        boxes = []
        for index, (fx0, fy0, fx1, fy1) in rects.items():
            ys, xs = np.nonzero(owner[fy0:fy1, fx0:fx1] == index)
            if len(xs) < MIN_VISIBLE_PX:
                continue
            x_min, y_min = int(xs.min()) + fx0, int(ys.min()) + fy0
            bbox = (x_min, y_min, int(xs.max()) + fx0 - x_min + 1, int(ys.max()) + fy0 - y_min + 1)
            boxes.append(Box(job.animals[index].species, job.animals[index].object_id, bbox))
        data = self._encode(job, pixels)
        if job.truncated:
            data = data[: len(data) // 2]
        path = self.dump_dir / job.rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return tuple(boxes), len(data)

    def _encode(self, job: DroneFrameJob, pixels: np.ndarray) -> bytes:
        row = self.rows[job.flight]
        exif = build_exif(DRONE, serial=row.camera_serial, camera_time=job.true_time,
                          gps=(job.latitude, job.longitude, job.ground_elevation_m + job.altitude_m),
                          focal_length_mm=FOCAL_MM)
        xmp = (
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/" '
            f'drone-dji:AbsoluteAltitude="+{job.ground_elevation_m + job.altitude_m:.2f}" '
            f'drone-dji:RelativeAltitude="+{job.altitude_m:.2f}" drone-dji:GimbalPitchDegree="-90.00" '
            f'drone-dji:FlightYawDegree="{job.yaw_deg:+.2f}" drone-dji:GpsLatitude="{job.latitude:.7f}" '
            f'drone-dji:GpsLongitude="{job.longitude:.7f}"/></rdf:RDF></x:xmpmeta>'
        ).encode()
        buffer = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(buffer, "JPEG", quality=self.jpeg_quality, exif=exif, xmp=xmp)
        return buffer.getvalue()


def _terrain(job: DroneFrameJob, rng: np.random.Generator, px_per_m: float
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nadir ground (meadow, tracks) plus a forest canopy layer (alpha, colour) drawn over animals."""
    height, width = job.height, job.width
    shape = (height, width)
    cell = 20.0 * px_per_m  # metres -> pixels
    if job.snow:
        grass = np.asarray((205, 208, 212), np.float32)
    elif job.true_time.month in range(4, 10):
        grass = np.asarray((112, 122, 70), np.float32)
    else:  # winter-brown meadow
        grass = np.asarray((128, 118, 82), np.float32)
    detail = value_noise(shape, 1.5 * px_per_m, rng) * 0.5 + value_noise(shape, 6 * px_per_m, rng) * 0.5
    patches = value_noise(shape, cell * 2, rng)
    frame = grass * (1.0 + 0.08 * detail[..., None] + 0.07 * patches[..., None])
    track = np.zeros(shape, np.uint8)
    for _ in range(int(rng.integers(0, 3))):
        points = np.cumsum(rng.normal(0, width / 10, (8, 2)), axis=0) + rng.uniform(0, [width, height], 2)
        cv2.polylines(track, [points.astype(np.int32)], False, 255, max(2, int(2.5 * px_per_m)))
    track_f = cv2.GaussianBlur(track, (0, 0), max(1.0, 0.5 * px_per_m)).astype(np.float32)[..., None] / 255.0
    frame = frame * (1 - 0.6 * track_f) + np.asarray((150, 132, 100), np.float32) * 0.6 * track_f
    forest = value_noise(shape, cell * 3, rng) > 0.55
    canopy = np.zeros((height, width, 3), np.uint8)
    canopy_mask = np.zeros(shape, np.uint8)
    ys, xs = np.nonzero(forest[:: max(1, int(3 * px_per_m)), :: max(1, int(3 * px_per_m))])
    step = max(1, int(3 * px_per_m))
    order = rng.permutation(len(xs))
    for i in order:
        cx, cy = int(xs[i] * step + rng.integers(0, step)), int(ys[i] * step + rng.integers(0, step))
        radius = int(rng.uniform(1.8, 3.5) * px_per_m)
        green = (int(rng.integers(25, 45)), int(rng.integers(50, 80)), int(rng.integers(30, 50)))
        if job.snow:
            green = (60, 75, 65)
        cv2.circle(canopy, (cx + radius // 3, cy + radius // 3), radius, (15, 20, 15), -1)
        cv2.circle(canopy, (cx, cy), radius, green, -1)
        cv2.circle(canopy, (cx - radius // 4, cy - radius // 4), max(1, radius // 2),
                   tuple(min(255, int(c * 1.3)) for c in green), -1)
        cv2.circle(canopy_mask, (cx + radius // 3, cy + radius // 3), radius, 255, -1)
        cv2.circle(canopy_mask, (cx, cy), radius, 255, -1)
    alpha = cv2.GaussianBlur(canopy_mask, (3, 3), 0).astype(np.float32) / 255.0
    return frame.astype(np.float32), alpha, canopy.astype(np.float32)


def _execute(renderer: DroneRenderer, job: DroneFrameJob) -> tuple[tuple[Box, ...], int]:
    return renderer.render(job)


def generate_flights(spec: DumpSpec, dump_dir: Path, *, progress: ProgressFn | None = None
                     ) -> tuple[list[Deployment], list[ImageRecord], list[BrokenFile], list[str]]:
    """Render every drone frame; returns rows, COCO records, broken files and regions used."""
    rows, jobs, region_keys = plan_flights(spec)
    results = run_jobs(jobs, workers=spec.workers, make_state=DroneRenderer,
                       state_args=(rows, dump_dir, spec.jpeg_quality, spec.drone_altitude_m), execute=_execute,
                       progress=progress)
    records, broken = [], []
    for job, (boxes, _) in zip(jobs, results):
        row = rows[job.flight]
        if job.truncated:
            broken.append(BrokenFile(job.rel_path, "truncated", row.deployment_id,
                                     job.true_time.isoformat(), job.true_time.isoformat(),
                                     tuple(a.species for a in job.animals)))
            continue
        records.append(ImageRecord(job.rel_path, job.width, job.height, row.location_id, job.true_time,
                                   f"{row.deployment_id}-{Path(job.rel_path).stem}", 1, 0, row.deployment_id, boxes))
    return rows, records, broken, region_keys
