"""The library's stages and readers give the same results on PostgreSQL as on SQLite.

The store tests check the store itself on both backends; these check the SQL that other
modules send to it (ingest's upserts and keyset-paginated sequence updates, the report's reads,
the MegaDetector and Camtrap DP exports): the same input in a SQLite file and in a PostgreSQL
database must give equal rows and identical files.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from ecowatch.config import IngestConfig
from ecowatch.formats.camtrap_dp_write import export_camtrap_dp
from ecowatch.formats.megadetector_json import export_megadetector_json
from ecowatch.ingest import ingest_dump
from ecowatch.report.data import load_report_data
from ecowatch.store import Store, open_store
from ecowatch.store.schema import metadata
from tests.formats.test_camtrap_dp import PROJECT
from tests.ingest.frames import deployment, write_frame
from tests.report.builders import DUMP, build_tiny_store, taxonomy

T0 = dt.datetime(2026, 3, 10, 6, 0, 0)


@pytest.fixture
def postgres_store(postgres_server) -> Iterator[Store]:
    store = open_store(postgres_server.new_database())
    yield store
    store.dispose()


def copy_rows(source: Store, target: Store) -> None:
    """Every row of every table of ``source`` into ``target`` (parents first)."""
    with source.engine.connect() as read, target.transaction() as write:
        for table in metadata.sorted_tables:
            if table.name != "schema_info":
                rows = [dict(r) for r in read.execute(sa.select(table)).mappings()]
                target.insert_ignore(write, table, rows)


def test_ingest_writes_the_same_rows(tmp_path: Path, postgres_store: Store) -> None:
    root = tmp_path / "dump"
    folder = root / "A" / "DCIM" / "100MEDIA"
    for i in range(7):  # two bursts (sequences) and a lone frame, a duplicate, a broken file
        write_frame(folder / f"IMG_{i + 1:04d}.JPG", seed=i, when=T0 + dt.timedelta(seconds=2 * i + 60 * (i // 3)))
    shutil.copy(folder / "IMG_0001.JPG", folder / "IMG_0001_copy.JPG")
    (folder / "IMG_0009.JPG").write_bytes(b"")
    deployments = [deployment("A")]
    config = IngestConfig(workers=0, batch_size=3, sequence_gap_s=30)  # several batches and pages
    sqlite_store = open_store(tmp_path / "results.sqlite")
    for store in (sqlite_store, postgres_store):
        ingest_dump(store, dump_root=root, dump_id="dump", deployments=deployments, config=config, run_id="r")
        again = ingest_dump(store, dump_root=root, dump_id="dump", deployments=deployments, config=config,
                            run_id="r2")
        assert again.files_new == 0
    expected = sqlite_store.snapshot()
    assert len(expected["media"]) == 9 and len(expected["media_flags"]) >= 2
    sequence = [c.name for c in metadata.tables["media"].columns].index("sequence_id")
    assert len({row[sequence] for row in expected["media"] if row[sequence]}) >= 2  # sequences were written
    assert postgres_store.snapshot() == expected
    sqlite_store.dispose()


def test_report_data_and_exports_are_identical(tmp_path: Path, postgres_store: Store) -> None:
    tiny = build_tiny_store(tmp_path / "sqlite")
    copy_rows(tiny.store, postgres_store)
    assert postgres_store.snapshot() == tiny.store.snapshot()

    on_sqlite, on_postgres = load_report_data(tiny.store), load_report_data(postgres_store)
    assert on_postgres.dump_ids == on_sqlite.dump_ids and on_postgres.dump_roots == on_sqlite.dump_roots
    for name in ("deployments", "media", "flags", "observations", "detections", "classifications", "runs"):
        pd.testing.assert_frame_equal(getattr(on_postgres, name), getattr(on_sqlite, name), obj=name)

    for label, store in (("sqlite", tiny.store), ("postgresql", postgres_store)):
        export_megadetector_json(store, tmp_path / label / "md.json", dump_id=DUMP, taxonomy=taxonomy())
        export_camtrap_dp(store, tmp_path / label / "camtrap", dump_id=DUMP, project=PROJECT, taxonomy=taxonomy())
    package = sorted((tmp_path / "sqlite" / "camtrap").iterdir())
    written = [Path("md.json"), *(p.relative_to(tmp_path / "sqlite") for p in package)]
    assert len(written) == 5  # md.json, datapackage.json, deployments.csv, media.csv, observations.csv
    for name in written:
        assert (tmp_path / "postgresql" / name).read_bytes() == (tmp_path / "sqlite" / name).read_bytes(), name
    tiny.store.dispose()
