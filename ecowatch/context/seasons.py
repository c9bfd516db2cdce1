"""Time as context: the season by hemisphere and the time of day from the sun.

Seasons are meteorological (three whole months each): in the northern hemisphere (latitude >= 0)
December-February is ``winter``, March-May ``spring``, June-August ``summer``,
September-November ``autumn``; south of the equator the names shift by six months. The tropics
get the same rule (no wet/dry seasons are modelled).

The time of day is decided by the sun's elevation at the camera, not by the clock, so that a
dusk-active species is "twilight" in June at 21:30 and in December at 16:30:

========== ===============================================
``night``  sun below :data:`NIGHT_BELOW_DEG` (-6 degrees, civil dusk/dawn)
``twilight`` between -6 and :data:`DAY_ABOVE_DEG` (+6 degrees)
``day``    sun above +6 degrees
========== ===============================================

Media timestamps are camera-local clock times; the deployment's UTC offset places them in the day.
"""

from __future__ import annotations

import datetime as dt

from ecowatch.errors import InputDataError
from ecowatch.sun import sun_elevation_deg

SEASONS: tuple[str, ...] = ("winter", "spring", "summer", "autumn")
TIMES_OF_DAY: tuple[str, ...] = ("night", "twilight", "day")
#: Sun elevation (degrees) below which it is night (civil twilight ends).
NIGHT_BELOW_DEG = -6.0
#: Sun elevation (degrees) above which it is day.
DAY_ABOVE_DEG = 6.0

_NORTHERN = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring",
             6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn", 11: "autumn"}


def season_of(month: int, latitude: float) -> str:
    """The meteorological season of a month at a latitude.

    Args:
        month: 1 (January) .. 12.
        latitude: WGS84 degrees, -90..90 (negative: southern hemisphere).

    Returns:
        One of :data:`SEASONS`.

    Raises:
        InputDataError: a month outside 1..12 or a latitude outside -90..90.
    """
    if not 1 <= int(month) <= 12:
        raise InputDataError(f"month {month!r} is not within 1..12 (January = 1).")
    if not -90.0 <= float(latitude) <= 90.0:
        raise InputDataError(f"latitude {latitude!r} is outside -90..90 (WGS84 degrees).")
    shifted = int(month) if latitude >= 0 else (int(month) + 5) % 12 + 1
    return _NORTHERN[shifted]


def sun_elevation(local_time: dt.datetime, *, latitude: float, longitude: float, utc_offset_min: int) -> float:
    """The sun's elevation above the horizon (degrees, about 0.5 degree accuracy).

    Args:
        local_time: camera-local clock time (naive).
        latitude: WGS84 degrees.
        longitude: WGS84 degrees east.
        utc_offset_min: minutes east of UTC of the camera clock.

    Returns:
        Degrees; negative below the horizon.
    """
    hour = local_time.hour + local_time.minute / 60.0 + local_time.second / 3600.0
    return float(sun_elevation_deg(latitude, longitude, local_time.timetuple().tm_yday, hour, utc_offset_min))


def time_of_day(local_time: dt.datetime, *, latitude: float, longitude: float, utc_offset_min: int) -> str:
    """``night``, ``twilight`` or ``day`` at a camera (see the module docstring for the limits).

    Args:
        local_time: camera-local clock time (naive).
        latitude: WGS84 degrees.
        longitude: WGS84 degrees east.
        utc_offset_min: minutes east of UTC of the camera clock.

    Returns:
        One of :data:`TIMES_OF_DAY`.
    """
    elevation = sun_elevation(local_time, latitude=latitude, longitude=longitude, utc_offset_min=utc_offset_min)
    if elevation < NIGHT_BELOW_DEG:
        return "night"
    return "twilight" if elevation <= DAY_ABOVE_DEG else "day"
