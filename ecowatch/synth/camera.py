"""Camera makes and models as they appear on real cards: folder layout, file names, EXIF, data bar.

Layouts follow the DCF convention each make uses (``DCIM/100RECNX/IMG_0001.JPG``,
``DCIM/100BMCIM/IMAG0001.JPG``, ``DCIM/100EK113/EK000001.JPG`` ...), with folder rollover to
``101...`` after a configurable number of files. Some makes restart file numbers in each
folder, so file names are not unique on a card. EXIF carries camera-local time without a zone,
Make, Model and BodySerialNumber (0xA431); only cellular models write a GPS IFD; one cheap model
writes no EXIF at all.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

# EXIF tag numbers (TIFF/EXIF 2.32).
TAG_MAKE = 0x010F
TAG_MODEL = 0x0110
TAG_SOFTWARE = 0x0131
TAG_DATETIME = 0x0132
IFD_EXIF = 0x8769
IFD_GPS = 0x8825
TAG_DATETIME_ORIGINAL = 0x9003
TAG_DATETIME_DIGITIZED = 0x9004
TAG_FOCAL_LENGTH = 0x920A
TAG_BODY_SERIAL = 0xA431
EXIF_TIME_FORMAT = "%Y:%m:%d %H:%M:%S"


@dataclass(frozen=True)
class CameraModel:
    """One camera make/model and how it writes a card.

    Attributes:
        key: short key.
        make: EXIF Make.
        model: EXIF Model.
        folder_suffix: five letters after the DCF folder number (``100RECNX``).
        file_prefix: file name prefix (``IMG_``).
        file_digits: digits of the file number.
        restarts_numbering: True if file numbers restart at 1 in each new folder.
        has_exif: False for the model that writes no EXIF at all.
        has_gps: True if it writes a GPS IFD (cellular models).
        ir_single_channel: True if its night frames are single-channel (``L``) JPEGs.
        video_ext: extension of its video clips, or ``""`` if it records none.
        serial_prefix: first characters of its serial numbers.
        bar: data bar style: ``reconyx``, ``browning``, ``bushnell``, ``spypoint``, ``overlay`` (text
            over the picture) or ``none`` (drones).
        bursts: burst lengths (frames per trigger) an operator may configure.
        firmware: EXIF Software string.
    """

    key: str
    make: str
    model: str
    folder_suffix: str
    file_prefix: str
    file_digits: int
    restarts_numbering: bool
    has_exif: bool
    has_gps: bool
    ir_single_channel: bool
    video_ext: str
    serial_prefix: str
    bar: str
    bursts: tuple[int, ...]
    firmware: str

    def file_name(self, index: int, files_per_folder: int, *, ext: str = ".JPG") -> str:
        """DCIM-relative path of the card's ``index``-th file (0-based).

        Example: index 0 of a Reconyx -> ``"100RECNX/IMG_0001.JPG"``.
        """
        folder = 100 + index // files_per_folder
        number = index % files_per_folder + 1 if self.restarts_numbering else index + 1
        number = (number - 1) % (10**self.file_digits - 1) + 1
        return f"{folder}{self.folder_suffix}/{self.file_prefix}{number:0{self.file_digits}d}{ext}"


CAMERA_MODELS: tuple[CameraModel, ...] = (
    CameraModel("reconyx_hf2", "RECONYX", "HYPERFIRE 2 COVERT", "RECNX", "IMG_", 4, False, True, False, False,
                "", "H2C", "reconyx", (3, 5), "HF2 2.3.1"),
    CameraModel("reconyx_hp2xc", "RECONYX", "HP2XC", "RECNX", "IMG_", 4, False, True, True, False,
                "", "HP2", "reconyx", (3, 5), "HP2X 1.6.0"),
    CameraModel("browning_hp5", "Browning", "BTC-8E-HP5", "BMCIM", "IMAG", 4, True, True, False, True,
                ".AVI", "BTC", "browning", (1, 2, 3, 5), "BTC8EHP5 V1.3"),
    CameraModel("bushnell_core", "Bushnell", "119977C", "EK113", "EK", 6, False, True, False, False,
                ".AVI", "BN", "bushnell", (1, 2, 3), "CORE DS 4K 4.21"),
    CameraModel("spypoint_flex", "SPYPOINT", "FLEX", "DSCIM", "PICT", 4, False, True, True, False,
                "", "SPF", "spypoint", (1, 2, 3), "FLEX 1.22.7"),
    CameraModel("suntek_hc801", "Suntek", "HC-801A", "MEDIA", "SUNP", 4, False, False, False, False,
                ".AVI", "SUN", "overlay", (1, 3), ""),
    CameraModel("dji_m3e", "DJI", "M3E", "MEDIA", "DJI_", 4, False, True, True, False,
                "", "1581F", "none", (1,), "10.01.0509"),
)
CAMERAS_BY_KEY: dict[str, CameraModel] = {c.key: c for c in CAMERA_MODELS}


def _dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    degrees = math.floor(value)
    minutes = math.floor((value - degrees) * 60.0)
    seconds = round((value - degrees - minutes / 60.0) * 3600.0, 2)
    return float(degrees), float(minutes), seconds


def build_exif(
    camera: CameraModel,
    *,
    serial: str,
    camera_time: dt.datetime,
    gps: tuple[float, float, float] | None = None,
    focal_length_mm: float | None = None,
) -> Image.Exif | None:
    """EXIF of one frame as the camera writes it.

    Args:
        camera: the camera model.
        serial: the unit's serial number (BodySerialNumber).
        camera_time: the camera clock's local time (naive; may be wrong after a clock reset).
        gps: (latitude, longitude, altitude_m) written to the GPS IFD if the model has GPS.
        focal_length_mm: FocalLength, if known (drones).

    Returns:
        The EXIF block, or None for a model that writes no EXIF.
    """
    if not camera.has_exif:
        return None
    stamp = camera_time.strftime(EXIF_TIME_FORMAT)
    exif = Image.Exif()
    exif[TAG_MAKE] = camera.make
    exif[TAG_MODEL] = camera.model
    if camera.firmware:
        exif[TAG_SOFTWARE] = camera.firmware
    exif[TAG_DATETIME] = stamp
    sub = exif.get_ifd(IFD_EXIF)
    sub[TAG_DATETIME_ORIGINAL] = stamp
    sub[TAG_DATETIME_DIGITIZED] = stamp
    sub[TAG_BODY_SERIAL] = serial
    if focal_length_mm is not None:
        sub[TAG_FOCAL_LENGTH] = float(focal_length_mm)
    if gps is not None and camera.has_gps:
        lat, lon, alt = gps
        gps_ifd = exif.get_ifd(IFD_GPS)
        gps_ifd[0] = b"\x02\x03\x00\x00"
        gps_ifd[1] = "N" if lat >= 0 else "S"
        gps_ifd[2] = _dms(lat)
        gps_ifd[3] = "E" if lon >= 0 else "W"
        gps_ifd[4] = _dms(lon)
        gps_ifd[5] = 0 if alt >= 0 else 1  # 1 = below sea level
        gps_ifd[6] = round(abs(float(alt)), 1)
    return exif


def bar_heights(camera: CameraModel, height: int) -> tuple[int, int]:
    """Rows (top, bottom) the data bar covers; animals behind a bar are not visible there."""
    band = max(10, round(height * 0.045))
    if camera.bar == "reconyx":
        return band, band
    if camera.bar in ("overlay", "none"):
        return 0, 0
    return 0, band


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _moon_fraction(day: dt.date) -> float:
    """Moon age as a fraction of the synodic month (0 = new moon)."""
    known_new_moon = dt.date(2000, 1, 6)
    return ((day - known_new_moon).days % 29.530588853) / 29.530588853


def draw_bar(
    image: Image.Image,
    camera: CameraModel,
    *,
    camera_time: dt.datetime,
    frame_in_burst: int,
    burst_len: int,
    temperature_c: int,
    camera_name: str,
) -> None:
    """Stamp the camera's data bar (make, burst counter, moon, temperature, clock) in place."""
    width, height = image.size
    top, bottom = bar_heights(camera, height)
    draw = ImageDraw.Draw(image)
    grey = image.mode == "L"
    band = max(top, bottom, max(10, round(height * 0.045)))
    font = _font(max(7, int(band * 0.72)))
    white = 255 if grey else (255, 255, 255)
    when = camera_time.strftime("%Y-%m-%d %H:%M:%S")
    temp = f"{temperature_c}°C"
    if camera.bar == "reconyx":
        black = 0 if grey else (0, 0, 0)
        draw.rectangle((0, 0, width, top - 1), fill=black)
        draw.rectangle((0, height - bottom, width, height), fill=black)
        draw.text((4, 1), f"RECONYX  {camera_name}", fill=white, font=font)
        text = f"{frame_in_burst}/{burst_len}   {temp}   {when}"
        y = height - bottom + 1
    elif camera.bar == "overlay":
        text = f"{temp}  {camera_time.strftime('%m/%d/%Y %H:%M:%S')}"
        y = height - band - 2
    else:
        fill = {"browning": (35, 35, 35), "bushnell": (20, 20, 20), "spypoint": (0, 0, 0)}[camera.bar]
        draw.rectangle((0, height - bottom, width, height), fill=fill[0] if grey else fill)
        label = {"browning": "BROWNING", "bushnell": "Bushnell", "spypoint": "SPYPOINT"}[camera.bar]
        draw.text((4, height - bottom + 1), label, fill=white, font=font)
        text = f"{camera_name}  {temp}  {when}"
        y = height - bottom + 1
    text_width = draw.textlength(text, font=font)
    draw.text((width - text_width - 4, y), text, fill=white, font=font)
    # Moon phase icon left of the text (Reconyx, Browning and Bushnell print one).
    if camera.bar in ("reconyx", "browning", "bushnell"):
        radius = max(2, int(band * 0.3))
        cx = int(width - text_width - 4 - 3 * radius)
        cy = y + band // 2 - 1
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=white)
        fraction = _moon_fraction(camera_time.date())
        lit = int(round(radius * (1.0 - math.cos(2 * math.pi * fraction))))  # 0 new .. 2r full
        if lit < 2 * radius:
            shift = -lit if fraction < 0.5 else lit  # waxing: lit on the right
            dark = 0 if grey else (0, 0, 0)
            draw.ellipse((cx - radius + shift, cy - radius, cx + radius + shift, cy + radius), fill=dark)
