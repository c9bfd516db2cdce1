"""Tiny, seeded camera-trap files for the ingest tests (written with Pillow, EXIF included).

Every function is deterministic: the same arguments write the same bytes.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from ecowatch.tables import Deployment

EXIF_IFD, GPS_IFD = 0x8769, 0x8825


def frame_image(size: tuple[int, int] = (64, 48), *, seed: int = 0, grey: bool = False) -> Image.Image:
    """A noisy RGB frame (or an RGB frame with equal channels when ``grey``)."""
    rng = np.random.default_rng(seed)
    width, height = size
    if grey:
        plane = rng.integers(0, 256, (height, width), dtype=np.uint8)
        return Image.fromarray(np.stack([plane] * 3, axis=2), "RGB")
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def make_exif(
    *,
    when: dt.datetime | None = None,
    tag: str = "original",
    serial: str = "",
    make: str = "",
    model: str = "",
    orientation: int | None = None,
    gps: tuple[float, float, float] | None = None,
) -> Image.Exif:
    """An EXIF block; ``tag`` picks DateTimeOriginal / DateTimeDigitized / DateTime for ``when``."""
    exif = Image.Exif()
    if make:
        exif[0x010F] = make
    if model:
        exif[0x0110] = model
    if orientation is not None:
        exif[0x0112] = orientation
    sub = exif.get_ifd(EXIF_IFD)
    if when is not None:
        text = when.strftime("%Y:%m:%d %H:%M:%S")
        if tag == "original":
            sub[0x9003] = text
        elif tag == "digitized":
            sub[0x9004] = text
        else:
            exif[0x0132] = text
    if serial:
        sub[0xA431] = serial
    if gps is not None:
        lat, lon, alt = gps
        g = exif.get_ifd(GPS_IFD)

        def dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
            value = abs(value)
            degrees = int(value)
            minutes = int((value - degrees) * 60)
            seconds = round(((value - degrees) * 60 - minutes) * 60 * 10000)
            return IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(seconds, 10000)

        g[1], g[2] = ("N" if lat >= 0 else "S"), dms(lat)
        g[3], g[4] = ("E" if lon >= 0 else "W"), dms(lon)
        g[5], g[6] = (b"\x00" if alt >= 0 else b"\x01"), IFDRational(round(abs(alt) * 10), 10)
    return exif


def jpeg_bytes(image: Image.Image, exif: Image.Exif | None = None, **save: object) -> bytes:
    """The JPEG encoding of an image with an optional EXIF block."""
    buffer = io.BytesIO()
    if exif is not None:
        save["exif"] = exif
    image.save(buffer, "JPEG", quality=85, **save)
    return buffer.getvalue()


def write_frame(path: Path, *, seed: int = 0, size: tuple[int, int] = (64, 48), grey: bool = False,
                **exif: object) -> Path:
    """Write a JPEG frame with EXIF (keyword arguments of :func:`make_exif`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jpeg_bytes(frame_image(size, seed=seed, grey=grey), make_exif(**exif)))  # type: ignore[arg-type]
    return path


def deployment(dep_id: str, *, serial: str = "", start: str = "2026-03-01T10:00:00",
               end: str = "2026-04-01T10:00:00") -> Deployment:
    """A deployment at a fixed place; times are camera-local, offset +01:00."""
    return Deployment(deployment_id=dep_id, location_id=f"loc-{dep_id}", location_name=dep_id, latitude=52.0,
                      longitude=5.0, start=dt.datetime.fromisoformat(start), end=dt.datetime.fromisoformat(end),
                      utc_offset_min=60, camera_serial=serial)
