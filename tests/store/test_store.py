"""Results store: schema versioning, idempotent transactional writes, snapshots."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from ecowatch.errors import StoreError
from ecowatch.store import SCHEMA_VERSION, open_store
from ecowatch.store.schema import deployments, schema_info

DEP = dict(deployment_id="D1", location_id="L1", location_name="Ridge", latitude=1.0, longitude=2.0,
           start=dt.datetime(2026, 3, 1), end=dt.datetime(2026, 4, 1), utc_offset_min=60, camera_id="",
           camera_serial="S", camera_make="", camera_model="", setup_notes="")


def test_creates_schema_with_version(tmp_path: Path) -> None:
    store = open_store(tmp_path / "sub" / "r.sqlite")
    with store.engine.connect() as conn:
        version = conn.execute(sa.select(schema_info.c.value)).scalar_one()
    assert int(version) == SCHEMA_VERSION
    assert store.dialect == "sqlite"


def test_refuses_other_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    store = open_store(path)
    with store.transaction() as conn:
        conn.execute(schema_info.update().values(value="999"))
    store.dispose()
    with pytest.raises(StoreError, match="schema version 999"):
        open_store(path)


def test_insert_ignore_is_idempotent(tmp_path: Path) -> None:
    store = open_store(tmp_path / "r.sqlite")
    with store.transaction() as conn:
        assert store.insert_ignore(conn, deployments, [DEP]) == 1
    with store.transaction() as conn:
        assert store.insert_ignore(conn, deployments, [DEP, {**DEP, "deployment_id": "D2"}]) == 1
    assert store.count(deployments) == 2


def test_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path / "r.sqlite")
    with pytest.raises(RuntimeError), store.transaction() as conn:
        store.insert_ignore(conn, deployments, [DEP])
        raise RuntimeError("killed mid-batch")
    assert store.count(deployments) == 0


def test_runs_and_snapshot(tmp_path: Path) -> None:
    store = open_store(tmp_path / "r.sqlite")
    run_id = store.start_run("nightly", {"a": 1})
    store.finish_run(run_id, status="finished", counts={"media": 3}, mlflow_run_id="m1")
    with store.transaction() as conn:
        store.insert_ignore(conn, deployments, [DEP])
    snap = store.snapshot(exclude_columns=("setup_notes",))
    assert "runs" not in snap
    assert snap["deployments"][0][0] == "D1"
    assert len(snap["deployments"][0]) == len(deployments.columns) - 1


def test_bad_url_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot use results store"):
        open_store("notadialect://x")
