"""The report as a browser shows it: Debian's headless Chromium renders the file, offline.

Checks the rendered DOM (the map, the plots, the tables and the crops are there and every image
decodes), that injected markup stays text, and that a full-page screenshot is a real picture.
Skipped when no Chromium is installed (``apt-get install chromium``; .ci/run installs it).
"""

from __future__ import annotations

import importlib.util
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from PIL import Image
from shapely.geometry import box

from ecowatch.config import ReportConfig
from ecowatch.report import build_report
from tests.report.builders import build_tiny_store, taxonomy

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("report_screenshot", REPO / "scripts" / "report_screenshot.py")
assert _spec and _spec.loader
shot = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(shot)

CHROMIUM = shot.find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (apt-get install chromium)")

XSS = "<script>alert(1)</script>"
# Written into the page after load: how many images decoded (naturalWidth > 0) and how many did not.
PROBE = ("<script>addEventListener('load',function(){var ok=0,bad=0;for(const i of document.images)"
         "{if(i.complete&&i.naturalWidth>0)ok++;else bad++;}"
         "document.body.setAttribute('data-images-ok',ok);document.body.setAttribute('data-images-bad',bad);});"
         "</script>")  # fmt: skip


class _Elements(HTMLParser):
    """Every start tag of a document with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def by_id(self, element_id: str) -> list[tuple[str, dict[str, str]]]:
        return [t for t in self.tags if t[1].get("id") == element_id]

    def by_class(self, name: str) -> list[tuple[str, dict[str, str]]]:
        return [t for t in self.tags if name in t[1].get("class", "").split()]


def _dump_dom(html: Path) -> str:
    result = subprocess.run([CHROMIUM, *shot.FLAGS, "--window-size=1280,1000", "--virtual-time-budget=5000",
                             "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120,
                            check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("chromium")
    tiny = build_tiny_store(tmp, location_name=XSS, fox_name=XSS)
    regions = tmp / "regions.geojson"
    gpd.GeoDataFrame({"name": ["West", XSS]}, geometry=[box(3.9, 50.9, 4.1, 51.05), box(4.1, 51.05, 4.3, 51.2)],
                     crs="EPSG:4326").to_file(regions, driver="GeoJSON")  # fmt: skip
    summary = build_report(tiny.store, tmp / "report.html", taxonomy=taxonomy(common_fox=XSS), regions_path=regions,
                           config=ReportConfig(min_activity_records=3, bootstrap_samples=40, outage_gap_days=4))
    tiny.store.dispose()
    assert summary.empty_sections == ()
    return summary.path


def test_rendered_dom_has_every_part_and_no_script(report: Path) -> None:
    dom = _dump_dom(report)
    elements = _Elements()
    elements.feed(dom)
    for element_id in ("map-image", "calendar-image", "accumulation-image"):
        ((tag, attrs),) = elements.by_id(element_id)
        assert tag == "img" and attrs["src"].startswith("data:image/png;base64,iVBOR"), element_id
    activity = elements.by_class("activity-plot")
    assert len(activity) == 2 and all(a["src"].startswith("data:image/png;base64,") for _, a in activity)
    for table in ("species-table", "overlap-table", "deployments-table", "effort-table", "outage-table",
                  "flags-table", "clock-table", "uncertain-table", "runs-table", "detectors-table", "settings-table"):
        assert [t for t, _ in elements.by_id(table)] == ["table"], table
    assert len([t for t in elements.tags if t[0] == "tr" and "taxon" in t[1].get("class", "")]) == 3
    crops = elements.by_class("crop")
    assert len(crops) == 3 and all(a["src"].startswith("data:image/jpeg;base64,/9j/") for _, a in crops)
    assert not [t for t in elements.tags if t[0] in ("script", "iframe", "object", "embed")]
    assert not [t for t in elements.tags if t[0] == "link" or "src" in t[1] and not t[1]["src"].startswith("data:")]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and XSS not in dom


def test_every_image_decodes_in_the_browser(report: Path, tmp_path: Path) -> None:
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", PROBE + "</body>", 1))
    dom = _dump_dom(probe)
    n_images = report.read_text().count("<img ")
    assert n_images == 8  # map, 2 activity curves, calendar, accumulation curve, 3 crops
    assert 'data-images-bad="0"' in dom and f'data-images-ok="{n_images}"' in dom


def test_full_page_screenshot(report: Path, tmp_path: Path) -> None:
    png = shot.screenshot(report, tmp_path / "report.png", width=1280)
    with Image.open(png) as image:
        width, height = image.size
        pixels = np.asarray(image.convert("RGB"))
    assert width == 1280 and height > 2000  # the whole page, not one window
    packed = (pixels[..., 0].astype(np.uint32) << 16) | (pixels[..., 1].astype(np.uint32) << 8) | pixels[..., 2]
    assert np.unique(packed).size > 200  # figures and text, not a blank page
    assert (pixels.std(axis=(0, 1)) > 10).all()
