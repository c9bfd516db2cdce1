"""Section builders on the tiny hand-made store: values equal ecowatch.analysis outputs, notes when empty."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ecowatch.analysis import effort_days, independent_events, naive_occupancy, relative_abundance
from ecowatch.config import ReportConfig
from ecowatch.report import UNCLASSIFIED
from ecowatch.report.data import animal_records, image_times, load_report_data
from ecowatch.report.gallery import gallery_section
from ecowatch.report.quality import provenance_section, quality_section
from ecowatch.report.sections import (
    accumulation_section,
    activity_section,
    analyse,
    effort_section,
    map_section,
    species_section,
    summary_section,
    taxon_name,
)
from tests.report.builders import DUMP, TinyStore, build_tiny_store, taxonomy


def _analysis(tiny: TinyStore, config: ReportConfig):
    data = load_report_data(tiny.store, [DUMP])
    return data, analyse(data.deployments, animal_records(data), image_times(data), config)


def test_species_table_equals_the_analyses(tiny: TinyStore) -> None:
    config = ReportConfig(event_gap_min=60)
    data, analysis = _analysis(tiny, config)
    section = species_section(analysis, data, taxonomy(), config)
    records = animal_records(data).records
    events = independent_events(records, min_gap=dt.timedelta(minutes=60))
    rai = relative_abundance(events, effort_days(data.deployments), by="overall").set_index("taxon_id")
    occupancy = naive_occupancy(events, data.deployments).set_index("taxon_id")
    rows = {r.taxon_id: r for r in section.rows}
    assert set(rows) == {"vulpes_vulpes", "meles_meles", "vulpes", UNCLASSIFIED}
    for label, row in rows.items():
        assert row.n_events == rai.at[label, "n_events"]
        assert row.rai == pytest.approx(rai.at[label, "rai"])
        assert row.naive_occupancy == pytest.approx(occupancy.at[label, "naive_occupancy"])
    fox = rows["vulpes_vulpes"]
    assert (fox.n_records, fox.n_events, fox.common_name, fox.scientific_name, fox.rank) == (
        4, 3, "red fox", "Vulpes vulpes", "species")  # fmt: skip
    assert fox.rai == pytest.approx(3 / 20 * 100)  # two 10-day deployments
    assert (fox.n_sites_detected, fox.n_sites) == (2, 2)
    # 7-day occasions, 2 per location; every fox event falls in the first week of its location
    assert (fox.occasions_detected, fox.occasions_surveyed) == (2, 4)
    assert rows[UNCLASSIFIED].unclassified and section.rows[-1].taxon_id == UNCLASSIFIED  # listed last
    assert [r.taxon_id for r in section.rows[:2]] == ["meles_meles", "vulpes_vulpes"]  # most events first, then id


def test_summary(tiny: TinyStore) -> None:
    config = ReportConfig()
    data, analysis = _analysis(tiny, config)
    summary = summary_section(data, analysis, taxonomy(), config)
    assert (summary.n_deployments, summary.n_locations, summary.n_media, summary.n_media_failed) == (2, 2, 12, 1)
    assert summary.trap_nights == pytest.approx(20.0)
    assert (summary.n_taxa, summary.n_species) == (3, 2)  # vulpes is a genus
    assert summary.dumps[0].dump_id == DUMP and summary.dumps[0].n_media == 12
    assert summary.levels == "media-level observations"


def test_activity_curves_and_overlap(tiny: TinyStore) -> None:
    config = ReportConfig(min_activity_records=3, bootstrap_samples=60)
    data, analysis = _analysis(tiny, config)
    section = activity_section(analysis, taxonomy(), config)
    assert [p.taxon_id for p in section.plots] == ["meles_meles", "vulpes_vulpes"]
    assert all(p.image.startswith("iVBOR") for p in section.plots)  # base64 of the PNG signature
    assert "foxes (Vulpes) (1)" in section.too_few
    (pair,) = section.overlap
    assert {pair.name_a, pair.name_b} == {"red fox (Vulpes vulpes)", "European badger (Meles meles)"}
    assert 0 <= pair.estimate <= 1 and 0 <= pair.ci_lower <= pair.ci_upper <= 1
    assert "60 smoothed-bootstrap samples" in section.overlap_note

    quiet = activity_section(analysis, taxonomy(), ReportConfig(min_activity_records=50))
    assert not quiet.plots and not quiet.overlap
    assert quiet.note.startswith("Nothing to show") and quiet.overlap_note.startswith("Nothing to show")


def test_effort_outages_shown_and_optionally_subtracted(tiny: TinyStore) -> None:
    shown = ReportConfig(outage_gap_days=4)
    _, analysis = _analysis(tiny, shown)
    section = effort_section(analysis, shown)
    assert section.image is not None
    gaps = {(o.deployment_id, round(o.days, 2)) for o in section.outages}
    assert gaps == {("D1", 5.0), ("D2", round((240 - 74.5) / 24, 2))}
    assert [r.effort_days for r in section.rows] == pytest.approx([10.0, 10.0])  # shown, not subtracted
    _, subtracted = _analysis(tiny, ReportConfig(outage_gap_days=4, subtract_outages=True))
    assert subtracted.effort["effort_days"].tolist() == pytest.approx([5.0, 10 - (240 - 74.5) / 24])


def test_accumulation(tiny: TinyStore) -> None:
    config = ReportConfig()
    _, analysis = _analysis(tiny, config)
    section = accumulation_section(analysis, config)
    assert section.image is not None and (section.n_units, section.n_taxa) == (2, 3)
    by_day = accumulation_section(analysis, ReportConfig(accumulation_unit="day"))
    assert by_day.unit == "camera-day" and by_day.n_units == 22  # 11 calendar days touched per deployment


def test_gallery_crops_local_images_and_notes_remote_ones(tiny: TinyStore, tmp_path: Path) -> None:
    data = load_report_data(tiny.store, [DUMP])
    labels = ["vulpes_vulpes", "meles_meles", UNCLASSIFIED, "vulpes"]
    section = gallery_section(data, labels, taxonomy(), thumb_px=64)
    assert [i.taxon_id for i in section.items] == ["vulpes_vulpes", "meles_meles", UNCLASSIFIED]
    fox = section.items[0]
    assert (fox.relpath, fox.probability) == ("a/IMG_0001.JPG", 0.95)  # the most probable observation
    assert fox.image.startswith("/9j/")  # base64 of the JPEG signature
    assert section.no_box == ("foxes (Vulpes)",)

    remote = build_tiny_store(tmp_path / "remote", write_images=False)
    section = gallery_section(load_report_data(remote.store, [DUMP]), labels, taxonomy(), thumb_px=64)
    assert not section.items and len(section.not_local) == 3 and section.note.startswith("Nothing to show")
    remote.store.dispose()


def test_quality_and_provenance(tiny: TinyStore) -> None:
    config = ReportConfig(uncertain_probability=0.5)
    data, analysis = _analysis(tiny, config)
    section = quality_section(data, analysis, taxonomy(), config)
    assert [(f.flag, f.n_media) for f in section.flags] == [("zero_byte", 1)]
    counts = {c.label: c.count for c in section.uncertain_counts}
    assert counts == {"observation type unknown or unclassified": 1, f"animal without a taxon ({UNCLASSIFIED})": 1,
                      "animal identified above species rank (genus, family, ...)": 1,
                      "animal with a probability below 0.5": 1}  # fmt: skip
    assert section.uncertain[0].where == "b/IMG_0005.JPG"  # no probability sorts first
    assert [(c.deployment_id, c.issue, c.n_images) for c in section.clock] == [("D2", "after_end", 1)]

    provenance = provenance_section(data, config, {"detect": {"conf_threshold": 0.2}, "config_file": "x.yaml"})
    assert [(r.kind, r.status, r.mlflow_run_id) for r in provenance.runs] == [("nightly", "finished",
                                                                               "mlflow-run-123")]
    assert provenance.mlflow_run_ids == ("mlflow-run-123",)
    assert [(m.name, m.version, m.n_rows) for m in provenance.detectors] == [("tinydet", "v1", 5)]
    settings = dict(provenance.settings)
    assert settings["detect.conf_threshold"] == "0.2" and settings["report.uncertain_probability"] == "0.5"


def test_map_with_regions(tiny: TinyStore, tmp_path: Path) -> None:
    import geopandas as gpd
    from shapely.geometry import box

    regions = tmp_path / "regions.geojson"
    gpd.GeoDataFrame({"name": ["West", "East"]}, geometry=[box(3.9, 50.9, 4.1, 51.05), box(4.1, 51.05, 4.3, 51.2)],
                     crs="EPSG:4326").to_file(regions, driver="GeoJSON")  # fmt: skip
    _, analysis = _analysis(tiny, ReportConfig())
    section = map_section(analysis, regions)
    assert section.image is not None and section.coloured_by == "region"
    assert {r.deployment_id: r.region for r in section.rows} == {"D1": "West", "D2": "East"}
    plain = map_section(analysis, None)
    assert plain.coloured_by == "independent events"
    assert {r.deployment_id: r.n_events for r in plain.rows} == {"D1": 4, "D2": 4}


def test_display_names() -> None:
    assert taxon_name("vulpes_vulpes", taxonomy()).display == "red fox (Vulpes vulpes)"
    assert taxon_name("lynx_lynx", taxonomy()).display == "lynx_lynx"  # not in the taxonomy: the id
    assert taxon_name("vulpes_vulpes", None).display == "vulpes_vulpes"
    assert taxon_name(UNCLASSIFIED, taxonomy()).display == UNCLASSIFIED
