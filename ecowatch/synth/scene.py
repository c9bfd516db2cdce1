"""Static scenes: what one camera sees at one deployment, and how it is lit.

A scene is built once per deployment from the location's seed (so a camera serviced at the same
location sees the same place again, framed a few pixels differently): a perspective ground
plane with a trail, a far background (forest, or sky and mountains in the Alps), trees, rocks,
bushes, logs and grass at known distances, and optionally a twig near the lens that sways in the
wind. Each pixel knows the distance of the nearest occluding object, so animals behind a trunk
or in the grass are hidden correctly. Night frames use an infrared image in which vegetation is
bright, and the flash falls off with distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw

from ecowatch.synth.shapes import Canvas, Sprite, along, jitter, mirrored, mix, shade, value_noise

FAR_M = 60.0  # distance given to the far background (no occlusion beyond it)


@dataclass(frozen=True)
class CameraView:
    """Pinhole geometry of a camera looking horizontally over flat ground.

    Attributes:
        width: frame width in pixels.
        height: frame height in pixels.
        horizon_y: pixel row of the horizon.
        focal_px: focal length in pixels.
        camera_height_m: lens height above the ground.
    """

    width: int
    height: int
    horizon_y: float
    focal_px: float
    camera_height_m: float

    def ground_row(self, depth_m: float) -> float:
        """Pixel row where ground at ``depth_m`` appears."""
        return self.horizon_y + self.focal_px * self.camera_height_m / depth_m

    def column(self, x_m: float, depth_m: float) -> float:
        """Pixel column of lateral offset ``x_m`` (right positive) at ``depth_m``."""
        return self.width / 2 + self.focal_px * x_m / depth_m

    def px_per_m(self, depth_m: float) -> float:
        """Pixels per metre at ``depth_m``."""
        return self.focal_px / depth_m

    def half_width_m(self, depth_m: float) -> float:
        """Half the visible width in metres at ``depth_m``."""
        return self.width / 2 / self.focal_px * depth_m

    def nearest_visible_ground_m(self) -> float:
        """Depth of the ground at the bottom row."""
        return self.focal_px * self.camera_height_m / max(1.0, self.height - self.horizon_y)


@dataclass(frozen=True)
class SceneSpec:
    """Everything that decides a scene (picklable, built by the planner).

    Attributes:
        scene_seed: seed of the place (shared by deployments at one location).
        framing_seed: seed of this deployment's framing and season-dependent details.
        habitat: ``lowland_broadleaf``, ``beech_spruce`` or ``subalpine``.
        season: ``spring``, ``summer``, ``autumn`` or ``winter``.
        snow: snow on the ground.
        view: camera geometry.
        sway: a twig near the lens that moves with the wind.
    """

    scene_seed: int
    framing_seed: int
    habitat: str
    season: str
    snow: bool
    view: CameraView
    sway: bool


@dataclass
class Scene:
    """A rendered scene, ready for per-frame lighting.

    Attributes:
        base: H x W x 3 uint8 colour under full daylight.
        direct: H x W x 3 uint8 share of ``base`` lit by direct sun (dappled through the canopy).
        sun_mask: H x W uint8, 255 where direct sun falls.
        ir: H x W uint8 infrared flash image at night (before gain and noise).
        depth: H x W float32 distance of the nearest occluding object, inf where none.
        ir_scale: exposure factor applied to reflectance x flash in ``ir`` (objects added at
            night use the same).
        sway: the twig sprite, or None.
        sway_origin: (x, y) pixel of the twig sprite's anchor.
    """

    base: np.ndarray
    direct: np.ndarray
    sun_mask: np.ndarray
    ir: np.ndarray
    depth: np.ndarray
    ir_scale: float
    sway: Sprite | None
    sway_origin: tuple[float, float]


def season_of(month: int) -> str:
    """``winter`` (Dec-Mar), ``spring`` (Apr-May), ``summer`` (Jun-Sep) or ``autumn`` (Oct-Nov)."""
    return {12: "winter", 1: "winter", 2: "winter", 3: "winter", 4: "spring", 5: "spring", 10: "autumn",
            11: "autumn"}.get(month, "summer")


_FOLIAGE = {"spring": (95, 140, 60), "summer": (60, 105, 45), "autumn": (165, 110, 45), "winter": (95, 85, 75)}
_GROUND = {
    ("lowland_broadleaf", False): ((70, 50, 32), (125, 92, 60), (160, 130, 90)),
    ("beech_spruce", False): ((85, 55, 30), (150, 100, 55), (185, 140, 90)),
    ("subalpine", False): ((70, 80, 45), (120, 125, 70), (165, 160, 105)),
}
_SNOW = ((170, 175, 185), (225, 228, 235), (248, 249, 252))


class _Painter:
    """Draws objects on the colour image and records their ids for the occlusion map."""

    def __init__(self, image: Image.Image) -> None:
        self.draw = ImageDraw.Draw(image)
        self.ids = Image.new("I", image.size, 0)
        self.id_draw = ImageDraw.Draw(self.ids)
        self.depths: list[float] = [math.inf]
        self.kinds: list[str] = [""]

    def new(self, depth_m: float, kind: str) -> int:
        self.depths.append(depth_m)
        self.kinds.append(kind)
        return len(self.depths) - 1

    def polygon(self, points, color, obj: int) -> None:
        self.draw.polygon(points, fill=color)
        self.id_draw.polygon(points, fill=obj)

    def ellipse(self, box, color, obj: int) -> None:
        self.draw.ellipse(box, fill=color)
        self.id_draw.ellipse(box, fill=obj)

    def line(self, points, color, width: int, obj: int) -> None:
        self.draw.line(points, fill=color, width=max(1, width))
        self.id_draw.line(points, fill=obj, width=max(1, width))


def build_scene(spec: SceneSpec) -> Scene:
    """Render the static scene of one deployment.

    Args:
        spec: place, season and camera geometry.

    Returns:
        The scene with its daylight, sun, infrared and occlusion layers.
    """
    view = spec.view
    width, height = view.width, view.height
    place = np.random.default_rng(spec.scene_seed)
    framing = np.random.default_rng(spec.framing_seed)
    foliage = _FOLIAGE[spec.season]
    image = _background(spec, place, foliage)
    painter = _Painter(image)
    for obj in sorted(_layout(spec, place), key=lambda o: -o[0]):
        _draw_object(painter, view, obj, foliage, spec)
    base = np.asarray(image).astype(np.float32)
    ids = np.asarray(painter.ids, dtype=np.int32)
    depth_lut = np.asarray(painter.depths, dtype=np.float32)
    depth = depth_lut[ids]
    trunk_ids = np.asarray([k == "trunk" for k in painter.kinds])
    streaks = value_noise((height, width), max(2.0, width / 320), framing)
    streaks = cv2.resize(cv2.resize(streaks, (width, max(2, height // 12))), (width, height))
    grain = value_noise((height, width), 2.0, framing)
    texture = 1.0 + 0.07 * grain + np.where(trunk_ids[ids], 0.18 * streaks, 0.0)
    base *= texture[..., None]
    ground_depth = _ground_depth(view)
    surface = np.where(np.isfinite(depth), depth, ground_depth)
    haze = np.clip((surface - 15.0) / (120.0 if spec.habitat == "subalpine" else 60.0), 0.0, 0.6)[..., None]
    haze_color = np.asarray((200, 205, 210) if spec.habitat == "subalpine" else (120, 130, 120), np.float32)
    base = base * (1 - haze) + haze_color * haze
    base_u8 = np.clip(base, 0, 255).astype(np.uint8)

    if spec.habitat == "subalpine":
        sun = 0.85 + 0.15 * value_noise((height, width), width / 6, place)
    else:
        canopy = value_noise((height, width), width / 14, place) + 0.5 * value_noise((height, width), width / 40, place)
        sun = np.clip((canopy - 0.1) * 1.8, 0.0, 1.0)
    sun = cv2.GaussianBlur(sun.astype(np.float32), (0, 0), max(1.0, width / 400))
    sun_mask = np.clip(sun * 255, 0, 255).astype(np.uint8)
    direct = np.clip(base * sun[..., None], 0, 255).astype(np.uint8)

    ir, ir_scale = _infrared(base_u8, surface, view)
    sway, origin = _sway(spec, framing, foliage) if spec.sway else (None, (0.0, 0.0))
    return Scene(base_u8, direct, sun_mask, ir, depth, ir_scale, sway, origin)


def _ground_depth(view: CameraView) -> np.ndarray:
    rows = np.arange(view.height, dtype=np.float32) - view.horizon_y
    depth = np.where(rows > 0.5, view.focal_px * view.camera_height_m / np.maximum(rows, 0.5), FAR_M)
    return np.broadcast_to(np.minimum(depth, FAR_M)[:, None], (view.height, view.width)).astype(np.float32)


def _background(spec: SceneSpec, rng: np.random.Generator, foliage) -> Image.Image:
    """Far background (forest or sky and mountains) and the textured ground plane with a trail."""
    view = spec.view
    width, height = view.width, view.height
    horizon = int(round(view.horizon_y))
    out = np.zeros((height, width, 3), np.float32)
    rows = np.arange(height, dtype=np.float32)[:, None, None]
    if spec.habitat == "subalpine":
        sky_top, sky_low = np.asarray((120, 160, 210), np.float32), np.asarray((205, 215, 225), np.float32)
        t = np.clip(rows / max(1, horizon), 0, 1)
        out[:] = sky_top * (1 - t) + sky_low * t
        ridge = horizon - height * (0.12 + 0.1 * (value_noise((1, width), width / 5, rng)[0] + 1) / 2)
        mountain = rows[:, :, 0] > ridge[None, :]
        rock = np.asarray((235, 236, 240) if spec.snow or spec.season != "summer" else (130, 128, 135), np.float32)
        out[mountain] = rock * 0.85 + 12 * value_noise((height, width), width / 60, rng)[mountain][:, None]
    else:
        leafless = spec.season == "winter" or (spec.season == "spring" and spec.habitat == "lowland_broadleaf")
        canopy = np.asarray(mix(foliage, (90, 90, 85), 0.35), np.float32)
        texture = value_noise((height, width), width / 50, rng) + 0.6 * value_noise((height, width), width / 150, rng)
        depth_shade = 1.0 - 0.35 * np.clip(rows / max(1, horizon), 0, 1)  # darker understorey near the ground
        out[:] = canopy * (1 + 0.2 * texture[..., None]) * depth_shade
        holes = value_noise((height, width), width / 60, rng) + 0.5 * value_noise((height, width), width / 200, rng)
        gaps = holes > (0.7 if leafless else 1.25)
        gaps &= rows[:, :, 0] < horizon * 0.55
        out[gaps] = (185, 195, 205)
    ground_rows = slice(min(height, horizon + 1), height)
    ground = _ground_plane(spec, rng)
    out[ground_rows] = ground[ground_rows]
    image = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")
    if spec.habitat != "subalpine":  # distant trunks in the forest haze
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(12, 30))):
            x = float(rng.uniform(0, width))
            w = max(1.0, float(rng.uniform(0.002, 0.008)) * width)
            color = shade(mix(foliage, (70, 65, 60), 0.7), float(rng.uniform(0.8, 1.2)))
            draw.rectangle((x, 0, x + w, horizon + 2), fill=color)
    else:
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(10, 30))):  # distant conifers on the horizon
            x = float(rng.uniform(0, width))
            h = float(rng.uniform(0.02, 0.06)) * height
            tree = [(x - h * 0.25, horizon + 1), (x, horizon - h), (x + h * 0.25, horizon + 1)]
            draw.polygon(tree, fill=(45, 60, 45))
    return image


def _ground_plane(spec: SceneSpec, rng: np.random.Generator) -> np.ndarray:
    """Perspective ground texture with a worn trail, for every row below the horizon."""
    view = spec.view
    width, height = view.width, view.height
    tex_size = 512
    tex = (value_noise((tex_size, tex_size), 5, rng) + 0.5 * value_noise((tex_size, tex_size), 2, rng)
           + 0.4 * value_noise((tex_size, tex_size), 20, rng))
    patches = value_noise((tex_size, tex_size), 90, rng)
    cols = np.arange(width, dtype=np.float32)[None, :]
    rows = np.arange(height, dtype=np.float32)[:, None] - view.horizon_y
    depth = view.focal_px * view.camera_height_m / np.maximum(rows, 0.5)
    depth = np.minimum(depth, 200.0)
    lateral = (cols - width / 2) * depth / view.focal_px
    scale = 60.0  # texture pixels per metre
    map_x = (lateral * scale).astype(np.float32)
    map_y = np.broadcast_to(depth * scale, map_x.shape).astype(np.float32)
    reflect = cv2.BORDER_REFLECT_101
    sampled = cv2.remap(tex.astype(np.float32), map_x + tex_size / 2, map_y, cv2.INTER_LINEAR, borderMode=reflect)
    patch = cv2.remap(patches.astype(np.float32), map_x / 8 + tex_size / 2, map_y / 8, cv2.INTER_LINEAR,
                      borderMode=reflect)
    far = np.clip((depth - 6.0) / 25.0, 0.0, 0.85)
    sampled = sampled * (1 - far)
    dark, mid, light = (np.asarray(c, np.float32) for c in (_SNOW if spec.snow else _GROUND[(spec.habitat, False)]))
    t = np.clip(0.5 + 0.35 * sampled, 0.0, 1.0)[..., None]
    color = np.where(t < 0.5, dark + (mid - dark) * (t * 2), mid + (light - mid) * (t * 2 - 1))
    if not spec.snow:  # moss/grass patches in summer, bracken-brown in autumn
        green = np.asarray(mix(_FOLIAGE[spec.season], (80, 90, 50), 0.3), np.float32)
        amount = np.clip(patch * 1.5 - 0.2, 0.0, 0.8)[..., None]
        color = color * (1 - amount) + green * (0.8 + 0.4 * t) * amount
    trail_x = float(rng.uniform(-1.5, 1.5)) + float(rng.uniform(-0.15, 0.15)) * depth + 0.6 * np.sin(depth / 4.0)
    trail = np.clip(1.0 - np.abs(lateral - trail_x) / 0.7, 0.0, 1.0)[..., None] * (0.7 if rng.random() < 0.75 else 0.0)
    trail_color = np.asarray((150, 130, 105) if not spec.snow else (205, 205, 212), np.float32)
    color = color * (1 - trail) + trail_color * (0.9 + 0.2 * t) * trail
    return color


_OBJECT_COUNTS = {  # habitat -> object kind -> (min, max) per scene
    "lowland_broadleaf": {"trunk": (3, 8), "bush": (2, 6), "fern": (2, 7), "rock": (0, 2), "log": (0, 2),
                          "grass": (3, 9)},
    "beech_spruce": {"trunk": (4, 9), "conifer": (1, 4), "bush": (1, 4), "rock": (0, 3), "log": (0, 3),
                     "grass": (2, 7)},
    "subalpine": {"conifer": (2, 6), "trunk": (0, 2), "rock": (2, 7), "bush": (1, 3), "log": (0, 1), "grass": (3, 9)},
}


def _layout(spec: SceneSpec, rng: np.random.Generator) -> list[tuple[float, str, float, float, int]]:
    """Objects of the place as (depth_m, kind, lateral_m, size_m, seed)."""
    view = spec.view
    near = max(0.8, view.nearest_visible_ground_m())
    counts = _OBJECT_COUNTS[spec.habitat]
    objects = []
    for kind, (low, high) in counts.items():
        for _ in range(int(rng.integers(low, high + 1))):
            if kind == "grass":
                depth = float(rng.uniform(near * 0.9, near * 2.2))
            elif kind == "trunk":
                depth = float(np.exp(rng.uniform(np.log(2.5), np.log(40.0))))
            elif kind == "conifer":
                depth = float(np.exp(rng.uniform(np.log(10.0), np.log(50.0))))
            elif kind == "log":
                depth = float(rng.uniform(4.0, 20.0))
            elif kind == "bush":
                depth = float(np.exp(rng.uniform(np.log(3.0), np.log(25.0))))
            else:
                depth = float(np.exp(rng.uniform(np.log(max(1.5, near)), np.log(25.0))))
            lateral = float(rng.uniform(-1.15, 1.15)) * view.half_width_m(depth)
            size = {"trunk": rng.uniform(0.2, 0.6), "conifer": rng.uniform(2.0, 4.0), "bush": rng.uniform(0.6, 2.0),
                    "fern": rng.uniform(0.5, 1.1), "rock": rng.uniform(0.3, 1.6), "log": rng.uniform(2.0, 5.0),
                    "grass": rng.uniform(0.15, 0.45)}[kind]
            objects.append((depth, kind, lateral, float(size), int(rng.integers(2**31))))
    return objects


def _draw_object(painter: _Painter, view: CameraView, obj, foliage, spec: SceneSpec) -> None:
    depth, kind, lateral, size, seed = obj
    rng = np.random.default_rng(seed)
    obj_id = painter.new(depth, kind)
    x = view.column(lateral, depth)
    y = view.ground_row(depth)
    ppm = view.px_per_m(depth)
    snow = spec.snow
    if kind == "trunk":
        w = size * ppm
        lean = float(rng.uniform(-0.06, 0.06)) * view.height
        bark = jitter((120, 112, 100) if spec.habitat != "beech_spruce" else (150, 150, 142), rng, 0.12)
        for k, factor in enumerate((0.7, 0.9, 1.1, 0.95)):
            x0 = x - w / 2 + k * w / 4
            painter.polygon([(x0, y), (x0 + w / 4 + 0.5, y), (x0 + w / 4 * 0.8 + lean + 0.5, -5), (x0 * 1 + lean, -5)],
                            shade(bark, factor), obj_id)
        painter.ellipse((x - w * 0.62, y - w * 0.12, x + w * 0.62, y + w * 0.12), shade(bark, 0.6), obj_id)
    elif kind == "conifer":
        trunk_w = max(1.0, 0.3 * ppm)
        painter.polygon([(x - trunk_w / 2, y), (x + trunk_w / 2, y), (x + trunk_w / 4, -5), (x - trunk_w / 4, -5)],
                        (70, 55, 45), obj_id)
        green = jitter((40, 70, 45) if not snow else (60, 80, 65), rng, 0.1)
        tree_h = size * 4.0
        tiers = 8
        for k in range(tiers):
            base_h = 0.6 + k * (tree_h - 0.6) / tiers
            tip_h = base_h + 2.2 * tree_h / tiers
            half = (0.42 * size * (1 - k / tiers) + 0.25) * ppm
            tier_y, tip_y = y - base_h * ppm, y - tip_h * ppm
            if tip_y > view.height or tier_y < -view.height:
                continue
            edge = [(x - half, tier_y)]
            for j in range(1, 12):  # ragged lower edge of the branch tier
                edge.append((x - half + 2 * half * j / 12, tier_y - (0.25 + 0.2 * (j % 2)) * (tier_y - tip_y) * 0.3))
            edge += [(x + half, tier_y), (x, tip_y)]
            painter.polygon(edge, shade(green, float(rng.uniform(0.75, 1.05))), obj_id)
            if snow:
                painter.polygon([(x - half * 0.5, tier_y - (tier_y - tip_y) * 0.45), (x, tip_y),
                                 (x + half * 0.5, tier_y - (tier_y - tip_y) * 0.45)], (230, 232, 238), obj_id)
    elif kind == "bush":
        leaf = jitter(foliage if spec.habitat != "subalpine" else (60, 90, 50), rng, 0.12)
        if spec.habitat == "lowland_broadleaf" and rng.random() < 0.5:
            leaf = jitter((35, 65, 35), rng, 0.08)  # holly stays green
        radius = size * ppm / 2
        n_leaves = int(np.clip((size / 0.1) ** 2 * 0.8, 60, 500))
        for _ in range(n_leaves):
            dx = float(rng.normal(0, 0.45)) * radius
            dy = -abs(float(rng.normal(0.55, 0.35))) * radius
            r = float(rng.uniform(0.025, 0.06)) * ppm
            inner = 1.0 - min(1.0, math.hypot(dx, dy + 0.5 * radius) / radius)
            tone = float(rng.uniform(0.8, 1.25)) * (1.0 - 0.35 * inner)
            painter.ellipse((x + dx - r, y + dy - r * 0.7, x + dx + r, y + dy + r * 0.7), shade(leaf, tone), obj_id)
    elif kind == "fern":
        frond = jitter((70, 120, 45) if spec.season in ("summer", "spring") else (150, 85, 40), rng, 0.1)
        for _ in range(int(rng.integers(3, 7))):
            angle = float(rng.uniform(35, 145))
            end = along((x, y), -angle, size * ppm)
            painter.line([(x, y), end], shade(frond, 0.8), max(1, int(0.02 * ppm)), obj_id)
            for t in np.linspace(0.2, 0.95, 8):
                p = (x + (end[0] - x) * t, y + (end[1] - y) * t)
                length = (1.0 - t) * 0.3 * size * ppm
                for side in (-70, 70):
                    q = along(p, -angle + side, length)
                    painter.line([p, q], shade(frond, float(rng.uniform(0.85, 1.15))), max(1, int(0.015 * ppm)), obj_id)
    elif kind == "rock":
        r = size * ppm / 2
        stone = jitter((130, 128, 122) if spec.habitat == "subalpine" else (105, 105, 95), rng, 0.1)
        points = [(x + r * math.cos(a) * float(rng.uniform(0.75, 1.1)),
                   y - abs(r * math.sin(a)) * float(rng.uniform(0.6, 1.0))) for a in np.linspace(0, math.pi, 9)]
        painter.polygon(points, stone, obj_id)
        painter.polygon([(px, py) for px, py in points[2:7]] + [(x, y - r * 0.3)], shade(stone, 1.2), obj_id)
        if snow:
            cap = [(x - r * 0.6, y - r * 0.55), (x, y - r * 0.85), (x + r * 0.6, y - r * 0.55)]
            painter.polygon(cap, (235, 237, 242), obj_id)
    elif kind == "log":
        angle = float(rng.uniform(-20, 20))
        half = size * ppm / 2
        thick = float(rng.uniform(0.2, 0.4)) * ppm
        a = along((x, y), angle, -half)
        b = along((x, y), angle, half)
        wood = jitter((95, 80, 62), rng, 0.1)
        painter.polygon([(a[0], a[1] - thick), (b[0], b[1] - thick), b, a], wood, obj_id)
        top = [(a[0], a[1] - thick), (b[0], b[1] - thick), (b[0], b[1] - thick * 0.6), (a[0], a[1] - thick * 0.6)]
        painter.polygon(top, shade(wood, 1.25), obj_id)
        painter.ellipse((b[0] - thick * 0.3, b[1] - thick, b[0] + thick * 0.3, b[1]), (150, 125, 90), obj_id)
    elif kind == "grass":
        blade = jitter((95, 130, 55) if spec.season in ("summer", "spring") else (165, 150, 95), rng, 0.12)
        if snow:
            blade = (175, 165, 120)
        for _ in range(int(rng.integers(25, 60))):
            base_x = x + float(rng.normal(0, 0.3)) * size * ppm
            h = size * ppm * float(rng.uniform(0.4, 1.3))
            lean = float(rng.normal(0, 0.35)) * h
            w = max(0.7, 0.006 * ppm)
            painter.polygon([(base_x - w, y + 2), (base_x + lean, y - h), (base_x + w, y + 2)],
                            shade(blade, float(rng.uniform(0.7, 1.2))), obj_id)


def _infrared(base: np.ndarray, surface_depth: np.ndarray, view: CameraView) -> tuple[np.ndarray, float]:
    """Night image under the camera's infrared flash: vegetation bright, falling off with distance."""
    rgb = base.astype(np.float32)
    lum = 0.3 * rgb[..., 0] + 0.55 * rgb[..., 1] + 0.15 * rgb[..., 2]
    vegetation = np.clip((rgb[..., 1] - rgb[..., 0]) / 40.0 + (rgb[..., 1] - rgb[..., 2]) / 60.0, 0.0, 1.0)
    reflect = lum + 70.0 * vegetation
    ys, xs = np.mgrid[0:view.height, 0:view.width].astype(np.float32)
    ir = reflect * flash_gain(surface_depth) * vignette(xs, ys, view)
    scale = 190.0 / max(1.0, float(np.percentile(ir, 97)))
    return np.clip(ir * scale, 0, 255).astype(np.uint8), scale


def vignette(x: np.ndarray | float, y: np.ndarray | float, view: CameraView) -> np.ndarray | float:
    """Infrared flash vignetting at pixel (x, y): bright centre, dark corners."""
    r2 = ((x - view.width / 2) / (view.width / 2)) ** 2 + ((y - view.height * 0.6) / (view.height * 0.8)) ** 2
    return np.clip(1.0 - 0.45 * r2, 0.25, 1.0)


def flash_gain(depth_m: np.ndarray | float) -> np.ndarray | float:
    """Relative infrared flash illumination at a distance (1 at 3 m, inverse-square-ish)."""
    return np.clip((3.0 / np.maximum(depth_m, 0.3)) ** 1.3, 0.0, 2.2)


def _sway(spec: SceneSpec, rng: np.random.Generator, foliage) -> tuple[Sprite, tuple[float, float]]:
    """An out-of-focus twig hanging into the view about 1 m from the lens, from a top corner."""
    view = spec.view
    ppm = view.px_per_m(1.0)
    canvas = Canvas((-0.02, 0.3), (-0.16, 0.03), ppm, 1)
    stem = (80, 65, 50)
    leaf = foliage if spec.season != "winter" else (110, 95, 80)
    canvas.stroke([(0.0, 0.0), (0.12, -0.05), (0.28, -0.12)], [0.008, 0.006, 0.003], stem)
    if spec.season != "winter":
        for t in np.linspace(0.15, 0.95, 6):
            p = (0.28 * t, -0.12 * t ** 1.3)
            angle = float(rng.uniform(-150, -30))
            canvas.ellipse(along(p, angle, 0.02), 0.022, 0.01, shade(leaf, float(rng.uniform(0.8, 1.2))), angle)
    sprite = canvas.finish(rng, fur=0.05, anchor=(0.0, 0.0))
    blur = max(1, int(view.width / 400)) * 2 + 1  # out of focus this close to the lens
    sprite = sprite.replaced(cv2.GaussianBlur(sprite.rgba, (blur, blur), 0))
    left = rng.random() < 0.5
    if not left:
        sprite = mirrored(sprite)
    origin = (0.0 if left else float(view.width), float(rng.uniform(0.0, 0.2)) * view.height)
    return sprite, origin
