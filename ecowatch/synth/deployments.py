"""Where and when cameras stand: locations, deployments, camera units and their SD cards.

The layout reproduces what makes real deployment bookkeeping hard: the first location is
serviced once (two consecutive deployments at one place, new camera unit), the camera taken
down there moves to another location later, some cards are named after the deployment and
others carry an arbitrary card label (``SD_07``), one model writes no EXIF, and one camera's
clock resets to 2000-01-01 00:00:00 after a battery change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from ecowatch.synth.camera import CAMERAS_BY_KEY, CameraModel
from ecowatch.synth.geo import REGIONS, Region, sample_point
from ecowatch.synth.scene import CameraView, SceneSpec, season_of
from ecowatch.synth.spec import DumpSpec
from ecowatch.synth.taxa import HABITAT_MIX, HABITAT_PREFERENCE, SPECIES

CLOCK_RESET_TIME = dt.datetime(2000, 1, 1, 0, 0, 0)

# Order in which new camera units are taken from the shelf; the EXIF-less model is used once.
_SHELF = ("reconyx_hp2xc", "browning_hp5", "suntek_hc801", "bushnell_core", "reconyx_hf2", "spypoint_flex")
NO_EXIF_MODEL = "suntek_hc801"


@dataclass(frozen=True)
class Location:
    """A place where cameras stand (several deployments may share one)."""

    location_id: str
    name: str
    region: Region
    latitude: float
    longitude: float
    elevation_m: float
    scene_seed: int
    site_factors: tuple[tuple[str, float], ...]
    habitat: str = ""


@dataclass(frozen=True)
class DeploymentPlan:
    """One camera placement and how its card is written.

    Attributes:
        index: position in the deployments table.
        deployment_id: unique id.
        location: where it stands.
        start: setup time, camera-local (naive).
        end: retrieval time, camera-local (naive).
        camera: camera model.
        camera_serial: serial number of the unit (BodySerialNumber).
        camera_id: the operator's id of the unit.
        card_folder: top-level folder of its card in the dump (deployment id or card label).
        burst_len: frames per trigger.
        scene: the static scene.
        gps: (lat, lon, altitude) the unit writes, if it has GPS.
        clock_reset_at: true local time of the battery change after which the clock reads
            2000-01-01 00:00:00, or None.
        frame_budget: approximate number of frames to generate.
        setup_notes: free text for the deployments table.
    """

    index: int
    deployment_id: str
    location: Location
    start: dt.datetime
    end: dt.datetime
    camera: CameraModel
    camera_serial: str
    camera_id: str
    card_folder: str
    burst_len: int
    scene: SceneSpec
    gps: tuple[float, float, float] | None
    clock_reset_at: dt.datetime | None
    frame_budget: int
    setup_notes: str

    @property
    def utc_offset_min(self) -> int:
        """Offset of the camera clock from UTC, minutes."""
        return self.location.region.utc_offset_min

    def camera_time(self, true_time: dt.datetime) -> dt.datetime:
        """What the camera clock reads at ``true_time`` (local)."""
        if self.clock_reset_at is not None and true_time >= self.clock_reset_at:
            return CLOCK_RESET_TIME + (true_time - self.clock_reset_at)
        return true_time


def _serial(camera: CameraModel, rng: np.random.Generator) -> str:
    digits = "".join(str(int(d)) for d in rng.integers(0, 10, 7))
    letters = "".join(chr(ord("A") + int(c)) for c in rng.integers(0, 26, 2))
    return f"{camera.serial_prefix}{letters}{digits}"


def _locations(spec: DumpSpec, n_locations: int, rng: np.random.Generator) -> list[Location]:
    n_regions = min(len(REGIONS), max(1, n_locations))
    per_region: dict[str, int] = {}
    habitat_rng = np.random.default_rng([spec.seed, 107])  # its own stream: the other draws stay as they were
    out = []
    for i in range(n_locations):
        region = REGIONS[i % n_regions]
        k = per_region.get(region.key, 0)
        per_region[region.key] = k + 1
        lat, lon = sample_point(region, rng)
        names = region.place_names
        name = names[k % len(names)] + (f" {k // len(names) + 1}" if k >= len(names) else "")
        habitat = ""
        if spec.site_habitats:
            mix = HABITAT_MIX[region.key]
            habitat = str(habitat_rng.choice(list(mix), p=np.asarray(list(mix.values())) / sum(mix.values())))
        factors = tuple((s.key, round(float(rng.lognormal(0.0, 0.45)) * HABITAT_PREFERENCE[s.key].get(habitat, 1.0), 3))
                        for s in SPECIES)
        out.append(
            Location(
                location_id=f"{region.code}{i + 1:02d}",
                name=name,
                region=region,
                latitude=lat,
                longitude=lon,
                elevation_m=round(max(5.0, region.elevation_m + float(rng.normal(0, 60))), 0),
                scene_seed=int(rng.integers(2**31)),
                site_factors=factors,
                habitat=habitat,
            )
        )
    return out


def plan_deployments(spec: DumpSpec) -> list[DeploymentPlan]:
    """Lay out locations, deployment windows, camera units and cards.

    Args:
        spec: the dump spec (camera mode).

    Returns:
        Deployments ordered by location, then time.
    """
    rng = np.random.default_rng([spec.seed, 101])
    n = spec.n_deployments
    n_serviced = min(max(1, n // 4), n // 2) if n >= 2 else 0
    locations = _locations(spec, n - n_serviced, rng)
    period_start = dt.datetime.combine(spec.start_date, dt.time())
    days = float(spec.n_days)

    # Windows: (location, start_day_offset, end_day_offset) in days from period start.
    windows: list[tuple[Location, float, float, str]] = []
    service_day = days * float(rng.uniform(0.4, 0.6))
    for i, loc in enumerate(locations):
        if i < n_serviced:
            windows.append((loc, float(rng.uniform(0.0, 0.05)) * days, service_day, "first"))
            windows.append((loc, service_day, float(rng.uniform(0.95, 1.0)) * days, "serviced"))
        else:
            windows.append((loc, float(rng.uniform(0.0, 0.15)) * days, float(rng.uniform(0.85, 1.0)) * days, ""))
    # The unit taken down at the first service moves to the last single-deployment location.
    mover = len(windows) - 1 if n >= 3 and windows[-1][3] == "" else None
    if mover is not None:
        loc, _, end, _ = windows[mover]
        windows[mover] = (loc, min(service_day + 1.0, end - 1.0), end, "moved")

    shelf = list(_SHELF)
    used_no_exif = False
    units: list[tuple[CameraModel, str, str]] = []
    plans: list[DeploymentPlan] = []
    clock_reset_index = None
    if spec.include_broken_files and n >= 2:
        clock_reset_index = 1  # the unit put up at the first service has its batteries changed
    budgets = np.asarray([max(0.5, w[2] - w[1]) * float(rng.uniform(0.6, 1.4)) for w in windows])
    budgets = np.maximum(1, np.round(budgets / budgets.sum() * spec.n_frames)).astype(int)
    for index, (loc, start_day, end_day, role) in enumerate(windows):
        if role == "moved":
            camera, serial, camera_id = units[0]
        else:
            key = shelf[len(units) % len(shelf)]
            if key == NO_EXIF_MODEL and (used_no_exif or n < 3):
                key = "reconyx_hf2"
            used_no_exif = used_no_exif or key == NO_EXIF_MODEL
            camera = CAMERAS_BY_KEY[key]
            serial, camera_id = _serial(camera, rng), f"CAM-{len(units) + 1:02d}"
            units.append((camera, serial, camera_id))
        # field work happens in daytime: setup and retrieval between 09:00 and 16:00
        start = period_start + dt.timedelta(days=int(start_day), seconds=int(rng.integers(9 * 3600, 16 * 3600)))
        end = period_start + dt.timedelta(days=int(end_day), seconds=int(rng.integers(9 * 3600, 16 * 3600)))
        if role == "serviced":
            start = plans[-1].end + dt.timedelta(minutes=int(rng.integers(10, 40)))
        elif role == "moved":  # never in two places at once
            start = max(start, plans[0].end + dt.timedelta(hours=2))
        if end <= start + dt.timedelta(days=1):
            end = start + dt.timedelta(days=1)
        dep_id = f"{loc.location_id}-{sum(1 for p in plans if p.location is loc) + 1}"
        forced_id = camera.key == NO_EXIF_MODEL or index == clock_reset_index
        use_label = not forced_id and (index == 0 or rng.random() < 0.5)
        card = f"SD_{int(rng.integers(1, 99)):02d}" if use_label else dep_id
        while use_label and any(p.card_folder == card for p in plans):
            card = f"SD_{int(rng.integers(1, 99)):02d}"
        mid_month = (start + (end - start) / 2).month
        season = season_of(mid_month)
        habitat = loc.region.habitat
        snow = (habitat == "subalpine" and mid_month in (11, 12, 1, 2, 3, 4)) or (
            habitat == "beech_spruce" and season == "winter" and rng.random() < 0.35)
        mount = np.random.default_rng([loc.scene_seed, 1])  # the tree the camera is strapped to
        view = CameraView(  # re-mounting at a service visit changes the framing only slightly
            spec.image_size[0], spec.image_size[1],
            horizon_y=spec.image_size[1] * (float(mount.uniform(0.3, 0.45)) + float(rng.normal(0, 0.01))),
            focal_px=spec.image_size[0] * float(mount.uniform(0.95, 1.2)) * float(rng.uniform(0.98, 1.02)),
            camera_height_m=float(mount.uniform(0.45, 0.9)) + float(rng.normal(0, 0.02)),
        )
        scene = SceneSpec(loc.scene_seed, int(rng.integers(2**31)), loc.region.habitat, season, bool(snow), view,
                          sway=bool(rng.random() < 0.3))
        gps = None
        if camera.has_gps:
            gps = (round(loc.latitude + float(rng.normal(0, 4e-5)), 6),  # a few metres of GPS error
                   round(loc.longitude + float(rng.normal(0, 6e-5)), 6),
                   loc.elevation_m + round(float(rng.normal(0, 8)), 1))
        reset_at = None
        if index == clock_reset_index:
            reset_at = start + (end - start) * float(rng.uniform(0.45, 0.6))
        notes = {"first": "camera replaced at service visit", "serviced": "new unit after service visit",
                 "moved": f"unit {units[0][2]} moved here from {plans[0].deployment_id}" if plans else ""}.get(role, "")
        if reset_at is not None:
            notes = (notes + "; " if notes else "") + "batteries changed mid-deployment"
        plans.append(
            DeploymentPlan(
                index=index, deployment_id=dep_id, location=loc, start=start, end=end, camera=camera,
                camera_serial=serial, camera_id=camera_id, card_folder=card,
                burst_len=int(rng.choice(camera.bursts)), scene=scene, gps=gps, clock_reset_at=reset_at,
                frame_budget=int(budgets[index]), setup_notes=notes,
            )
        )
    return plans
