"""build_report end to end on small stores: empty stores, escaping, the official Camtrap DP example."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from ecowatch.analysis import detection_history, effort_days, independent_events, naive_occupancy, relative_abundance
from ecowatch.config import ReportConfig
from ecowatch.formats.camtrap_dp_import import import_camtrap_dp
from ecowatch.formats.camtrap_dp_read import read_camtrap_dp, records_from_camtrap_dp
from ecowatch.report import build_report
from ecowatch.store import open_store
from ecowatch.store import schema as S
from tests.report.builders import build_tiny_store, taxonomy
from tests.report.conftest import CAMTRAP_DP_EXAMPLE

XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
SECTIONS = ("summary", "map", "species", "activity", "effort", "accumulation", "gallery", "quality", "provenance")


def _section(html: str, name: str) -> str:
    match = re.search(rf'<section id="{name}">(.*?)</section>', html, re.S)
    assert match, f"section {name} missing"
    return match.group(1)


def test_empty_store_gives_notes_not_errors(tmp_path: Path) -> None:
    store = open_store(tmp_path / "empty.sqlite")
    summary = build_report(store, tmp_path / "out" / "report.html")
    html = summary.path.read_text()
    assert summary.dump_ids == () and summary.n_media == 0
    assert set(summary.empty_sections) == {"map", "species", "activity", "effort", "accumulation", "gallery"}
    for name in SECTIONS:
        _section(html, name)
    for name in summary.empty_sections:
        assert 'class="empty-note">Nothing to show' in _section(html, name), name
    assert "The results store holds no dump yet." in html
    store.dispose()


def test_store_with_media_but_no_observations(tmp_path: Path) -> None:
    """A store as ingest alone leaves it: media and flags, no detections or observations."""
    tiny = build_tiny_store(tmp_path)
    with tiny.store.transaction() as conn:
        conn.execute(S.observations.delete())
        conn.execute(S.detections.delete())
    summary = build_report(tiny.store, tmp_path / "report.html", dump_ids=["tiny_dump"], taxonomy=taxonomy())
    html = summary.path.read_text()
    assert summary.n_media == 12 and summary.n_events == 0
    assert "map" not in summary.empty_sections and "effort" not in summary.empty_sections
    assert {"species", "activity", "accumulation", "gallery"} <= set(summary.empty_sections)
    assert 'id="map-image"' in html and 'id="calendar-image"' in html and "zero_byte" in html
    tiny.store.dispose()


def test_data_strings_are_escaped(tmp_path: Path) -> None:
    tiny = build_tiny_store(tmp_path, location_name=XSS, deployment_id=f"D{XSS}", fox_name=XSS, flag_message=XSS)
    summary = build_report(tiny.store, tmp_path / "report.html", taxonomy=taxonomy(common_fox=XSS),
                           config=ReportConfig(title=f"Report {XSS}", min_activity_records=3, bootstrap_samples=0),
                           provenance={"note": XSS})  # fmt: skip
    html = summary.path.read_text()
    assert "<script" not in html.lower()  # the report has no script at all, injected or not
    assert XSS not in html
    for name in ("map", "species", "activity", "effort", "gallery", "quality", "provenance"):
        assert ESCAPED in _section(html, name), name  # every place that shows the strings escapes them
    assert f"<title>Report {ESCAPED}</title>" in html
    tiny.store.dispose()


@pytest.mark.skipif(not CAMTRAP_DP_EXAMPLE.exists(), reason=f"Camtrap DP example not found at {CAMTRAP_DP_EXAMPLE}")
def test_camtrap_dp_example_species_table_equals_the_analyses(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store.sqlite")
    imported = import_camtrap_dp(store, CAMTRAP_DP_EXAMPLE, dump_id="mica")
    config = ReportConfig(bootstrap_samples=0, min_activity_records=3)
    summary = build_report(store, tmp_path / "report.html", dump_ids=["mica"], taxonomy=imported.taxa, config=config)

    pkg = read_camtrap_dp(CAMTRAP_DP_EXAMPLE)  # the package itself, not the store
    events = independent_events(records_from_camtrap_dp(pkg), min_gap=dt.timedelta(minutes=30))
    rai = relative_abundance(events, effort_days(pkg.deployments), by="overall").set_index("taxon_id")
    occupancy = naive_occupancy(events, pkg.deployments).set_index("taxon_id")
    assert sorted(r.taxon_id for r in summary.species) == sorted(rai.index)
    for row in summary.species:
        history = detection_history(events, pkg.deployments, taxon_id=row.taxon_id, occasion_length_days=7)
        assert row.n_events == rai.at[row.taxon_id, "n_events"]
        assert row.rai == pytest.approx(rai.at[row.taxon_id, "rai"])
        assert row.effort_days == pytest.approx(rai.at[row.taxon_id, "effort_days"])
        assert row.naive_occupancy == pytest.approx(occupancy.at[row.taxon_id, "naive_occupancy"])
        assert row.occasions_detected == int((history.detections == 1).sum().sum())
        assert row.occasions_surveyed == int(history.detections.notna().sum().sum())
    mallard = summary.species[0]
    assert (mallard.taxon_id, mallard.common_name, mallard.n_events) == ("anas_platyrhynchos", "mallard", 12)
    assert summary.n_media == 423 and summary.n_deployments == 4
    assert "gallery" not in summary.empty_sections  # the package's 10 local images carry boxes
    html = summary.path.read_text()
    assert 'class="gallery-item" data-taxon="ardea"' in html
    assert "Western Europe species model Version 1" in _section(html, "provenance")
    assert "import_camtrap_dp" in _section(html, "provenance")
    store.dispose()


def test_same_store_same_bytes(tiny_store_pair: tuple[Path, Path]) -> None:
    first, second = tiny_store_pair
    assert first.read_bytes() == second.read_bytes()  # figures, crops and tables are reproducible


@pytest.fixture
def tiny_store_pair(tmp_path: Path) -> tuple[Path, Path]:
    tiny = build_tiny_store(tmp_path)
    config = ReportConfig(min_activity_records=3, bootstrap_samples=40)
    paths = tuple(build_report(tiny.store, tmp_path / f"r{i}.html", taxonomy=taxonomy(), config=config).path
                  for i in range(2))  # fmt: skip
    tiny.store.dispose()
    return paths  # type: ignore[return-value]
