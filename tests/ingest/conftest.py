"""Fixtures of the ingest tests: a fresh store, a configuration, a one-call ingest."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from ecowatch.config import IngestConfig
from ecowatch.ingest import IngestSummary, ingest_dump
from ecowatch.store import Store, open_store
from ecowatch.tables import Deployment


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(tmp_path / "store" / "results.sqlite")
    yield opened
    opened.dispose()


@pytest.fixture
def run_ingest(store: Store) -> Callable[..., IngestSummary]:
    """``run_ingest(root, deployments=(), dump_id="dump", **config)`` ingests in-process (workers=0)."""

    def run(root: Path, deployments: Sequence[Deployment] = (), *, dump_id: str = "dump",
            target: Store | None = None, on_progress: Callable[[int], None] | None = None,
            **config: object) -> IngestSummary:
        cfg = IngestConfig(**{"workers": 0, "batch_size": 16, **config})
        return ingest_dump(target or store, dump_root=root, dump_id=dump_id, deployments=list(deployments),
                           config=cfg, run_id="test-run", on_progress=on_progress)

    return run
