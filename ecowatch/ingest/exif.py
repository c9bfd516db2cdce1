"""Reading the EXIF facts ingest needs: time, camera, serial number, orientation, GPS.

Pillow parses IFD0 (``Image.getexif()``) and the Exif and GPS sub-IFDs
(``getexif().get_ifd(...)``). Camera firmware writes odd values: strings padded with spaces
or NULs, zero dates (``0000:00:00 00:00:00``), rationals with a zero denominator. Such values
are treated as absent, and the reason is kept so that a ``no_exif_time`` flag can say why.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

from PIL import Image

# IFD pointers.
EXIF_IFD = 0x8769
GPS_IFD = 0x8825

# IFD0 tags.
TAG_MAKE = 0x010F
TAG_MODEL = 0x0110
TAG_ORIENTATION = 0x0112
TAG_DATETIME = 0x0132
# Exif IFD tags.
TAG_DATETIME_ORIGINAL = 0x9003
TAG_DATETIME_DIGITIZED = 0x9004
TAG_SUBSEC_ORIGINAL = 0x9291
TAG_SUBSEC_DIGITIZED = 0x9292
TAG_SUBSEC = 0x9290
TAG_BODY_SERIAL = 0xA431
# DNG CameraSerialNumber; some firmware writes it (or BodySerialNumber) in IFD0.
TAG_CAMERA_SERIAL = 0xC62F
# GPS IFD tags.
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON, GPS_ALT_REF, GPS_ALT = 1, 2, 3, 4, 5, 6

# Where a timestamp came from, in order of preference (values of media.timestamp_source).
SOURCE_DATETIME_ORIGINAL = "exif_datetimeoriginal"
SOURCE_DATETIME_DIGITIZED = "exif_datetimedigitized"
SOURCE_DATETIME = "exif_datetime"
SOURCE_FILE_MTIME = "file_mtime"
SOURCE_NONE = "none"
EXIF_TIME_SOURCES = (SOURCE_DATETIME_ORIGINAL, SOURCE_DATETIME_DIGITIZED, SOURCE_DATETIME)

_EXIF_TIME = re.compile(r"^\s*(\d{4})[:\-/](\d{2})[:\-/](\d{2})[ T]+(\d{1,2}):(\d{2}):(\d{2})")


@dataclass(frozen=True)
class ExifFacts:
    """What the EXIF block of one image says.

    Attributes:
        timestamp: camera-local clock time (naive), or None when no EXIF time is usable.
        timestamp_source: one of :data:`EXIF_TIME_SOURCES`, or ``none``.
        time_problem: why no EXIF time was usable (empty when one was, or none was written).
        orientation: EXIF orientation 1..8; 1 when absent or invalid.
        make: camera make, stripped ('' when absent).
        model: camera model, stripped.
        serial: camera body serial number, stripped.
        gps_latitude: WGS84 decimal degrees (north positive), or None.
        gps_longitude: WGS84 decimal degrees (east positive), or None.
        gps_altitude_m: metres above sea level (negative below), or None.
    """

    timestamp: dt.datetime | None = None
    timestamp_source: str = SOURCE_NONE
    time_problem: str = ""
    orientation: int = 1
    make: str = ""
    model: str = ""
    serial: str = ""
    gps_latitude: float | None = None
    gps_longitude: float | None = None
    gps_altitude_m: float | None = None


def clean_text(value: object) -> str:
    """An EXIF text value as a stripped string ('' for None, bytes decoded leniently)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).replace("\x00", "").strip()


def parse_exif_datetime(value: object, subsec: object = None) -> dt.datetime:
    """Parse an EXIF date-time such as ``2026:03:05 10:11:12``.

    Args:
        value: the tag value (``YYYY:MM:DD HH:MM:SS``; ``-`` or ``/`` separators and a ``T``
            are accepted, trailing text such as a UTC offset is ignored).
        subsec: optional SubSecTime value (digits of a fraction of a second).

    Returns:
        The naive camera-local time.

    Raises:
        ValueError: the value is empty, zeroed or not a valid date-time.
    """
    text = clean_text(value)
    match = _EXIF_TIME.match(text)
    if not match:
        raise ValueError(f"{text!r} is not an EXIF date-time (YYYY:MM:DD HH:MM:SS)")
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    try:
        stamp = dt.datetime(year, month, day, hour, minute, second)
    except ValueError as exc:  # zeroed (0000:00:00) or impossible dates
        raise ValueError(f"{text!r} is not a valid date-time ({exc})") from exc
    digits = re.sub(r"\D", "", clean_text(subsec))[:6]
    if digits:
        stamp = stamp.replace(microsecond=int(digits.ljust(6, "0")))
    return stamp


def _rational(value: object) -> float | None:
    try:
        number = float(value)  # IFDRational, int, float
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) else None


def _dms(value: object) -> float | None:
    if not isinstance(value, tuple | list) or len(value) != 3:
        return None
    parts = [_rational(v) for v in value]
    if any(p is None for p in parts):
        return None
    degrees, minutes, seconds = parts  # type: ignore[misc]
    return degrees + minutes / 60.0 + seconds / 3600.0


def _gps(gps: dict[int, object]) -> tuple[float | None, float | None, float | None]:
    lat = _dms(gps.get(GPS_LAT))
    lon = _dms(gps.get(GPS_LON))
    if lat is not None and clean_text(gps.get(GPS_LAT_REF)).upper() == "S":
        lat = -lat
    if lon is not None and clean_text(gps.get(GPS_LON_REF)).upper() == "W":
        lon = -lon
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        lat = lon = None
    alt = _rational(gps.get(GPS_ALT))
    ref = gps.get(GPS_ALT_REF)
    if alt is not None and ref in (1, b"\x01", "1"):
        alt = -alt
    return lat, lon, alt


def read_exif(image: Image.Image) -> ExifFacts:
    """Extract the ingest facts from an opened image's EXIF block.

    Args:
        image: an image opened with Pillow (JPEG, PNG eXIf, TIFF, WebP).

    Returns:
        The facts; everything absent or invalid is empty/None, orientation 1.

    Raises:
        Nothing on malformed EXIF of the usual kinds (it reads as absent). Errors Pillow
        raises while parsing a corrupt EXIF block propagate to the caller, which records the
        file as unreadable.
    """
    exif = image.getexif()
    if not exif:
        return ExifFacts()
    sub = exif.get_ifd(EXIF_IFD)
    gps = exif.get_ifd(GPS_IFD)

    timestamp, source, problems = None, SOURCE_NONE, []
    candidates = (
        (SOURCE_DATETIME_ORIGINAL, "DateTimeOriginal", sub.get(TAG_DATETIME_ORIGINAL), sub.get(TAG_SUBSEC_ORIGINAL)),
        (SOURCE_DATETIME_DIGITIZED, "DateTimeDigitized", sub.get(TAG_DATETIME_DIGITIZED),
         sub.get(TAG_SUBSEC_DIGITIZED)),
        (SOURCE_DATETIME, "DateTime", exif.get(TAG_DATETIME), sub.get(TAG_SUBSEC)),
    )
    for name, label, value, subsec in candidates:
        if value is None or not clean_text(value):
            continue
        try:
            timestamp, source = parse_exif_datetime(value, subsec), name
            break
        except ValueError as exc:
            problems.append(f"{label}: {exc}")

    orientation = exif.get(TAG_ORIENTATION, 1)
    if not isinstance(orientation, int) or not 1 <= orientation <= 8:
        orientation = 1

    serial = ""
    serial_tags = (sub.get(TAG_BODY_SERIAL), exif.get(TAG_BODY_SERIAL), exif.get(TAG_CAMERA_SERIAL),
                   sub.get(TAG_CAMERA_SERIAL))
    for value in serial_tags:
        serial = clean_text(value)
        if serial:
            break

    lat, lon, alt = _gps(dict(gps)) if gps else (None, None, None)
    return ExifFacts(
        timestamp=timestamp,
        timestamp_source=source,
        time_problem="" if timestamp else "; ".join(problems),
        orientation=orientation,
        make=clean_text(exif.get(TAG_MAKE)),
        model=clean_text(exif.get(TAG_MODEL)),
        serial=serial,
        gps_latitude=lat,
        gps_longitude=lon,
        gps_altitude_m=alt,
    )
