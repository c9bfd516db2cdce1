"""The fuse stage on the tiny generated dump: ingested media, detections and scores from the truth, a real checkpoint.

The classifications are written from the truth (so the expected labels are known): the true species
gets 0.7 on most detections, a wrong one wins on every fifth, and one detection is novel (unknown
score 0.8). The checkpoint is a real standalone file (an untrained MobileNetV3 with the dump's
classes): the stage reads its classes and taxonomy from it, as in the nightly run.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import sqlalchemy as sa

from ecowatch.config import ClassifyConfig, FuseConfig
from ecowatch.context.stage import fuse_stage
from ecowatch.errors import ConfigError
from ecowatch.store import schema as S

DUMP_ID = "tiny"  # as in tests.classify.test_stage, whose store builder is reused


@pytest.fixture(scope="module")
def tiny_dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.classify.data import make_dump

    return make_dump(tmp_path_factory.mktemp("fuse-tiny") / "data")


@pytest.fixture(scope="module")
def checkpoint(tiny_dump: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained checkpoint whose classes are the dump's species (people excluded)."""
    from .data import write_untrained_checkpoint

    models = tmp_path_factory.mktemp("fuse-models")
    return write_untrained_checkpoint(tiny_dump / "taxonomy.csv", models / "species.ckpt")


def _truth(dump: Path, media: dict[str, str]) -> dict[str, str]:
    """Detection id -> true taxon, numbered as tests.classify.test_stage numbers the truth boxes."""
    coco = json.loads((dump / "coco_camera_traps.json").read_text())
    images = {img["id"]: img for img in coco["images"]}
    out = {}
    for index, ann in enumerate(a for a in coco["annotations"] if a.get("bbox")):
        name = images[ann["image_id"]]["file_name"]
        if name in media and ann.get("taxon_id") and ann["taxon_id"] != "homo_sapiens":
            out[f"{media[name]}:truth:{index}"] = ann["taxon_id"]
    return out


@pytest.fixture
def fuse_env(tiny_dump: Path, checkpoint: Path, tmp_path: Path):
    """A store with the tiny dump, truth detections, and classifications written from the truth."""
    from ecowatch.classify.checkpoint import checkpoint_version, load_classifier
    from tests.classify.test_stage import _store_with_detections

    store, _, conf_of = _store_with_detections(tmp_path, tiny_dump)
    with store.engine.connect() as conn:
        media = dict(conn.execute(sa.select(S.media.c.relpath, S.media.c.media_id)).all())
        sequence_of = dict(conn.execute(sa.select(S.media.c.media_id, S.media.c.sequence_id)).all())
    truth = {d: t for d, t in _truth(tiny_dump, media).items() if conf_of.get(d, -1) >= 0.5}
    event_of = {d: sequence_of[d.split(":")[0]] or d.split(":")[0] for d in truth}
    alone = Counter(event_of.values())
    novel = next(d for d in sorted(truth) if alone[event_of[d]] == 1)  # the only animal of its event
    classes = load_classifier(checkpoint).taxonomy.class_ids
    version = checkpoint_version(checkpoint)
    rows = []
    for k, (detection, taxon) in enumerate(sorted(truth.items())):
        others = [c for c in classes if c != taxon]
        ranked = [(others[0], 0.5), (taxon, 0.4), (others[1], 0.05)] if k % 5 == 4 else \
            [(taxon, 0.7), (others[0], 0.15), (others[1], 0.1)]
        rows += [dict(detection_id=detection, model_name="tiny-species", model_version=version, rank=r + 1,
                      taxon_id=t, score=s, temperature=1.0, unknown_score=0.8 if detection == novel else 0.1,
                      run_id="classify") for r, (t, s) in enumerate(ranked)]
    with store.transaction() as conn:
        conn.execute(S.classifications.insert(), rows)
        conn.execute(S.observations.insert(), [dict(observation_id="det-1", level="media", media_id=next(iter(
            media.values())), observation_type="animal", source="detector", run_id="detect")])
    yield store, truth, novel, checkpoint.parent
    store.dispose()


def _observations(store, *, source_not: str = "detector") -> list:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(S.observations).where(S.observations.c.source != source_not)
                            .order_by(S.observations.c.observation_id)).all()


CLASSIFY = ClassifyConfig(model="species.ckpt", min_detection_conf=0.5)
FUSE = FuseConfig(species_min_score=0.6, rollup_min_score=0.6)


def test_stage_writes_voted_media_and_event_observations(fuse_env) -> None:
    store, truth, novel, models = fuse_env
    summary = fuse_stage(store, dump_id=DUMP_ID, classify=CLASSIFY, config=FUSE, run_id="r1", cache_dir=models)
    assert summary.detections == len(truth) > 10 and summary.context_version == "" and summary.prior_applied == 0
    with store.engine.connect() as conn:
        where = dict(conn.execute(sa.select(S.detections.c.detection_id, S.media.c.media_id).join(S.media)).all())
        sequence_of = dict(conn.execute(sa.select(S.media.c.media_id, S.media.c.sequence_id)).all())
    per_media = Counter(where[d] for d in truth)
    rows = _observations(store)
    media_rows = {r.media_id: r for r in rows if r.level == "media"}
    event_rows = {r.sequence_id: r for r in rows if r.level == "event"}
    assert {m: r.count for m, r in media_rows.items()} == dict(per_media)
    assert summary.media == len(media_rows) and summary.events == len(event_rows) > 0
    by_sequence = defaultdict(list)
    for detection, taxon in truth.items():
        by_sequence[sequence_of[where[detection]]].append((detection, taxon))
    assert len(by_sequence) > 5 and len(by_sequence[None]) < len(truth) / 2  # media without a time: no sequence
    wrong_alone = [d for k, d in enumerate(sorted(truth)) if k % 5 == 4]  # the classifier's top-1 is wrong
    clear = 0
    for sequence, members in by_sequence.items():
        if sequence is None:
            continue
        labels = {media_rows[where[d]].taxon_id for d, _ in members}
        assert len(labels) == 1  # one animal, one species, in every frame of the burst
        event = event_rows[sequence]
        frames = Counter(where[d] for d, _ in members)
        assert event.count == max(frames.values()) and event.media_id is None and event.taxon_id in labels
        true = Counter(t for _, t in members).most_common(1)[0][0]
        ids = {d for d, _ in members}
        if novel not in ids and len(members) >= 2 and not ids & set(wrong_alone):
            assert (event.taxon_id, event.taxon_rank, event.source) == (true, "species", "classifier")
            clear += 1
    assert clear > 0
    unknown = media_rows[where[novel]]
    assert (unknown.taxon_id, unknown.taxon_rank, unknown.source) == ("animalia", "kingdom", "unknown_animal")
    assert unknown.probability == pytest.approx(0.8)
    assert any(media_rows[where[d]].taxon_id == truth[d] for d in wrong_alone)  # the vote repaired a wrong frame
    assert {r.observation_type for r in rows} == {"animal"} and {r.run_id for r in rows} == {"r1"}
    with store.engine.connect() as conn:  # the detector's own observation is left beside
        assert conn.execute(sa.select(sa.func.count()).where(S.observations.c.source == "detector")).scalar() == 1


def test_rerun_rewrites_instead_of_duplicating(fuse_env) -> None:
    store, _, _, models = fuse_env
    fuse_stage(store, dump_id=DUMP_ID, classify=CLASSIFY, config=FUSE, run_id="r1", cache_dir=models)
    first = store.snapshot(exclude_columns=("run_id",))["observations"]
    fuse_stage(store, dump_id=DUMP_ID, classify=CLASSIFY, config=FUSE, run_id="r2", cache_dir=models)
    assert store.snapshot(exclude_columns=("run_id",))["observations"] == first
    strict = FuseConfig(species_min_score=0.999, rollup_min_score=0.999)
    summary = fuse_stage(store, dump_id=DUMP_ID, classify=CLASSIFY, config=strict, run_id="r3", cache_dir=models)
    rows = _observations(store)
    assert len(rows) == len(first) - 1 == summary.media + summary.events  # replaced (the detector row aside)
    assert "classifier" not in {r.source for r in rows} and {r.run_id for r in rows} == {"r3"}


def test_stage_applies_the_context_model(fuse_env, tiny_dump: Path, tmp_path: Path) -> None:
    from ecowatch.context.graph import build_knowledge_graph
    from ecowatch.context.labels import observations_from_coco
    from ecowatch.context.places import read_range_maps, read_regions
    from ecowatch.tables import read_deployments, read_taxonomy

    store, truth, _, models = fuse_env
    graph = build_knowledge_graph(observations_from_coco(tiny_dump / "coco_camera_traps.json",
                                                         exclude_taxa=["homo_sapiens"]),
                                  taxa=read_taxonomy(tiny_dump / "taxonomy.csv"),
                                  deployments=read_deployments(tiny_dump / "deployments.csv"),
                                  regions=read_regions(tiny_dump / "regions.geojson"),
                                  range_maps=read_range_maps(tiny_dump / "range_maps.gpkg"))
    path = graph.save(tmp_path / "context.json")
    summary = fuse_stage(store, dump_id=DUMP_ID, classify=CLASSIFY, config=FUSE, run_id="r", cache_dir=models,
                         context_path=path)
    assert summary.context_version == graph.version and 0 < summary.prior_applied <= summary.detections
    assert "classifier+prior" in summary.per_source
    without = fuse_stage(store, dump_id=DUMP_ID, classify=CLASSIFY, config=FUSE.model_copy(
        update={"place_weight": 0.0, "activity_weight": 0.0, "range_outside_factor": 1.0}), run_id="r",
        cache_dir=models, context_path=path)
    assert without.prior_applied == 0 and "classifier+prior" not in without.per_source  # zero weights: classifier


def test_a_site_new_to_the_context_model_is_known_by_its_stored_habitat(fuse_env, tiny_dump: Path) -> None:
    from dataclasses import replace

    from ecowatch.classify.checkpoint import checkpoint_version, load_classifier
    from ecowatch.context.graph import build_knowledge_graph
    from ecowatch.context.labels import observations_from_coco
    from ecowatch.context.places import read_regions
    from ecowatch.context.priors import ContextPriors
    from ecowatch.context.stage import _factors, _select
    from ecowatch.tables import read_deployments, read_taxonomy

    store, _, _, models = fuse_env
    labels = observations_from_coco(tiny_dump / "coco_camera_traps.json", exclude_taxa=["homo_sapiens"], prefix="o/")
    deployments = read_deployments(tiny_dump / "deployments.csv")
    assert all(d.habitat for d in deployments)  # the store got them from the same table
    graph = build_knowledge_graph(  # the same labels, at sites of another name: none of the store's is known
        labels, taxa=read_taxonomy(tiny_dump / "taxonomy.csv"), regions=read_regions(tiny_dump / "regions.geojson"),
        deployments=[replace(d, deployment_id="o/" + d.deployment_id, location_id="o/" + d.location_id)
                     for d in deployments])
    checkpoint = models / "species.ckpt"
    priors = ContextPriors(graph, load_classifier(checkpoint).taxonomy)
    detections, _ = _select(store, dump_id=DUMP_ID, model_name="tiny-species", model_version=checkpoint_version(
        checkpoint), min_conf=0.5, detector_version=None)
    levels = Counter(f.level for f in _factors(store, detections, graph, priors) if f is not None)
    assert set(levels) == {"habitat"} and levels["habitat"] > 10
    with store.transaction() as conn:
        conn.execute(S.deployments.update().values(habitat=""))
    assert {f.level for f in _factors(store, detections, graph, priors) if f is not None} == {"region"}


def test_stage_needs_a_classifier(fuse_env) -> None:
    store, _, _, models = fuse_env
    with pytest.raises(ConfigError, match="needs classify.model"):
        fuse_stage(store, dump_id=DUMP_ID, classify=ClassifyConfig(), config=FUSE, run_id="r", cache_dir=models)


def test_run_config_has_a_validated_fuse_section() -> None:
    from ecowatch.config import RunConfig

    config = RunConfig.model_validate({"fuse": {"context": "context_model", "place_weight": 0.4}})
    assert config.fuse.place_weight == 0.4 and config.fuse.unknown_min_score == 0.5
    with pytest.raises(ValueError, match="place_weight"):
        RunConfig.model_validate({"fuse": {"place_weight": 1.5}})
    with pytest.raises(ValueError, match="species_min_scor"):
        RunConfig.model_validate({"fuse": {"species_min_scor": 0.9}})
