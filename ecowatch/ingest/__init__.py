"""Ingest: an SD-card dump into media rows with EXIF time, deployment, sequence and flags.

Public API: :func:`ingest_dump` and :class:`IngestSummary`; flag names in
:mod:`ecowatch.ingest.flags`.

The two names are loaded on first use, so that the pool's worker processes, which import only
:mod:`ecowatch.ingest.probe`, do not load the store, pandas and pydantic (about 90 MiB each).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ecowatch.ingest.stage import IngestSummary, ingest_dump

__all__ = ["IngestSummary", "ingest_dump"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from ecowatch.ingest import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
