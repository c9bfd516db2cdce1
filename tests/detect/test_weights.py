"""Resolving detector specs: registry download over file:// with checksums, local paths, MLflow registry URIs."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from ecowatch.detect.registry import REGISTRY
from ecowatch.detect.weights import VERSION_HEX_DIGITS, cache_path, resolve_detector
from ecowatch.errors import ModelNotFoundError


def _entry_for(source: Path, *, checksum: str | None):
    """A registry entry (a copy of a real one) whose URL is a file:// URL of a local file."""
    return replace(REGISTRY["mdv1000-larch"], name="test-detector", url=source.as_uri(), filename="test-detector.pt",
                   checksum=checksum)


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_download_verifies_checksum_and_caches(tmp_path: Path, algorithm: str) -> None:
    source = tmp_path / "published" / "weights.pt"
    source.parent.mkdir()
    source.write_bytes(b"pretend weights " * 1000)
    digest = hashlib.new(algorithm, source.read_bytes()).hexdigest()
    entry = _entry_for(source, checksum=f"{algorithm}:{digest}")
    registry = {entry.name: entry}
    cache = tmp_path / "cache"

    resolved = resolve_detector("test-detector", cache_dir=cache, offline=False, registry=registry)

    target = cache_path(entry, cache)
    assert resolved.path == target and target.read_bytes() == source.read_bytes()
    sha256 = hashlib.sha256(source.read_bytes()).hexdigest()
    assert resolved.sha256 == sha256 and resolved.version == sha256[:VERSION_HEX_DIGITS]
    assert (resolved.name, resolved.source, resolved.imgsz) == ("test-detector", "registry", 640)
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temporary file left behind
    # Once cached, offline resolution finds it (and re-verifies it) without the source.
    source.unlink()
    assert resolve_detector("test-detector", cache_dir=cache, offline=True, registry=registry) == resolved


def test_download_with_wrong_checksum_leaves_nothing(tmp_path: Path) -> None:
    source = tmp_path / "weights.pt"
    source.write_bytes(b"tampered")
    entry = _entry_for(source, checksum="md5:" + "0" * 32)
    with pytest.raises(ModelNotFoundError, match="published checksum"):
        resolve_detector("test-detector", cache_dir=tmp_path / "cache", offline=False, registry={entry.name: entry})
    assert list((tmp_path / "cache" / "detectors").iterdir()) == []


def test_cached_file_with_wrong_checksum_is_refused(tmp_path: Path) -> None:
    entry = _entry_for(tmp_path / "unused.pt", checksum="md5:" + "0" * 32)
    target = cache_path(entry, tmp_path)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"something else")
    with pytest.raises(ModelNotFoundError, match=r"delete it and fetch it again"):
        resolve_detector("test-detector", cache_dir=tmp_path, offline=True, registry={entry.name: entry})


def test_failed_download_names_url_and_target(tmp_path: Path) -> None:
    entry = _entry_for(tmp_path / "missing.pt", checksum=None)
    with pytest.raises(ModelNotFoundError, match="Download it by hand and put it at"):
        resolve_detector("test-detector", cache_dir=tmp_path / "cache", offline=False, registry={entry.name: entry})


def test_local_path_resolves_by_content_hash(tmp_path: Path) -> None:
    weights = tmp_path / "my-detector.pt"
    weights.write_bytes(b"local weights")
    resolved = resolve_detector(str(weights), cache_dir=tmp_path / "cache", offline=True)
    assert (resolved.path, resolved.name, resolved.source) == (weights, "my-detector", "path")
    assert resolved.version == hashlib.sha256(b"local weights").hexdigest()[:VERSION_HEX_DIGITS]
    assert resolved.class_map is None and resolved.imgsz is None  # read from the checkpoint on load
    # relative to the cache folder (the catalog's models folder)
    assert resolve_detector("my-detector.pt", cache_dir=tmp_path, offline=True).path == weights


def test_missing_local_path_and_unknown_name_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="do not exist"):
        resolve_detector(str(tmp_path / "nope.pt"), cache_dir=tmp_path, offline=True)
    with pytest.raises(ModelNotFoundError, match="unknown detector 'megadetektor'"):
        resolve_detector("megadetektor", cache_dir=tmp_path, offline=True)


def test_mlflow_uri_needs_a_tracking_uri(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="tracking_uri"):
        resolve_detector("models:/megadetector@champion", cache_dir=tmp_path, offline=True)


def test_mlflow_registry_uri_fetches_registered_artifact(tmp_path: Path, tiny_weights: Path) -> None:
    from mlflow.tracking import MlflowClient

    from ecowatch.tracking import fetch_model_artifact, tracking_target

    target = tracking_target(str(tmp_path / "mlflow" / "mlflow.db"))
    client = MlflowClient(tracking_uri=target.tracking_uri, registry_uri=target.tracking_uri)
    experiment = client.create_experiment("detectors", artifact_location=target.artifact_root)
    run = client.create_run(experiment)
    client.log_artifact(run.info.run_id, str(tiny_weights), "detector")
    client.set_terminated(run.info.run_id)
    client.create_registered_model("camtrap-detector")
    version = client.create_model_version(
        "camtrap-detector", source=f"{run.info.artifact_uri}/detector", run_id=run.info.run_id
    ).version
    version = str(version)
    client.set_registered_model_alias("camtrap-detector", "champion", version)
    cache = tmp_path / "models"

    by_alias = resolve_detector("models:/camtrap-detector@champion", cache_dir=cache, offline=True,
                                tracking_uri=target.tracking_uri)
    by_version = resolve_detector(f"models:/camtrap-detector/{version}", cache_dir=cache, offline=True,
                                  tracking_uri=target.tracking_uri)

    assert by_alias.source == "mlflow" and by_alias.name == f"camtrap-detector/{version}"
    assert by_alias.path.read_bytes() == tiny_weights.read_bytes()
    assert by_alias.path.is_relative_to(cache / "mlflow" / "camtrap-detector" / version)
    assert replace(by_version, origin=by_alias.origin) == by_alias  # the same version folder, fetched once
    assert by_alias.version == hashlib.sha256(tiny_weights.read_bytes()).hexdigest()[:VERSION_HEX_DIGITS]
    one_file = fetch_model_artifact("models:/camtrap-detector@champion/tiny.pt", cache / "mlflow",
                                    tracking_uri=target.tracking_uri)
    assert one_file.local_path == by_alias.path and one_file.version == version
    with pytest.raises(ModelNotFoundError, match="camtrap-detector@challenger"):
        resolve_detector("models:/camtrap-detector@challenger", cache_dir=cache, offline=True,
                         tracking_uri=target.tracking_uri)


def test_malformed_models_uri_is_a_clear_error(tmp_path: Path) -> None:
    from ecowatch.tracking import TrackingError, parse_models_uri

    assert parse_models_uri("models:/md/3/weights/best.pt") == ("md", None, "3", "weights/best.pt")
    assert parse_models_uri("models:/md@champion") == ("md", "champion", None, "")
    with pytest.raises(TrackingError, match="models:/<name>@<alias>"):
        parse_models_uri("models:/md")
