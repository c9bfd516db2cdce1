"""Shard files and their merge (one process, no process group), and reading the launcher's environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecowatch.distributed import ProcessWorld, cpu_threads, launch_rank, launch_world, pad_to_world
from ecowatch.errors import StoreError
from ecowatch.shards import (
    TEST_DIE_AFTER_BATCHES,
    ShardFile,
    ShardPlace,
    ShardSink,
    content_key,
    merge_leftovers,
    merge_shards,
    read_records,
)
from ecowatch.store import Store, open_store
from ecowatch.store import schema as S

TABLES = (S.detections, S.detector_done, S.media_flags)
_LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "NODE_RANK", "TORCHELASTIC_RUN_ID",
                     "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NNODES", "SLURM_JOB_NAME",
                     "MASTER_ADDR", "MASTER_PORT", TEST_DIE_AFTER_BATCHES)


@pytest.fixture(autouse=True)
def no_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in _LAUNCH_VARIABLES:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def store(tmp_path: Path):
    opened = open_store(tmp_path / "results.sqlite")
    with opened.transaction() as conn:
        conn.execute(S.dumps.insert().values(dump_id="d", root=str(tmp_path)))
        conn.execute(S.media.insert(), [
            {"media_id": f"m{i}", "dump_id": "d", "relpath": f"{i}.jpg", "sha256": f"{i:064d}", "size_bytes": 1,
             "media_type": "image", "status": "ok", "timestamp_source": "none", "ingest_run_id": "ingest"}
            for i in range(4)])
    yield opened
    opened.dispose()


def batch(media_id: str, boxes: int = 1) -> dict:
    """One batch's record for one image with ``boxes`` detections (the detect writer's line format)."""
    detections = [{"detection_id": f"{media_id}:v:{k}", "media_id": media_id, "category": "animal",
                   "conf": 0.5 + k / 10, "x": 0.1, "y": 0.2, "w": 0.3, "h": 0.4, "detector_name": "det",
                   "detector_version": "v", "tile": "full", "static_fp": False} for k in range(boxes)]
    return {"rows": {"detections": detections, "detector_done": [{"media_id": media_id, "detector_version": "v"}],
                     "media_flags": []}, "tiled": []}


def test_lines_are_self_contained_and_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    shard = ShardFile(tmp_path / "s" / "rank-00000.jsonl", stage="detect", rank=0)
    shard.append(batch("m0"))
    shard.append(batch("m1"))
    shard.close()
    with open(shard.path, "ab") as handle:  # a process killed while writing its third line
        handle.write(json.dumps(batch("m2")).encode()[:40])
    assert [r["rows"]["detector_done"][0]["media_id"] for r in read_records(shard.path)] == ["m0", "m1"]
    again = ShardFile(shard.path, stage="detect", rank=0)  # appending never glues onto the torn line
    again.append(batch("m3"))
    again.close()
    assert [r["rows"]["detector_done"][0]["media_id"] for r in read_records(shard.path)] == ["m0", "m1", "m3"]


def test_merge_twice_writes_each_row_once_with_the_merging_run_id(tmp_path: Path, store: Store) -> None:
    paths = []
    for rank, media in enumerate((["m0", "m1"], ["m2", "m0"])):  # m0 in both: a sample the sampler repeated
        shard = ShardFile(tmp_path / f"rank-{rank}.jsonl", stage="detect", rank=rank)
        for media_id in media:
            shard.append(batch(media_id, boxes=2))
        shard.close()
        paths.append(shard.path)
    first = merge_shards(store, paths, tables=TABLES, run_id="run-1", rows_per_transaction=3)
    assert first.records == 4 and first.records_per_file == [2, 2]
    assert first.inserted == {"detections": 6, "detector_done": 3, "media_flags": 0}
    second = merge_shards(store, paths, tables=TABLES, run_id="run-2")
    assert second.inserted == {"detections": 0, "detector_done": 0, "media_flags": 0}
    assert store.count(S.detections) == 6 and store.count(S.detector_done) == 3
    with store.engine.connect() as conn:
        assert {row[0] for row in conn.execute(S.detector_done.select().with_only_columns(S.detector_done.c.run_id))
                } == {"run-1"}


def test_leftover_shards_are_merged_and_removed(tmp_path: Path, store: Store) -> None:
    place = ShardPlace(tmp_path / "shards", "detect", "v", "d")
    for rank in (0, 1):
        shard = ShardFile(place.shard_path("k1", rank), stage="detect", rank=rank)
        shard.append(batch(f"m{rank}"))
        shard.close()
    assert len(place.shards()) == 2
    result = merge_leftovers(store, place, tables=TABLES, run_id="rerun")
    assert result.records == 2 and store.count(S.detector_done) == 2
    assert place.shards() == [] and not place.folder.exists()
    assert merge_leftovers(store, place, tables=TABLES, run_id="rerun").records == 0  # nothing left


def test_a_sink_without_process_group_merges_its_own_shard(tmp_path: Path, store: Store) -> None:
    place = ShardPlace(tmp_path / "shards", "detect", "v", "d")
    sink = ShardSink(place, content_key(["m0", "m1"]), rank=0, world_size=1, tables=TABLES)
    sink.append(batch("m0"))
    sink.append(batch("m1", boxes=3))
    seen = []
    result = sink.finish(store, run_id="r", on_record=seen.append)
    assert result is not None and result.inserted["detections"] == 4 and len(seen) == 2
    assert place.shards() == []


def test_a_shard_rank_0_cannot_read_is_an_error_not_a_silent_gap(tmp_path: Path, store: Store,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from ecowatch import distributed

    place = ShardPlace(tmp_path / "shards", "detect", "v", "d")
    sink = ShardSink(place, content_key(["m0"]), rank=0, world_size=2, tables=TABLES)
    sink.append(batch("m0"))
    # rank 1 reports 2 batches written, but its shard is on a disk rank 0 does not see
    monkeypatch.setattr(distributed, "gather_ints", lambda values: [list(values), [1, 2, values[2]]])
    with pytest.raises(StoreError, match="shared"):
        sink.finish(store, run_id="r")


def test_processes_that_selected_different_work_are_refused(tmp_path: Path, store: Store,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from ecowatch import distributed

    sink = ShardSink(ShardPlace(tmp_path / "shards", "detect", "v", "d"), content_key(["m0"]), rank=0,
                     world_size=2, tables=TABLES)
    sink.append(batch("m0"))
    monkeypatch.setattr(distributed, "gather_ints", lambda values: [list(values), [1, 1, values[2] + 1]])
    with pytest.raises(StoreError, match="different"):
        sink.finish(store, run_id="r")
    assert store.count(S.detector_done) == 0


def test_content_key_depends_on_ids_and_order() -> None:
    assert content_key(["a", "b"]) == content_key(iter(["a", "b"]))
    assert len({content_key(["a", "b"]), content_key(["b", "a"]), content_key(["ab"]), content_key([])}) == 4


def test_the_test_hook_is_inert_unless_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shard = ShardFile(tmp_path / "rank-00001.jsonl", stage="detect", rank=1)
    for media_id in ("m0", "m1", "m2"):
        shard.append(batch(media_id))  # no variable: never exits
    shard.close()
    monkeypatch.setenv(TEST_DIE_AFTER_BATCHES, "classify:1:1")  # another stage: inert here too
    other = ShardFile(tmp_path / "other.jsonl", stage="detect", rank=1)
    other.append(batch("m0"))
    other.close()
    monkeypatch.setenv(TEST_DIE_AFTER_BATCHES, "detect:one:1")
    with pytest.raises(ValueError, match="<stage>:<rank>:<batches>"):
        ShardFile(tmp_path / "bad.jsonl", stage="detect", rank=1)


def test_one_process_by_default_and_lightnings_child_is_not_rank_0(monkeypatch: pytest.MonkeyPatch) -> None:
    assert launch_world() == ProcessWorld(0, 1, 0, 1, 1, "none")
    assert launch_world(devices=2) == ProcessWorld(0, 2, 0, 2, 1, "lightning")
    kwargs = launch_world(devices=2).trainer_kwargs()
    assert (kwargs["devices"], kwargs["num_nodes"], type(kwargs["strategy"]).__name__) == (2, 1, "DDPStrategy")
    assert launch_world().trainer_kwargs() == {"devices": 1, "num_nodes": 1, "strategy": "auto"}
    monkeypatch.setenv("LOCAL_RANK", "1")  # what Lightning's launcher sets in the process it starts
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("NODE_RANK", "1")
    child = launch_world(devices=2, num_nodes=2)
    assert (child.rank, child.size, child.local_rank, child.is_main) == (3, 4, 1, False)
    assert launch_rank() != 0


def test_torchrun_and_slurm_decide_the_world(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job")
    for key, value in {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4"}.items():
        monkeypatch.setenv(key, value)
    world = launch_world(devices=1)  # the configured devices are not used
    assert world == ProcessWorld(5, 8, 1, 4, 2, "torchrun") and world.starts_together
    assert (world.trainer_kwargs()["devices"], world.trainer_kwargs()["num_nodes"]) == (4, 2)
    for key in ("TORCHELASTIC_RUN_ID", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(key)
    for key, value in {"SLURM_NTASKS": "4", "SLURM_PROCID": "2", "SLURM_LOCALID": "0", "SLURM_NNODES": "2",
                       "SLURM_JOB_NAME": "nightly"}.items():
        monkeypatch.setenv(key, value)
    assert launch_world() == ProcessWorld(2, 4, 0, 2, 2, "slurm")


def test_padding_and_threads() -> None:
    assert pad_to_world([1], 3) == [1, 1, 1] and pad_to_world([1, 2, 3], 2) == [1, 2, 3] and pad_to_world([], 2) == []
    world = ProcessWorld(0, 2, 0, 2, 1, "lightning")
    assert cpu_threads(3, world) == 3
    assert cpu_threads(None, world) >= 1
