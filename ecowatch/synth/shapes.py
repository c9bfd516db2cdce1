"""Drawing primitives for procedural sprites: a supersampled RGBA canvas in model units.

Model space has y pointing up and its unit is the animal's torso length; the canvas maps it to
pixels. Parts are drawn as polygons (superellipses, tapered strokes, triangles) so that shapes
stay crisp at any size, then the sprite gets fur shading and is downsampled for antialiasing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw

Color = tuple[int, int, int]
Point = tuple[float, float]


@dataclass(frozen=True)
class Sprite:
    """A drawn object ready to composite.

    Attributes:
        rgba: H x W x 4 uint8 image, straight (not premultiplied) alpha.
        anchor: (x, y) pixel of the ground contact point under the object's centre.
        eye: (x, y) pixel of the visible eye (animals: eyeshine at night), or None.
        fur: True if it reflects near-infrared like fur and leaves (bright whatever its visible
            colour); False for clothes and paint.
    """

    rgba: np.ndarray
    anchor: tuple[float, float]
    eye: tuple[float, float] | None = None
    fur: bool = True

    def replaced(self, rgba: np.ndarray, scale: float = 1.0) -> Sprite:
        """The same sprite with new pixels, its anchor and eye scaled by ``scale``."""
        eye = None if self.eye is None else (self.eye[0] * scale, self.eye[1] * scale)
        return Sprite(rgba, (self.anchor[0] * scale, self.anchor[1] * scale), eye, self.fur)


def mirrored(sprite: Sprite) -> Sprite:
    """The sprite flipped left-right (facing the other way), anchor moved with it."""
    width = sprite.rgba.shape[1]
    flipped = np.ascontiguousarray(sprite.rgba[:, ::-1])
    eye = None if sprite.eye is None else (width - sprite.eye[0], sprite.eye[1])
    return Sprite(flipped, (width - sprite.anchor[0], sprite.anchor[1]), eye, sprite.fur)


def shade(color: Color, factor: float) -> Color:
    """A colour scaled by ``factor`` and clipped to 0..255."""
    return tuple(int(max(0, min(255, round(c * factor)))) for c in color)  # type: ignore[return-value]


def mix(a: Color, b: Color, t: float) -> Color:
    """Linear mix of two colours, ``t`` = 0 gives ``a``."""
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))  # type: ignore[return-value]


def jitter(color: Color, rng: np.random.Generator, amount: float = 0.08) -> Color:
    """A colour with individual variation: overall brightness and a slight per-channel change."""
    base = float(rng.lognormal(0.0, amount))
    out = (c * base * float(rng.uniform(1 - amount / 2, 1 + amount / 2)) for c in color)
    return tuple(int(max(0, min(255, v))) for v in out)  # type: ignore[return-value]


def rotate(vector: Point, degrees: float) -> Point:
    """Rotate a vector counter-clockwise (model space, y up)."""
    a = math.radians(degrees)
    return (vector[0] * math.cos(a) - vector[1] * math.sin(a), vector[0] * math.sin(a) + vector[1] * math.cos(a))


def along(origin: Point, degrees: float, length: float) -> Point:
    """The point ``length`` away from ``origin`` in direction ``degrees`` (0 = +x, 90 = up)."""
    a = math.radians(degrees)
    return (origin[0] + length * math.cos(a), origin[1] + length * math.sin(a))


def two_bone(hip: Point, foot: Point, upper: float, lower: float, bend: float) -> Point:
    """Joint position of a two-segment limb (inverse kinematics).

    Args:
        hip: top of the limb.
        foot: end of the limb.
        upper: length of the upper segment.
        lower: length of the lower segment.
        bend: +1 puts the joint towards +x, -1 towards -x.
    """
    dx, dy = foot[0] - hip[0], foot[1] - hip[1]
    dist = max(1e-6, min(math.hypot(dx, dy), (upper + lower) * 0.999))
    a = (upper**2 - lower**2 + dist**2) / (2 * dist)
    h = math.sqrt(max(upper**2 - a**2, 0.0))
    ux, uy = dx / dist, dy / dist
    px, py = hip[0] + a * ux, hip[1] + a * uy
    nx, ny = -uy, ux  # +90 degrees; points to +x when the limb hangs down
    return (px + bend * h * nx, py + bend * h * ny)


class Canvas:
    """An RGBA drawing surface in model units (y up), supersampled for antialiasing.

    Args:
        x_range: (min, max) model x covered.
        y_range: (min, max) model y covered.
        scale: output pixels per model unit.
        supersample: drawing resolution factor; the result is downsampled by it.
    """

    def __init__(self, x_range: Point, y_range: Point, scale: float, supersample: int = 2) -> None:
        self.x0, self.y1 = x_range[0], y_range[1]
        self.scale = scale * supersample
        self.supersample = supersample
        width = max(2, int(math.ceil((x_range[1] - x_range[0]) * self.scale)))
        height = max(2, int(math.ceil((y_range[1] - y_range[0]) * self.scale)))
        self.image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        self.draw = ImageDraw.Draw(self.image)

    def px(self, point: Point) -> Point:
        """Model point -> canvas pixel."""
        return ((point[0] - self.x0) * self.scale, (self.y1 - point[1]) * self.scale)

    def polygon(self, points: list[Point], fill: Color, alpha: int = 255) -> None:
        """Filled polygon."""
        if len(points) >= 3:
            self.draw.polygon([self.px(p) for p in points], fill=(*fill, alpha))

    def ellipse(self, centre: Point, rx: float, ry: float, fill: Color, angle: float = 0.0, alpha: int = 255) -> None:
        """Filled ellipse with semi-axes ``rx`` (along ``angle``) and ``ry``."""
        self.polygon(ellipse_points(centre, rx, ry, angle), fill, alpha)

    def stroke(self, points: list[Point], widths: list[float], fill: Color, alpha: int = 255, cap: bool = True) -> None:
        """A polyline with a width per point (tapered limbs, tails, necks, antlers)."""
        self.polygon(stroke_outline(points, widths), fill, alpha)
        if cap:
            self.ellipse(points[-1], widths[-1] / 2, widths[-1] / 2, fill, alpha=alpha)

    def dot(self, centre: Point, radius: float, fill: Color, alpha: int = 255) -> None:
        """A small disc."""
        self.ellipse(centre, radius, radius, fill, alpha=alpha)

    def _blank(self) -> Canvas:
        """An empty canvas with the same geometry."""
        blank = Canvas.__new__(Canvas)
        blank.x0, blank.y1, blank.scale, blank.supersample = self.x0, self.y1, self.scale, self.supersample
        blank.image = Image.new("RGBA", self.image.size, (0, 0, 0, 0))
        blank.draw = ImageDraw.Draw(blank.image)
        return blank

    def mask_of(self, draw_fn: Callable[[Canvas], object]) -> Image.Image:
        """An ``L`` mask of whatever ``draw_fn(canvas)`` draws on a blank copy of this canvas."""
        blank = self._blank()
        draw_fn(blank)
        return blank.image.getchannel("A")

    def clipped(self, mask: Image.Image, draw_fn: Callable[[Canvas], object]) -> None:
        """Draw ``draw_fn(layer)`` on a layer and paste it clipped to ``mask`` (patterns on a part)."""
        layer = self._blank()
        draw_fn(layer)
        alpha = np.minimum(np.asarray(layer.image.getchannel("A")), np.asarray(mask))
        layer.image.putalpha(Image.fromarray(alpha))
        self.image.alpha_composite(layer.image)

    def finish(self, rng: np.random.Generator, *, fur: float = 0.07, anchor: Point = (0.0, 0.0),
               eye: Point | None = None, ir_fur: bool = True) -> Sprite:
        """Shade (top light, fur texture, darker rim), downsample and crop to the drawn pixels.

        Args:
            rng: source of the fur texture.
            fur: strength of the multiplicative fur texture.
            anchor: model point of the ground contact under the object's centre.
            eye: model point of the visible eye, if any.
            ir_fur: reflects near-infrared like fur (see :class:`Sprite`).
        """
        full = np.asarray(self.image)
        ss = self.supersample
        rows = np.flatnonzero(full[..., 3].any(axis=1))
        cols = np.flatnonzero(full[..., 3].any(axis=0))
        if len(rows) == 0:
            return Sprite(np.zeros((1, 1, 4), np.uint8), (0.0, 0.0))
        r0, c0 = max(0, rows[0] - 2) // ss * ss, max(0, cols[0] - 2) // ss * ss  # keep the supersample grid
        r1, c1 = min(full.shape[0], rows[-1] + 3), min(full.shape[1], cols[-1] + 3)
        rgba = full[r0:r1, c0:c1].astype(np.float32)
        height, width = rgba.shape[:2]
        alpha = rgba[..., 3] / 255.0
        rows_light = np.linspace(1.12, 0.82, height, dtype=np.float32)[:, None]
        coarse = rng.normal(0.0, 1.0, (max(2, height // 24), max(2, width // 24))).astype(np.float32)
        fine = rng.normal(0.0, 1.0, (max(2, height // 3), max(2, width // 3))).astype(np.float32)
        texture = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC) * (0.6 * fur)
        texture += cv2.resize(fine, (width, height), interpolation=cv2.INTER_LINEAR) * (0.5 * fur)
        texture += 1.0
        k = max(3, max(height, width) // 30)
        rim = cv2.blur(alpha, (k, k))
        np.clip(rim * 1.6 - 0.3, 0.0, 1.0, out=rim)
        texture *= rim * 0.28 + 0.72
        texture *= rows_light
        rgba[..., :3] *= texture[..., None]
        np.clip(rgba, 0, 255, out=rgba)
        out = Image.fromarray(rgba.astype(np.uint8), "RGBA")
        if ss > 1:
            out = out.resize((max(1, width // ss), max(1, height // ss)), Image.Resampling.BOX)
        ax, ay = self.px(anchor)
        eye_px = None
        if eye is not None:
            ex, ey = self.px(eye)
            eye_px = ((ex - c0) / ss, (ey - r0) / ss)
        return Sprite(np.asarray(out), ((ax - c0) / ss, (ay - r0) / ss), eye_px, ir_fur)


def ellipse_points(centre: Point, rx: float, ry: float, angle: float = 0.0, n: int = 28) -> list[Point]:
    """Outline of a rotated ellipse."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    out = []
    for i in range(n):
        t = 2 * math.pi * i / n
        x, y = rx * math.cos(t), ry * math.sin(t)
        out.append((centre[0] + x * c - y * s, centre[1] + x * s + y * c))
    return out


def superellipse(centre: Point, rx: float, ry: float, power: float, n: int = 40) -> list[tuple[float, float, float]]:
    """Outline of a superellipse as (x, y, sin t) triples; sin t > 0 on the upper half."""
    out = []
    for i in range(n):
        t = 2 * math.pi * i / n
        ct, st = math.cos(t), math.sin(t)
        x = rx * math.copysign(abs(ct) ** (2 / power), ct)
        y = ry * math.copysign(abs(st) ** (2 / power), st)
        out.append((centre[0] + x, centre[1] + y, st))
    return out


def stroke_outline(points: list[Point], widths: list[float]) -> list[Point]:
    """Polygon around a polyline whose width varies point by point."""
    left, right = [], []
    n = len(points)
    for i, (x, y) in enumerate(points):
        a = points[max(0, i - 1)]
        b = points[min(n - 1, i + 1)]
        dx, dy = b[0] - a[0], b[1] - a[1]
        norm = math.hypot(dx, dy) or 1.0
        nx, ny = -dy / norm, dx / norm
        half = widths[i] / 2
        left.append((x + nx * half, y + ny * half))
        right.append((x - nx * half, y - ny * half))
    return left + right[::-1]


def curve(origin: Point, degrees: float, length: float, bend: float, n: int = 8) -> list[Point]:
    """A smooth arc starting at ``origin`` heading ``degrees`` and turning ``bend`` degrees in total."""
    points = [origin]
    step = length / (n - 1)
    heading = degrees
    for _ in range(n - 1):
        points.append(along(points[-1], heading, step))
        heading += bend / (n - 2)
    return points


def value_noise(shape: tuple[int, int], cell: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth noise in about [-1, 1] with features about ``cell`` pixels wide (float32)."""
    height, width = shape
    grid = rng.normal(0.0, 1.0, (max(2, int(height / cell) + 2), max(2, int(width / cell) + 2))).astype(np.float32)
    return np.clip(cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC) * 0.8, -1.5, 1.5)
