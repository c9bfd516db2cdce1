"""Render one camera-trap frame: light the static scene, add the objects, noise, data bar, EXIF.

A :class:`FrameRenderer` lives in each worker process. It rebuilds deployment scenes on demand
(cached) from their specs, so the output depends only on the job, never on which worker drew
it or in what order.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ecowatch.synth.camera import bar_heights, build_exif, draw_bar
from ecowatch.synth.deployments import DeploymentPlan
from ecowatch.synth.events import FrameJob, Placement
from ecowatch.synth.figures import draw_person, draw_vehicle
from ecowatch.synth.scene import Scene, build_scene, flash_gain, vignette
from ecowatch.synth.shapes import Sprite
from ecowatch.synth.species import draw_animal
from ecowatch.synth.taxa import SPECIES_BY_KEY
from ecowatch.synth.truth import Box

MIN_VISIBLE_PX = 12  # fewer visible pixels than this and an object is not annotated
MIN_VISIBLE_SHARE = 0.1  # ... nor if less than this share of it is visible
AE_TARGET = 220.0  # infrared frames: auto exposure keeps the 99.5th percentile at or below this
KNEE = 160.0  # infrared frames: grey level above which highlights are compressed


@dataclass(frozen=True)
class FrameResult:
    """What was written for one job."""

    rel_path: str
    width: int
    height: int
    boxes: tuple[Box, ...]
    file_kind: str
    size_bytes: int


class FrameRenderer:
    """Renders frame jobs of one dump.

    Args:
        deployments: the deployment plans (indexed by ``FrameJob.deployment``).
        dump_dir: root of the SD-card dump; files are written below it.
        jpeg_quality: JPEG quality of written frames.
        seed: the dump seed (noise bank).
    """

    def __init__(self, deployments: list[DeploymentPlan], dump_dir: Path, jpeg_quality: int, seed: int) -> None:
        self.deployments = deployments
        self.dump_dir = Path(dump_dir)
        self.jpeg_quality = jpeg_quality
        self.seed = seed
        self._scenes: OrderedDict[int, Scene] = OrderedDict()
        self._noise: np.ndarray | None = None

    def scene(self, index: int) -> Scene:
        """The static scene of a deployment (built once, a few kept in memory)."""
        if index not in self._scenes:
            self._scenes[index] = build_scene(self.deployments[index].scene)
            while len(self._scenes) > 4:
                self._scenes.popitem(last=False)
        self._scenes.move_to_end(index)
        return self._scenes[index]

    def _noise_bank(self, height: int, width: int) -> np.ndarray:
        """Sensor noise: luminance noise in channel 3, luminance + chroma per RGB channel in 0..2."""
        if self._noise is None or self._noise.shape[0] < height + 32 or self._noise.shape[1] < width + 32:
            rng = np.random.default_rng([self.seed, 404])
            raw = rng.standard_normal((height + 32, width + 32, 2), dtype=np.float32)
            luma, chroma = raw[..., 0], raw[..., 1] * 0.35
            self._noise = np.stack((luma + chroma, luma - chroma, luma + chroma, luma), axis=2)
        return self._noise

    def compose(self, job: FrameJob) -> tuple[np.ndarray, tuple[Box, ...]]:
        """Render a job's pixels and the visible boxes of its objects.

        Returns:
            (H x W x 3 uint8 RGB array (R = G = B at night), boxes).
        """
        plan = self.deployments[job.deployment]
        scene = self.scene(job.deployment)
        view = plan.scene.view
        height, width = view.height, view.width
        rng = np.random.default_rng(job.seed)
        night = job.night
        if night:
            gain = float(rng.uniform(0.9, 1.1))
            frame = cv2.cvtColor(scene.ir, cv2.COLOR_GRAY2RGB).astype(np.float32)
            frame *= gain
            ambient = sun = 0.0
            tint = np.ones(3, np.float32)
        else:
            elevation = job.sun_elevation
            day = float(np.clip((elevation + 4.0) / 30.0, 0.0, 1.0))
            ambient = 0.35 + 0.5 * math.sqrt(day)
            sun = (1.0 - job.cloud) * float(np.clip(elevation / 20.0, 0.0, 1.0)) * 0.55
            low = float(np.clip(1.0 - elevation / 15.0, 0.0, 1.0)) * (1.0 - 0.5 * job.cloud)
            tint = np.asarray((1.0 + 0.12 * low, 1.0 + 0.02 * low, 1.0 - 0.15 * low), np.float32)
            if elevation < 0:
                tint = np.asarray((0.9, 0.95, 1.1), np.float32)
            gain = float(np.clip(0.8 / (ambient + 0.5 * sun), 0.9, 1.5))  # auto exposure, partial
            frame = cv2.addWeighted(scene.base, ambient * gain, scene.direct, sun * gain, 0.0, dtype=cv2.CV_32F)
            frame *= tint
        owner = np.full((height, width), -1, np.int16)
        totals: dict[int, int] = {}  # object index -> its opaque pixels, in frame or not
        rects: dict[int, tuple[int, int, int, int]] = {}
        objects = sorted(enumerate(job.placements), key=lambda item: -item[1].depth_m)
        for index, placement in objects:
            sprite = _sprite(placement, view.px_per_m(placement.depth_m), job.true_time.month, height)
            if night and placement.pose.name in ("walk", "run"):
                blur = max(1, int(round(sprite.rgba.shape[1] * (0.02 if placement.pose.name == "walk" else 0.05))))
                if blur > 1:
                    sprite = sprite.replaced(cv2.blur(sprite.rgba, (blur, 1)))
            x0 = int(round(view.column(placement.lateral_m, placement.depth_m) - sprite.anchor[0]))
            y0 = int(round(view.ground_row(placement.depth_m) - sprite.anchor[1]))
            totals[index] = int(np.count_nonzero(sprite.rgba[..., 3] > 127))
            eyeshine = (night and placement.individual is not None and placement.pose.name != "graze"
                        and placement.individual.look_seed % 3 != 0)  # two in three look at the camera
            rects[index] = _paste(frame, owner, scene, sprite, x0, y0, index, placement.depth_m, night=night,
                                  gain=gain, light=(ambient, sun), tint=tint, view=view, eyeshine=eyeshine)
        if scene.sway is not None:
            phase = float(rng.uniform(-1, 1)) * job.wind
            dx = int(round(phase * 0.04 * width))
            dy = int(round(abs(phase) * 0.015 * height))
            sx = int(round(scene.sway_origin[0] - scene.sway.anchor[0] + dx))
            sy = int(round(scene.sway_origin[1] - scene.sway.anchor[1] + dy))
            _paste(frame, owner, scene, scene.sway, sx, sy, -1, 0.6, night=night, gain=gain, light=(ambient, sun),
                   tint=tint, view=view, occlusion=False)
        if night and job.placements:  # auto exposure: a near, flash-lit animal darkens the rest
            peak = float(np.percentile(frame[::4, ::4, 0], 99.5))
            if peak > AE_TARGET:
                frame *= AE_TARGET / peak
        if night:  # the sensor's highlight roll-off keeps near, flash-lit fur textured
            bright = frame > KNEE
            frame[bright] = KNEE + (255.0 - KNEE) * (1.0 - np.exp(-(frame[bright] - KNEE) / (255.0 - KNEE)))
        sigma = 7.5 if night else 2.0 + 3.0 * (1.0 - min(1.0, ambient + sun))
        bank = self._noise_bank(height, width)
        oy, ox = int(rng.integers(0, bank.shape[0] - height)), int(rng.integers(0, bank.shape[1] - width))
        if night:
            frame += (sigma * bank[oy:oy + height, ox:ox + width, 3])[..., None]
        else:
            frame += sigma * bank[oy:oy + height, ox:ox + width, :3]
        np.clip(frame, 0, 255, out=frame)
        pixels = frame.astype(np.uint8)
        top, bottom = bar_heights(plan.camera, height)
        owner[:top] = -1
        if bottom:
            owner[height - bottom:] = -1
        boxes = []
        for index, placement in enumerate(job.placements):
            rect = rects.get(index)
            if rect is None:
                continue
            fx0, fy0, fx1, fy1 = rect
            ys, xs = np.nonzero(owner[fy0:fy1, fx0:fx1] == index)
            if len(xs) < max(MIN_VISIBLE_PX, MIN_VISIBLE_SHARE * totals[index]):
                continue
            x_min, y_min = int(xs.min()) + fx0, int(ys.min()) + fy0
            bbox = (x_min, y_min, int(xs.max()) + fx0 - x_min + 1, int(ys.max()) + fy0 - y_min + 1)
            boxes.append(Box(placement.category, placement.object_id, bbox))
        return pixels, tuple(boxes)

    def encode(self, job: FrameJob, pixels: np.ndarray) -> bytes:
        """Stamp the data bar and encode the frame as the camera writes it (JPEG + EXIF)."""
        plan = self.deployments[job.deployment]
        camera = plan.camera
        camera_time = plan.camera_time(job.true_time)
        single = job.night and camera.ir_single_channel
        image = Image.fromarray(pixels[..., 0] if single else pixels, "L" if single else "RGB")
        draw_bar(image, camera, camera_time=camera_time, frame_in_burst=job.frame_num + 1,
                 burst_len=job.seq_num_frames, temperature_c=job.temperature_c, camera_name=plan.camera_id)
        exif = build_exif(camera, serial=plan.camera_serial, camera_time=camera_time, gps=plan.gps)
        buffer = io.BytesIO()
        options = {"quality": self.jpeg_quality}
        if exif is not None:
            options["exif"] = exif
        image.save(buffer, "JPEG", **options)
        return buffer.getvalue()

    def render(self, job: FrameJob) -> FrameResult:
        """Render and write one image job; returns its boxes (broken kinds: see ``broken``)."""
        pixels, boxes = self.compose(job)
        data = self.encode(job, pixels)
        path = self.dump_dir / job.rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        set_card_mtime(path, self.deployments[job.deployment].camera_time(job.true_time))
        height, width = pixels.shape[:2]
        return FrameResult(job.rel_path, width, height, boxes, job.file_kind, len(data))


def _sprite(placement: Placement, px_per_m: float, month: int, frame_height: int) -> Sprite:
    """Draw a placement; objects much taller than the frame are drawn smaller and enlarged
    (they are out of focus that close to the lens anyway), which keeps near people cheap."""
    extent_m = 1.9 if placement.category == "human" else 3.0 if placement.category == "vehicle" else (
        SPECIES_BY_KEY[placement.category].torso_length_m * 2.2)
    scale = min(1.0, 1.2 * frame_height / (px_per_m * extent_m))
    ppm = px_per_m * scale
    if placement.individual is not None:
        ind = placement.individual
        torso_px = SPECIES_BY_KEY[ind.species].torso_length_m * ind.size * ppm
        sprite = draw_animal(ind, placement.pose, torso_px=torso_px, facing=placement.facing, month=month)
    elif placement.category == "human":
        sprite = draw_person(placement.look_seed, px_per_m=ppm, facing=placement.facing,
                             gait_phase=placement.pose.gait_phase)
    else:
        sprite = draw_vehicle(placement.look_seed, px_per_m=ppm, facing=placement.facing)
    if scale < 1.0:
        sh, sw = sprite.rgba.shape[:2]
        size = (max(1, round(sw / scale)), max(1, round(sh / scale)))
        sprite = sprite.replaced(cv2.resize(sprite.rgba, size, interpolation=cv2.INTER_LINEAR), 1.0 / scale)
    return sprite


def _paste(frame: np.ndarray, owner: np.ndarray, scene: Scene, sprite: Sprite, x0: int, y0: int, index: int,
           depth_m: float, *, night: bool, gain: float, light: tuple[float, float], tint: np.ndarray, view,
           occlusion: bool = True, eyeshine: bool = False) -> tuple[int, int, int, int] | None:
    """Composite a sprite at (x0, y0), lit like the scene, hidden behind nearer scene objects.

    ``eyeshine`` adds the retro-reflection of the infrared flash in a visible eye.

    Returns:
        The frame rectangle (x0, y0, x1, y1) it covers, or None if it is out of the frame.
    """
    height, width = frame.shape[:2]
    sh, sw = sprite.rgba.shape[:2]
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(width, x0 + sw), min(height, y0 + sh)
    if fx0 >= fx1 or fy0 >= fy1:
        return None
    part = sprite.rgba[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    alpha = part[..., 3].astype(np.float32) * (1.0 / 255.0)
    if occlusion:
        alpha *= scene.depth[fy0:fy1, fx0:fx1] >= depth_m
    rgb = part[..., :3].astype(np.float32)
    if night:
        lum = cv2.cvtColor(part[..., :3], cv2.COLOR_RGB2GRAY).astype(np.float32)
        centre = float(vignette((fx0 + fx1) / 2, (fy0 + fy1) / 2, view))
        reflect = lum * 0.5 + 95.0 if sprite.fur else lum + 20.0  # fur is bright in near-infrared
        lum = reflect * (float(flash_gain(depth_m)) * centre * scene.ir_scale * gain)
        rgb = cv2.cvtColor(lum, cv2.COLOR_GRAY2RGB)
    else:
        ambient, sun = light
        sunlit = float(scene.sun_mask[fy0:fy1, fx0:fx1].mean()) / 255.0
        rgb *= (ambient + sun * sunlit) * gain * tint
    region = frame[fy0:fy1, fx0:fx1]
    region += (rgb - region) * alpha[..., None]
    owner[fy0:fy1, fx0:fx1][alpha > 0.5] = index if index >= 0 else -1
    if eyeshine and sprite.eye is not None:
        ex, ey = int(round(x0 + sprite.eye[0])), int(round(y0 + sprite.eye[1]))
        if fx0 <= ex < fx1 and fy0 <= ey < fy1 and alpha[ey - fy0, ex - fx0] > 0.5:
            radius = max(1, round(0.012 * max(sh, sw)))
            cv2.circle(frame, (ex, ey), radius, (400.0, 400.0, 400.0), -1)
    return fx0, fy0, fx1, fy1


def set_card_mtime(path: Path, camera_time: dt.datetime) -> None:
    """Give a written file the modification time the camera's clock stamped on the card.

    Cameras write FAT timestamps in their own local clock, and a copy that keeps times
    (``cp -p``, rsync, most file managers) carries them over; read back on the same machine with
    ``datetime.fromtimestamp``, the naive camera time comes out again. Ingest falls back to it for
    cameras that write no EXIF time.
    """
    stamp = camera_time.timestamp()  # the naive time read as this machine's local time, as a card mount does
    os.utime(path, (stamp, stamp))
