"""The classify stage on the tiny dump: ingested media, detections from the truth, the tiny classifier."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import torch

from ecowatch.classify.backbones import build_backbone
from ecowatch.classify.checkpoint import load_classifier, save_classifier
from ecowatch.classify.crops import crop_square
from ecowatch.classify.openset import OpenSetCalibration
from ecowatch.classify.stage import classify_stage
from ecowatch.classify.transforms import eval_transform
from ecowatch.classify.writer import CLASSIFY_UNREADABLE
from ecowatch.config import ClassifyConfig, IngestConfig
from ecowatch.detect.data import decode_image
from ecowatch.errors import ConfigError, ModelNotFoundError
from ecowatch.ingest import ingest_dump
from ecowatch.store import Store, open_store
from ecowatch.store import schema as S
from ecowatch.tables import read_deployments

DUMP_ID = "tiny"
DETECTOR = "truth"


def _store_with_detections(root: Path, dump: Path) -> tuple[Store, Path, dict[str, float]]:
    """A store holding the ingested copy of the tiny dump and one detection per truth box.

    Animal boxes get confidence 0.9 except every fourth (0.1, below the stage's threshold); one animal
    box is flagged as a static false positive; people stay ``person`` detections.
    """
    dump_root = root / "dump"
    shutil.copytree(dump / "dump", dump_root)
    store = open_store(root / "results.sqlite")
    ingest_dump(store, dump_root=dump_root, dump_id=DUMP_ID, deployments=read_deployments(dump / "deployments.csv"),
                config=IngestConfig(workers=0), run_id="ingest")
    with store.engine.connect() as conn:
        ok = S.media.c.status == "ok"
        media = dict(conn.execute(sa.select(S.media.c.relpath, S.media.c.media_id).where(ok)).all())
    coco = json.loads((dump / "coco_camera_traps.json").read_text())
    images = {img["id"]: img for img in coco["images"]}
    rows, conf_of = [], {}
    for index, ann in enumerate(a for a in coco["annotations"] if a.get("bbox")):
        img = images[ann["image_id"]]
        if img["file_name"] not in media:
            continue
        x, y, w, h = ann["bbox"]
        category = "person" if ann.get("taxon_id") == "homo_sapiens" else "animal" if ann.get("taxon_id") else "vehicle"
        detection_id = f"{media[img['file_name']]}:{DETECTOR}:{index}"
        conf = 0.1 if index % 4 == 3 else 0.9
        conf_of[detection_id] = conf if category == "animal" else -1.0
        rows.append(dict(detection_id=detection_id, media_id=media[img["file_name"]], category=category, conf=conf,
                         x=x / img["width"], y=y / img["height"], w=w / img["width"], h=h / img["height"],
                         detector_name=DETECTOR, detector_version=DETECTOR, tile="full",
                         static_fp=False, run_id="detect"))
    static = next(r for r in rows if r["category"] == "animal" and r["conf"] == 0.9)
    static["static_fp"] = True
    conf_of[static["detection_id"]] = -1.0
    with store.transaction() as conn:
        conn.execute(S.detections.insert(), rows)
    return store, dump_root, conf_of


@pytest.fixture
def classify_env(tiny_dump: Path, tiny_classifier, tmp_path: Path):
    store, dump_root, conf_of = _store_with_detections(tmp_path, tiny_dump)
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(tiny_classifier.checkpoint, models / "species.ckpt")
    yield store, dump_root, conf_of, models
    store.dispose()


def _classifications(store: Store) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(sa.select(S.classifications).order_by(S.classifications.c.rank)):
            out.setdefault(row.detection_id, []).append(tuple(row))
    return out


def test_stage_writes_top_k_rows_and_a_rerun_adds_none(classify_env, tiny_classifier) -> None:
    store, dump_root, conf_of, models = classify_env
    config = ClassifyConfig(model="species.ckpt", min_detection_conf=0.5, top_k=3, batch_size=4, workers=0,
                            accelerator="cpu", threads=1)
    summary = classify_stage(store, dump_root=dump_root, dump_id=DUMP_ID, config=config, run_id="run1",
                             cache_dir=models)
    expected = {d for d, conf in conf_of.items() if conf >= 0.5}
    got = _classifications(store)
    assert set(got) == expected and len(expected) > 5
    assert summary.detections_selected == summary.detections_done == len(expected)
    assert summary.rows == 3 * len(expected) and summary.model_version == tiny_classifier.model_version
    classes = set(tiny_classifier.taxonomy.class_ids)
    for rows in got.values():
        assert [r[3] for r in rows] == [1, 2, 3]  # ranks
        scores = [r[5] for r in rows]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
        assert {r[4] for r in rows} <= classes
        assert {(r[1], r[2], r[6], r[8]) for r in rows} == {("tiny-species", summary.model_version,
                                                             tiny_classifier.temperature, "run1")}
        assert len({r[7] for r in rows}) == 1 and 0 <= rows[0][7] <= 1  # one unknown score per detection

    again = classify_stage(store, dump_root=dump_root, dump_id=DUMP_ID, config=config, run_id="run2",
                           cache_dir=models)
    assert again.detections_selected == 0 and again.detections_already_done == len(expected)
    assert again.model_name == "tiny-species"  # nothing to do: not loaded; the name is its rows' in the store
    assert _classifications(store) == got


def _first_scored_crop(store: Store, dump_root: Path, models: Path, checkpoint: str) -> tuple[list[tuple], torch.Tensor]:
    """Run the stage with ``models/checkpoint``; one classified detection's rows and its crop as that
    checkpoint's input tensor (1, 3, S, S)."""
    config = ClassifyConfig(model=str(models / checkpoint), min_detection_conf=0.5, top_k=2, batch_size=3,
                            workers=0, accelerator="cpu", threads=1)
    classify_stage(store, dump_root=dump_root, dump_id=DUMP_ID, config=config, run_id="r", cache_dir=models)
    detection_id, rows = next(iter(_classifications(store).items()))
    with store.engine.connect() as conn:
        det = conn.execute(sa.select(S.detections, S.media.c.relpath).join(S.media).where(
            S.detections.c.detection_id == detection_id)).one()
    pre = load_classifier(models / checkpoint).preprocessing
    crop = crop_square(decode_image(dump_root / det.relpath), (det.x, det.y, det.w, det.h), pre.geometry)
    return rows, eval_transform(pre)(image=crop)["image"][None]


def test_stage_scores_equal_the_checkpoint_on_the_same_crop(classify_env, tiny_classifier) -> None:
    store, dump_root, _, models = classify_env
    rows, image = _first_scored_crop(store, dump_root, models, "species.ckpt")
    classifier = load_classifier(models / "species.ckpt")
    assert classifier.open_set.method == "knn" and classifier.open_set.bank is not None  # the default score
    probs, unknown, _ = classifier.scores(image)
    top = torch.topk(probs[0], 2)
    assert [r[4] for r in rows] == [classifier.taxonomy.class_ids[i] for i in top.indices.tolist()]
    assert np.allclose([r[5] for r in rows], top.values.tolist(), atol=1e-5)
    assert rows[0][7] == pytest.approx(float(unknown[0]), abs=1e-5)


def test_a_test_time_flip_checkpoint_is_scored_so_in_the_stage(classify_env) -> None:
    store, dump_root, _, models = classify_env
    tiny = load_classifier(models / "species.ckpt")
    torch.manual_seed(0)  # freshly initialised ResNet weights: the two-step tiny model scores every crop about alike
    common = {"network": build_backbone("resnet18_half", tiny.taxonomy.num_classes, pretrained=False).eval(),
              "model_name": "tiny-species", "backbone": "resnet18_half", "taxonomy": tiny.taxonomy,
              "preprocessing": tiny.preprocessing, "temperature": 1.0,
              "open_set": OpenSetCalibration("energy", threshold=-2.5, scale=0.7, known_recall=0.95)}
    save_classifier(models / "single.ckpt", **common)
    save_classifier(models / "flip.ckpt", test_time_flip=True, **common)  # each crop with its mirror image
    rows, image = _first_scored_crop(store, dump_root, models, "flip.ckpt")
    flipped, single = load_classifier(models / "flip.ckpt"), load_classifier(models / "single.ckpt")
    probs, unknown, _ = flipped.scores(image)
    assert np.allclose([r[5] for r in rows], torch.topk(probs[0], 2).values.tolist(), atol=1e-5)
    assert rows[0][7] == pytest.approx(float(unknown[0]), abs=1e-5)
    assert not torch.allclose(probs, single.scores(image)[0], atol=1e-3)  # one pass would have scored otherwise


def test_unreadable_image_is_flagged_and_retried(classify_env) -> None:
    store, dump_root, conf_of, models = classify_env
    config = ClassifyConfig(model="species.ckpt", min_detection_conf=0.5, top_k=1, batch_size=8, workers=0,
                            accelerator="cpu", threads=1)
    with store.engine.connect() as conn:
        media_id, relpath = conn.execute(sa.select(S.media.c.media_id, S.media.c.relpath).join(S.detections).where(
            S.detections.c.detection_id == next(d for d, c in conf_of.items() if c >= 0.5))).first()
    good = (dump_root / relpath).read_bytes()
    (dump_root / relpath).write_bytes(good[:200])  # changed since ingest: truncated
    summary = classify_stage(store, dump_root=dump_root, dump_id=DUMP_ID, config=config, run_id="r1",
                             cache_dir=models)
    assert summary.detections_failed >= 1
    assert store.count(S.media_flags, S.media_flags.c.media_id == media_id,
                       S.media_flags.c.flag == CLASSIFY_UNREADABLE) == 1
    (dump_root / relpath).write_bytes(good)
    retry = classify_stage(store, dump_root=dump_root, dump_id=DUMP_ID, config=config, run_id="r2", cache_dir=models)
    assert retry.detections_selected == summary.detections_failed and retry.detections_failed == 0


def test_stage_reads_the_model_from_the_mlflow_registry(classify_env, tmp_path: Path) -> None:
    from ecowatch.tracking import register_model_version, tracked_run, tracking_target

    store, dump_root, conf_of, models = classify_env
    target = tracking_target(str(tmp_path / "mlflow" / "mlflow.db"))
    with tracked_run(target, experiment="t", run_name="train") as run:
        run.log_artifact(models / "species.ckpt", "classifier")
    register_model_version(target, run_id=run.run_id, artifact_path="classifier/species.ckpt", name="species",
                           alias="champion")
    config = ClassifyConfig(model="models:/species@champion", min_detection_conf=0.5, top_k=1, workers=0,
                            accelerator="cpu", threads=1)
    by_uri = classify_stage(store, dump_root=dump_root, dump_id=DUMP_ID, config=config, run_id="r",
                            cache_dir=tmp_path / "cache", tracking_uri=target.tracking_uri)
    assert by_uri.model_source == "mlflow" and by_uri.detections_done > 0
    by_path = classify_stage(store, dump_root=dump_root, dump_id=DUMP_ID,
                             config=config.model_copy(update={"model": "species.ckpt"}), run_id="r",
                             cache_dir=models)
    assert by_path.model_version == by_uri.model_version and by_path.detections_selected == 0  # same weights


def test_stage_errors_say_what_to_set(classify_env) -> None:
    store, dump_root, _, models = classify_env
    with pytest.raises(ConfigError, match="classify.model is not set"):
        classify_stage(store, dump_root=dump_root, dump_id=DUMP_ID, config=ClassifyConfig(), run_id="r",
                       cache_dir=models)
    with pytest.raises(ModelNotFoundError, match="not found .*ecowatch train classifier"):
        classify_stage(store, dump_root=dump_root, dump_id=DUMP_ID, config=ClassifyConfig(model="absent.ckpt"),
                       run_id="r", cache_dir=models)
    with pytest.raises(ModelNotFoundError, match="needs the tracking store"):
        classify_stage(store, dump_root=dump_root, dump_id=DUMP_ID, config=ClassifyConfig(model="models:/x@champion"),
                       run_id="r", cache_dir=models)


def test_run_config_has_a_validated_classify_section() -> None:
    from ecowatch.config import RunConfig

    config = RunConfig.model_validate({"classify": {"model": "models:/ecowatch-species@champion", "top_k": 3}})
    assert config.classify.top_k == 3 and config.classify.min_detection_conf == 0.2
    assert RunConfig().classify.model is None  # no classifier configured: the stage is skipped
    with pytest.raises(ValueError, match="top_kk"):
        RunConfig.model_validate({"classify": {"top_kk": 3}})
    with pytest.raises(ValueError, match="min_detection_conf"):
        RunConfig.model_validate({"classify": {"min_detection_conf": 1.5}})


def test_bundled_classifier_resolves_by_name_and_stands_alone(tmp_path: Path) -> None:
    """``classify.model: ecowatch-species-synth`` (the demo's) is a complete checkpoint shipped with the package."""
    from ecowatch.classify.stage import BUNDLED_CLASSIFIERS, resolve_classifier

    resolved = resolve_classifier("ecowatch-species-synth", cache_dir=tmp_path)
    assert resolved.source == "bundled" and resolved.path.name == BUNDLED_CLASSIFIERS["ecowatch-species-synth"]
    model = load_classifier(resolved.path)
    assert model.version == resolved.version and 0.5 < model.temperature < 5.0
    assert len(model.taxonomy.class_ids) >= 10
    assert all(model.taxonomy.taxa[c].rank == "species" for c in model.taxonomy.class_ids)
    assert model.taxonomy.ancestor(model.taxonomy.class_ids[0], "family")  # the tree travels with it


def test_champion_not_registered_yet_uses_the_fallback(tmp_path: Path) -> None:
    """conf/nightly.yaml asks for @champion; before the first retrain the bundled fallback runs, with a warning."""
    from ecowatch.classify.stage import resolve_configured_classifier
    from ecowatch.tracking import tracking_target

    uri = tracking_target(str(tmp_path / "mlflow.db")).tracking_uri
    config = ClassifyConfig(model="models:/ecowatch-species@champion", fallback="ecowatch-species-synth")
    resolved = resolve_configured_classifier(config, cache_dir=tmp_path, tracking_uri=uri)
    assert resolved.source == "bundled" and "not registered" in resolved.origin
    with pytest.raises(ModelNotFoundError, match="ecowatch-species"):  # without a fallback: the registry's answer
        resolve_configured_classifier(config.model_copy(update={"fallback": None}), cache_dir=tmp_path,
                                      tracking_uri=uri)
    with pytest.raises(ModelNotFoundError, match="tracking store"):  # no registry to ask: an error, not a fallback
        resolve_configured_classifier(config, cache_dir=tmp_path, tracking_uri=None)
