"""Walking an SD-card dump: every file that looks like card content, in a deterministic order.

The walk is a depth-first traversal with the entries of each folder sorted by name, so two
walks of the same dump yield the same files in the same order. It is a generator: memory
holds one folder listing per level, never the whole dump.

What is yielded:

* files whose name ends with an image or video extension (case-insensitive);
* AppleDouble files (``._IMG_0001.JPG``, macOS metadata written next to media on FAT cards),
  so that they are recorded as not images rather than silently dropped.

Everything else (``README.txt``, ``Thumbs.db``, camera logs) is counted in
:class:`ScanStats` and logged, not recorded. With ``skip_hidden`` the walk does not enter
folders whose name starts with ``.`` or that operating systems create on removable media
(``System Volume Information``, ``$RECYCLE.BIN``, ``__MACOSX``), and skips dot-files other
than AppleDouble files. Symbolic links to folders are not followed (no loops).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # workers import this module: keep pydantic out of them
    from ecowatch.config import IngestConfig

log = logging.getLogger(__name__)

FileKind = Literal["image", "video", "appledouble"]

APPLEDOUBLE_PREFIX = "._"

# Folders created by operating systems on removable media (compared lower-case).
OS_FOLDERS = frozenset({"system volume information", "$recycle.bin", "recycler", "__macosx", ".trashes"})


@dataclass(frozen=True)
class ScannedFile:
    """One file found in a dump.

    Attributes:
        relpath: POSIX path relative to the dump root, as stored (undecodable bytes in a
            name are written as ``\\xNN`` escapes).
        path: absolute path used to read the file.
        kind: ``image`` or ``video`` by extension, ``appledouble`` for ``._*`` metadata files.
    """

    relpath: str
    path: str
    kind: FileKind


@dataclass
class ScanStats:
    """Counts kept while a scan runs (read them after the generator is exhausted).

    Attributes:
        yielded: files yielded.
        ignored: files that do not look like card content (no media extension).
        hidden_skipped: hidden files and OS folders skipped because of ``skip_hidden``.
        ignored_examples: up to five relpaths of ignored files, for the log.
    """

    yielded: int = 0
    ignored: int = 0
    hidden_skipped: int = 0
    ignored_examples: list[str] = field(default_factory=list)


def storable_relpath(relpath: str) -> str:
    """A relpath that any database can store as UTF-8.

    File names on a card may hold bytes that are not UTF-8; Python keeps them as lone
    surrogates, which a database refuses. They are written as ``\\xNN`` escapes instead.
    """
    try:
        relpath.encode("utf-8")
    except UnicodeEncodeError:
        return relpath.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return relpath


def classify_name(name: str, config: IngestConfig) -> FileKind | None:
    """The kind of a file from its name alone.

    Args:
        name: a file name (no folder).
        config: supplies the image and video extensions (lower-case, with the dot).

    Returns:
        ``appledouble`` for ``._<media name>``, ``image`` or ``video`` by extension, or None for
        a file that does not look like card content.
    """
    lower = name.lower()
    if lower.startswith(APPLEDOUBLE_PREFIX):
        inner = lower[len(APPLEDOUBLE_PREFIX) :]
        if inner.endswith(config.image_extensions) or inner.endswith(config.video_extensions):
            return "appledouble"
        return None
    if lower.endswith(config.image_extensions):
        return "image"
    if lower.endswith(config.video_extensions):
        return "video"
    return None


def _is_hidden_folder(name: str) -> bool:
    return name.startswith(".") or name.lower() in OS_FOLDERS


def scan_dump(root: Path, config: IngestConfig, stats: ScanStats | None = None) -> Iterator[ScannedFile]:
    """Yield the card-content files under ``root`` in a deterministic order.

    Args:
        root: the dump root folder.
        config: extensions and ``skip_hidden``.
        stats: optional counters, updated as the walk proceeds.

    Yields:
        One :class:`ScannedFile` per file, depth-first, entries of each folder sorted by name.
        A folder that cannot be listed is logged and skipped.
    """
    stats = stats if stats is not None else ScanStats()
    yield from _walk(str(root), "", config, stats)
    if stats.ignored:
        log.info(
            "ignored %d file(s) without a media extension, e.g. %s", stats.ignored, ", ".join(stats.ignored_examples)
        )
    if stats.hidden_skipped:
        log.info("skipped %d hidden file(s) or OS folder(s)", stats.hidden_skipped)


def _walk(folder: str, prefix: str, config: IngestConfig, stats: ScanStats) -> Iterator[ScannedFile]:
    try:
        with os.scandir(folder) as entries:
            listing = sorted(((e.name, e.is_dir(follow_symlinks=False), e.is_file()) for e in entries))
    except OSError as exc:
        log.warning("cannot list folder %s (%s); its files are not ingested", folder, exc)
        return
    for name, is_dir, is_file in listing:
        relpath = f"{prefix}{name}"
        if is_dir:
            if config.skip_hidden and _is_hidden_folder(name):
                stats.hidden_skipped += 1
                continue
            yield from _walk(os.path.join(folder, name), f"{relpath}/", config, stats)
            continue
        if not is_file:
            continue  # sockets, broken links, folder links
        kind = classify_name(name, config)
        if config.skip_hidden and name.startswith(".") and kind != "appledouble":
            stats.hidden_skipped += 1
            continue
        if kind is None:
            stats.ignored += 1
            if len(stats.ignored_examples) < 5:
                stats.ignored_examples.append(storable_relpath(relpath))
            continue
        stats.yielded += 1
        yield ScannedFile(relpath=storable_relpath(relpath), path=os.path.join(folder, name), kind=kind)
