"""Top-down (nadir) silhouettes of deer and wild boar for drone frames, with their shadows.

Traits that survive at 10-60 pixels: size and shape (boar wedge-shaped and dark, roe small),
rump patches (roe white, red deer buff, fallow white framed black with a black tail line),
fallow spots in summer coat, antlers on stags in season.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecowatch.synth.shapes import Canvas, Color, Point, Sprite, jitter, rotate, shade

DRONE_SPECIES = ("red_deer", "fallow_deer", "roe_deer", "wild_boar")

# body length (m), body width (m), summer coat, winter coat
_BODY: dict[str, tuple[float, float, Color, Color]] = {
    "red_deer": (2.0, 0.55, (150, 82, 48), (112, 94, 76)),
    "fallow_deer": (1.5, 0.42, (176, 112, 62), (108, 92, 78)),
    "roe_deer": (1.1, 0.32, (172, 98, 52), (114, 98, 82)),
    "wild_boar": (1.4, 0.55, (70, 60, 52), (70, 60, 52)),
}


@dataclass(frozen=True)
class DroneAnimal:
    """One animal in a drone frame.

    Attributes:
        species: one of :data:`DRONE_SPECIES`.
        object_id: id unique within the dump.
        x_px: column of the body centre.
        y_px: row of the body centre.
        heading_deg: direction the head points, degrees counter-clockwise from image right.
        pose: ``stand``, ``walk`` or ``lie``.
        size: multiplier of the species' body length (juveniles are smaller).
        male: stags carry antlers in season.
        look_seed: seed of its colours.
    """

    species: str
    object_id: str
    x_px: float
    y_px: float
    heading_deg: float
    pose: str
    size: float
    male: bool
    look_seed: int


def draw_topdown(animal: DroneAnimal, *, px_per_m: float, month: int, sun_deg: float) -> Sprite:
    """Draw an animal seen from straight above, with a soft shadow cast away from the sun.

    Args:
        animal: the animal.
        px_per_m: pixels per metre on the ground (1 / ground sampling distance).
        month: 1..12 (coats, antlers).
        sun_deg: direction the sun shines from, degrees counter-clockwise from image right.

    Returns:
        The sprite, anchored at the body centre.
    """
    rng = np.random.default_rng(animal.look_seed)
    length, width, summer, winter = _BODY[animal.species]
    length *= animal.size
    width *= animal.size
    winter_coat = month in (11, 12, 1, 2, 3, 4)
    coat = jitter(winter if winter_coat else summer, rng, 0.06)
    lying = animal.pose == "lie"
    if lying:
        length, width = length * 0.75, width * 1.35
    extent = length * 1.1 + 0.6
    canvas = Canvas((-extent, extent), (-extent, extent), px_per_m, 4)
    heading = animal.heading_deg

    def r(point: Point) -> Point:
        return rotate(point, heading)

    def ellipse(centre: Point, rx: float, ry: float, color: Color, angle: float = 0.0, alpha: int = 255) -> None:
        canvas.ellipse(r(centre), rx, ry, color, heading + angle, alpha)

    shadow = rotate((0.35 * animal.size, 0.0), sun_deg + 180.0)
    canvas.ellipse((r((0.0, 0.0))[0] + shadow[0], r((0.0, 0.0))[1] + shadow[1]), length * 0.55, width * 0.55,
                   (20, 20, 20), heading, 90)
    head_len = length * (0.22 if animal.species != "wild_boar" else 0.3)
    neck_angle = float(rng.uniform(-35, 35)) if not lying else float(rng.choice([-70.0, 70.0]))
    head_base = (length * 0.45, 0.0)
    head_dir = rotate((1.0, 0.0), neck_angle)
    head_c = (head_base[0] + head_dir[0] * head_len * 0.6, head_base[1] + head_dir[1] * head_len * 0.6)
    if animal.species == "wild_boar":  # wedge: broad shoulders, narrow rump
        body = [(-length * 0.5, -width * 0.3), (length * 0.3, -width * 0.5), (length * 0.45, -width * 0.35),
                (length * 0.45, width * 0.35), (length * 0.3, width * 0.5), (-length * 0.5, width * 0.3)]
        canvas.polygon([r(p) for p in body], coat)
        canvas.polygon([r(p) for p in ((length * 0.4, -width * 0.3), (length * 0.4, width * 0.3),
                                        (head_c[0] + head_len * 0.5, head_c[1] + width * 0.08),
                                        (head_c[0] + head_len * 0.5, head_c[1] - width * 0.08))], shade(coat, 0.85))
        ellipse((-length * 0.05, 0.0), length * 0.35, width * 0.08, shade(coat, 0.7))  # bristly spine
    else:
        ellipse((0.0, 0.0), length * 0.5, width * 0.5, coat)
        ellipse(head_c, head_len * 0.55, width * 0.22, shade(coat, 1.05), neck_angle)
        for side in (-1, 1):  # ears
            ear = (head_c[0] - head_dir[0] * head_len * 0.2 + side * head_dir[1] * width * 0.1,
                   head_c[1] - head_dir[1] * head_len * 0.2 + side * width * 0.25)
            ellipse(ear, width * 0.12, width * 0.06, shade(coat, 0.9), neck_angle + side * 60)
        ellipse((-length * 0.05, 0.0), length * 0.4, width * 0.12, shade(coat, 0.85))  # darker back line
        rump = (-length * 0.46, 0.0)
        if animal.species == "roe_deer":
            ellipse(rump, length * 0.1, width * 0.3, (240, 238, 232) if winter_coat else (225, 205, 165))
        elif animal.species == "red_deer":
            ellipse(rump, length * 0.11, width * 0.36, (214, 188, 140))
        else:  # fallow
            ellipse(rump, length * 0.12, width * 0.4, (25, 22, 20))
            ellipse(rump, length * 0.1, width * 0.32, (245, 242, 236))
            tail = [r((-length * 0.4, 0.0)), r((-length * 0.62, 0.0))]
            canvas.stroke(tail, [width * 0.09, width * 0.07], (25, 22, 20))
            if not winter_coat:
                for _ in range(14):
                    side = float(rng.choice([-1, 1]))
                    spot = (float(rng.uniform(-0.35, 0.3)) * length, side * float(rng.uniform(0.1, 0.38)) * width)
                    ellipse(spot, width * 0.05, width * 0.05, (245, 240, 228))
        antlers = animal.male and animal.size > 0.85 and (
            (animal.species == "red_deer" and month not in (4, 5, 6, 7))
            or (animal.species == "fallow_deer" and month not in (5, 6, 7))
            or (animal.species == "roe_deer" and month not in (11, 12)))
        if antlers:
            spread = {"red_deer": 0.55, "fallow_deer": 0.45, "roe_deer": 0.15}[animal.species] * animal.size
            for side in (-1, 1):
                tip = (head_c[0] - head_len * 0.3, head_c[1] + side * spread)
                canvas.stroke([r(head_c), r(tip)], [0.05, 0.03], (125, 105, 80))
    return canvas.finish(rng, fur=0.05, anchor=(0.0, 0.0))
