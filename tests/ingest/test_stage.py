"""The ingest stage end to end on small dumps written here: rows, flags, deployments, re-runs."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from ecowatch.errors import InputDataError
from ecowatch.ingest import flags as F
from ecowatch.ingest.records import media_id_for
from ecowatch.store import Store, open_store
from ecowatch.store.schema import deployments as deployments_table
from ecowatch.store.schema import dumps, media, media_flags

from .frames import deployment, frame_image, jpeg_bytes, make_exif, write_frame

T0 = dt.datetime(2026, 3, 10, 6, 0, 0)
SNAPSHOT_EXCLUDE = ("ingest_run_id", "run_id")


def rows(store: Store) -> dict[str, dict]:
    """Media rows by relpath, each with a ``flags`` dict (flag -> message)."""
    with store.engine.connect() as conn:
        out = {r["relpath"]: dict(r) | {"flags": {}} for r in conn.execute(sa.select(media)).mappings()}
        by_id = {r["media_id"]: r for r in out.values()}
        for mid, flag, message in conn.execute(sa.select(media_flags)):
            by_id[mid]["flags"][flag] = message
    return out


def card(root: Path) -> Path:
    """A card of deployment 'A' with every kind of broken file real cards contain."""
    folder = root / "A" / "DCIM" / "100MEDIA"
    for i in range(3):
        write_frame(folder / f"IMG_000{i + 1}.JPG", seed=i, when=T0 + dt.timedelta(seconds=2 * i), serial="SN1")
    (folder / "IMG_0004.JPG").write_bytes(b"")
    good = jpeg_bytes(frame_image((320, 240), seed=9), make_exif(when=T0 + dt.timedelta(hours=1)))
    (folder / "IMG_0005.JPG").write_bytes(good[: len(good) // 2])
    (folder / "IMG_0006.JPG").write_text("not a picture\n")
    (folder / "._IMG_0001.JPG").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    (folder / "MOV_0007.AVI").write_bytes(b"RIFF....AVI " + bytes(64))
    shutil.copy(folder / "IMG_0001.JPG", folder / "IMG_0001_copy.JPG")
    (root / "A" / "notes.txt").write_text("card swapped 2026-03-12\n")
    return root


def test_card_content_is_recorded_with_the_right_flags(tmp_path: Path, store: Store, run_ingest) -> None:
    summary = run_ingest(card(tmp_path / "dump"), [deployment("A")])
    got = rows(store)
    prefix = "A/DCIM/100MEDIA/"
    expected = {
        "IMG_0001.JPG": ("image", "ok", set()),
        "IMG_0001_copy.JPG": ("image", "ok", {F.DUPLICATE_CONTENT}),
        "IMG_0002.JPG": ("image", "ok", set()),
        "IMG_0003.JPG": ("image", "ok", set()),
        "IMG_0004.JPG": ("image", "failed", {F.ZERO_BYTE}),
        "IMG_0005.JPG": ("image", "failed", {F.TRUNCATED}),
        "IMG_0006.JPG": ("other", "failed", {F.NOT_AN_IMAGE}),
        "._IMG_0001.JPG": ("other", "skipped", {F.NOT_AN_IMAGE}),
        "MOV_0007.AVI": ("video", "skipped", {F.VIDEO_NOT_ANALYSED}),
    }
    assert sorted(got) == sorted(prefix + name for name in expected)  # notes.txt is not card content
    for name, (media_type, status, flag_set) in expected.items():
        row = got[prefix + name]
        assert (row["media_type"], row["status"], set(row["flags"])) == (media_type, status, flag_set), name
        assert row["deployment_id"] == "A" and row["deployment_source"] == "folder"
        assert row["media_id"] == media_id_for("dump", prefix + name)
    duplicate = got[prefix + "IMG_0001_copy.JPG"]["flags"][F.DUPLICATE_CONTENT]
    assert media_id_for("dump", prefix + "IMG_0001.JPG") in duplicate
    assert "dump/A/DCIM/100MEDIA/IMG_0001.JPG" in duplicate

    assert (summary.files_seen, summary.files_new, summary.files_already_ingested) == (9, 9, 0)
    assert (summary.media_ok, summary.media_failed, summary.media_skipped, summary.files_ignored) == (4, 3, 2, 1)
    assert summary.flags == {F.DUPLICATE_CONTENT: 1, F.NOT_AN_IMAGE: 2, F.TRUNCATED: 1, F.VIDEO_NOT_ANALYSED: 1,
                             F.ZERO_BYTE: 1}
    with store.engine.connect() as conn:
        recorded = conn.execute(sa.select(dumps.c.dump_id, dumps.c.root)).all()
    assert recorded == [("dump", str((tmp_path / "dump").resolve()))]


def test_rerun_adds_nothing_and_new_files_add_only_themselves(tmp_path: Path, store: Store, run_ingest) -> None:
    root = card(tmp_path / "dump")
    deps = [deployment("A")]
    run_ingest(root, deps)
    before = store.snapshot(exclude_columns=SNAPSHOT_EXCLUDE)

    progress: list[int] = []
    again = run_ingest(root, deps, on_progress=progress.append)
    assert (again.files_new, again.files_already_ingested, again.flags) == (0, 9, {})
    assert sum(progress) == 9
    assert store.snapshot(exclude_columns=SNAPSHOT_EXCLUDE) == before

    # Known files are skipped by relpath without re-reading them: changed bytes go unnoticed.
    (root / "A/DCIM/100MEDIA/IMG_0002.JPG").write_bytes(b"overwritten")
    write_frame(root / "A/DCIM/101MEDIA/IMG_0101.JPG", seed=101, when=T0 + dt.timedelta(seconds=5))
    write_frame(root / "A/DCIM/101MEDIA/IMG_0102.JPG", seed=102, when=T0 + dt.timedelta(days=1))
    more = run_ingest(root, deps)
    assert (more.files_seen, more.files_new, more.files_already_ingested, more.media_ok) == (11, 2, 9, 2)
    after = rows(store)
    assert len(after) == 11 and after["A/DCIM/100MEDIA/IMG_0002.JPG"]["status"] == "ok"
    old = {k: v for k, v in rows(store).items() if "101MEDIA" not in k}
    assert {k: v["sha256"] for k, v in old.items()} == {r[2]: r[4] for r in before["media"]}


def test_assignment_by_serial_and_time_with_clock_flags(tmp_path: Path, store: Store, run_ingest) -> None:
    root = tmp_path / "dump" / "DCIM" / "100MEDIA"
    deps = [deployment("A", serial="SN1", end="2026-03-20T10:00:00"),
            deployment("B", serial="SN1", start="2026-03-21T10:00:00"),
            deployment("C", serial="SN2")]
    write_frame(root / "IMG_0001.JPG", when=T0, serial="SN1")
    write_frame(root / "IMG_0002.JPG", seed=2, when=dt.datetime(2026, 3, 25), serial="SN1")
    write_frame(root / "IMG_0003.JPG", seed=3, when=dt.datetime(2000, 1, 1, 0, 0, 7), serial="SN2")
    write_frame(root / "IMG_0004.JPG", seed=4, when=dt.datetime(2000, 1, 1), serial="SN1")
    write_frame(root / "IMG_0005.JPG", seed=5, when=T0, serial="SN7")
    run_ingest(tmp_path / "dump", deps)
    got = {k.rsplit("/", 1)[1]: v for k, v in rows(store).items()}
    assert [(got[n]["deployment_id"], got[n]["deployment_source"], set(got[n]["flags"])) for n in sorted(got)] == [
        ("A", "serial_time", set()),
        ("B", "serial_time", set()),
        ("C", "serial_only", {F.CLOCK_OUTSIDE_DEPLOYMENT}),
        (None, "", {F.NO_DEPLOYMENT}),  # SN1 has two deployments and the clock fits neither
        (None, "", {F.NO_DEPLOYMENT}),
    ]
    assert "looks reset (year 2000)" in got["IMG_0003.JPG"]["flags"][F.CLOCK_OUTSIDE_DEPLOYMENT]
    assert got["IMG_0001.JPG"]["camera_serial"] == "SN1"
    with store.engine.connect() as conn:
        assert sorted(conn.execute(sa.select(deployments_table.c.deployment_id)).scalars()) == ["A", "B", "C"]


def test_a_corrected_deployments_table_updates_rows(tmp_path: Path, store: Store, run_ingest) -> None:
    write_frame(tmp_path / "dump" / "A" / "IMG_0001.JPG", when=T0)
    run_ingest(tmp_path / "dump", [deployment("A", serial="WRONG")])
    run_ingest(tmp_path / "dump", [deployment("A", serial="SN1"), deployment("B")])
    with store.engine.connect() as conn:
        got = conn.execute(sa.select(deployments_table.c.deployment_id, deployments_table.c.camera_serial)
                           .order_by(deployments_table.c.deployment_id)).all()
    assert got == [("A", "SN1"), ("B", "")]


def sequences_of(store: Store) -> list[tuple[str, str | None, int | None]]:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(media.c.relpath, media.c.sequence_id, media.c.sequence_frame)
                            .order_by(media.c.relpath)).all()


def test_sequences_group_frames_by_gap(tmp_path: Path, store: Store, run_ingest) -> None:
    folder = tmp_path / "dump" / "A"
    offsets = {"IMG_0001.JPG": 0, "IMG_0002.JPG": 0, "IMG_0003.JPG": 10, "IMG_0004.JPG": 21, "IMG_0005.JPG": 30}
    for i, (name, seconds) in enumerate(offsets.items()):
        write_frame(folder / name, seed=i, when=T0 + dt.timedelta(seconds=seconds))
    write_frame(folder / "IMG_0006.JPG", seed=6)  # no EXIF time: not grouped
    (folder / "IMG_0007.JPG").write_bytes(b"")  # failed: not grouped
    summary = run_ingest(tmp_path / "dump", [deployment("A")], sequence_gap_s=10)
    first, second = "A:2026-03-10T06:00:00", "A:2026-03-10T06:00:21"
    expected = [
        ("A/IMG_0001.JPG", first, 1), ("A/IMG_0002.JPG", first, 2), ("A/IMG_0003.JPG", first, 3),
        ("A/IMG_0004.JPG", second, 1), ("A/IMG_0005.JPG", second, 2),
        ("A/IMG_0006.JPG", None, None), ("A/IMG_0007.JPG", None, None),
    ]
    assert sequences_of(store) == expected and summary.sequences == 2

    # A run killed during the sequence step is repaired by the next one.
    with store.transaction() as conn:
        conn.execute(media.update().where(media.c.relpath >= "A/IMG_0003.JPG").values(sequence_id=None,
                                                                                      sequence_frame=None))
    assert run_ingest(tmp_path / "dump", [deployment("A")], sequence_gap_s=10).sequences == 2
    assert sequences_of(store) == expected


def test_sequences_span_dumps_of_one_deployment(tmp_path: Path, store: Store, run_ingest) -> None:
    write_frame(tmp_path / "d1" / "A" / "IMG_0001.JPG", seed=1, when=T0)
    write_frame(tmp_path / "d2" / "A" / "IMG_0001.JPG", seed=2, when=T0 + dt.timedelta(seconds=4))
    run_ingest(tmp_path / "d1", [deployment("A")], dump_id="d1")
    run_ingest(tmp_path / "d2", [deployment("A")], dump_id="d2")
    with store.engine.connect() as conn:
        got = conn.execute(sa.select(media.c.dump_id, media.c.sequence_id, media.c.sequence_frame)
                           .order_by(media.c.dump_id)).all()
    assert got == [("d1", "A:2026-03-10T06:00:00", 1), ("d2", "A:2026-03-10T06:00:00", 2)]


def test_duplicates_across_dumps_name_the_first_copy(tmp_path: Path, store: Store, run_ingest) -> None:
    write_frame(tmp_path / "d1" / "IMG_0001.JPG", when=T0)
    (tmp_path / "d2").mkdir()
    shutil.copy(tmp_path / "d1" / "IMG_0001.JPG", tmp_path / "d2" / "IMG_0009.JPG")
    run_ingest(tmp_path / "d1", dump_id="d1")
    summary = run_ingest(tmp_path / "d2", dump_id="d2")
    assert summary.flags == {F.DUPLICATE_CONTENT: 1, F.NO_DEPLOYMENT: 1}
    message = rows(store)["IMG_0009.JPG"]["flags"][F.DUPLICATE_CONTENT]
    assert "d1/IMG_0001.JPG" in message and media_id_for("d1", "IMG_0001.JPG") in message


def test_worker_pool_writes_the_same_rows_as_in_process(tmp_path: Path, store: Store, run_ingest) -> None:
    root = card(tmp_path / "dump")
    for i in range(40):
        write_frame(root / "A" / "DCIM" / "101MEDIA" / f"IMG_{i:04d}.JPG", seed=i,
                    when=T0 + dt.timedelta(seconds=3 * i))
    other = open_store(tmp_path / "other.sqlite")
    try:
        pooled = run_ingest(root, [deployment("A")], workers=2, batch_size=8)
        run_ingest(root, [deployment("A")], target=other, workers=0, batch_size=5)
        assert pooled.files_new == 49
        assert store.snapshot(exclude_columns=SNAPSHOT_EXCLUDE) == other.snapshot(exclude_columns=SNAPSHOT_EXCLUDE)
    finally:
        other.dispose()


def test_missing_dump_root(tmp_path: Path, run_ingest) -> None:
    with pytest.raises(InputDataError, match="is not a folder"):
        run_ingest(tmp_path / "nowhere")
