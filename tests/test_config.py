"""Run configuration and data catalog: validated on load, errors name the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ecowatch.catalog import load_catalog
from ecowatch.config import load_config
from ecowatch.errors import CatalogError, ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_repository_conf_and_catalog_load() -> None:
    loaded = load_config(REPO / "conf" / "nightly.yaml")
    assert loaded.config.ingest.sequence_gap_s == 10
    assert loaded.catalog.get("results_store").path == REPO / "work" / "results.sqlite"
    for name in ("sample_dump", "sample_deployments", "sample_taxonomy", "sample_labels", "results_store",
                 "mlflow_tracking", "models", "exports", "reports"):
        assert name in loaded.catalog


def test_unknown_key_is_named(project_factory, tmp_path: Path) -> None:
    conf = project_factory(dump=tmp_path, conf={"ingest": {"sequence_gap": 5}})
    with pytest.raises(ConfigError, match=r"ingest\.sequence_gap: unknown key"):
        load_config(conf)


def test_wrong_type_is_named(project_factory, tmp_path: Path) -> None:
    conf = project_factory(dump=tmp_path, conf={"ingest": {"workers": "many"}})
    with pytest.raises(ConfigError, match=r"ingest\.workers: .*integer.*'many'"):
        load_config(conf)


def test_out_of_range_and_bad_extension(project_factory, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ingest\.sequence_gap_s"):
        load_config(project_factory(dump=tmp_path, conf={"ingest": {"sequence_gap_s": -1}}))
    with pytest.raises(ConfigError, match="must start with '.'"):
        load_config(project_factory(dump=tmp_path, conf={"ingest": {"image_extensions": ["jpg"]}}))


def test_dataset_name_must_be_in_catalog(project_factory, tmp_path: Path) -> None:
    conf = project_factory(dump=tmp_path, conf={"datasets": {"dump": "nope", "store": "store"}})
    with pytest.raises(ConfigError, match=r"datasets\.dump: 'nope' is not in the catalog"):
        load_config(conf)


def test_overrides_are_validated(project_factory, tmp_path: Path) -> None:
    conf = project_factory(dump=tmp_path)
    assert load_config(conf, overrides={"ingest.workers": 0}).config.ingest.workers == 0
    with pytest.raises(ConfigError, match=r"ingest\.workers"):
        load_config(conf, overrides={"ingest.workers": -3})


def test_catalog_errors(tmp_path: Path) -> None:
    cat = tmp_path / "data_catalog" / "catalog.yaml"
    cat.parent.mkdir()
    cat.write_text(yaml.safe_dump({"datasets": {"x": {"type": "spreadsheet", "path": "a"}}}))
    with pytest.raises(CatalogError, match=r"datasets\.x\.type"):
        load_catalog(cat)
    cat.write_text(yaml.safe_dump({"datasets": {"x": {"type": "deployments_csv", "path": "missing.csv"}}}))
    with pytest.raises(CatalogError, match=r"missing\.csv does not exist"):
        load_catalog(cat)
    cat.write_text(yaml.safe_dump({"datasets": {"x": {"type": "directory", "path": "a", "colour": "red"}}}))
    with pytest.raises(CatalogError, match=r"datasets\.x\.colour: unknown key"):
        load_catalog(cat)
    cat.write_text(yaml.safe_dump({"datasets": {"x": {"type": "directory"}}}))
    with pytest.raises(CatalogError, match="exactly one of 'path' or 'url'"):
        load_catalog(cat)
    cat.write_text("datasets: [unclosed")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(cat)


def test_missing_generated_input_says_how_to_create(tmp_path: Path) -> None:
    cat = tmp_path / "data_catalog" / "catalog.yaml"
    cat.parent.mkdir()
    cat.write_text(yaml.safe_dump({"datasets": {"d": {"type": "sdcard_dump", "path": "work/d",
                                                      "create_with": "ecowatch generate-dump work"}}}))
    catalog = load_catalog(cat)
    assert catalog.get("d").path == tmp_path / "work" / "d"
    with pytest.raises(CatalogError, match="Create it with `ecowatch generate-dump work`"):
        catalog.input_path("d")
    with pytest.raises(CatalogError, match="no dataset named 'e'. Known datasets: d"):
        catalog.get("e")
