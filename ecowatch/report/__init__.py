"""The HTML report: one self-contained file per project, season or dump.

Typical use::

    from ecowatch.report import build_report
    summary = build_report(store, "work/reports/report-sample_dump.html", dump_ids=["sample_dump"],
                           taxonomy=read_taxonomy(path), provenance={"config": "conf/nightly.yaml"})

The report reads the results store (never writes it), runs :mod:`ecowatch.analysis` on it, and
writes one HTML file with inline CSS and inline images (no scripts, no network). Importing this
package has no side effects.
"""

from ecowatch.report.data import UNCLASSIFIED, ReportError
from ecowatch.report.render import ReportSummary, build_report
from ecowatch.report.sections import SpeciesRow

__all__ = ["UNCLASSIFIED", "ReportError", "ReportSummary", "SpeciesRow", "build_report"]
