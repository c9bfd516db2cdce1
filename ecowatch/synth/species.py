"""Procedural side-view drawings of the fourteen species, with the traits that tell them apart.

Look-alike pairs differ by one structural trait that survives infrared greyscale (bib shape,
ear tufts and tail fringe, ear length and tail colour, spots/rump/tail, tail shape) plus a
hue difference that comes with some luminance difference. See ``taxa.LOOKALIKE_PAIRS``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ecowatch.synth.bodies import (
    Look,
    Pose,
    Quad,
    Skeleton,
    draw_antlers,
    draw_hare,
    draw_quadruped,
    draw_squirrel,
    draw_tail,
    sub_curve,
)
from ecowatch.synth.shapes import Canvas, Color, Sprite, along, jitter, mirrored, mix, shade

WINTER_MONTHS = (11, 12, 1, 2, 3, 4)


@dataclass(frozen=True)
class Individual:
    """One animal, stable across the frames of a burst.

    Attributes:
        species: species key.
        individual_id: id unique within the dump.
        male: sex (antlers on deer stags in season).
        juvenile: young animals are smaller (striped piglets, fawns).
        look_seed: seed of its colour and fur texture.
        variant: coat variant (domestic cats, fallow deer), ``""`` for the usual coat.
        size: multiplier of the species' torso length.
    """

    species: str
    individual_id: str
    male: bool
    juvenile: bool
    look_seed: int
    variant: str = ""
    size: float = 1.0


CanvasFactory = Callable[[tuple[float, float], tuple[float, float]], Canvas]


def _look(coat: Color, **overrides) -> Look:
    """A look that is ``coat`` everywhere except ``overrides``."""
    base = dict(coat=coat, belly=coat, head=coat, leg_upper=coat, leg_lower=coat, ear=coat, ear_tip=coat,
                tail=coat, tail_tip=coat)
    base.update(overrides)
    return Look(**base)


def _part_mask(canvas: Canvas, sk: Skeleton, *, torso: bool = True, neck: bool = True, head: bool = True,
               upper_legs: tuple[str, ...] = (), leg_width: float = 0.1) -> Image.Image:
    """Mask of some body parts, to clip a pattern (bib, throat, stripes) to them."""

    def draw(c: Canvas) -> None:
        white = (255, 255, 255)
        if torso:
            c.polygon(sk.torso, white)
        if neck:
            c.stroke(sk.neck, sk.neck_widths, white)
        if head:
            c.ellipse(sk.head_c, sk.head_len / 2, sk.head_h / 2, white, sk.head_axis)
        for name in upper_legs:
            top, knee, _ = sk.legs[name]
            c.stroke([top, knee], [leg_width * 1.4, leg_width], white)

    return canvas.mask_of(draw)


def _quad_range(q: Quad, antler: float = 0.0) -> tuple[tuple[float, float], tuple[float, float]]:
    front = 0.5 + q.neck_len + q.head_len + q.snout_len + 0.35
    back = 0.6 + max(q.tail_len, 0.1) + 0.15
    top = q.leg + q.body_h + max(q.neck_len, 0.2) + q.head_h + q.ear_len + antler + 0.35
    return (-back, front), (-0.08, top)


def _red_fox(ind: Individual, pose: Pose, month: int, rng: np.random.Generator,
           canvas_for: CanvasFactory) -> Sprite:
    q = Quad(tail_angle=-25 if pose.name != "run" else 0)
    coat = jitter((192, 96, 42) if ind.variant != "pale" else (205, 140, 80), rng)
    look = _look(coat, belly=(236, 230, 220), leg_lower=(35, 28, 24), ear=(55, 35, 28), tail=shade(coat, 0.92),
                 tail_tip=(240, 238, 232), tail_tip_frac=0.14)
    canvas = canvas_for(*_quad_range(q))
    sk = draw_quadruped(canvas, q, look, pose)
    throat = [along(sk.snout_tip, sk.head_axis + 180, 0.05), along(sk.head_c, sk.head_axis - 90, sk.head_h * 0.45),
              sk.neck[0], (0.42, sk.yc - 0.1), (0.5, sk.yc + 0.02), along(sk.neck[-1], sk.head_axis - 90, 0.12)]
    canvas.clipped(_part_mask(canvas, sk), lambda c: c.polygon(throat, look.belly))  # white throat and chest
    return canvas.finish(rng, anchor=(0.0, 0.0), eye=sk.eye)


def _badger(ind: Individual, pose: Pose, month: int, rng: np.random.Generator,
           canvas_for: CanvasFactory) -> Sprite:
    q = Quad(leg=0.3, body_h=0.5, power=2.8, slope=-0.03, arch=0.12, tuck=0.0, neck_len=0.15, neck_w=(0.36, 0.28),
             neck_angle=5, head_len=0.36, head_h=0.22, head_pitch=-12, snout_len=0.14, snout_tip=0.06,
             ear_len=0.07, ear_w=0.09, ear_round=True, tail_len=0.2, tail_w=0.12, tail_angle=-5, tail_style="stub",
             leg_w=(0.15, 0.12), walk_amp=18)
    grey = jitter((150, 148, 140), rng, 0.05)
    dark = (28, 26, 26)
    look = Look(coat=grey, belly=dark, head=(238, 236, 230), leg_upper=dark, leg_lower=dark, ear=dark,
                ear_tip=(235, 235, 235), tail=shade(grey, 1.05), tail_tip=grey, ear_tip_frac=0.4)
    canvas = canvas_for(*_quad_range(q))
    sk = draw_quadruped(canvas, q, look, pose)
    torso_mask = canvas.mask_of(lambda c: c.polygon(sk.torso, grey))
    underside = [(-0.6, 0.0), (0.6, 0.0), (0.6, sk.yc - 0.1), (-0.6, sk.yc - 0.13)]
    canvas.clipped(torso_mask, lambda c: c.polygon(underside, dark))

    def face(c: Canvas) -> None:
        c.ellipse(sk.head_c, sk.head_len / 2, sk.head_h / 2, grey, sk.head_axis)
        c.polygon([along(sk.head_c, sk.head_axis, 0.1), sk.snout_tip, along(sk.head_c, sk.head_axis - 60, 0.1)], grey)

    head_mask = canvas.mask_of(face)
    stripe = [along(sk.snout_tip, sk.head_axis + 180, 0.04), along(sk.head_c, sk.head_axis + 180, sk.head_len * 0.6)]

    def stripes(c: Canvas) -> None:
        c.stroke([along(p, sk.head_axis + 90, sk.head_h * 0.08) for p in stripe], [0.05, sk.head_h * 0.5], dark)

    canvas.clipped(head_mask, stripes)
    canvas.dot(sk.eye, q.head_h * 0.08, (60, 60, 60) if pose.name != "graze" else dark)
    return canvas.finish(rng, fur=0.14, anchor=(0.0, 0.0), eye=sk.eye)


def _wild_boar(ind: Individual, pose: Pose, month: int, rng: np.random.Generator,
           canvas_for: CanvasFactory) -> Sprite:
    q = Quad(leg=0.4, body_h=0.62, power=2.5, slope=0.12, tuck=0.0, neck_len=0.14, neck_w=(0.5, 0.42),
             neck_angle=-8, head_len=0.5, head_h=0.34, head_pitch=-22, snout_len=0.22, snout_tip=0.14,
             ear_len=0.14, ear_w=0.09, ear_tilt=-5, tail_len=0.3, tail_w=0.035, tail_angle=-75, tail_bend=-10,
             tail_style="tuft", leg_w=(0.12, 0.06), hoof=True, walk_amp=20)
    piglet = ind.juvenile and month in (3, 4, 5, 6, 7, 8)
    coat = jitter((72, 62, 52), rng, 0.1)
    if ind.juvenile and not piglet:  # a "red" yearling
        coat = jitter((125, 90, 60), rng, 0.06)
    look = _look(coat, leg_lower=shade(coat, 0.75), nose=(120, 95, 90))
    canvas = canvas_for(*_quad_range(q))
    sk = draw_quadruped(canvas, q, look, pose)
    canvas.ellipse(along(sk.snout_tip, sk.head_axis, 0.01), 0.03, q.snout_tip * 0.5, (150, 120, 112), sk.head_axis)
    if not ind.juvenile:  # bristly mane along the back
        mane = []
        for i in range(14):
            x = 0.45 - i * 0.07
            y = sk.top_y(x) - 0.02
            mane += [(x, y), (x - 0.035, y + 0.06 + 0.03 * (i % 2))]
        mane += [(-0.5, sk.top_y(-0.45) - 0.05), (0.45, sk.top_y(0.45) - 0.05)]
        canvas.polygon(mane, shade(coat, 0.7))
    if piglet:  # "humbug" stripes
        torso_mask = canvas.mask_of(lambda c: c.polygon(sk.torso, coat))

        def stripes(c: Canvas) -> None:
            for k in range(4):
                y = sk.yc - 0.18 + k * 0.13
                c.polygon([(-0.55, y), (0.55, y + 0.03), (0.55, y + 0.07), (-0.55, y + 0.04)], (215, 185, 135))

        canvas.clipped(torso_mask, stripes)
    return canvas.finish(rng, fur=0.16, anchor=(0.0, 0.0), eye=sk.eye)


def _deer(kind: str, ind: Individual, pose: Pose, month: int, rng: np.random.Generator,
           canvas_for: CanvasFactory) -> Sprite:
    winter = month in (11, 12, 1, 2, 3)
    if kind == "roe":
        q = Quad(leg=0.95, body_h=0.44, power=2.3, slope=0.03, neck_len=0.45, neck_w=(0.2, 0.13), neck_angle=55,
                 head_len=0.3, head_h=0.17, head_pitch=-25, snout_len=0.1, snout_tip=0.08, ear_len=0.22, ear_w=0.12,
                 ear_tilt=12, tail_len=0.0, leg_w=(0.08, 0.035), hoof=True)
        coat = (112, 96, 80) if winter else (172, 96, 50)
        antler = 0.24 if ind.male and month not in (11, 12) else 0.0
    elif kind == "red":
        q = Quad(leg=0.76, body_h=0.52, power=2.4, slope=0.05, neck_len=0.55, neck_w=(0.3 if ind.male else 0.26, 0.17),
                 neck_angle=50, head_len=0.38, head_h=0.19, head_pitch=-28, snout_len=0.15, snout_tip=0.09,
                 ear_len=0.22, ear_w=0.12, ear_tilt=15, tail_len=0.1, tail_w=0.08, tail_angle=-60, tail_style="stub",
                 leg_w=(0.09, 0.04), hoof=True)
        coat = (112, 92, 74) if winter else (150, 80, 45)
        antler = 0.85 if ind.male and month not in (4, 5, 6, 7) else 0.0
    else:  # fallow
        q = Quad(leg=0.8, body_h=0.47, power=2.4, slope=0.0, neck_len=0.5, neck_w=(0.24, 0.15), neck_angle=48,
                 head_len=0.36, head_h=0.18, head_pitch=-25, snout_len=0.14, snout_tip=0.08, ear_len=0.2, ear_w=0.12,
                 ear_tilt=15, tail_len=0.32, tail_w=0.07, tail_angle=-68, tail_bend=-8, tail_style="blunt",
                 leg_w=(0.085, 0.038), hoof=True)
        usual = (108, 92, 78) if winter else (176, 112, 62)
        coat = {"menil": (200, 140, 85), "black": (45, 38, 34)}.get(ind.variant, usual)
        antler = 0.7 if ind.male and month not in (5, 6, 7) else 0.0
    if ind.juvenile:
        antler = 0.0
    coat = jitter(coat, rng, 0.06)
    look = Look(coat=coat, belly=mix(coat, (235, 225, 210), 0.5), head=coat, leg_upper=coat,
                leg_lower=shade(coat, 0.85), ear=shade(coat, 0.9), ear_tip=shade(coat, 0.6), tail=coat,
                tail_tip=coat, nose=(25, 22, 22), ear_tip_frac=0.15 if kind == "roe" else 0.0)
    canvas = canvas_for(*_quad_range(q, antler))
    sk = draw_quadruped(canvas, q, look, pose, tail_first=False)
    torso_mask = canvas.mask_of(lambda c: c.polygon(sk.torso, coat))
    rump = (-0.42, sk.yc + 0.02)
    if kind == "roe":
        patch = (242, 240, 235) if winter else (225, 205, 165)
        canvas.clipped(torso_mask, lambda c: c.ellipse(rump, 0.13, 0.2, patch))
        canvas.ellipse(along(sk.snout_tip, sk.head_axis + 180, 0.03), 0.035, 0.05, (240, 238, 232), sk.head_axis)
        canvas.dot(sk.snout_tip, 0.035, (20, 18, 18))
    elif kind == "red":
        canvas.clipped(torso_mask, lambda c: c.ellipse((-0.45, sk.yc + 0.04), 0.16, 0.24, (214, 188, 140)))
        draw_tail(canvas, sk, look, color=(200, 175, 130))
        if ind.male and month in (9, 10, 11):  # rutting mane
            canvas.stroke(sk.neck, [w * 1.15 for w in sk.neck_widths], shade(coat, 0.7))
    else:
        def spots(c: Canvas) -> None:
            alpha = 60 if winter else 235
            if ind.variant == "black":
                return
            for row, (y, n) in enumerate(((sk.yc + 0.12, 9), (sk.yc + 0.04, 10), (sk.yc - 0.05, 8))):
                for k in range(n):
                    x = -0.36 + k * 0.085 + (0.04 if row % 2 else 0.0) + float(rng.uniform(-0.012, 0.012))
                    c.dot((x, y + float(rng.uniform(-0.015, 0.015))), 0.022, (245, 240, 228), alpha)
            c.polygon([(-0.4, sk.yc - 0.13), (0.35, sk.yc - 0.11), (0.35, sk.yc - 0.095), (-0.4, sk.yc - 0.11)],
                      (245, 240, 228), alpha)

        canvas.clipped(torso_mask, spots)
        canvas.clipped(torso_mask, lambda c: c.ellipse((-0.47, sk.yc + 0.02), 0.14, 0.22, (20, 18, 18)))
        canvas.clipped(torso_mask, lambda c: c.ellipse((-0.5, sk.yc + 0.02), 0.12, 0.19, (245, 242, 236)))
        draw_tail(canvas, sk, look, widths=[w * 1.5 for w in sk.tail_widths], color=(245, 242, 236))
        draw_tail(canvas, sk, look, widths=[w * 0.8 for w in sk.tail_widths], color=(22, 20, 20))
    if antler:
        draw_antlers(canvas, sk, kind, antler * (0.7 if kind == "fallow" and not ind.male else 1.0), (120, 100, 75))
    return canvas.finish(rng, fur=0.06, anchor=(0.0, 0.0), eye=sk.eye)


def _marten(kind: str, ind: Individual, pose: Pose, month: int, rng: np.random.Generator,
           canvas_for: CanvasFactory) -> Sprite:
    q = Quad(leg=0.3, body_h=0.3, power=2.0, arch=0.35, tuck=0.0, neck_len=0.25, neck_w=(0.2, 0.15), neck_angle=20,
             head_len=0.26, head_h=0.16, head_pitch=-10, snout_len=0.11, snout_tip=0.05, ear_len=0.11, ear_w=0.12,
             ear_tilt=5, ear_round=True, tail_len=0.85, tail_w=0.15, tail_angle=-8, tail_bend=-15, tail_style="bushy",
             leg_w=(0.085, 0.065), walk_amp=30)
    if kind == "pine":
        coat, bib, nose, rim = (74, 47, 30), (228, 172, 78), (35, 28, 28), (205, 170, 120)
    else:
        coat, bib, nose, rim = (112, 92, 76), (244, 242, 236), (175, 130, 122), (150, 130, 115)
    coat = jitter(coat, rng, 0.06)
    dark = shade(coat, 0.7)
    look = Look(coat=coat, belly=coat, head=shade(coat, 1.05), leg_upper=dark, leg_lower=dark, ear=rim,
                ear_tip=shade(coat, 0.9), tail=dark, tail_tip=dark, nose=nose, ear_tip_frac=0.6)
    canvas = canvas_for(*_quad_range(q))
    sk = draw_quadruped(canvas, q, look, pose)
    front = sk.legs["front_near"]
    far_front = sk.legs["front_far"]
    body_mask = _part_mask(canvas, sk, upper_legs=("front_near", "front_far"), leg_width=q.leg_w[0])
    chin = along(sk.head_c, sk.head_axis - 90, sk.head_h * 0.45)
    throat = along(sk.neck[1], sk.head_axis - 120, sk.neck_widths[1] * 0.55)
    chest = (0.47, sk.yc - 0.02)
    if kind == "pine":  # rounded yellow-orange bib confined to throat and upper chest
        def bib_shape(c: Canvas) -> None:
            c.polygon([along(chin, sk.head_axis, 0.08), chin, throat, chest, (0.52, sk.yc + 0.08),
                       along(sk.neck[-1], sk.head_axis - 90, 0.02)], bib)
            c.ellipse(((throat[0] + chest[0]) / 2, (throat[1] + chest[1]) / 2), 0.1, 0.07, bib)
    else:  # white bib forked: two lobes running down the front of the forelegs
        def bib_shape(c: Canvas) -> None:
            c.polygon([along(chin, sk.head_axis, 0.08), chin, throat, chest, (0.52, sk.yc + 0.08),
                       along(sk.neck[-1], sk.head_axis - 90, 0.02)], bib)
            for leg in (front, far_front):
                top, knee = leg[0], leg[1]
                c.stroke([(top[0] + 0.05, top[1] + 0.05), (knee[0] + 0.035, knee[1] + 0.02)], [0.07, 0.04],
                         bib if leg is front else shade(bib, 0.85))
    canvas.clipped(body_mask, bib_shape)
    return canvas.finish(rng, fur=0.08, anchor=(0.0, 0.0), eye=sk.eye)


def _squirrel(kind: str, ind: Individual, pose: Pose, month: int, rng: np.random.Generator,
           canvas_for: CanvasFactory) -> Sprite:
    if kind == "red":
        coat = jitter((160, 66, 28), rng, 0.06)
        look = Look(coat=coat, belly=(236, 226, 200), head=coat, leg_upper=coat, leg_lower=shade(coat, 0.9),
                    ear=coat, ear_tip=shade(coat, 0.6), tail=shade(coat, 0.85), tail_tip=coat, nose=(40, 30, 28))
        tufts, fringe = month in (9, 10, 11, 12, 1, 2, 3, 4) or rng.random() < 0.5, None
    else:
        coat = jitter((146, 142, 135), rng, 0.05)
        look = Look(coat=mix(coat, (160, 125, 90), 0.25), belly=(240, 238, 232), head=coat, leg_upper=coat,
                    leg_lower=mix(coat, (160, 125, 90), 0.3), ear=coat, ear_tip=coat, tail=shade(coat, 0.92),
                    tail_tip=coat, nose=(60, 50, 48))
        tufts, fringe = False, (238, 236, 230)
    canvas = canvas_for((-1.5, 1.0), (-0.08, 1.8))
    sk = draw_squirrel(canvas, look, pose, tufts=tufts, fringe=fringe)
    return canvas.finish(rng, fur=0.09, anchor=(0.0, 0.0), eye=sk.eye)


def _hare(kind: str, ind: Individual, pose: Pose, month: int, rng: np.random.Generator,
           canvas_for: CanvasFactory) -> Sprite:
    if kind == "brown":
        coat = jitter((162, 122, 78), rng, 0.06)
        ear_len, tip_frac, tail_top = 0.62, 0.22, (25, 22, 20)
    else:
        white = month in WINTER_MONTHS
        moult = month in (5, 10)
        coat = (236, 236, 234) if white else jitter((124, 110, 96), rng, 0.06)
        if moult:
            coat = mix(jitter((124, 110, 96), rng, 0.06), (236, 236, 234), 0.5)
        ear_len, tip_frac, tail_top = 0.36, 0.14, (240, 240, 238)
    look = Look(coat=coat, belly=mix(coat, (240, 238, 232), 0.6), head=coat, leg_upper=coat,
                leg_lower=shade(coat, 0.95), ear=shade(coat, 0.95), ear_tip=(22, 20, 20), tail=coat,
                tail_tip=coat, nose=(60, 45, 45), ear_tip_frac=tip_frac)
    canvas = canvas_for((-0.8, 1.0), (-0.08, 1.75))
    sk = draw_hare(canvas, look, pose, ear_len=ear_len, tail_top=tail_top)
    return canvas.finish(rng, fur=0.13, anchor=(0.0, 0.0), eye=sk.eye)


DOMESTIC_CAT_VARIANTS = ("tabby", "tabby", "black", "ginger", "grey", "bicolour")


def _cat(kind: str, ind: Individual, pose: Pose, month: int, rng: np.random.Generator,
           canvas_for: CanvasFactory) -> Sprite:
    wild = kind == "wild"
    q = Quad(leg=0.4, body_h=0.44 if wild else 0.4, power=2.2, neck_len=0.18, neck_w=(0.3, 0.26), neck_angle=22,
             head_len=0.3, head_h=0.27, head_pitch=-8, snout_len=0.05, snout_tip=0.12, ear_len=0.13, ear_w=0.14,
             ear_tilt=8, tail_len=0.72 if wild else 0.85, tail_w=0.15 if wild else 0.09, tail_angle=-30, tail_bend=-25,
             tail_style="blunt" if wild else "tapered", leg_w=(0.11, 0.07) if wild else (0.095, 0.06))
    variant = "wild" if wild else (ind.variant or "tabby")
    coat = {"wild": (136, 120, 94), "tabby": (130, 118, 100), "black": (32, 30, 30), "ginger": (205, 128, 62),
            "grey": (122, 122, 128), "bicolour": (30, 28, 28)}[variant]
    coat = jitter(coat, rng, 0.05)
    stripe = shade(coat, 0.45) if variant in ("wild", "tabby", "ginger") else None
    look = Look(coat=coat, belly=mix(coat, (230, 220, 200), 0.35), head=coat, leg_upper=coat, leg_lower=coat, ear=coat,
                ear_tip=coat, tail=coat, tail_tip=(18, 16, 16) if wild else coat, nose=(180, 120, 115),
                tail_tip_frac=0.16 if wild else 0.0)
    if variant == "bicolour":
        look = dataclasses.replace(look, leg_lower=(238, 236, 232), belly=(238, 236, 232))
    canvas = canvas_for(*_quad_range(q))
    sk = draw_quadruped(canvas, q, look, pose)
    torso_mask = canvas.mask_of(lambda c: c.polygon(sk.torso, coat))
    if variant == "bicolour":
        canvas.clipped(torso_mask, lambda c: c.ellipse((0.2, sk.yc - 0.2), 0.45, 0.16, (238, 236, 232)))
    if stripe is not None:
        def stripes(c: Canvas) -> None:
            for k in range(7):
                x = -0.38 + k * 0.12
                if wild:  # broken, faint stripes
                    for y0 in (sk.yc - 0.05, sk.yc + 0.07):
                        dash = [(x, y0), (x + 0.03, y0), (x + 0.035, y0 + 0.07), (x + 0.005, y0 + 0.07)]
                        c.polygon(dash, stripe, 130)
                else:  # continuous mackerel stripes
                    band = [(x, sk.yc - 0.2), (x + 0.035, sk.yc - 0.2), (x + 0.06, sk.yc + 0.25),
                            (x + 0.025, sk.yc + 0.25)]
                    c.polygon(band, stripe, 210)
            if wild:  # black dorsal line ending at the tail base
                c.polygon([(-0.5, sk.top_y(-0.45) - 0.035), (0.3, sk.top_y(0.3) - 0.035),
                           (0.3, sk.top_y(0.3) + 0.05), (-0.5, sk.top_y(-0.45) + 0.05)], (20, 18, 18))

        canvas.clipped(torso_mask, stripes)
        tail_mask = canvas.mask_of(lambda c: draw_tail(c, sk, look))

        def rings(c: Canvas) -> None:
            positions = (0.42, 0.56, 0.69, 0.8) if wild else (0.25, 0.45, 0.65, 0.85)
            for t in positions:
                band, band_w = sub_curve(sk.tail, [w * 1.1 for w in sk.tail_widths], t, t + 0.05)
                c.stroke(band, band_w, (18, 16, 16) if wild else stripe, cap=False)

        canvas.clipped(tail_mask, rings)
    return canvas.finish(rng, fur=0.07, anchor=(0.0, 0.0), eye=sk.eye)


_DRAWERS = {
    "red_fox": _red_fox,
    "badger": _badger,
    "wild_boar": _wild_boar,
    "roe_deer": lambda *a: _deer("roe", *a),
    "red_deer": lambda *a: _deer("red", *a),
    "fallow_deer": lambda *a: _deer("fallow", *a),
    "pine_marten": lambda *a: _marten("pine", *a),
    "stone_marten": lambda *a: _marten("stone", *a),
    "red_squirrel": lambda *a: _squirrel("red", *a),
    "grey_squirrel": lambda *a: _squirrel("grey", *a),
    "brown_hare": lambda *a: _hare("brown", *a),
    "mountain_hare": lambda *a: _hare("mountain", *a),
    "wildcat": lambda *a: _cat("wild", *a),
    "domestic_cat": lambda *a: _cat("domestic", *a),
}
DRAWN_SPECIES: tuple[str, ...] = tuple(_DRAWERS)


def draw_animal(ind: Individual, pose: Pose, *, torso_px: float, facing: int, month: int) -> Sprite:
    """Draw one animal in side view.

    Args:
        ind: the individual (species, sex, age, colour seed).
        pose: posture and gait phase in this frame.
        torso_px: length of the torso in output pixels (sets the scale).
        facing: +1 faces right, -1 faces left.
        month: 1..12 (winter coats, antler cycle, piglet stripes).

    Returns:
        The sprite; its anchor is the ground point under the torso centre.

    Raises:
        KeyError: unknown species key.
    """
    drawer = _DRAWERS[ind.species]
    supersample = 3 if torso_px < 30 else 2 if torso_px < 140 else 1
    rng = np.random.default_rng(ind.look_seed)

    def canvas_for(x_range, y_range) -> Canvas:
        return Canvas(x_range, y_range, torso_px, supersample)

    sprite = drawer(ind, pose, month, rng, canvas_for)
    return mirrored(sprite) if facing < 0 else sprite
