"""Tiled inference for large frames: which tiles to cut, and how their boxes become one set per frame.

A drone frame of 4000x3000 pixels letterboxed to a 640 px network input shrinks a 30 px deer to
5 px, below what a detector finds. A tiled frame is cut into overlapping square tiles of
``tile_size`` pixels, each one network input (letterboxed to the input size exactly like a whole
frame), optionally plus the whole frame for animals larger than a tile. This module holds the
pure parts (no torch, no files):

- :func:`plan_tiles`: tiles covering a frame exactly, evenly spread, every neighbouring pair
  overlapping by at least the requested pixels, none sticking out of the frame;
- :func:`tiles_for_frame`: whether a frame is tiled at all (``mode``, ``min_side_for_tiling``);
- :func:`merge_detections`: the merge rule of :class:`~ecowatch.config.TilingConfig` (border
  rule, whole-frame rule, fragment rule, then class-wise NMS and ``max_det``).

Coordinates here are pixels of the whole frame as displayed (after EXIF orientation); boxes are
``xyxy`` (x1, y1, x2, y2). Tile labels, stored in ``detections.tile``, are ``"x0,y0,w,h"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ecowatch.config import TilingConfig
from ecowatch.errors import ConfigError

#: ``detections.tile`` of a box from the whole-frame pass (and of every box of an untiled frame).
FULL_FRAME = "full"

TilingMode = Literal["auto", "always", "never"]


@dataclass(frozen=True)
class TileWindow:
    """A tile: a rectangle of the frame in pixels (top-left ``x0``, ``y0``; width ``w``, height ``h``)."""

    x0: int
    y0: int
    w: int
    h: int

    @property
    def x1(self) -> int:
        """Right edge (exclusive) in pixels."""
        return self.x0 + self.w

    @property
    def y1(self) -> int:
        """Bottom edge (exclusive) in pixels."""
        return self.y0 + self.h

    def label(self) -> str:
        """The ``detections.tile`` value of this tile: ``"x0,y0,w,h"``."""
        return f"{self.x0},{self.y0},{self.w},{self.h}"


@dataclass(frozen=True)
class TilingParams:
    """:class:`~ecowatch.config.TilingConfig` resolved for one network input size (all in pixels).

    Attributes:
        mode: ``auto``, ``always`` or ``never``.
        tile_size: side of a tile in frame pixels.
        overlap_px: least overlap of neighbouring tiles in pixels.
        min_side: in ``auto`` mode, frames whose long side exceeds this are tiled.
        full_frame_pass: also run the whole frame.
        merge_iou: class-wise NMS threshold across tiles and the whole frame.
        border_margin: pixels from an inner tile border within which a box counts as cut.
        fragment_ioa: share of a cut tile box inside a crossing whole-frame box to drop it.
    """

    mode: TilingMode
    tile_size: int
    overlap_px: int
    min_side: int
    full_frame_pass: bool
    merge_iou: float
    border_margin: float
    fragment_ioa: float


def resolve_tiling(config: TilingConfig, imgsz: int) -> TilingParams:
    """Resolve the defaults of a tiling configuration against the network input size.

    Args:
        config: the ``detect.tiling`` section.
        imgsz: the network input size in pixels.

    Returns:
        The parameters in pixels: ``tile_size`` defaults to ``imgsz``, ``min_side_for_tiling`` to
        ``2 * imgsz``; a fractional ``overlap`` is a share of ``tile_size`` (rounded to pixels).

    Raises:
        ConfigError: the overlap is not smaller than the tile.
    """
    tile_size = config.tile_size or imgsz
    overlap_px = int(config.overlap) if config.overlap >= 1 else int(round(config.overlap * tile_size))
    if overlap_px >= tile_size:
        raise ConfigError(
            f"detect.tiling.overlap {config.overlap} is {overlap_px} px, not smaller than the tile ({tile_size} px); "
            f"use a fraction such as 0.2 or at most {tile_size // 2} px."
        )
    return TilingParams(
        mode=config.mode,
        tile_size=tile_size,
        overlap_px=overlap_px,
        min_side=config.min_side_for_tiling or 2 * imgsz,
        full_frame_pass=config.full_frame_pass,
        merge_iou=config.merge_iou,
        border_margin=config.border_margin,
        fragment_ioa=config.fragment_ioa,
    )


def axis_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start positions of tiles along one axis of ``length`` pixels.

    The first tile starts at 0, the last ends at ``length``, and the ``n`` tiles (the fewest with
    an overlap of at least ``overlap``) are spread evenly between (integer positions, so gaps
    differ by at most one pixel). An axis no longer than a tile gets one tile at 0.

    Raises:
        ValueError: ``overlap`` is not within ``0 .. tile - 1`` or ``length``/``tile`` is not positive.
    """
    if length < 1 or tile < 1 or not 0 <= overlap < tile:
        raise ValueError(f"cannot tile a {length} px axis with {tile} px tiles overlapping by {overlap} px")
    if length <= tile:
        return [0]
    step = tile - overlap
    n = -(-(length - overlap) // step)  # ceil: the fewest tiles whose gaps are at most `step`
    span = length - tile
    return [i * span // (n - 1) for i in range(n)]


def plan_tiles(width: int, height: int, *, tile_size: int, overlap_px: int) -> list[TileWindow]:
    """Tiles covering a ``width`` x ``height`` frame, row by row.

    Every tile is ``tile_size`` square (narrower along an axis shorter than a tile), lies inside the
    frame, and overlaps its neighbours by at least ``overlap_px``; together they cover every pixel.

    Raises:
        ValueError: see :func:`axis_starts`.
    """
    xs = axis_starts(width, tile_size, overlap_px)
    ys = axis_starts(height, tile_size, overlap_px)
    w, h = min(tile_size, width), min(tile_size, height)
    return [TileWindow(x, y, w, h) for y in ys for x in xs]


def tiles_for_frame(width: int, height: int, params: TilingParams) -> list[TileWindow]:
    """The tiles to run for one frame; empty when the frame runs whole (untiled).

    A frame is untiled in ``never`` mode, in ``auto`` mode when its long side is at most
    ``min_side``, and whenever one tile would hold the whole frame.
    """
    if params.mode == "never" or width < 1 or height < 1:
        return []
    if params.mode == "auto" and max(width, height) <= params.min_side:
        return []
    tiles = plan_tiles(width, height, tile_size=params.tile_size, overlap_px=params.overlap_px)
    return tiles if len(tiles) > 1 else []


def inputs_per_frame(width: int | None, height: int | None, params: TilingParams) -> int:
    """Network inputs one frame needs (tiles plus the whole-frame pass); 1 when the size is unknown."""
    if width is None or height is None:
        return 1
    tiles = len(tiles_for_frame(width, height, params))
    return tiles + (1 if params.full_frame_pass or not tiles else 0)


def merge_detections(
    xyxy: np.ndarray,
    conf: np.ndarray,
    class_id: np.ndarray,
    source: np.ndarray,
    tiles: Sequence[TileWindow],
    *,
    frame_wh: tuple[int, int],
    params: TilingParams,
    max_det: int,
) -> np.ndarray:
    """Merge the boxes of a frame's tiles and whole-frame pass into one set (the rule of ``TilingConfig``).

    Args:
        xyxy: ``float`` array (N, 4): boxes in frame pixels.
        conf: (N,) confidences.
        class_id: (N,) class indices.
        source: (N,) ``int``: index into ``tiles`` of the tile a box came from, or -1 for the
            whole-frame pass.
        tiles: the frame's tiles.
        frame_wh: (width, height) of the frame in pixels.
        params: the resolved tiling parameters.
        max_det: most boxes kept.

    Returns:
        Indices into the inputs of the kept boxes, by descending confidence (ties: by position).
    """
    n = len(conf)
    order = np.lexsort((xyxy[:, 1], xyxy[:, 0], -conf)) if n else np.zeros(0, dtype=np.int64)
    if n == 0 or not tiles:
        return order[:max_det]
    width, height = frame_wh
    win = np.array([[t.x0, t.y0, t.x1, t.y1] for t in tiles], dtype=np.float64)  # (T, 4)
    # Inner borders: sides of a tile that are not on the frame's edge (left, top, right, bottom).
    inner = np.stack([win[:, 0] > 0, win[:, 1] > 0, win[:, 2] < width, win[:, 3] < height], axis=1)
    margin = params.border_margin
    eps = 1e-6
    # clear[i, t]: box i lies inside tile t, farther than `margin` from each of t's inner borders.
    lo = win[:, :2] + np.where(inner[:, :2], margin + eps, -eps)
    hi = win[:, 2:] - np.where(inner[:, 2:], margin + eps, -eps)
    clear = ((xyxy[:, None, :2] >= lo[None]) & (xyxy[:, None, 2:] <= hi[None])).all(axis=2)
    is_tile = source >= 0
    own = np.where(is_tile, source, 0)
    # cut[i, side]: tile box i within `margin` of its own tile's inner border on that side.
    own_win, own_inner = win[own], inner[own]
    cut = own_inner & np.concatenate(
        [xyxy[:, :2] - own_win[:, :2] <= margin, own_win[:, 2:] - xyxy[:, 2:] <= margin], axis=1
    )
    cut &= is_tile[:, None]
    is_cut = cut.any(axis=1)
    keep = np.ones(n, dtype=bool)
    # 1. a cut tile box that another tile holds clear of its borders: that tile saw the object whole
    others = clear.copy()
    others[np.flatnonzero(is_tile), own[is_tile]] = False
    keep &= ~(is_cut & others.any(axis=1))
    # 2. a whole-frame box that a tile holds clear of its borders: the tile saw it at full resolution
    keep &= ~(~is_tile & clear.any(axis=1))
    # 3. a cut tile box that is a piece of a same-class whole-frame box crossing the cutting border
    full = np.flatnonzero(~is_tile & keep)
    if len(full):
        for i in np.flatnonzero(is_cut & keep):
            if _is_fragment(xyxy[i], class_id[i], cut[i], win[own[i]], xyxy[full], class_id[full], margin,
                            params.fragment_ioa):
                keep[i] = False
    # 4. class-wise NMS over what is left, highest confidence first
    candidates = order[keep[order]]
    kept = _nms_by_class(xyxy[candidates], class_id[candidates], params.merge_iou)
    return candidates[kept][:max_det]


def _is_fragment(box: np.ndarray, cls: int, cut_sides: np.ndarray, tile: np.ndarray, full_boxes: np.ndarray,
                 full_classes: np.ndarray, margin: float, min_ioa: float) -> bool:
    """Whether a cut tile box lies mostly inside a same-class whole-frame box that crosses a cutting border."""
    same = full_classes == cls
    if not same.any():
        return False
    boxes = full_boxes[same]
    crosses = np.zeros(len(boxes), dtype=bool)
    for side, (coord, beyond) in enumerate(((0, -1), (1, -1), (2, 1), (3, 1))):
        if cut_sides[side]:
            crosses |= (boxes[:, coord] - tile[coord]) * beyond > margin
    inter_w = np.clip(np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]), 0, None)
    inter_h = np.clip(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]), 0, None)
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-12)
    return bool((crosses & (inter_w * inter_h / area >= min_ioa)).any())


def _nms_by_class(xyxy: np.ndarray, class_id: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy class-wise NMS over boxes already sorted by descending confidence; returns kept positions."""
    n = len(xyxy)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    import torch
    from torchvision.ops import batched_nms

    boxes = torch.from_numpy(np.ascontiguousarray(xyxy, dtype=np.float64))
    # Scores that encode the given order exactly, so ties in confidence cannot reorder boxes.
    scores = torch.arange(n, 0, -1, dtype=torch.float64)
    kept = batched_nms(boxes, scores, torch.from_numpy(np.asarray(class_id, dtype=np.int64)), iou_threshold)
    return np.sort(kept.numpy())
