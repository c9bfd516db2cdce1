"""Failure and warning flags that ingest puts on media rows (table ``media_flags``).

A flag is a short machine-readable name plus a human message. Per-file problems never raise
out of the ingest stage: they become flags on that file's media row, and the dump goes on.

=============================  ==============================================================
flag                           meaning
=============================  ==============================================================
``zero_byte``                  the file is empty (a card that filled up, or a failed copy)
``truncated``                  the image stream ends early; the header was readable
``not_an_image``               the file has an image name but is not an image (text, AppleDouble
                               ``._*`` macOS metadata, another format Pillow cannot identify)
``unreadable``                 any other decode error; the message carries the decoder's text
``video_not_analysed``         a video file: recorded with its hash, not decoded (status skipped)
``no_exif_time``               a readable image without a usable EXIF time; the file's
                               modification time is used instead (``timestamp_source`` says so)
``no_deployment``              no deployment matched by folder name or camera serial
``clock_outside_deployment``   the EXIF time lies outside the assigned deployment's window
                               +/- ``clock_tolerance_h``; the message says whether the clock
                               looks reset (year 2000 or earlier) or is in the future
``duplicate_content``          the same bytes (sha256) as another media row, which it names
=============================  ==============================================================
"""

from __future__ import annotations

from dataclasses import dataclass

ZERO_BYTE = "zero_byte"
TRUNCATED = "truncated"
NOT_AN_IMAGE = "not_an_image"
UNREADABLE = "unreadable"
VIDEO_NOT_ANALYSED = "video_not_analysed"
NO_EXIF_TIME = "no_exif_time"
NO_DEPLOYMENT = "no_deployment"
CLOCK_OUTSIDE_DEPLOYMENT = "clock_outside_deployment"
DUPLICATE_CONTENT = "duplicate_content"

ALL_FLAGS: tuple[str, ...] = (
    ZERO_BYTE,
    TRUNCATED,
    NOT_AN_IMAGE,
    UNREADABLE,
    VIDEO_NOT_ANALYSED,
    NO_EXIF_TIME,
    NO_DEPLOYMENT,
    CLOCK_OUTSIDE_DEPLOYMENT,
    DUPLICATE_CONTENT,
)


@dataclass(frozen=True)
class Flag:
    """One flag on one media row.

    Attributes:
        flag: one of :data:`ALL_FLAGS`.
        message: a sentence for a human: what is wrong and, where known, why.
    """

    flag: str
    message: str
