"""Results store: schema versioning, idempotent transactional writes, queries, snapshots.

Every test that takes ``store`` or ``store_url`` runs twice: on a SQLite file and on a real
PostgreSQL server (``tests/store/postgres_server.py``); ``-k postgresql`` selects the latter.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from ecowatch.errors import StoreError
from ecowatch.store import SCHEMA_VERSION, Store, open_store
from ecowatch.store.db import store_url as to_store_url
from ecowatch.store.queries import flag_counts, media_per_deployment, write_flagged_media_csv
from ecowatch.store.schema import deployments, dumps, media, media_flags, runs, schema_info

DEP = dict(deployment_id="D1", location_id="L1", location_name="Ridge", latitude=1.0, longitude=2.0,
           start=dt.datetime(2026, 3, 1), end=dt.datetime(2026, 4, 1), utc_offset_min=60, camera_id="",
           camera_serial="S", camera_make="", camera_model="", setup_notes="")


def media_row(relpath: str, *, dump_id: str = "dump", deployment_id: str | None = "D1", status: str = "ok",
              timestamp: dt.datetime | None = dt.datetime(2026, 3, 10, 6, 0)) -> dict:
    """A complete ``media`` row (ids as ingest derives them)."""
    return dict(media_id=hashlib.sha1(f"{dump_id}/{relpath}".encode()).hexdigest(), dump_id=dump_id,
                relpath=relpath, deployment_id=deployment_id, sha256=hashlib.sha256(relpath.encode()).hexdigest(),
                size_bytes=3_000_000_000, media_type="image", status=status, width=64, height=48, orientation=1,
                color_mode="RGB", is_greyscale=False, timestamp=timestamp, timestamp_source="exif_datetimeoriginal",
                camera_make="", camera_model="", camera_serial="S", gps_latitude=None, gps_longitude=None,
                gps_altitude_m=None, deployment_source="folder", sequence_id=None, sequence_frame=None,
                ingest_run_id="r1")


def test_creates_schema_with_version(store_url: str) -> None:
    store = open_store(store_url)
    with store.engine.connect() as conn:
        version = conn.execute(sa.select(schema_info.c.value)).scalar_one()
    assert int(version) == SCHEMA_VERSION
    assert store.dialect == ("sqlite" if "sqlite" in to_store_url(store_url) else "postgresql")
    assert set(sa.inspect(store.engine).get_table_names()) >= {"media", "detections", "observations", "runs"}
    store.dispose()


def test_reopening_keeps_rows_and_version(store_url: str) -> None:
    first = open_store(store_url)
    with first.transaction() as conn:
        first.insert_ignore(conn, deployments, [DEP])
    first.dispose()
    again = open_store(store_url)
    assert again.count(deployments) == 1
    assert again.count(schema_info) == 1
    again.dispose()


def test_refuses_other_schema_version(store_url: str) -> None:
    store = open_store(store_url)
    with store.transaction() as conn:
        conn.execute(schema_info.update().values(value="999"))
    store.dispose()
    with pytest.raises(StoreError, match="schema version 999.*Use a new store path or migrate"):
        open_store(store_url)


def test_a_version_1_store_is_migrated_in_place_keeping_its_rows(store_url: str) -> None:
    store = open_store(store_url)
    with store.transaction() as conn:
        store.insert_ignore(conn, deployments, [DEP])
        conn.exec_driver_sql("ALTER TABLE deployments DROP COLUMN habitat")  # as ecowatch wrote version 1
        conn.execute(schema_info.update().values(value="1"))
    store.dispose()
    migrated = open_store(store_url)
    with migrated.engine.connect() as conn:
        assert conn.execute(sa.select(schema_info.c.value)).scalar_one() == str(SCHEMA_VERSION) == "2"
        assert conn.execute(sa.select(deployments.c.deployment_id, deployments.c.habitat)).all() == [("D1", "")]
    with migrated.transaction() as conn:
        conn.execute(deployments.update().values(habitat="Beech forest"))
    migrated.dispose()
    again = open_store(store_url)  # migrated once: opened again as it is
    with again.engine.connect() as conn:
        assert conn.execute(sa.select(deployments.c.habitat)).scalar_one() == "Beech forest"
    again.dispose()


def test_insert_ignore_is_idempotent(store: Store) -> None:
    with store.transaction() as conn:
        assert store.insert_ignore(conn, deployments, [DEP]) == 1
    with store.transaction() as conn:
        assert store.insert_ignore(conn, deployments, [DEP, {**DEP, "deployment_id": "D2"}]) == 1
    with store.transaction() as conn:
        assert store.insert_ignore(conn, deployments, []) == 0
    assert store.count(deployments) == 2


def test_insert_ignore_skips_rows_of_a_taken_unique_key(store: Store) -> None:
    """``media`` is unique on (dump_id, relpath) as well as on media_id: both conflicts are skipped."""
    row = media_row("A/IMG_0001.JPG")
    with store.transaction() as conn:
        store.insert_ignore(conn, dumps, [{"dump_id": "dump", "root": "/cards/dump"}])
        store.insert_ignore(conn, deployments, [DEP])
        assert store.insert_ignore(conn, media, [row]) == 1
        assert store.insert_ignore(conn, media, [{**row, "media_id": "other-id"}]) == 0
    assert store.count(media) == 1


def test_insert_ignore_keeps_values_exactly(store: Store) -> None:
    """Types survive the round trip on both backends: naive datetimes, big integers, booleans, NULLs, unicode."""
    row = media_row("A/Überläufer ü 0001.JPG", timestamp=dt.datetime(2026, 3, 10, 6, 0, 1, 250000))
    with store.transaction() as conn:
        store.insert_ignore(conn, dumps, [{"dump_id": "dump", "root": "/cards/dump"}])
        store.insert_ignore(conn, deployments, [DEP])
        store.insert_ignore(conn, media, [row])
    with store.engine.connect() as conn:
        got = dict(conn.execute(sa.select(media)).mappings().one())
    assert got == row


def test_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as conn:
        store.insert_ignore(conn, deployments, [DEP])
        raise RuntimeError("killed mid-batch")
    assert store.count(deployments) == 0


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(sa.exc.IntegrityError), store.transaction() as conn:
        store.insert_ignore(conn, media, [media_row("A/IMG_0001.JPG", dump_id="no-such-dump")])
    assert store.count(media) == 0


def test_runs_and_snapshot(store: Store) -> None:
    run_id = store.start_run("nightly", {"a": 1})
    store.finish_run(run_id, status="finished", counts={"media": 3}, mlflow_run_id="m1")
    with store.engine.connect() as conn:
        run = conn.execute(sa.select(runs)).mappings().one()
    assert (run["run_id"], run["kind"], run["status"], run["mlflow_run_id"]) == (run_id, "nightly", "finished", "m1")
    assert json.loads(run["params_json"]) == {"a": 1} and json.loads(run["counts_json"]) == {"media": 3}
    assert run["finished_at"] >= run["started_at"]
    with store.transaction() as conn:
        store.insert_ignore(conn, deployments, [DEP])
    snap = store.snapshot(exclude_columns=("setup_notes",))
    assert "runs" not in snap
    assert snap["deployments"][0][0] == "D1"
    assert len(snap["deployments"][0]) == len(deployments.columns) - 1


def test_queries(store: Store, tmp_path: Path) -> None:
    rows = [media_row("A/IMG_0001.JPG"), media_row("A/IMG_0002.JPG", status="failed"),
            media_row("B/IMG_0001.JPG", deployment_id=None), media_row("X/IMG_0001.JPG", dump_id="other")]
    flags = [
        {"media_id": rows[1]["media_id"], "flag": "truncated", "message": "ends early"},
        {"media_id": rows[2]["media_id"], "flag": "no_deployment", "message": "no folder, no serial"},
        {"media_id": rows[2]["media_id"], "flag": "no_exif_time", "message": "no EXIF"},
        {"media_id": rows[3]["media_id"], "flag": "truncated", "message": "other dump"},
    ]
    with store.transaction() as conn:
        store.insert_ignore(conn, dumps, [{"dump_id": "dump", "root": "/d"}, {"dump_id": "other", "root": "/o"}])
        store.insert_ignore(conn, deployments, [DEP])
        store.insert_ignore(conn, media, rows)
        store.insert_ignore(conn, media_flags, flags)
    assert media_per_deployment(store, "dump") == {"(none)": 1, "D1": 2}
    assert flag_counts(store, "dump") == {"no_deployment": 1, "no_exif_time": 1, "truncated": 1}
    assert store.count(media, media.c.status == "ok", media.c.dump_id == "dump") == 2
    out = tmp_path / "flagged.csv"
    assert write_flagged_media_csv(store, "dump", out) == 3
    assert out.read_text().splitlines() == [
        "relpath,status,flag,message",
        "A/IMG_0002.JPG,failed,truncated,ends early",
        'B/IMG_0001.JPG,ok,no_deployment,"no folder, no serial"',
        "B/IMG_0001.JPG,ok,no_exif_time,no EXIF",
    ]


def test_bad_url_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot use results store"):
        open_store("notadialect://x")


def test_plain_postgresql_urls_use_psycopg3() -> None:
    assert to_store_url("postgresql://u@db:5432/eco") == "postgresql+psycopg://u@db:5432/eco"
    assert to_store_url("postgres://u@db/eco") == "postgresql+psycopg://u@db/eco"
    assert to_store_url("postgresql+psycopg://u@db/eco") == "postgresql+psycopg://u@db/eco"


def test_unreachable_server_is_a_clear_error_without_the_password() -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreError, match="cannot open results store.*Check the host, port") as caught:
        open_store(f"postgresql+psycopg://ecowatch:s3cret@127.0.0.1:{port}/eco?connect_timeout=5")
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)


def test_missing_database_is_a_clear_error(postgres_server) -> None:
    with pytest.raises(StoreError, match='database "no_such_db" does not exist.*createdb'):
        open_store(postgres_server.url("no_such_db"))
