"""What to generate: :class:`DumpSpec`, every knob of the synthetic dump, and its presets."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from ecowatch.errors import ConfigError

MODES = ("camera", "drone")


@dataclass(frozen=True)
class DumpSpec:
    """Every knob of a synthetic SD-card (or drone flight) dump.

    The same spec gives byte-identical output whatever the number of ``workers``.

    Attributes:
        seed: seed of every random choice.
        mode: ``"camera"`` (camera traps, side view) or ``"drone"`` (nadir frames, many small
            animals).
        n_deployments: camera placements (camera mode) or flights (drone mode).
        start_date: first day of the study period.
        n_days: length of the study period in days.
        n_frames: approximate number of image frames to write (broken files not included).
        image_size: (width, height) of every frame in pixels.
        empty_fraction: approximate share of frames with nothing in them (false triggers and
            the ends of bursts).
        person_fraction: share of triggers caused by people (hikers, field staff).
        vehicle_fraction: share of triggers caused by vehicles on tracks.
        include_broken_files: add the broken files real cards contain (zero-byte, truncated and
            non-image ``.JPG`` files, an AppleDouble ``._`` file, a short ``.AVI`` video, and a
            camera whose clock reset to 2000-01-01 after a battery change, if there are at least two
            deployments).
        files_per_folder: files in one ``DCIM/1xxYYYYY`` folder before the camera rolls over
            to the next folder number.
        jpeg_quality: JPEG quality (1-95) of the written frames.
        workers: worker processes rendering frames (0 = in-process).
        drone_animals: (min, max) animals in one drone frame.
        drone_altitude_m: drone height above ground; sets the ground sampling distance.
        site_habitats: each camera site has a habitat (the deployments table's ``habitat``) that
            scales every species' abundance there (:data:`ecowatch.synth.taxa.HABITAT_PREFERENCE`);
            False gives the frames and labels of ecowatch before habitats (same seed; no habitat).
    """

    seed: int = 0
    mode: str = "camera"
    n_deployments: int = 6
    start_date: dt.date = dt.date(2025, 4, 1)
    n_days: int = 60
    n_frames: int = 500
    image_size: tuple[int, int] = (1280, 720)
    empty_fraction: float = 0.5
    person_fraction: float = 0.04
    vehicle_fraction: float = 0.015
    include_broken_files: bool = True
    files_per_folder: int = 100
    jpeg_quality: int = 88
    workers: int = 0
    drone_animals: tuple[int, int] = (20, 100)
    drone_altitude_m: float = 110.0
    site_habitats: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.mode not in MODES:
            problems.append(f"mode {self.mode!r} is not one of {list(MODES)}")
        if not 1 <= self.n_deployments <= 200:
            problems.append(f"n_deployments {self.n_deployments} must be within 1..200")
        if not 1 <= self.n_days <= 3650:
            problems.append(f"n_days {self.n_days} must be within 1..3650")
        if self.n_frames < self.n_deployments:
            problems.append(f"n_frames {self.n_frames} must be at least n_deployments ({self.n_deployments})")
        width, height = self.image_size
        if not (160 <= width <= 12000 and 90 <= height <= 9000):
            problems.append(f"image_size {width}x{height} must be within 160x90..12000x9000")
        for name in ("empty_fraction", "person_fraction", "vehicle_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                problems.append(f"{name} {getattr(self, name)} must be within [0, 1)")
        if self.empty_fraction + self.person_fraction + self.vehicle_fraction >= 0.95:
            problems.append("empty_fraction + person_fraction + vehicle_fraction must stay below 0.95")
        if not 2 <= self.files_per_folder <= 9999:
            problems.append(f"files_per_folder {self.files_per_folder} must be within 2..9999")
        if not 1 <= self.jpeg_quality <= 95:
            problems.append(f"jpeg_quality {self.jpeg_quality} must be within 1..95")
        if self.workers < 0:
            problems.append(f"workers {self.workers} must be >= 0 (0 = in-process)")
        low, high = self.drone_animals
        if not 1 <= low <= high <= 1000:
            problems.append(f"drone_animals {self.drone_animals} must satisfy 1 <= min <= max <= 1000")
        if not 20.0 <= self.drone_altitude_m <= 500.0:
            problems.append(f"drone_altitude_m {self.drone_altitude_m} must be within 20..500")
        if problems:
            raise ConfigError("Invalid DumpSpec: " + "; ".join(problems) + ".")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> DumpSpec:
        """A named preset, optionally with some fields replaced.

        Args:
            name: one of ``tiny``, ``sample``, ``train``, ``drone``.
            **overrides: DumpSpec fields to replace, e.g. ``seed=3, n_frames=200``.

        Raises:
            ConfigError: unknown preset name, unknown field, or an invalid value.
        """
        if name not in PRESETS:
            raise ConfigError(f"Unknown dump preset {name!r}; choose one of {sorted(PRESETS)}.")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ConfigError(f"Unknown DumpSpec field(s) {unknown}; known fields: {sorted(fields)}.")
        return cls(**{**PRESETS[name], **overrides})

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict of the fields that shape the output (``workers`` left out)."""
        record = dataclasses.asdict(self)
        record.pop("workers")
        record["start_date"] = self.start_date.isoformat()
        record["image_size"] = list(self.image_size)
        record["drone_animals"] = list(self.drone_animals)
        return record


PRESETS: dict[str, dict[str, Any]] = {
    # Unit tests: every feature (all broken-file kinds, a moved camera, a serviced location,
    # folder rollover, three regions) in about 80 small frames.
    "tiny": dict(
        n_deployments=4, start_date=dt.date(2025, 10, 20), n_days=40, n_frames=80,
        image_size=(480, 270), files_per_folder=12, workers=0,
    ),
    # The README's default run.
    "sample": dict(
        n_deployments=6, start_date=dt.date(2025, 4, 1), n_days=60, n_frames=500,
        image_size=(1280, 720), files_per_folder=100, workers=2,
    ),
    # Model training: a whole year, every season in every region.
    "train": dict(
        n_deployments=15, start_date=dt.date(2025, 1, 1), n_days=365, n_frames=4000,
        image_size=(960, 540), files_per_folder=1000, workers=2,
    ),
    # Nadir drone frames with many small animals.
    "drone": dict(
        mode="drone", n_deployments=2, start_date=dt.date(2025, 11, 12), n_days=2, n_frames=6,
        image_size=(4000, 3000), include_broken_files=False, files_per_folder=999, workers=2,
    ),
}
