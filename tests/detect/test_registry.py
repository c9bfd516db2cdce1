"""The detector registry: every entry is complete and valid, and resolving it offline says what to do."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

from ecowatch.detect.registry import (
    DETECTION_CATEGORIES,
    MEGADETECTOR_CLASS_MAP,
    REGISTRY,
    get_detector,
    list_detectors,
)
from ecowatch.detect.weights import cache_path, parse_checksum, resolve_detector
from ecowatch.errors import ModelNotFoundError

ENTRIES = sorted((e for e in REGISTRY.values() if not e.bundled), key=lambda e: e.name)
BUNDLED = sorted((e for e in REGISTRY.values() if e.bundled), key=lambda e: e.name)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_entry_fields_are_valid(entry) -> None:
    assert re.fullmatch(r"mdv(5[ab]|1000-[a-z]+|6-[a-z0-9-]+)", entry.name), entry.name
    url = urlparse(entry.url)
    assert url.scheme == "https" and url.netloc in {"github.com", "zenodo.org"}, entry.url
    assert Path(url.path).name == entry.filename and entry.filename.endswith(".pt")
    if entry.checksum is not None:
        parse_checksum(entry.checksum)  # raises on a malformed checksum
    assert entry.licence and entry.architecture and entry.family.startswith("megadetector-")
    assert entry.imgsz in {640, 960, 1280}
    assert dict(entry.class_map) == dict(MEGADETECTOR_CLASS_MAP) == {0: "animal", 1: "person", 2: "vehicle"}
    assert set(entry.class_map.values()) <= DETECTION_CATEGORIES
    assert entry.resize_mode == ("stretch" if entry.architecture.startswith("rtdetr") else "letterbox")
    assert entry.sources and all(s.startswith("https://") for s in entry.sources)
    assert (entry.refusal is None) == entry.loadable


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.loadable], ids=[e.name for e in ENTRIES if e.loadable])
def test_offline_resolution_without_cached_file_names_path_and_url(entry, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        resolve_detector(entry.name, cache_dir=tmp_path, offline=True)
    message = str(info.value)
    assert str(cache_path(entry, tmp_path)) in message
    assert str(tmp_path / "detectors" / entry.filename) in message
    assert entry.url in message
    assert "allow_download" in message
    assert not (tmp_path / "detectors").exists()  # nothing was written


@pytest.mark.parametrize("entry", [e for e in ENTRIES if not e.loadable],
                         ids=[e.name for e in ENTRIES if not e.loadable])
def test_unloadable_entries_are_refused_with_reason_and_alternative(entry, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        resolve_detector(entry.name, cache_dir=tmp_path, offline=False)  # refused before any download
    message = str(info.value)
    assert entry.name in message and "ultralytics cannot" in message
    assert "mdv1000-larch" in message and "pip install megadetector" in message


def test_megadetector_v5_and_yolov5_mdv1000_are_listed_but_refused() -> None:
    assert {"mdv5a", "mdv5b", "mdv1000-redwood", "mdv1000-spruce", "mdv1000-cedar"} <= set(list_detectors())
    assert set(list_detectors(loadable_only=True)) == {
        "ecowatch-synth", "mdv1000-larch", "mdv1000-sorrel", "mdv6-yolov9-c", "mdv6-yolov9-e", "mdv6-yolov10-c", "mdv6-yolov10-e",
        "mdv6-rtdetr-c",
    }
    assert "models.yolo" in get_detector("mdv5a").refusal


def test_names_are_case_insensitive_and_accept_md_prefix() -> None:
    assert get_detector("MDV1000-Larch").name == "mdv1000-larch"
    assert get_detector("md1000-sorrel").name == "mdv1000-sorrel"
    assert get_detector("MDV6-yolov10-e").url.endswith("MDV6-yolov10-e-1280.pt?download=1")


def test_unknown_name_lists_the_closest_entries() -> None:
    with pytest.raises(ModelNotFoundError, match=r"Did you mean mdv1000-larch"):
        get_detector("mdv1000-lerch")


@pytest.mark.parametrize("entry", BUNDLED, ids=[e.name for e in BUNDLED])
def test_bundled_entries_ship_their_weights_and_name_the_script_that_makes_them(entry, tmp_path: Path) -> None:
    assert entry.loadable and entry.refusal is None and entry.url.startswith("scripts/")
    assert (Path(__file__).resolve().parents[2] / entry.url).is_file()
    resolved = resolve_detector(entry.name, cache_dir=tmp_path, offline=True)
    assert resolved.source == "bundled" and resolved.path.is_file() and resolved.imgsz == entry.imgsz
    assert not any(tmp_path.iterdir())  # nothing copied into the cache
    if entry.checksum is not None:
        algorithm, value = parse_checksum(entry.checksum)
        assert resolved.sha256 == value and algorithm == "sha256"
