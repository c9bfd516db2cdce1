"""What each camera recorded: triggers, bursts and the objects in every frame.

Each deployment gets a stream of triggers: the field worker at setup and retrieval, animals
(species drawn from region x site x month, time of day from the species' activity pattern and
the sun), hikers and vehicles (daytime, more at weekends and in summer) and false triggers
(wind, sun). A trigger fires a burst of frames one second apart in which the same individuals
move on; animals may walk out of the frame, leaving empty frames at the end of a burst.

All random choices come from generators seeded by (seed, deployment), so planning is cheap
and identical whatever the number of render workers.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from ecowatch.sun import sun_elevation_deg
from ecowatch.synth.bodies import Pose
from ecowatch.synth.deployments import DeploymentPlan
from ecowatch.synth.spec import DumpSpec
from ecowatch.synth.species import DOMESTIC_CAT_VARIANTS, Individual
from ecowatch.synth.taxa import (
    CATHEMERAL,
    DIURNAL,
    PERSON_MONTHS,
    SPECIES,
    SPECIES_BY_KEY,
    VEHICLE_MONTHS,
    activity_weight,
)

NIGHT_BELOW_DEG = -4.0  # sun elevation under which the camera switches to infrared
BURST_INTERVAL_S = 1
_MONTHLY_MEAN_C = {
    "wessex": (5, 5, 7, 9, 12, 15, 17, 17, 14, 11, 8, 6),
    "hessen": (0, 1, 4, 8, 12, 15, 17, 17, 13, 9, 4, 1),
    "engadin": (-8, -7, -4, 0, 5, 9, 11, 11, 7, 3, -3, -7),
}
_HERD_SPECIES = ("wild_boar", "red_deer", "fallow_deer", "roe_deer")
_GRAZERS = ("roe_deer", "red_deer", "fallow_deer", "wild_boar", "brown_hare", "mountain_hare", "red_squirrel",
            "grey_squirrel", "badger")


@dataclass(frozen=True)
class Placement:
    """One object in one frame.

    Attributes:
        category: species key, ``"human"`` or ``"vehicle"``.
        object_id: id of the individual, stable across the frames of a burst.
        look_seed: seed of its appearance.
        individual: the animal (None for people and vehicles).
        lateral_m: offset to the right of the camera axis, metres.
        depth_m: distance from the camera along its axis, metres.
        facing: +1 faces right, -1 left.
        pose: posture and gait phase.
    """

    category: str
    object_id: str
    look_seed: int
    individual: Individual | None
    lateral_m: float
    depth_m: float
    facing: int
    pose: Pose


@dataclass(frozen=True)
class FrameJob:
    """One file slot on a card (a frame to render, or a deliberately broken file).

    Attributes:
        deployment: index of the deployment.
        rel_path: path relative to the dump root (set when card numbering is assigned).
        true_time: the true local time of the frame.
        seq_id: id of the burst it belongs to.
        seq_num_frames: frames in that burst.
        frame_num: 0-based position in the burst.
        placements: objects in the frame.
        sun_elevation: degrees.
        cloud: 0 (clear) .. 1 (overcast).
        wind: 0 (calm) .. 1 (gale); moves the twig near the lens.
        temperature_c: what the camera prints on its data bar.
        seed: seed of per-frame noise and jitter.
        file_kind: ``image``, or a broken kind: ``zero_byte``, ``truncated``, ``not_an_image``,
            ``video``.
    """

    deployment: int
    rel_path: str
    true_time: dt.datetime
    seq_id: str
    seq_num_frames: int
    frame_num: int
    placements: tuple[Placement, ...]
    sun_elevation: float
    cloud: float
    wind: float
    temperature_c: int
    seed: int
    file_kind: str = "image"

    @property
    def night(self) -> bool:
        """True if the camera takes an infrared frame."""
        return self.sun_elevation < NIGHT_BELOW_DEG


@dataclass
class _Trigger:
    time: dt.datetime
    kind: str  # "animal", "person", "staff", "vehicle", "empty"
    species: str = ""


class _DayCurves:
    """Sun elevation for the 144 ten-minute bins of each day at one place (cached)."""

    def __init__(self, plan: DeploymentPlan) -> None:
        self.plan = plan
        self.cache: dict[dt.date, np.ndarray] = {}

    def elevations(self, day: dt.date) -> np.ndarray:
        if day not in self.cache:
            hours = (np.arange(144) + 0.5) / 6.0
            loc = self.plan.location
            self.cache[day] = sun_elevation_deg(loc.latitude, loc.longitude, day.timetuple().tm_yday, hours,
                                                self.plan.utc_offset_min)
        return self.cache[day]


def _sample_time(plan: DeploymentPlan, curves: _DayCurves, pattern: str, rng: np.random.Generator,
                 month_weights: tuple[float, ...] | None = None, weekend_ratio: float = 1.0) -> dt.datetime:
    """A trigger time inside the deployment: date weighted by month and weekday, hour by activity."""
    span = (plan.end - plan.start).total_seconds()
    for _ in range(50):
        candidate = plan.start + dt.timedelta(seconds=float(rng.uniform(0, span)))
        day = candidate.date()
        accept = 1.0
        if month_weights is not None:
            accept *= month_weights[day.month - 1] / max(month_weights)
        accept *= (weekend_ratio if day.weekday() >= 5 else 1.0) / max(weekend_ratio, 1.0)
        if rng.random() > accept:
            continue
        weights = activity_weight(pattern, curves.elevations(day))
        slot = int(rng.choice(144, p=weights / weights.sum()))
        stamp = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=slot * 600 + int(rng.integers(600)))
        if plan.start + dt.timedelta(minutes=5) < stamp < plan.end - dt.timedelta(minutes=5):
            return stamp
    return plan.start + dt.timedelta(seconds=int(rng.uniform(300, max(301, span - 300))))


def _species_weights(plan: DeploymentPlan, month: int) -> tuple[list[str], np.ndarray]:
    factors = dict(plan.location.site_factors)
    keys, weights = [], []
    for s in SPECIES:
        abundance = s.abundance.get(plan.location.region.key, 0.0)
        if abundance > 0:
            keys.append(s.key)
            weights.append(abundance * factors[s.key] * s.month_profile[month - 1])
    w = np.asarray(weights)
    return keys, w / w.sum()


def _triggers(spec: DumpSpec, plan: DeploymentPlan, rng: np.random.Generator) -> list[_Trigger]:
    burst = plan.burst_len
    n_triggers = max(3, round(plan.frame_budget / burst))
    within = 0.12 if burst > 1 else 0.02  # empty frames at the end of animal bursts
    p_person, p_vehicle = spec.person_fraction, spec.vehicle_fraction
    p_empty = max(0.0, (spec.empty_fraction - within * (1 - p_person - p_vehicle)) / (1 - within))
    p_animal = max(0.0, 1.0 - p_empty - p_person - p_vehicle)
    kinds = ("empty", "person", "vehicle", "animal")
    probs = np.asarray((p_empty, p_person, p_vehicle, p_animal))
    curves = _DayCurves(plan)
    region = plan.location.region.key
    out = [_Trigger(plan.start + dt.timedelta(seconds=int(rng.integers(20, 90))), "staff"),
           _Trigger(plan.end - dt.timedelta(seconds=int(rng.integers(60, 200))), "staff")]
    for _ in range(n_triggers - 2):
        kind = kinds[int(rng.choice(4, p=probs / probs.sum()))]
        if kind == "animal":
            day = plan.start + (plan.end - plan.start) * float(rng.uniform())
            keys, weights = _species_weights(plan, day.month)
            species = keys[int(rng.choice(len(keys), p=weights))]
            eco = SPECIES_BY_KEY[species]
            out.append(_Trigger(_sample_time(plan, curves, eco.activity, rng, eco.month_profile), kind, species))
        elif kind == "person":
            out.append(_Trigger(_sample_time(plan, curves, DIURNAL, rng, PERSON_MONTHS[region], 2.0), kind))
        elif kind == "vehicle":
            out.append(_Trigger(_sample_time(plan, curves, DIURNAL, rng, VEHICLE_MONTHS[region], 0.3), kind))
        else:
            pattern = DIURNAL if rng.random() < 0.7 else CATHEMERAL  # sun and heat cause most false triggers
            out.append(_Trigger(_sample_time(plan, curves, pattern, rng), kind))
    out.sort(key=lambda t: (t.time, t.kind))
    spaced: list[_Trigger] = []
    for trig in out:
        if spaced and trig.time < spaced[-1].time + dt.timedelta(seconds=burst + 20):
            trig.time = spaced[-1].time + dt.timedelta(seconds=burst + int(rng.integers(30, 300)))
        if trig.time + dt.timedelta(seconds=burst) < plan.end:
            spaced.append(trig)
    return spaced


def _group_size(species: str, rng: np.random.Generator) -> int:
    sizes = SPECIES_BY_KEY[species].group_sizes
    weights = np.asarray([w for _, w in sizes])
    return int(sizes[int(rng.choice(len(sizes), p=weights / weights.sum()))][0])


def _individuals(species: str, month: int, seq: str, rng: np.random.Generator) -> list[Individual]:
    group = _group_size(species, rng)
    out = []
    for k in range(group):
        juvenile = False
        if k > 0 and species == "wild_boar":
            juvenile = rng.random() < 0.55
        elif k > 0 and species in _HERD_SPECIES and month in (6, 7, 8, 9):
            juvenile = rng.random() < 0.35
        elif k > 0 and species == "red_fox" and month in (5, 6, 7):
            juvenile = rng.random() < 0.7
        variant = ""
        if species == "domestic_cat":
            variant = DOMESTIC_CAT_VARIANTS[int(rng.integers(len(DOMESTIC_CAT_VARIANTS)))]
        elif species == "fallow_deer":
            variant = str(rng.choice(["", "menil", "black"], p=[0.88, 0.07, 0.05]))
        elif species == "red_fox":
            variant = "pale" if rng.random() < 0.1 else ""
        young = 0.5 if species == "wild_boar" else 0.65  # piglets are smaller than fawns and cubs
        size = float(rng.uniform(0.9, 1.1)) * (young if juvenile else 1.0)
        out.append(Individual(species, f"{seq}-a{k + 1}", male=bool(rng.random() < 0.5), juvenile=bool(juvenile),
                              look_seed=int(rng.integers(2**31)), variant=variant, size=size))
    return out


def _pose_name(species: str, rng: np.random.Generator) -> str:
    if species in _GRAZERS:
        names, weights = ("walk", "stand", "graze", "alert", "run"), (0.45, 0.18, 0.27, 0.07, 0.03)
    else:
        names, weights = ("walk", "stand", "graze", "alert", "run"), (0.58, 0.2, 0.12, 0.07, 0.03)
    return names[int(rng.choice(5, p=np.asarray(weights)))]


def _burst_placements(plan: DeploymentPlan, trig: _Trigger, seq: str, rng: np.random.Generator
                      ) -> list[tuple[Placement, ...]]:
    """Objects of every frame of one burst."""
    view = plan.scene.view
    near = view.nearest_visible_ground_m()
    n = plan.burst_len
    movers: list[tuple[Placement, float, float, float]] = []  # placement at frame 0, vx, vz, gait rate
    if trig.kind == "animal":
        eco = SPECIES_BY_KEY[trig.species]
        individuals = _individuals(trig.species, trig.time.month, seq, rng)
        low, high = eco.trigger_range_m
        depth0 = max(0.75 * near, float(np.exp(rng.uniform(math.log(low), math.log(high)))))
        facing = 1 if rng.random() < 0.5 else -1
        enters = rng.random() < 0.15
        lateral0 = (-facing * 1.1 if enters else float(rng.uniform(-1.0, 1.0))) * view.half_width_m(depth0)
        for k, ind in enumerate(individuals):
            depth = max(0.75 * near, depth0 + (float(rng.normal(0, 1.2)) if k else 0.0))
            lateral = lateral0 + (float(rng.normal(-facing * 1.2 * k, 0.8)) if k else 0.0)
            face = facing if rng.random() < 0.85 else -facing
            pose_name = "walk" if enters else _pose_name(trig.species, rng)
            speed = 0.0
            if pose_name == "walk":
                speed = eco.walk_speed_m_s * float(rng.uniform(0.6, 1.2))
            elif pose_name == "run":
                speed = eco.walk_speed_m_s * 2.5
            pose = Pose(pose_name, float(rng.uniform(0, 2 * math.pi)), tuple(float(v) for v in rng.normal(0, 4, 4)))
            placement = Placement(trig.species, ind.individual_id, ind.look_seed, ind, lateral, depth, face, pose)
            movers.append((placement, face * speed, speed * float(rng.uniform(-0.3, 0.3)), 5.0 * (1 + speed)))
    elif trig.kind in ("person", "staff"):
        count = 1 if trig.kind == "staff" else int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))
        depth0 = float(rng.uniform(0.9, 1.8)) if trig.kind == "staff" else float(rng.uniform(3.0, 12.0))
        facing = 1 if rng.random() < 0.5 else -1
        lateral0 = float(rng.uniform(-0.8, 0.8)) * view.half_width_m(depth0)
        for k in range(count):
            speed = 0.15 if trig.kind == "staff" else float(rng.uniform(1.0, 1.5))
            pose = Pose("walk", float(rng.uniform(0, 2 * math.pi)))
            placement = Placement("human", f"{seq}-p{k + 1}", int(rng.integers(2**31)), None,
                                  lateral0 - facing * 1.6 * k, depth0 + float(rng.normal(0, 0.4)) * k, facing, pose)
            movers.append((placement, facing * speed, 0.0, 4.5))
    elif trig.kind == "vehicle":
        depth0 = float(rng.uniform(7.0, 25.0))
        facing = 1 if rng.random() < 0.5 else -1
        lateral0 = float(rng.uniform(-0.6, 0.6)) * view.half_width_m(depth0)
        placement = Placement("vehicle", f"{seq}-v1", int(rng.integers(2**31)), None, lateral0, depth0, facing,
                              Pose("stand"))
        movers.append((placement, facing * float(rng.uniform(3.0, 8.0)), 0.0, 0.0))
    poses = [mover[0].pose for mover in movers]
    frames = []
    for f in range(n):
        objects = []
        for i, (placement, vx, vz, gait_rate) in enumerate(movers):
            if f and vx == 0.0 and placement.individual is not None and rng.random() < 0.3:
                poses[i] = Pose(str(rng.choice(["stand", "graze", "alert"])), poses[i].gait_phase, poses[i].leg_jitter)
            pose = Pose(poses[i].name, poses[i].gait_phase + gait_rate * f * BURST_INTERVAL_S, poses[i].leg_jitter)
            objects.append(Placement(placement.category, placement.object_id, placement.look_seed, placement.individual,
                                     placement.lateral_m + vx * f * BURST_INTERVAL_S,
                                     max(0.6 * near, placement.depth_m + vz * f * BURST_INTERVAL_S),
                                     placement.facing, pose))
        frames.append(tuple(objects))
    return frames


def plan_frames(spec: DumpSpec, plan: DeploymentPlan) -> list[FrameJob]:
    """Every frame one deployment's camera recorded, in time order (card paths not yet set).

    Args:
        spec: the dump spec.
        plan: the deployment.

    Returns:
        Frame jobs with ``rel_path`` empty; :func:`ecowatch.synth.broken.assign_card_paths` numbers them.
    """
    rng = np.random.default_rng([spec.seed, 202, plan.index])
    loc = plan.location
    jobs: list[FrameJob] = []
    weather: dict[dt.date, tuple[float, float]] = {}
    for k, trig in enumerate(_triggers(spec, plan, rng)):
        seq = f"{plan.deployment_id}-s{k + 1:04d}"
        frames = _burst_placements(plan, trig, seq, rng)
        day = trig.time.date()
        if day not in weather:
            day_rng = np.random.default_rng([spec.seed, 303, plan.index, day.toordinal()])
            weather[day] = (float(day_rng.beta(1.2, 1.2)), float(day_rng.beta(1.5, 3.0)))
        cloud, wind = weather[day]
        if trig.kind == "empty":
            wind = min(1.0, wind + 0.4)
        for f, objects in enumerate(frames):
            when = trig.time + dt.timedelta(seconds=f * BURST_INTERVAL_S)
            hour = when.hour + when.minute / 60 + when.second / 3600
            elevation = float(sun_elevation_deg(loc.latitude, loc.longitude, when.timetuple().tm_yday, hour,
                                                plan.utc_offset_min))
            mean = _MONTHLY_MEAN_C[loc.region.key][when.month - 1] - (loc.elevation_m - loc.region.elevation_m) / 150
            temperature = round(mean + 5 * math.sin((hour - 9) / 24 * 2 * math.pi) + float(rng.normal(0, 1.5)))
            jobs.append(FrameJob(plan.index, "", when, seq, len(frames), f, objects, elevation, cloud, wind,
                                 int(temperature), int(rng.integers(2**31))))
    return jobs
