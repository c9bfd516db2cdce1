"""Side-view body plans: a generic quadruped (canids, cats, mustelids, deer, pigs), a hare and a
squirrel. Each drawer lays out the skeleton for a pose, draws the base parts and returns the
skeleton so that species code can add patterns (bibs, spots, stripes, rump patches, antlers).

Model units: the torso length is 1; x points forward (the animal faces +x), y up, ground at 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ecowatch.synth.shapes import (
    Canvas,
    Color,
    Point,
    along,
    curve,
    ellipse_points,
    shade,
    superellipse,
    two_bone,
)


@dataclass(frozen=True)
class Pose:
    """How one individual stands in one frame.

    Attributes:
        name: one of ``walk``, ``stand``, ``graze`` (head down), ``alert`` (head up), ``run``.
        gait_phase: phase of the leg cycle, radians.
        leg_jitter: small per-leg offsets (degrees) so standing animals do not look rigid.
    """

    name: str = "walk"
    gait_phase: float = 0.0
    leg_jitter: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Quad:
    """Proportions of a quadruped in torso lengths (angles in degrees)."""

    leg: float = 0.55
    body_h: float = 0.38
    power: float = 2.2
    slope: float = 0.0
    arch: float = 0.0
    tuck: float = 0.05
    neck_len: float = 0.3
    neck_w: tuple[float, float] = (0.24, 0.16)
    neck_angle: float = 25.0
    head_len: float = 0.3
    head_h: float = 0.2
    head_pitch: float = -15.0
    snout_len: float = 0.18
    snout_tip: float = 0.06
    ear_len: float = 0.18
    ear_w: float = 0.12
    ear_tilt: float = 10.0
    ear_round: bool = False
    tail_len: float = 0.8
    tail_w: float = 0.18
    tail_angle: float = -20.0
    tail_bend: float = 10.0
    tail_style: str = "bushy"
    leg_w: tuple[float, float] = (0.09, 0.05)
    hoof: bool = False
    walk_amp: float = 24.0


@dataclass(frozen=True)
class Look:
    """Colours of one individual."""

    coat: Color
    belly: Color
    head: Color
    leg_upper: Color
    leg_lower: Color
    ear: Color
    ear_tip: Color
    tail: Color
    tail_tip: Color
    nose: Color = (30, 25, 25)
    eye: Color = (20, 15, 10)
    tail_tip_frac: float = 0.0
    ear_tip_frac: float = 0.0


@dataclass
class Skeleton:
    """Where the parts ended up, for species patterns."""

    torso: list[Point]
    yc: float
    body_h: float
    neck: list[Point]
    neck_widths: list[float]
    head_c: Point
    head_axis: float
    head_len: float
    head_h: float
    snout_tip: Point
    eye: Point
    ear_base: Point
    ear_axis: float
    tail: list[Point]
    tail_widths: list[float]
    legs: dict[str, tuple[Point, Point, Point]] = field(default_factory=dict)

    def top_y(self, x: float) -> float:
        """Height of the torso's upper outline at ``x``."""
        best = max(self.torso, key=lambda p: p[1] - 10 * abs(p[0] - x))
        return best[1]


def _tail_widths(style: str, width: float, n: int) -> list[float]:
    out = []
    for i in range(n):
        t = i / (n - 1)
        if style == "bushy":
            w = width * (0.45 + 0.75 * math.sin(math.pi * min(1.0, t * 0.9 + 0.1)))
        elif style == "tapered":
            w = width * max(0.12, (1.0 - t) ** 0.9)
        elif style == "blunt":
            w = width * (0.95 + 0.1 * math.sin(math.pi * t))
        elif style == "tuft":
            w = width * (1.0 if t < 0.8 else 2.2)
        else:  # "stub"
            w = width
        out.append(w)
    return out


def _head_points(head_c: Point, axis: float, q: Quad) -> tuple[list[Point], Point, list[Point]]:
    """Head ellipse outline, snout tip, snout polygon."""
    head = ellipse_points(head_c, q.head_len / 2, q.head_h / 2, axis)
    base_top = along(along(head_c, axis, q.head_len * 0.2), axis + 90, q.head_h * 0.42)
    base_bottom = along(along(head_c, axis, q.head_len * 0.2), axis - 90, q.head_h * 0.4)
    tip = along(head_c, axis, q.head_len * 0.45 + q.snout_len)
    tip_top = along(tip, axis + 90, q.snout_tip * 0.55)
    tip_bottom = along(tip, axis - 90, q.snout_tip * 0.45)
    return head, tip, [base_top, tip_top, along(tip, axis, q.snout_tip * 0.3), tip_bottom, base_bottom]


def draw_quadruped(
    canvas: Canvas, q: Quad, look: Look, pose: Pose, *, far_shade: float = 0.72, tail_first: bool = True
) -> Skeleton:
    """Draw a generic quadruped facing +x and return its skeleton."""
    yc = q.leg + q.body_h / 2
    torso = []
    for x, y, st in superellipse((0.0, yc), 0.5, q.body_h / 2, q.power):
        y += q.slope * x
        if st > 0:
            y += q.arch * q.body_h * (1 - (2 * x) ** 2)
        else:
            y += q.tuck * q.body_h * max(0.0, -x * 2)
        torso.append((x, y))

    amp = {"walk": q.walk_amp, "run": q.walk_amp * 1.7}.get(pose.name, 5.0)
    offsets = {"front_near": 0.0, "hind_near": math.pi / 2, "front_far": math.pi, "hind_far": 3 * math.pi / 2}
    legs: dict[str, tuple[Point, Point, Point]] = {}
    for index, (name, offset) in enumerate(offsets.items()):
        front = name.startswith("front")
        ax = 0.32 if front else -0.32
        if name.endswith("far"):
            ax += 0.04
        top = (ax, yc - q.body_h * 0.12 + q.slope * ax)
        swing = math.radians(amp * math.sin(pose.gait_phase + offset) + pose.leg_jitter[index])
        lift = max(0.0, math.cos(pose.gait_phase + offset)) * 0.1 * q.leg if amp > 8 else 0.0
        length = top[1]
        foot = (ax + length * math.sin(swing), lift)
        upper, lower = length * 0.56, length * 0.52
        knee = two_bone(top, foot, upper, lower, 1.0 if front else -1.0)
        legs[name] = (top, knee, foot)

    neck_angle = q.neck_angle
    head_pitch = q.head_pitch
    if pose.name == "graze":
        neck_angle, head_pitch = -40.0 if q.neck_angle > 35 else -25.0, -70.0
    elif pose.name == "alert":
        neck_angle, head_pitch = q.neck_angle + 15.0, q.head_pitch + 10.0
    shoulder_top = (0.4, yc + q.body_h * 0.2 + q.slope * 0.4)
    neck = [shoulder_top, along(shoulder_top, neck_angle, q.neck_len * 0.5),
            along(shoulder_top, neck_angle, q.neck_len)]
    neck_widths = [q.neck_w[0], (q.neck_w[0] + q.neck_w[1]) / 2, q.neck_w[1]]
    axis = neck_angle + head_pitch if pose.name == "graze" else head_pitch
    head_c = along(neck[-1], axis, q.head_len * 0.2)
    head, tip, snout = _head_points(head_c, axis, q)
    ear_base = along(along(head_c, axis, -q.head_len * 0.22), axis + 90, q.head_h * 0.32)
    ear_axis = axis + 90 + q.ear_tilt

    tail_base = (-0.47, yc + q.body_h * 0.22 - q.slope * 0.47)
    tail = curve(tail_base, 180 - q.tail_angle, q.tail_len, -q.tail_bend, n=16) if q.tail_len > 0 else [tail_base]
    tail_widths = _tail_widths(q.tail_style, q.tail_w, len(tail)) if q.tail_len > 0 else [0.0]

    skeleton = Skeleton(torso, yc, q.body_h, neck, neck_widths, head_c, axis, q.head_len, q.head_h, tip,
                        along(along(head_c, axis, q.head_len * 0.18), axis + 90, q.head_h * 0.12),
                        ear_base, ear_axis, tail, tail_widths, legs)

    for name in ("hind_far", "front_far"):
        _draw_leg(canvas, legs[name], q, look, far_shade)
    _draw_ear(canvas, along(ear_base, axis, -q.ear_w * 0.3), ear_axis + 6, q, look, far_shade)
    if tail_first and q.tail_len > 0:
        draw_tail(canvas, skeleton, look)
    canvas.polygon(torso, look.coat)
    canvas.stroke(neck, neck_widths, look.coat)
    for name in ("hind_near", "front_near"):
        _draw_leg(canvas, legs[name], q, look, 1.0)
    if not tail_first and q.tail_len > 0:
        draw_tail(canvas, skeleton, look)
    canvas.polygon(head, look.head)
    canvas.polygon(snout, look.head)
    canvas.dot(tip, q.snout_tip * 0.35, look.nose)
    canvas.dot(skeleton.eye, q.head_h * 0.09, look.eye)
    _draw_ear(canvas, ear_base, ear_axis, q, look, 1.0)
    return skeleton


def _draw_leg(canvas: Canvas, leg: tuple[Point, Point, Point], q: Quad, look: Look, factor: float) -> None:
    top, knee, foot = leg
    w0, w1 = q.leg_w
    mid = (w0 + w1) / 2
    canvas.stroke([top, knee], [w0 * 1.4, mid], shade(look.leg_upper, factor))
    canvas.stroke([knee, foot], [mid, w1], shade(look.leg_lower, factor))
    if q.hoof:
        canvas.polygon(
            [(foot[0] - w1 * 0.6, foot[1]), (foot[0] + w1 * 0.9, foot[1]), (foot[0] + w1 * 0.4, foot[1] + w1 * 1.4),
             (foot[0] - w1 * 0.5, foot[1] + w1 * 1.3)],
            shade((35, 30, 28), factor),
        )
    else:
        canvas.ellipse((foot[0] + w1 * 0.5, foot[1] + w1 * 0.35), w1 * 0.9, w1 * 0.45, shade(look.leg_lower, factor))


def _draw_ear(canvas: Canvas, base: Point, axis: float, q: Quad, look: Look, factor: float) -> None:
    if q.ear_round:
        centre = along(base, axis, q.ear_len * 0.45)
        canvas.ellipse(centre, q.ear_len * 0.55, q.ear_w * 0.5, shade(look.ear, factor), axis)
        if look.ear_tip_frac:
            canvas.ellipse(along(centre, axis, q.ear_len * 0.3), q.ear_len * 0.25, q.ear_w * 0.45,
                           shade(look.ear_tip, factor), axis)
        return
    left = along(base, axis + 90, q.ear_w / 2)
    right = along(base, axis - 90, q.ear_w / 2)
    tip = along(base, axis, q.ear_len)
    canvas.polygon([left, tip, right], shade(look.ear, factor))
    if look.ear_tip_frac:
        f = 1.0 - look.ear_tip_frac
        canvas.polygon(
            [(left[0] + (tip[0] - left[0]) * f, left[1] + (tip[1] - left[1]) * f), tip,
             (right[0] + (tip[0] - right[0]) * f, right[1] + (tip[1] - right[1]) * f)],
            shade(look.ear_tip, factor),
        )


def draw_tail(canvas: Canvas, skeleton: Skeleton, look: Look, *, widths: list[float] | None = None,
              color: Color | None = None) -> None:
    """Draw the tail along the skeleton's tail curve, with a differently coloured tip."""
    points = skeleton.tail
    widths = widths or skeleton.tail_widths
    canvas.stroke(points, widths, color or look.tail)
    if look.tail_tip_frac and color is None:
        tip_points, tip_widths = sub_curve(points, widths, 1.0 - look.tail_tip_frac, 1.0)
        canvas.stroke(tip_points, tip_widths, look.tail_tip)


def sub_curve(points: list[Point], widths: list[float], t0: float, t1: float) -> tuple[list[Point], list[float]]:
    """The part of a polyline between fractions ``t0`` and ``t1`` of its vertices, interpolated."""
    n = len(points) - 1

    def at(t: float) -> tuple[Point, float]:
        f = min(max(t, 0.0), 1.0) * n
        i = min(int(f), n - 1)
        u = f - i
        p, q = points[i], points[i + 1]
        return (p[0] + (q[0] - p[0]) * u, p[1] + (q[1] - p[1]) * u), widths[i] + (widths[i + 1] - widths[i]) * u

    start, w_start = at(t0)
    end, w_end = at(t1)
    inner = [i for i in range(n + 1) if t0 * n < i < t1 * n]
    return [start] + [points[i] for i in inner] + [end], [w_start] + [widths[i] for i in inner] + [w_end]


def draw_hare(canvas: Canvas, look: Look, pose: Pose, *, ear_len: float, tail_top: Color) -> Skeleton:
    """A hare: hunched body, big hind legs on long feet, long ears laid back when moving."""
    moving = pose.name in ("walk", "run")
    yc = 0.5
    torso = [(x, y + 0.12 * -x) for x, y in ellipse_points((0.0, yc), 0.52, 0.27, -12 if moving else -18, 36)]
    thigh_c = (-0.26, 0.36)
    hop = math.sin(pose.gait_phase) if moving else 0.0
    hind_foot = [(-0.42 + 0.08 * hop, 0.02), (0.05 + 0.1 * hop, 0.0)]
    front_top = (0.32, yc - 0.05)
    front_foot = (0.42 + 0.15 * hop, 0.0)
    neck_angle = {"graze": -30.0, "alert": 70.0}.get(pose.name, 35.0)
    head_c = along((0.46, yc + 0.12), neck_angle, 0.2)
    axis = {"graze": -75.0, "alert": -5.0}.get(pose.name, -20.0)
    head = ellipse_points(head_c, 0.19, 0.13, axis)
    tip = along(head_c, axis, 0.22)
    ear_base = along(head_c, axis + 160, 0.08)
    ear_axis = axis + (145 if moving else 100)
    tail = [(-0.5, yc + 0.12), (-0.56, yc + 0.16)]
    skeleton = Skeleton(torso, yc, 0.54, [head_c], [0.1], head_c, axis, 0.38, 0.26, tip,
                        along(head_c, axis, 0.04), ear_base, ear_axis, tail, [0.12, 0.12])
    far = shade(look.leg_lower, 0.7)
    canvas.stroke([(front_top[0] + 0.04, front_top[1]), (front_foot[0] - 0.1, 0.02)], [0.07, 0.045], far)
    _hare_ear(canvas, along(ear_base, axis, 0.04), ear_axis + 8, ear_len, look, 0.75)
    canvas.ellipse((-0.55, yc + 0.12), 0.075, 0.07, (240, 240, 238))
    canvas.ellipse((-0.55, yc + 0.155), 0.07, 0.04, tail_top)
    canvas.polygon(torso, look.coat)
    canvas.ellipse(thigh_c, 0.3, 0.25, shade(look.coat, 0.95), 20)
    canvas.stroke(hind_foot, [0.09, 0.06], look.leg_lower)
    canvas.stroke([front_top, front_foot], [0.09, 0.05], look.leg_lower)
    canvas.stroke([(0.38, yc + 0.08), head_c], [0.22, 0.18], look.coat)
    canvas.polygon(head, look.head)
    canvas.dot(tip, 0.025, look.nose)
    canvas.dot(skeleton.eye, 0.04, (150, 110, 40))
    canvas.dot(skeleton.eye, 0.022, look.eye)
    _hare_ear(canvas, ear_base, ear_axis, ear_len, look, 1.0)
    return skeleton


def _hare_ear(canvas: Canvas, base: Point, axis: float, length: float, look: Look, factor: float) -> None:
    points = [base, along(base, axis, length * 0.5), along(base, axis, length)]
    canvas.stroke(points, [0.07, 0.085, 0.04], shade(look.ear, factor))
    tip_start = along(base, axis, length * (1 - look.ear_tip_frac))
    canvas.stroke([tip_start, along(base, axis, length)], [0.075, 0.04], shade(look.ear_tip, factor))


def draw_squirrel(canvas: Canvas, look: Look, pose: Pose, *, tufts: bool, fringe: Color | None) -> Skeleton:
    """A squirrel: sitting up (stand/alert/graze) or bounding (walk/run), with a big bushy tail."""
    sitting = pose.name not in ("walk", "run")
    body_angle = 55.0 if sitting else 12.0
    yc = 0.42 if sitting else 0.36
    torso = ellipse_points((0.0, yc), 0.5, 0.27, body_angle, 36)
    head_c = along((0.0, yc), body_angle, 0.55) if sitting else (0.55, yc + 0.12)
    axis = -10.0 if sitting else 5.0
    if pose.name == "graze":
        head_c, axis = (0.45, 0.22), -60.0
    if sitting:  # question-mark tail up the back, tip curling outwards
        tail = [(-0.28, 0.1), (-0.5, 0.16), (-0.66, 0.36), (-0.68, 0.62), (-0.62, 0.88), (-0.58, 1.1),
                (-0.64, 1.28), (-0.78, 1.36), (-0.92, 1.32)]
        widths = [0.16, 0.26, 0.34, 0.38, 0.4, 0.4, 0.37, 0.32, 0.24]
    else:  # streaming back and up
        tail = curve((-0.48, yc + 0.06), 168, 1.15, -60, n=9)
        widths = [0.14, 0.24, 0.32, 0.37, 0.4, 0.4, 0.38, 0.33, 0.26]
    skeleton = Skeleton(torso, yc, 0.54, [head_c], [0.2], head_c, axis, 0.36, 0.3,
                        along(head_c, axis, 0.22), along(along(head_c, axis, 0.07), axis + 90, 0.03),
                        along(head_c, axis + 150, 0.1), axis + 100, tail, widths)
    if fringe is not None:
        canvas.stroke(tail, [w * 1.18 for w in widths], fringe)
    canvas.stroke(tail, widths, look.tail)
    canvas.polygon(torso, look.coat)
    belly = ellipse_points(along((0.0, yc), body_angle - 90, 0.12), 0.4, 0.12, body_angle, 24)
    canvas.clipped(canvas.mask_of(lambda c: c.polygon(torso, look.coat)), lambda c: c.polygon(belly, look.belly))
    thigh = (-0.2, 0.2) if sitting else (-0.3, yc - 0.05)
    canvas.ellipse(thigh, 0.22, 0.18, shade(look.coat, 0.92), 10)
    canvas.stroke([(thigh[0] - 0.05, 0.03), (thigh[0] + 0.3, 0.0)], [0.08, 0.06], look.leg_lower)
    paw_top = along((0.0, yc), body_angle, 0.25)
    paw_end = (head_c[0] + 0.1, head_c[1] - 0.12) if sitting else (0.6 + 0.1 * math.sin(pose.gait_phase), 0.0)
    canvas.stroke([paw_top, paw_end], [0.07, 0.045], look.leg_lower)
    canvas.ellipse(head_c, 0.2, 0.17, look.head, axis)
    muzzle = [along(head_c, axis + 40, 0.12), along(head_c, axis, 0.24), along(head_c, axis - 45, 0.12)]
    canvas.polygon(muzzle, look.head)
    canvas.dot(skeleton.snout_tip, 0.025, look.nose)
    canvas.dot(skeleton.eye, 0.05, (225, 215, 195))
    canvas.dot(skeleton.eye, 0.032, look.eye)
    ear_tip = along(skeleton.ear_base, skeleton.ear_axis, 0.17)
    canvas.polygon([along(skeleton.ear_base, axis, -0.05), ear_tip, along(skeleton.ear_base, axis, 0.06)], look.ear)
    if tufts:
        for spread in (-14.0, 0.0, 14.0):
            canvas.stroke([ear_tip, along(ear_tip, skeleton.ear_axis + spread - 15, 0.16)], [0.035, 0.008],
                          look.ear_tip, cap=False)
    return skeleton


def draw_antlers(canvas: Canvas, skeleton: Skeleton, kind: str, size: float, color: Color) -> None:
    """Antlers on the head: ``red`` (branched), ``fallow`` (palmate) or ``roe`` (short, 3 tines)."""
    base = along(skeleton.ear_base, skeleton.head_axis, skeleton.head_len * 0.12)
    up = skeleton.head_axis + 95
    for offset, factor in ((6.0, 0.7), (0.0, 1.0)):  # far antler first, darker
        c = shade(color, factor)
        if kind == "roe":
            beam = curve(base, up + offset, size, -10, n=4)
            canvas.stroke(beam, [0.05, 0.04, 0.03, 0.02], c)
            canvas.stroke([beam[1], along(beam[1], up + 45, size * 0.3)], [0.03, 0.015], c)
            canvas.stroke([beam[2], along(beam[2], up - 50, size * 0.3)], [0.025, 0.012], c)
        elif kind == "red":
            beam = curve(base, up + 25 + offset, size, -50, n=6)
            canvas.stroke(beam, [0.06, 0.055, 0.05, 0.045, 0.04, 0.03], c)
            canvas.stroke([beam[0], along(beam[0], skeleton.head_axis + 20, size * 0.35)], [0.04, 0.015], c)
            canvas.stroke([beam[2], along(beam[2], skeleton.head_axis + 35, size * 0.3)], [0.035, 0.012], c)
            for i, spread in ((4, -20), (5, 30), (5, -45)):
                canvas.stroke([beam[i], along(beam[i], up + spread, size * 0.22)], [0.03, 0.01], c)
        else:  # fallow: round beam then a flat palm with points on its rear edge
            beam = curve(base, up + 20 + offset, size * 0.45, -20, n=4)
            canvas.stroke(beam, [0.055, 0.05, 0.045, 0.045], c)
            canvas.stroke([beam[0], along(beam[0], skeleton.head_axis + 25, size * 0.25)], [0.035, 0.012], c)
            end = beam[-1]
            axis = up + 5
            palm = [along(end, axis - 90, 0.04), along(along(end, axis, size * 0.55), axis - 90, 0.1),
                    along(end, axis, size * 0.62), along(along(end, axis, size * 0.5), axis + 90, size * 0.28),
                    along(along(end, axis, size * 0.2), axis + 90, size * 0.2), along(end, axis + 90, 0.03)]
            canvas.polygon(palm, c)
            for t in (0.25, 0.45, 0.65, 0.85):
                root = along(along(end, axis, size * 0.55 * t + 0.05), axis + 90, size * (0.12 + 0.16 * t))
                canvas.stroke([root, along(root, axis + 60, size * 0.1)], [0.03, 0.008], c, cap=False)
