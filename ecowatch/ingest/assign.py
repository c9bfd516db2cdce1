"""Assigning media to deployments: by folder name, else by camera serial and time.

The rules, first match wins (the rule is recorded in ``media.deployment_source``):

1. ``folder``: a folder in the file's relpath is named exactly like a ``deployment_id``
   (the deepest such folder wins). Operators sort cards into one folder per deployment.
2. ``serial_time``: the camera serial from EXIF equals a deployment's ``camera_serial``
   (case-insensitive, surrounding spaces ignored) and the EXIF time lies in that deployment's
   window +/- ``clock_tolerance_h``. Several matches: the one whose window contains the time
   without tolerance, else the nearest window, then the smallest id.
3. ``serial_only``: the serial belongs to exactly one deployment, but the time does not fit
   (a reset or drifting clock): assigned, and flagged ``clock_outside_deployment``.
4. none: flagged ``no_deployment`` with the reason.

Station layout (:class:`StationLayout`, the camtrapR ``<station>/[<camera>/]<species>/file``
layout): the first folder of the relpath names the station, matched against one column of the
deployments table (``location_name`` by default; case-insensitive, surrounding spaces ignored),
and these rules replace the four above, so that the folder a person sorted a file into decides:

1. ``station_time``: the station (and, with ``camera_level``, the second folder as the
   ``camera_id``) has deployments whose window +/- ``clock_tolerance_h`` contains the EXIF
   time; several: chosen as for ``serial_time``.
2. ``station_only``: the station has exactly one (such) deployment, but the time does not fit
   or is not an EXIF time: assigned, and flagged ``clock_outside_deployment`` when the EXIF
   time misses the window.
3. none: flagged ``no_deployment`` with the reason (station not in the table, several
   deployments and no time that picks one, a file outside any station folder).

Clock checks use EXIF times only: a file modification time says when the card was copied, not
when the frame was taken, and its frames already carry ``no_exif_time``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from ecowatch.errors import ConfigError
from ecowatch.ingest import flags as F
from ecowatch.ingest.exif import EXIF_TIME_SOURCES
from ecowatch.tables import Deployment

SOURCE_FOLDER = "folder"
SOURCE_SERIAL_TIME = "serial_time"
SOURCE_SERIAL_ONLY = "serial_only"
SOURCE_STATION_TIME = "station_time"
SOURCE_STATION_ONLY = "station_only"
SOURCE_NONE = ""

# Deployment columns a station folder may name (StationLayout.column).
STATION_COLUMNS = ("location_name", "location_id", "deployment_id")

# A camera clock showing this year or earlier has almost certainly been reset (battery change);
# camera firmware falls back to 2000-01-01 or its build year.
RESET_CLOCK_MAX_YEAR = 2000


@dataclass(frozen=True)
class Assignment:
    """The deployment of one media file.

    Attributes:
        deployment_id: the deployment, or None.
        source: ``folder``, ``serial_time``, ``serial_only``, ``station_time``, ``station_only`` or '' (none).
        flags: ``clock_outside_deployment`` or ``no_deployment`` when they apply.
    """

    deployment_id: str | None
    source: str
    flags: tuple[F.Flag, ...] = ()


@dataclass(frozen=True)
class StationLayout:
    """Media sorted into station folders: ``<station>/<file>`` or deeper (camtrapR's layout).

    Attributes:
        column: the deployments column that the first folder of a relpath names, one of
            :data:`STATION_COLUMNS`.
        camera_level: the second folder names the camera (camtrapR's ``cameraID = "directory"``
            / ``camerasIndependent``); it is matched against ``camera_id`` where the station's
            deployments give one.

    Raises:
        ConfigError: ``column`` is not one of :data:`STATION_COLUMNS`.
    """

    column: str = "location_name"
    camera_level: bool = False

    def __post_init__(self) -> None:
        if self.column not in STATION_COLUMNS:
            raise ConfigError(
                f"station column {self.column!r} is not a deployments column a station folder can name; "
                f"use one of {list(STATION_COLUMNS)}."
            )


def _serial_key(serial: str) -> str:
    return serial.strip().casefold()


def station_key(name: str) -> str:
    """How station folders and deployments-table values are compared: spaces around and case ignored."""
    return str(name).strip().casefold()


def _distance(deployment: Deployment, stamp: dt.datetime) -> dt.timedelta:
    if stamp < deployment.start:
        return deployment.start - stamp
    if stamp > deployment.end:
        return stamp - deployment.end
    return dt.timedelta(0)


def _days(delta: dt.timedelta) -> str:
    return f"{delta.total_seconds() / 86400:.1f} days"


class DeploymentIndex:
    """Deployments indexed by id and by camera serial, with the clock tolerance.

    Args:
        deployments: the deployments table (ids unique, as :func:`ecowatch.tables.read_deployments`
            guarantees).
        clock_tolerance_h: hours a timestamp may lie outside a window and still fit, >= 0.
        now: the current camera-local time, to recognise timestamps in the future
            (default: the local clock).
        stations: assign by station folder and time instead of by folder name and serial
            (see the module docstring); None: the default rules.
    """

    def __init__(
        self,
        deployments: Sequence[Deployment],
        *,
        clock_tolerance_h: float,
        now: dt.datetime | None = None,
        stations: StationLayout | None = None,
    ) -> None:
        self.by_id = {d.deployment_id: d for d in deployments}
        self.by_serial: dict[str, list[Deployment]] = {}
        self.stations = stations
        self.by_station: dict[str, list[Deployment]] = {}
        for deployment in sorted(deployments, key=lambda d: d.deployment_id):
            key = _serial_key(deployment.camera_serial)
            if key:
                self.by_serial.setdefault(key, []).append(deployment)
            if stations is not None:
                station = station_key(getattr(deployment, stations.column))
                if station:
                    self.by_station.setdefault(station, []).append(deployment)
        self.tolerance = dt.timedelta(hours=clock_tolerance_h)
        self.tolerance_h = clock_tolerance_h
        self.now = now if now is not None else dt.datetime.now()

    def clock_flag(
        self, deployment: Deployment, stamp: dt.datetime | None, source: str
    ) -> F.Flag | None:
        """A ``clock_outside_deployment`` flag if an EXIF time misses the deployment window.

        Args:
            deployment: the assigned deployment.
            stamp: the media's camera-local timestamp.
            source: its ``timestamp_source``; only EXIF times are checked.

        Returns:
            The flag, or None when the time fits (or is not an EXIF time).
        """
        if stamp is None or source not in EXIF_TIME_SOURCES:
            return None
        if deployment.contains(stamp, tolerance=self.tolerance):
            return None
        side = "before the start" if stamp < deployment.start else "after the end"
        message = (
            f"timestamp {stamp.isoformat(sep=' ')} ({source}) is {_days(_distance(deployment, stamp))} {side} of "
            f"deployment {deployment.deployment_id!r} ({deployment.start.isoformat(sep=' ')} .. "
            f"{deployment.end.isoformat(sep=' ')}, tolerance {self.tolerance_h:g} h)"
        )
        if stamp.year <= RESET_CLOCK_MAX_YEAR:
            message += f"; the camera clock looks reset (year {stamp.year})"
        elif stamp > self.now:
            message += "; the timestamp is in the future: the camera clock is wrong"
        return F.Flag(F.CLOCK_OUTSIDE_DEPLOYMENT, message)

    def assign(self, *, relpath: str, serial: str, timestamp: dt.datetime | None, timestamp_source: str) -> Assignment:
        """Find the deployment of one media file.

        Args:
            relpath: POSIX path relative to the dump root.
            serial: camera serial number from EXIF ('' when absent).
            timestamp: camera-local timestamp, or None.
            timestamp_source: where the timestamp came from (``exif_*`` or ``file_mtime``).

        Returns:
            The assignment, with its flags.
        """
        if self.stations is not None:
            return self._assign_station(self.stations, relpath.split("/")[:-1], timestamp, timestamp_source)
        for part in reversed(relpath.split("/")[:-1]):
            deployment = self.by_id.get(part)
            if deployment is not None:
                flag = self.clock_flag(deployment, timestamp, timestamp_source)
                return Assignment(deployment.deployment_id, SOURCE_FOLDER, (flag,) if flag else ())

        key = _serial_key(serial)
        candidates = self.by_serial.get(key, []) if key else []
        exif_time = timestamp if timestamp_source in EXIF_TIME_SOURCES else None
        if candidates and exif_time is not None:
            fitting = [d for d in candidates if d.contains(exif_time, tolerance=self.tolerance)]
            if fitting:
                best = min(fitting, key=lambda d: (_distance(d, exif_time), d.deployment_id))
                return Assignment(best.deployment_id, SOURCE_SERIAL_TIME)
        if len(candidates) == 1:
            deployment = candidates[0]
            flag = self.clock_flag(deployment, timestamp, timestamp_source)
            return Assignment(deployment.deployment_id, SOURCE_SERIAL_ONLY, (flag,) if flag else ())
        return Assignment(None, SOURCE_NONE, (F.Flag(F.NO_DEPLOYMENT, self._why_none(serial, candidates, exif_time)),))

    def _assign_station(
        self, layout: StationLayout, folders: list[str], timestamp: dt.datetime | None, timestamp_source: str
    ) -> Assignment:
        if not folders:
            return Assignment(None, SOURCE_NONE, (F.Flag(F.NO_DEPLOYMENT, "the file is not inside a station folder"),))
        station = folders[0]
        candidates = self.by_station.get(station_key(station), [])
        where = f"station {station!r}"
        if not candidates:
            reason = f"{where} is not in the deployments table (column {layout.column!r})"
            return Assignment(None, SOURCE_NONE, (F.Flag(F.NO_DEPLOYMENT, reason),))
        if layout.camera_level and len(folders) > 1 and any(d.camera_id.strip() for d in candidates):
            camera = station_key(folders[1])
            known = ", ".join(sorted({repr(d.camera_id) for d in candidates}))
            candidates = [d for d in candidates if station_key(d.camera_id) == camera]
            where = f"camera {folders[1]!r} at station {station!r}"
            if not candidates:
                reason = f"{where}: no deployment of the station has this camera_id (they have {known})"
                return Assignment(None, SOURCE_NONE, (F.Flag(F.NO_DEPLOYMENT, reason),))
        exif_time = timestamp if timestamp_source in EXIF_TIME_SOURCES else None
        if exif_time is not None:
            fitting = [d for d in candidates if d.contains(exif_time, tolerance=self.tolerance)]
            if fitting:
                best = min(fitting, key=lambda d: (_distance(d, exif_time), d.deployment_id))
                return Assignment(best.deployment_id, SOURCE_STATION_TIME)
        if len(candidates) == 1:
            deployment = candidates[0]
            flag = self.clock_flag(deployment, timestamp, timestamp_source)
            return Assignment(deployment.deployment_id, SOURCE_STATION_ONLY, (flag,) if flag else ())
        ids = ", ".join(repr(d.deployment_id) for d in candidates)
        if exif_time is None:
            reason = f"{where} has {len(candidates)} deployments ({ids}) and the file has no EXIF time to choose one"
        else:
            reason = (
                f"{where} has {len(candidates)} deployments ({ids}), none of whose windows "
                f"(tolerance {self.tolerance_h:g} h) contains {exif_time.isoformat(sep=' ')}"
            )
        return Assignment(None, SOURCE_NONE, (F.Flag(F.NO_DEPLOYMENT, reason),))

    def _why_none(self, serial: str, candidates: list[Deployment], exif_time: dt.datetime | None) -> str:
        head = "no folder in the path is a deployment_id"
        if not serial.strip():
            return f"{head}, and the file has no camera serial number in EXIF"
        if not candidates:
            return f"{head}, and camera serial {serial.strip()!r} is not in the deployments table"
        ids = ", ".join(repr(d.deployment_id) for d in candidates)
        if exif_time is None:
            return (
                f"{head}; camera serial {serial.strip()!r} has {len(candidates)} deployments ({ids}) and the file "
                "has no EXIF time to choose one"
            )
        return (
            f"{head}; camera serial {serial.strip()!r} has {len(candidates)} deployments ({ids}), none of whose "
            f"windows (tolerance {self.tolerance_h:g} h) contains {exif_time.isoformat(sep=' ')}"
        )
