"""Per-file facts: content hash, size, a full decode check, dimensions, colour, EXIF.

:func:`probe_file` runs in pool worker processes (or in-process with ``workers=0``). It never
raises: every problem with a file becomes a :class:`~ecowatch.ingest.flags.Flag` in the
returned :class:`FileFacts`, and the dump goes on.

The decode check is fast but complete: JPEGs are decoded in draft mode (libjpeg's DCT scaling
to 1/8 size), which still entropy-decodes the whole compressed stream, so a truncated file is
detected. ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` is forced to False while a file is probed
(and restored afterwards), so that truncation raises instead of being padded with grey.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import logging
import os
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from ecowatch.ingest import flags as F
from ecowatch.ingest.exif import SOURCE_FILE_MTIME, ExifFacts, read_exif
from ecowatch.ingest.scan import APPLEDOUBLE_PREFIX, ScannedFile

log = logging.getLogger(__name__)

# Image files up to this size are read once into memory (hash and decode from the same bytes);
# larger files are hashed in chunks and decoded from disk. Bounds a worker's memory.
MAX_IN_MEMORY_BYTES = 128 * 1024 * 1024
HASH_CHUNK_BYTES = 1024 * 1024
# Draft decoding: ask libjpeg for an image this many times smaller per side (1/8 is its maximum).
DRAFT_SCALE = 8
# Greyscale test on RGB: the 99th percentile of a pixel's channel spread (max - min, 0..255)
# must not exceed this. JPEG chroma rounding leaves 1-2 levels on truly grey frames; infrared
# night frames with a faint tint stay under ~6.
GREY_SPREAD_MAX = 8
GREY_SPREAD_QUANTILE = 0.99
# Longest side of the pixel grid the greyscale test samples.
GREY_SAMPLE_SIDE = 128
# Orientations 5..8 turn the image by 90 degrees: displayed width and height swap.
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
# Decoder errors of a broken file (besides OSError, which includes UnidentifiedImageError).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError,
                  TypeError, ZeroDivisionError, Image.DecompressionBombError)
# Leading bytes of image formats, to tell a damaged image from a file that is not an image.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
    (b"GIF8", "GIF"),
)


@dataclass(frozen=True)
class FileFacts:
    """Everything ingest learns from one file, before deployment assignment.

    Attributes:
        relpath: POSIX path relative to the dump root.
        media_type: ``image``, ``video`` or ``other`` (a file with a media name whose content
            is not an image, or an AppleDouble file).
        status: ``ok`` (readable image), ``failed`` (damaged or not an image) or ``skipped``
            (recorded, not analysed: videos, AppleDouble files).
        size_bytes: file size in bytes.
        sha256: hex digest of the content; '' only when the file could not be read at all.
        width: displayed width in pixels (after EXIF orientation), or None.
        height: displayed height in pixels, or None.
        orientation: EXIF orientation 1..8 (1 when absent), None for non-images.
        color_mode: Pillow mode of the file (RGB, L, CMYK, ...), or None.
        is_greyscale: L-type mode, or colour with equal channels; None when not decoded.
        exif: the EXIF facts (empty for non-images).
        timestamp: camera-local time: EXIF when usable, else the file's modification time.
        timestamp_source: ``exif_datetimeoriginal``, ``exif_datetimedigitized``,
            ``exif_datetime`` or ``file_mtime``.
        flags: file-level flags (decode failures, ``no_exif_time``, ``video_not_analysed``).
    """

    relpath: str
    media_type: str
    status: str
    size_bytes: int
    sha256: str
    timestamp: dt.datetime | None
    timestamp_source: str
    width: int | None = None
    height: int | None = None
    orientation: int | None = None
    color_mode: str | None = None
    is_greyscale: bool | None = None
    exif: ExifFacts = field(default_factory=ExifFacts)
    flags: tuple[F.Flag, ...] = ()


@contextlib.contextmanager
def strict_decoding() -> Iterator[None]:
    """Make Pillow raise on truncated images for the duration of the block."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def file_mtime(path: str) -> dt.datetime | None:
    """A file's modification time as naive local time, whole seconds (None if unreadable)."""
    try:
        return dt.datetime.fromtimestamp(int(os.stat(path).st_mtime))
    except (OSError, OverflowError, ValueError):
        return None


def _hash_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _sniff(head: bytes) -> str | None:
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return None


def is_greyscale(image: Image.Image) -> bool:
    """True for single-channel modes, or colour pixels whose channels (nearly) agree.

    Args:
        image: a loaded image (any mode); a draft-decoded JPEG is enough.

    Returns:
        Whether the image carries no colour (e.g. an infrared night frame saved as RGB).
    """
    if image.mode in _GREY_MODES:
        return True
    rgb = image if image.mode in ("RGB", "RGBA", "RGBX") else image.convert("RGB")
    pixels = np.asarray(rgb)
    step = max(1, max(pixels.shape[0], pixels.shape[1]) // GREY_SAMPLE_SIDE)
    sample = pixels[::step, ::step, :3].astype(np.int16)
    spread = sample.max(axis=2) - sample.min(axis=2)
    return bool(np.quantile(spread, GREY_SPREAD_QUANTILE) <= GREY_SPREAD_MAX)


def probe_file(item: ScannedFile) -> FileFacts:
    """Hash, decode-check and describe one file. Never raises.

    Args:
        item: the scanned file.

    Returns:
        The file's facts; problems are flags with status ``failed`` (or ``skipped``).
    """
    try:
        with strict_decoding(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            facts = _probe(item)
        for warning in caught:
            log.debug("%s: %s", item.relpath, warning.message)
        return facts
    except Exception as exc:  # noqa: BLE001 - the per-file boundary: a bug on one file must not stop the dump
        log.exception("unexpected error while probing %s", item.relpath)
        return FileFacts(
            relpath=item.relpath,
            media_type="other" if item.kind == "appledouble" else item.kind,
            status="failed",
            size_bytes=_size(item.path),
            sha256="",
            timestamp=file_mtime(item.path),
            timestamp_source=SOURCE_FILE_MTIME,
            flags=(F.Flag(F.UNREADABLE, f"ingest could not examine the file: {type(exc).__name__}: {exc}"),),
        )


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _probe(item: ScannedFile) -> FileFacts:
    mtime = file_mtime(item.path)
    base = {"relpath": item.relpath, "timestamp": mtime, "timestamp_source": SOURCE_FILE_MTIME}
    size = _size(item.path)
    media_type = {"image": "image", "video": "video", "appledouble": "other"}[item.kind]

    if item.kind == "image" and 0 < size <= MAX_IN_MEMORY_BYTES:
        try:
            with open(item.path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            return _unreadable_file(base, media_type, size, exc)
        sha256, size = hashlib.sha256(data).hexdigest(), len(data)
    else:
        data = None
        try:
            sha256 = _hash_file(item.path)
        except OSError as exc:
            return _unreadable_file(base, media_type, size, exc)

    if item.kind == "appledouble":
        return FileFacts(**base, media_type="other", status="skipped", size_bytes=size, sha256=sha256,
                         flags=(_appledouble_flag(item),))
    if size == 0:
        return FileFacts(**base, media_type=media_type, status="failed", size_bytes=0, sha256=sha256, flags=(
            F.Flag(F.ZERO_BYTE, f"the {media_type} file is empty (0 bytes): a full card or a failed copy"),))
    if item.kind == "video":
        note = F.Flag(F.VIDEO_NOT_ANALYSED, "video file recorded with its hash; videos are not decoded or analysed "
                      "by this version")
        return FileFacts(**base, media_type="video", status="skipped", size_bytes=size, sha256=sha256, flags=(note,))
    return _probe_image(item, base, size, sha256, data)


def _unreadable_file(base: dict, media_type: str, size: int, exc: OSError) -> FileFacts:
    return FileFacts(**base, media_type=media_type, status="failed", size_bytes=size, sha256="",
                     flags=(F.Flag(F.UNREADABLE, f"the file cannot be read from disk: {exc}"),))


def _appledouble_flag(item: ScannedFile) -> F.Flag:
    media_name = os.path.basename(item.relpath)[len(APPLEDOUBLE_PREFIX):]
    return F.Flag(F.NOT_AN_IMAGE, f"AppleDouble file (macOS metadata written next to {media_name!r}), not an image")


def _read_head_tail(item: ScannedFile, data: bytes | None) -> tuple[bytes, bytes]:
    if data is not None:
        return data[:16], data[-2:]
    with open(item.path, "rb") as handle:
        head = handle.read(16)
        handle.seek(-2, os.SEEK_END)
        return head, handle.read(2)


def _probe_image(item: ScannedFile, base: dict, size: int, sha256: str, data: bytes | None) -> FileFacts:
    common = {**base, "size_bytes": size, "sha256": sha256}
    try:
        image = Image.open(io.BytesIO(data) if data is not None else item.path)
    except UnidentifiedImageError:
        # Pillow's message names the in-memory buffer (an address): not written, to keep rows reproducible.
        head, tail = _read_head_tail(item, data)
        kind = _sniff(head)
        if kind is None:
            return FileFacts(**common, media_type="other", status="failed", flags=(F.Flag(
                F.NOT_AN_IMAGE, f"named like an image but no image format recognises it (starts with {head[:12]!r})"),))
        if kind == "JPEG" and tail != b"\xff\xd9":
            return FileFacts(**common, media_type="image", status="failed", flags=(F.Flag(
                F.TRUNCATED, f"JPEG file ends before its header is complete ({size} bytes, no end-of-image marker)"),))
        return FileFacts(**common, media_type="image", status="failed", flags=(F.Flag(
            F.UNREADABLE, f"starts like a {kind} file but no decoder can parse its header"),))
    except _DECODE_ERRORS as exc:
        message = str(exc) or type(exc).__name__
        if "truncated" in message.lower():
            flag = F.Flag(F.TRUNCATED, f"the file ends inside the image header: {message}")
        else:
            flag = F.Flag(F.UNREADABLE, f"the image header cannot be parsed: {type(exc).__name__}: {message}")
        return FileFacts(**common, media_type="image", status="failed", flags=(flag,))

    with image:
        try:
            exif = read_exif(image)
        except _DECODE_ERRORS as exc:
            log.debug("%s: unreadable EXIF block (%s)", item.relpath, exc)
            exif = ExifFacts(time_problem=f"the EXIF block cannot be parsed ({type(exc).__name__}: {exc})")
        stored_w, stored_h = image.size
        width, height = (stored_h, stored_w) if exif.orientation in _SWAPPING_ORIENTATIONS else (stored_w, stored_h)
        described = {
            **common,
            "media_type": "image",
            "width": width,
            "height": height,
            "orientation": exif.orientation,
            "color_mode": image.mode,
            "exif": exif,
        }
        if exif.timestamp is not None:
            described.update(timestamp=exif.timestamp, timestamp_source=exif.timestamp_source)
        try:
            if image.format == "JPEG":
                image.draft(None, (max(1, stored_w // DRAFT_SCALE), max(1, stored_h // DRAFT_SCALE)))
            image.load()
        except _DECODE_ERRORS as exc:
            message = str(exc) or type(exc).__name__
            flag = F.TRUNCATED if "truncated" in message.lower() else F.UNREADABLE
            text = f"the image data is incomplete: {message}" if flag == F.TRUNCATED else f"decoding failed: {message}"
            return FileFacts(**described, status="failed", flags=(F.Flag(flag, text),))
        grey = is_greyscale(image)

    file_flags: tuple[F.Flag, ...] = ()
    if exif.timestamp is None:
        why = f" ({exif.time_problem})" if exif.time_problem else ""
        file_flags = (F.Flag(F.NO_EXIF_TIME, f"no usable EXIF date-time{why}; the file modification time "
                             f"{base['timestamp']} is used"),)
    return FileFacts(**described, status="ok", is_greyscale=grey, flags=file_flags)
