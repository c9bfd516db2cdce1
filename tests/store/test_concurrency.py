"""Several writers on one store: exactly-once rows, no deadlock surfacing, bounded retries.

The multi-process test runs on both backends; the conflict tests provoke real PostgreSQL
deadlocks and serialization failures, so they run on PostgreSQL only.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import random
import threading
import traceback
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from ecowatch.errors import StoreError
from ecowatch.store import Store, open_store
from ecowatch.store import schema as S
from tests.store.test_store import DEP, media_row

WORKERS = 4
MEDIA = 60  # per test; every worker writes all of them, in its own order and batches
DETECTIONS_PER_MEDIA = 2
DUMPS = ("card_a", "card_b")
PROVOKE = "DO $$ BEGIN RAISE EXCEPTION 'provoked by the test' USING ERRCODE = '{code}'; END $$"


def universe() -> dict[str, list[dict[str, Any]]]:
    """Every row the writers write, by table (each row has a deterministic id, as in the pipeline)."""
    media = [media_row(f"DCIM/IMG_{i:04d}.JPG", dump_id=DUMPS[i % 2], deployment_id=("D1", "D2")[i % 2])
             for i in range(MEDIA)]
    return {
        "dumps": [{"dump_id": d, "root": f"/cards/{d}"} for d in DUMPS],
        "deployments": [DEP, {**DEP, "deployment_id": "D2", "location_id": "L2"}],
        "media": media,
        "media_flags": [{"media_id": m["media_id"], "flag": "no_exif_time", "message": "test"} for m in media[::3]],
        "detections": [
            {"detection_id": hashlib.sha1(f"{m['media_id']}/{k}".encode()).hexdigest(), "media_id": m["media_id"],
             "category": "animal", "conf": 0.5 + k / 10, "x": 0.1, "y": 0.2, "w": 0.3, "h": 0.4,
             "detector_name": "d", "detector_version": "v1", "tile": "full", "static_fp": False, "run_id": "r"}
            for m in media for k in range(DETECTIONS_PER_MEDIA)
        ],
    }


def write_everything(url: str, worker: int, start: Any, results: Any) -> None:
    """One writer process: open the store (maybe creating it), write every row in seeded random batches."""
    try:
        rng = random.Random(worker)
        rows = universe()
        media = rows["media"][:]
        rng.shuffle(media)
        start.wait(timeout=120)  # every writer opens the new store and writes at the same moment
        store = open_store(url)
        inserted: Counter[str] = Counter()
        at = 0
        while at < len(media):
            batch = media[at: at + rng.randint(5, 20)]
            at += len(batch)
            ids = {m["media_id"] for m in batch}
            rng.shuffle(batch)  # insert_ignore orders rows itself
            with store.transaction() as conn:
                inserted["dumps"] += store.insert_ignore(conn, S.dumps, rows["dumps"])
                inserted["deployments"] += store.insert_ignore(conn, S.deployments, rows["deployments"])
                inserted["media"] += store.insert_ignore(conn, S.media, batch)
                for table in ("media_flags", "detections"):
                    mine = [r for r in rows[table] if r["media_id"] in ids]
                    inserted[table] += store.insert_ignore(conn, S.metadata.tables[table], mine)
            # an idempotent update of rows other writers update too, in one order for all of them
            updates = [{"b_id": m["media_id"], "b_seq": f"seq-{m['relpath'][-8:-4]}"} for m in
                       sorted(batch, key=lambda m: m["media_id"])]
            stmt = S.media.update().where(S.media.c.media_id == sa.bindparam("b_id")).values(
                sequence_id=sa.bindparam("b_seq"), sequence_frame=1)
            store.run_in_transaction(lambda conn, stmt=stmt, updates=updates: conn.execute(stmt, updates))
        store.dispose()
        results.put((worker, dict(inserted), None))
    except BaseException:  # reported to the test, which fails with it
        results.put((worker, {}, traceback.format_exc()))


def test_concurrent_writers_write_each_row_exactly_once(store_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(WORKERS), context.Queue()
    processes = [context.Process(target=write_everything, args=(store_url, w, start, results), daemon=True)
                 for w in range(WORKERS)]
    for process in processes:
        process.start()
    reports = [results.get(timeout=240) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    errors = [error for _, _, error in reports if error]
    assert not errors, errors[0]
    assert all(p.exitcode == 0 for p in processes)

    expected = {table: len(rows) for table, rows in universe().items()}
    store = open_store(store_url)
    try:
        assert {table: store.count(S.metadata.tables[table]) for table in expected} == expected
        # insert_ignore's counts add up across writers: each row was inserted by exactly one of them
        totals: Counter[str] = Counter()
        for _, inserted, _ in reports:
            totals.update(inserted)
        assert dict(totals) == expected
        assert store.count(S.schema_info) == 1
        assert store.count(S.media, S.media.c.sequence_id.like("seq-%")) == MEDIA
    finally:
        store.dispose()


@pytest.fixture
def pg_store(postgres_server) -> Iterator[Store]:
    store = open_store(postgres_server.new_database())
    with store.transaction() as conn:
        store.insert_ignore(conn, S.deployments, [DEP, {**DEP, "deployment_id": "D2"}])
    yield store
    store.dispose()


def notes(store: Store) -> dict[str, str]:
    with store.engine.connect() as conn:
        return dict(conn.execute(sa.select(S.deployments.c.deployment_id, S.deployments.c.setup_notes)).all())


def test_run_in_transaction_retries_a_real_deadlock(pg_store: Store) -> None:
    """Two transactions update the same two rows in opposite orders: PostgreSQL aborts one, which is re-run."""
    both_hold_one_row = threading.Barrier(2)
    calls: Counter[str] = Counter()
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def swap(first: str, second: str) -> None:
        def work(conn: sa.Connection) -> int:
            calls[first] += 1
            table = S.deployments
            conn.execute(table.update().where(table.c.deployment_id == first).values(setup_notes=f"by {first}"))
            if calls[first] == 1:
                both_hold_one_row.wait(timeout=30)
            conn.execute(table.update().where(table.c.deployment_id == second).values(setup_notes=f"by {first}"))
            return calls[first]

        try:
            results[first] = pg_store.run_in_transaction(work)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=swap, args=("D1", "D2")), threading.Thread(target=swap, args=("D2", "D1"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sorted(results.values()) == [1, 2]  # one committed at once, the deadlock victim on its second try
    winner = next(k for k, v in results.items() if v == 2)  # the re-run committed last
    assert notes(pg_store) == {"D1": f"by {winner}", "D2": f"by {winner}"}


def test_run_in_transaction_gives_up_after_its_attempts(pg_store: Store) -> None:
    calls = []

    def always_conflicts(conn: sa.Connection) -> None:
        calls.append(1)
        conn.execute(S.deployments.update().values(setup_notes="never committed"))
        conn.execute(sa.text(PROVOKE.format(code="serialization_failure")))

    with pytest.raises(StoreError, match="conflicted with concurrent writers 3 times.*run the step again"):
        pg_store.run_in_transaction(always_conflicts, attempts=3)
    assert len(calls) == 3
    assert set(notes(pg_store).values()) == {""}


def test_run_in_transaction_does_not_retry_other_errors(pg_store: Store) -> None:
    calls = []

    def duplicate(conn: sa.Connection) -> None:
        calls.append(1)
        conn.execute(S.deployments.insert().values(**DEP))

    with pytest.raises(sa.exc.IntegrityError):
        pg_store.run_in_transaction(duplicate)
    assert len(calls) == 1


def test_transaction_reports_a_conflict_as_a_store_error(pg_store: Store) -> None:
    with pytest.raises(StoreError, match="conflicted with another process and was rolled back.*run_in_transaction"):
        with pg_store.transaction() as conn:
            conn.execute(S.deployments.update().values(setup_notes="rolled back"))
            conn.execute(sa.text(PROVOKE.format(code="deadlock_detected")))
    assert set(notes(pg_store).values()) == {""}
