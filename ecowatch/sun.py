"""The sun's elevation at a place and clock time: day and night for activity patterns.

Used by the context fuser (time of day of a photo: day, twilight, night) and by the synthetic
world (when animals are active). A vectorised NOAA approximation, about 0.5 degree accurate,
which is plenty for telling day from twilight from night.
"""

from __future__ import annotations

import math

import numpy as np


def sun_elevation_deg(
    lat: float, lon: float, day_of_year: np.ndarray | int, local_hour: np.ndarray | float, utc_offset_min: int
) -> np.ndarray:
    """Solar elevation (NOAA approximation, about 0.5 degree accuracy).

    Args:
        lat: latitude, degrees.
        lon: longitude, degrees east.
        day_of_year: 1..366.
        local_hour: hours since local (clock) midnight, fractional.
        utc_offset_min: the clock's offset from UTC in minutes.

    Returns:
        Elevation of the sun above the horizon in degrees (array broadcast from the inputs).
    """
    doy = np.asarray(day_of_year, dtype=float)
    hour = np.asarray(local_hour, dtype=float)
    gamma = 2.0 * np.pi / 365.0 * (doy - 1.0 + (hour - 12.0) / 24.0)
    eqtime = 229.18 * (
        0.000075 + 0.001868 * np.cos(gamma) - 0.032077 * np.sin(gamma)
        - 0.014615 * np.cos(2 * gamma) - 0.040849 * np.sin(2 * gamma)
    )
    decl = (
        0.006918 - 0.399912 * np.cos(gamma) + 0.070257 * np.sin(gamma) - 0.006758 * np.cos(2 * gamma)
        + 0.000907 * np.sin(2 * gamma) - 0.002697 * np.cos(3 * gamma) + 0.00148 * np.sin(3 * gamma)
    )
    true_solar_min = hour * 60.0 + eqtime + 4.0 * lon - utc_offset_min
    hour_angle = np.radians(true_solar_min / 4.0 - 180.0)
    phi = math.radians(lat)
    cos_zenith = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(hour_angle)
    return 90.0 - np.degrees(np.arccos(np.clip(cos_zenith, -1.0, 1.0)))
