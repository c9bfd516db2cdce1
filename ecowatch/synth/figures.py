"""People and vehicles in side view (model units: metres, y up, ground at 0)."""

from __future__ import annotations

import math

import numpy as np

from ecowatch.synth.shapes import Canvas, Sprite, along, jitter, mirrored, shade, two_bone

_JACKETS = ((180, 40, 40), (40, 70, 150), (50, 110, 60), (215, 180, 40), (90, 90, 95), (230, 110, 30), (120, 40, 110))
_TROUSERS = ((40, 40, 45), (70, 75, 60), (45, 55, 80), (95, 85, 70))
_SKIN = ((235, 200, 175), (200, 155, 120), (150, 105, 75), (95, 65, 50))
_CAR_PAINT = ((200, 200, 205), (30, 30, 35), (140, 20, 25), (30, 60, 110), (60, 80, 60), (230, 230, 228))


def draw_person(look_seed: int, *, px_per_m: float, facing: int, gait_phase: float) -> Sprite:
    """A walking hiker about 1.75 m tall, with jacket, trousers, boots and maybe a backpack or hat.

    Args:
        look_seed: seed of clothing colours and accessories (stable across a burst).
        px_per_m: output pixels per metre (sets the scale).
        facing: +1 walks to the right, -1 to the left.
        gait_phase: phase of the stride, radians.
    """
    rng = np.random.default_rng(look_seed)
    height = float(rng.uniform(1.6, 1.9))
    jacket = jitter(_JACKETS[int(rng.integers(len(_JACKETS)))], rng)
    trousers = _TROUSERS[int(rng.integers(len(_TROUSERS)))]
    skin = _SKIN[int(rng.integers(len(_SKIN)))]
    canvas = Canvas((-0.7, 0.7), (-0.05, height + 0.2), px_per_m, 2 if px_per_m < 150 else 1)
    hip = (0.0, height * 0.52)
    swing = 28.0 * math.sin(gait_phase)
    for sign, factor in ((-1, 0.75), (1, 1.0)):
        foot = along(hip, -90 + sign * swing, height * 0.5)
        foot = (foot[0], max(0.0, foot[1]))
        knee = two_bone(hip, foot, height * 0.26, height * 0.26, 1.0)
        canvas.stroke([hip, knee, foot], [0.15, 0.12, 0.1], shade(trousers, factor))
        canvas.polygon([(foot[0] - 0.06, 0.0), (foot[0] + 0.17, 0.0), (foot[0] + 0.15, 0.09), (foot[0] - 0.05, 0.1)],
                       shade((55, 40, 30), factor))
    shoulder = (0.02, height * 0.8)
    canvas.stroke([along(shoulder, -90 - swing, 0.05), along(shoulder, -90 - swing, height * 0.36)], [0.09, 0.08],
                  shade(jacket, 0.7))
    if rng.random() < 0.65:  # backpack
        canvas.polygon([(-0.32, height * 0.52), (-0.1, height * 0.5), (-0.1, height * 0.82), (-0.28, height * 0.8)],
                       jitter((70, 70, 60), rng))
    canvas.polygon([(-0.13, height * 0.5), (0.14, height * 0.5), (0.13, height * 0.83), (-0.12, height * 0.83)], jacket)
    head = (0.04, height * 0.91)
    canvas.stroke([(0.0, height * 0.82), head], [0.1, 0.09], skin)
    canvas.ellipse(head, 0.1, 0.12, skin)
    if rng.random() < 0.5:
        canvas.ellipse((head[0], head[1] + 0.07), 0.12, 0.06, jitter((60, 60, 60), rng))
    else:
        canvas.ellipse((head[0] - 0.03, head[1] + 0.04), 0.1, 0.08, jitter((70, 50, 35), rng))
    canvas.stroke([along(shoulder, -90 + swing, 0.05), along(shoulder, -90 + swing, height * 0.36)], [0.09, 0.08],
                  jacket)
    canvas.dot(along(shoulder, -90 + swing, height * 0.37), 0.045, skin)
    sprite = canvas.finish(rng, fur=0.03, ir_fur=False)
    return mirrored(sprite) if facing < 0 else sprite


def draw_vehicle(look_seed: int, *, px_per_m: float, facing: int) -> Sprite:
    """A car, pick-up or forestry tractor about 4 m long, in side view.

    Args:
        look_seed: seed of the vehicle type and paint.
        px_per_m: output pixels per metre.
        facing: +1 drives to the right, -1 to the left.
    """
    rng = np.random.default_rng(look_seed)
    kind = ("car", "pickup", "tractor")[int(rng.choice(3, p=(0.5, 0.35, 0.15)))]
    paint = jitter(_CAR_PAINT[int(rng.integers(len(_CAR_PAINT)))], rng, 0.05)
    canvas = Canvas((-2.6, 2.6), (-0.05, 3.0), px_per_m, 2 if px_per_m < 60 else 1)
    glass = (70, 85, 100)
    tyre = (25, 25, 25)
    if kind == "tractor":
        paint = (40, 110, 50) if rng.random() < 0.5 else (200, 60, 30)
        canvas.polygon([(-0.6, 0.6), (1.9, 0.6), (1.9, 1.4), (-0.6, 1.5)], paint)
        canvas.polygon([(-1.4, 1.3), (-0.2, 1.3), (-0.2, 2.7), (-1.4, 2.7)], glass)
        canvas.stroke([(-1.4, 2.75), (-0.2, 2.75)], [0.08, 0.08], paint)
        wheels = (((-1.0, 0.8), 0.8), ((1.4, 0.5), 0.5))
    else:
        length = 2.3 if kind == "car" else 2.5
        canvas.polygon([(-length, 0.35), (length, 0.35), (length + 0.05, 0.8), (length - 0.3, 1.05),
                        (-length, 1.1)], paint)
        if kind == "car":
            canvas.polygon([(-1.6, 1.05), (0.6, 1.05), (-0.1, 1.55), (-1.4, 1.55)], paint)
            canvas.polygon([(-1.45, 1.1), (0.45, 1.1), (-0.15, 1.48), (-1.3, 1.48)], glass)
        else:
            canvas.polygon([(-0.5, 1.05), (1.0, 1.05), (0.5, 1.7), (-0.4, 1.7)], paint)
            canvas.polygon([(-0.4, 1.1), (0.85, 1.1), (0.45, 1.62), (-0.3, 1.62)], glass)
        wheels = (((-length + 0.7, 0.36), 0.36), ((length - 0.75, 0.36), 0.36))
    for centre, radius in wheels:
        canvas.dot(centre, radius, tyre)
        canvas.dot(centre, radius * 0.5, (150, 150, 150))
    sprite = canvas.finish(rng, fur=0.02, ir_fur=False)
    return mirrored(sprite) if facing < 0 else sprite
