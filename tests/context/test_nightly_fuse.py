"""The nightly run with a classifier and a context model: fused observations beside the detector's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from ecowatch.store import open_store
from ecowatch.store import schema as S
from pipelines.cli import main


@pytest.fixture(scope="module")
def tiny_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ecowatch.synth import DumpSpec, generate_dump

    out = tmp_path_factory.mktemp("nightly-fuse") / "sample"
    generate_dump(out, DumpSpec.preset("tiny", workers=0))
    return out


def test_nightly_fuses_classified_detections(tiny_sample: Path, project_factory, tmp_path: Path) -> None:
    from ecowatch.config import load_config
    from ecowatch.context.build import build_context_model
    from pipelines.nightly import run_nightly

    from .data import write_untrained_checkpoint

    conf = project_factory(
        dump=tiny_sample / "dump", deployments=tiny_sample / "deployments.csv", taxonomy=tiny_sample / "taxonomy.csv",
        labels=tiny_sample / "coco_camera_traps.json",
        conf={"tracking": {"enabled": False}, "ingest": {"workers": 0},
              "detect": {"workers": 0, "threads": 1, "accelerator": "cpu"},
              "classify": {"model": "species.ckpt", "workers": 0, "threads": 1, "accelerator": "cpu"},
              "fuse": {"context": "context", "species_min_score": 0.6, "rollup_min_score": 0.6}})
    project = conf.parent.parent
    catalog_path = project / "data_catalog" / "catalog.yaml"
    catalog = yaml.safe_load(catalog_path.read_text())
    catalog["datasets"].update({
        "context": {"type": "model_dir", "path": "work/models/context.json"},
        "regions": {"type": "geojson", "path": str(tiny_sample / "regions.geojson")},
        "range_maps": {"type": "geopackage", "path": str(tiny_sample / "range_maps.gpkg")},
    })
    catalog_path.write_text(yaml.safe_dump(catalog))
    (project / "conf" / "context.yaml").write_text(yaml.safe_dump({"datasets": {
        "labels": "labels", "deployments": "deployments", "taxonomy": "taxonomy", "regions": "regions",
        "range_maps": "range_maps", "context": "context"}}))
    built = build_context_model(project / "conf" / "context.yaml")
    write_untrained_checkpoint(tiny_sample / "taxonomy.csv", project / "work" / "models" / "species.ckpt")

    summary = run_nightly(load_config(conf))
    assert summary.fuse is not None and summary.fuse.context_version == built.graph.version
    assert summary.fuse.detections > 0 and summary.fuse.media > 0
    store = open_store(project / "work" / "results.sqlite")
    try:
        def rows() -> list:
            with store.engine.connect() as conn:
                return conn.execute(sa.select(S.observations.c.source, S.observations.c.level,
                                              S.observations.c.taxon_id)).all()

        first = rows()
        sources = {r.source for r in first}
        assert "detector" in sources and sources - {"detector"}  # fused rows beside the detector's
        assert all(r.taxon_id for r in first if r.source != "detector")  # every fused animal is named at some rank
        assert {r.level for r in first if r.source != "detector"} == {"media", "event"}
        again = run_nightly(load_config(conf))  # resumed: nothing to detect or classify, fused rows rewritten
        assert sorted(rows(), key=repr) == sorted(first, key=repr) and again.fuse.detections == summary.fuse.detections

        # a new model (a retrain, an upgraded bundled one): the store now holds two models' scores; the
        # run classifies again and exports its own model's classifications
        write_untrained_checkpoint(tiny_sample / "taxonomy.csv", project / "work" / "models" / "species2.ckpt",
                                   seed=1)
        config = yaml.safe_load(conf.read_text())
        config["classify"]["model"] = "species2.ckpt"
        conf.write_text(yaml.safe_dump(config))
        upgraded = run_nightly(load_config(conf))
        assert upgraded.classify is not None and upgraded.classify.model_version != again.classify.model_version
        assert upgraded.classify.detections_done == summary.classify.detections_done > 0
        assert upgraded.classify.detections_already_done == 0
        exported = json.loads(upgraded.exports["megadetector"].read_text())
        assert exported["info"]["classifier"] == f"tiny-species/{upgraded.classify.model_version}"

        # the export command: which model, when several classified the dump, is the user's choice
        runner, out = CliRunner(), tmp_path / "md.json"
        command = ["export", "megadetector", "--out", str(out), "--config", str(conf)]
        result = runner.invoke(main, command)
        assert result.exit_code != 0 and "--classifier NAME/VERSION" in result.output
        result = runner.invoke(main, [*command, "--classifier", f"tiny-species/{again.classify.model_version}"])
        assert result.exit_code == 0, result.output
        assert json.loads(out.read_text())["info"]["classifier"] == f"tiny-species/{again.classify.model_version}"
        result = runner.invoke(main, [*command, "--classifier", "tiny-species/0000"])
        assert result.exit_code != 0 and "no detection of dump" in result.output
    finally:
        store.dispose()

