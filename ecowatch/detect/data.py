"""Images of media rows as network input: decode, orient, convert to RGB, letterbox (or tile), batch.

Decoding happens in DataLoader worker processes (parallel over images). Each sample carries its
``media_id`` and its original (as displayed) size, so detections are matched to media by id and
mapped back to original-image coordinates, never by position in a list.

A file that cannot be decoded here (deleted or changed since ingest, truncated, not an image)
does not stop the run: its sample carries the error text and a blank image, and the writer
flags the media row instead of recording detections for it.

Tiled runs use :class:`TiledImageDataset`: a worker decodes a frame once, cuts the tiles that
:func:`~ecowatch.detect.tiling.tiles_for_frame` plans for it and letterboxes each one (and the whole
frame, for the whole-frame pass) to the network input size; :func:`collate_tiled` stacks the
inputs of several frames into one :class:`TiledBatch`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from ecowatch.detect.registry import ResizeMode
from ecowatch.detect.tiling import TileWindow, TilingParams, tiles_for_frame

log = logging.getLogger(__name__)

#: Grey value of the letterbox padding (ultralytics' default).
PAD_VALUE = 114

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


@dataclass(frozen=True)
class MediaItem:
    """One image to run the detector on.

    Attributes:
        media_id: the media row's id.
        path: absolute path of the file.
        width: width as displayed in pixels, as ingest recorded it (None if unknown); only used to
            size tiled batches: the decoded image decides how it is tiled.
        height: height as displayed in pixels (None if unknown).
    """

    media_id: str
    path: Path
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class ImageSample:
    """One decoded, letterboxed image.

    Attributes:
        image: ``uint8`` tensor of shape (3, H, W), RGB: the ``imgsz`` square, or with minimal padding
            the resized image (longer side ``imgsz``) that :func:`collate_samples` pads.
        orig_hw: (height, width) of the image as displayed (after EXIF orientation), in pixels.
        media_id: the media row's id.
        error: why the file could not be decoded (then ``image`` is blank), or None.
    """

    image: torch.Tensor
    orig_hw: tuple[int, int]
    media_id: str
    error: str | None


@dataclass
class ImageBatch:
    """A batch of samples (a plain dataclass, so Lightning moves its tensors to the device).

    Attributes:
        images: ``uint8`` tensor of shape (B, 3, H, W), RGB, letterboxed (H = W = imgsz with square
            padding).
        orig_hw: ``int64`` tensor of shape (B, 2): original (height, width) of each image.
        media_ids: the media id of each image, in batch order.
        errors: decode error per image (None for a good image).
    """

    images: torch.Tensor
    orig_hw: torch.Tensor
    media_ids: list[str]
    errors: list[str | None]


def decode_image(path: Path) -> np.ndarray:
    """Read an image file as displayed: EXIF orientation applied, converted to 8-bit RGB.

    Args:
        path: an image file Pillow can read (JPEG, PNG, TIFF, ...).

    Returns:
        ``uint8`` array of shape (height, width, 3), RGB. CMYK and palette images are converted
        by Pillow; greyscale (L, LA) is replicated to three channels; 16-bit greyscale keeps its
        high byte (as OpenCV, and so ultralytics, reads it).

    Raises:
        OSError: the file is missing, truncated or not an image (Pillow's errors), and any other
            Pillow decode error.
    """
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened)
        if image.mode in _SIXTEEN_BIT_MODES or image.mode == "I":
            grey = (np.asarray(image, dtype=np.uint32) >> 8).astype(np.uint8)
            return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def fit_within(image: np.ndarray, imgsz: int) -> np.ndarray:
    """Resize an image so that it fits an ``imgsz`` square, keeping its aspect ratio (no padding).

    The scale is ``min(imgsz/h, imgsz/w)`` (small images are scaled up), the new size is rounded to
    whole pixels and the resize is bilinear (``cv2.INTER_LINEAR``), as in ultralytics' ``LetterBox``.

    Args:
        image: ``uint8`` array (height, width, 3).
        imgsz: side of the square in pixels.

    Returns:
        ``uint8`` array (new_height, new_width, 3), its longer side ``imgsz``.
    """
    h, w = image.shape[:2]
    r = min(imgsz / h, imgsz / w)
    new_w, new_h = max(round(w * r), 1), max(round(h * r), 1)
    if (w, h) != (new_w, new_h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return image


def pad_centered(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad an image with grey 114 to ``height`` x ``width``, centred; an odd pixel goes to the bottom/right.

    Args:
        image: ``uint8`` array (h, w, 3) with ``h <= height`` and ``w <= width``.
        height: padded height in pixels.
        width: padded width in pixels.

    Returns:
        ``uint8`` array (height, width, 3).
    """
    h, w = image.shape[:2]
    top, left = (height - h) // 2, (width - w) // 2
    bottom, right = height - h - top, width - w - left
    if top or bottom or left or right:
        image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    return image


def stride_ceil(pixels: int, stride: int) -> int:
    """The smallest multiple of ``stride`` that is at least ``pixels``."""
    return -(-pixels // stride) * stride


def letterbox(image: np.ndarray, imgsz: int, *, mode: ResizeMode = "letterbox", stride: int | None = None
              ) -> np.ndarray:
    """Fit an image into the network input exactly as ultralytics' ``LetterBox`` does.

    ``letterbox`` mode equals ``LetterBox(new_shape=imgsz, auto=False, scale_fill=False,
    scaleup=True, center=True, padding_value=114)``: scale by ``min(imgsz/h, imgsz/w)``, resize
    with bilinear interpolation (``cv2.INTER_LINEAR``), pad both sides with grey 114 (the odd pixel
    goes to the bottom/right) to the ``imgsz`` square. With ``stride`` it equals ``auto=True``
    (ultralytics' default for ``predict``): each side is padded only up to the next multiple of
    ``stride``, a rectangle instead of the square. ``stretch`` mode equals ``scale_fill=True``:
    resize to the square, no padding (how ultralytics feeds RT-DETR).

    Args:
        image: ``uint8`` array (height, width, 3).
        imgsz: side of the square in pixels (a multiple of ``stride`` when one is given).
        mode: ``letterbox`` or ``stretch``.
        stride: pad to minimal multiples of this (the network's largest stride) instead of the square.

    Returns:
        ``uint8`` array (imgsz, imgsz, 3), or (H, W, 3) with H, W multiples of ``stride``.
    """
    if mode == "stretch":
        if image.shape[:2] != (imgsz, imgsz):
            image = cv2.resize(image, (imgsz, imgsz), interpolation=cv2.INTER_LINEAR)
        return image
    image = fit_within(image, imgsz)
    if stride:
        return pad_centered(image, stride_ceil(image.shape[0], stride), stride_ceil(image.shape[1], stride))
    return pad_centered(image, imgsz, imgsz)


class MediaImageDataset(Dataset[ImageSample]):
    """Media files as network input (decoded in DataLoader workers).

    Args:
        items: the images to read, in the order they are to be processed.
        imgsz: the network input size in pixels: the longer side of each resized image.
        resize_mode: ``letterbox`` (YOLO) or ``stretch`` (RT-DETR).
        stride: with ``letterbox``, give the network's largest stride for minimal padding: each
            sample is the resized image without padding, and :func:`collate_samples` pads a batch
            to the smallest stride-aligned rectangle that holds its images (a 16:9 frame at 640 px
            becomes 640x384 instead of 640x640, 40 % less network work). None: every sample is
            the padded ``imgsz`` square.
    """

    def __init__(self, items: Sequence[MediaItem], *, imgsz: int, resize_mode: ResizeMode = "letterbox",
                 stride: int | None = None) -> None:
        self.items = list(items)
        self.imgsz = imgsz
        self.resize_mode: ResizeMode = resize_mode
        self.stride = stride if resize_mode == "letterbox" else None

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> ImageSample:
        item = self.items[index]
        try:
            pixels = decode_image(item.path)
        except Exception as exc:  # noqa: BLE001 - any decode failure becomes a flag on this image; the batch goes on
            log.warning("cannot decode %s (media %s): %s: %s", item.path, item.media_id, type(exc).__name__, exc)
            side = self.stride or self.imgsz
            blank = torch.full((3, side, side), PAD_VALUE, dtype=torch.uint8)
            return ImageSample(blank, (0, 0), item.media_id, f"{type(exc).__name__}: {exc}")
        if self.stride:
            boxed = fit_within(pixels, self.imgsz)  # padded per batch by collate_samples
        else:
            boxed = letterbox(pixels, self.imgsz, mode=self.resize_mode)
        tensor = torch.from_numpy(np.ascontiguousarray(boxed.transpose(2, 0, 1)))
        return ImageSample(tensor, (int(pixels.shape[0]), int(pixels.shape[1])), item.media_id, None)


def collate_samples(samples: Sequence[ImageSample], *, stride: int | None = None) -> ImageBatch:
    """Stack samples into an :class:`ImageBatch` (the DataLoader's ``collate_fn``).

    Samples of different sizes (minimal padding, see :class:`MediaImageDataset`) are padded with
    grey 114, centred, to the smallest rectangle that holds them all, its sides multiples of
    ``stride`` when given; ``ultralytics.utils.ops.scale_boxes`` maps boxes back from it.
    """
    height = max(int(s.image.shape[1]) for s in samples)
    width = max(int(s.image.shape[2]) for s in samples)
    if stride:
        height, width = stride_ceil(height, stride), stride_ceil(width, stride)
    images = torch.full((len(samples), 3, height, width), PAD_VALUE, dtype=torch.uint8)
    for i, sample in enumerate(samples):
        h, w = int(sample.image.shape[1]), int(sample.image.shape[2])
        top, left = (height - h) // 2, (width - w) // 2
        images[i, :, top : top + h, left : left + w] = sample.image
    return ImageBatch(
        images=images,
        orig_hw=torch.tensor([s.orig_hw for s in samples], dtype=torch.int64),
        media_ids=[s.media_id for s in samples],
        errors=[s.error for s in samples],
    )


@dataclass(frozen=True)
class TiledSample:
    """One decoded frame as its network inputs: the whole frame and/or its tiles, each letterboxed.

    Attributes:
        inputs: ``uint8`` tensor (K, 3, imgsz, imgsz), RGB; K = 0 for an unreadable file.
        tile_index: per input, the index of its tile in ``tiles``, or -1 for the whole frame.
        tiles: the frame's tiles (empty when the frame runs whole).
        orig_hw: (height, width) of the frame as displayed, in pixels.
        media_id: the media row's id.
        error: why the file could not be decoded, or None.
    """

    inputs: torch.Tensor
    tile_index: tuple[int, ...]
    tiles: tuple[TileWindow, ...]
    orig_hw: tuple[int, int]
    media_id: str
    error: str | None


@dataclass
class TiledBatch:
    """The network inputs of several frames (a plain dataclass of tensors and lists, as Lightning moves).

    Attributes:
        inputs: ``uint8`` tensor (N, 3, imgsz, imgsz): every input of every frame, frame by frame.
        owner: ``int64`` tensor (N,): index of the input's frame in ``media_ids``.
        tile_index: ``int64`` tensor (N,): the input's tile index within its frame, -1 = whole frame.
        windows: ``int64`` tensor (N, 4): the input's rectangle of its frame, x0, y0, w, h in pixels
            (the whole frame for the whole-frame input).
        orig_hw: ``int64`` tensor (B, 2): (height, width) of each frame.
        media_ids: the media id of each frame.
        errors: decode error per frame (None for a good frame).
        tiles: per frame, its tiles as ``(x0, y0, w, h)`` tuples (empty when untiled).
    """

    inputs: torch.Tensor
    owner: torch.Tensor
    tile_index: torch.Tensor
    windows: torch.Tensor
    orig_hw: torch.Tensor
    media_ids: list[str]
    errors: list[str | None]
    tiles: list[list[tuple[int, int, int, int]]]


class TiledImageDataset(Dataset[TiledSample]):
    """Media files as tiles and whole frames (decoded and cut in DataLoader workers).

    Args:
        items: the images to read, in the order they are to be processed.
        imgsz: side of the square network input in pixels.
        params: the resolved tiling parameters (which frames to tile, tile size, overlap, whether
            to add the whole frame).
        resize_mode: ``letterbox`` (YOLO) or ``stretch`` (RT-DETR), for tiles and whole frames alike.
    """

    def __init__(self, items: Sequence[MediaItem], *, imgsz: int, params: TilingParams,
                 resize_mode: ResizeMode = "letterbox") -> None:
        self.items = list(items)
        self.imgsz = imgsz
        self.params = params
        self.resize_mode: ResizeMode = resize_mode

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> TiledSample:
        item = self.items[index]
        try:
            pixels = decode_image(item.path)
        except Exception as exc:  # noqa: BLE001 - any decode failure becomes a flag on this image; the batch goes on
            log.warning("cannot decode %s (media %s): %s: %s", item.path, item.media_id, type(exc).__name__, exc)
            empty = torch.zeros((0, 3, self.imgsz, self.imgsz), dtype=torch.uint8)
            return TiledSample(empty, (), (), (0, 0), item.media_id, f"{type(exc).__name__}: {exc}")
        height, width = int(pixels.shape[0]), int(pixels.shape[1])
        tiles = tuple(tiles_for_frame(width, height, self.params))
        crops: list[np.ndarray] = []
        tile_index: list[int] = []
        if self.params.full_frame_pass or not tiles:
            crops.append(letterbox(pixels, self.imgsz, mode=self.resize_mode))
            tile_index.append(-1)
        for k, tile in enumerate(tiles):
            crops.append(letterbox(pixels[tile.y0 : tile.y1, tile.x0 : tile.x1], self.imgsz, mode=self.resize_mode))
            tile_index.append(k)
        inputs = torch.from_numpy(np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2)))
        return TiledSample(inputs, tuple(tile_index), tiles, (height, width), item.media_id, None)


def collate_tiled(samples: Sequence[TiledSample]) -> TiledBatch:
    """Stack the inputs of several frames into a :class:`TiledBatch` (the DataLoader's ``collate_fn``)."""
    owner: list[int] = []
    windows: list[tuple[int, int, int, int]] = []
    tile_index: list[int] = []
    for position, sample in enumerate(samples):
        height, width = sample.orig_hw
        for k in sample.tile_index:
            owner.append(position)
            tile_index.append(k)
            tile = sample.tiles[k] if k >= 0 else TileWindow(0, 0, width, height)
            windows.append((tile.x0, tile.y0, tile.w, tile.h))
    return TiledBatch(
        inputs=torch.cat([s.inputs for s in samples]),
        owner=torch.tensor(owner, dtype=torch.int64),
        tile_index=torch.tensor(tile_index, dtype=torch.int64),
        windows=torch.tensor(windows, dtype=torch.int64).reshape(-1, 4),
        orig_hw=torch.tensor([s.orig_hw for s in samples], dtype=torch.int64),
        media_ids=[s.media_id for s in samples],
        errors=[s.error for s in samples],
        tiles=[[(t.x0, t.y0, t.w, t.h) for t in s.tiles] for s in samples],
    )
