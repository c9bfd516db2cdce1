"""Effort-corrected camera-trap analyses (the numbers camtrapR users publish).

Pure functions over pandas tables; the table contracts are in
:mod:`ecowatch.analysis.contracts`. Typical use::

    events = independent_events(records, min_gap=timedelta(minutes=30))
    effort = effort_days(deployments, outages)
    rai = relative_abundance(events, effort)

Importing this package has no side effects.
"""

from ecowatch.analysis.abundance import DetectionHistory, detection_history, naive_occupancy, relative_abundance
from ecowatch.analysis.accumulation import accumulation_exact, accumulation_random, incidence_matrix
from ecowatch.analysis.activity import (
    ActivityDensity,
    OverlapEstimate,
    activity_density,
    activity_overlap,
    bandwidth_kappa,
    overlap_coefficient,
    pairwise_overlap,
    time_of_day_radians,
)
from ecowatch.analysis.contracts import deployments_frame
from ecowatch.analysis.effort import OutageDetection, active_periods, camera_operation, detect_outages, effort_days
from ecowatch.analysis.events import independent_events

__all__ = [
    "ActivityDensity",
    "DetectionHistory",
    "OutageDetection",
    "OverlapEstimate",
    "accumulation_exact",
    "accumulation_random",
    "active_periods",
    "activity_density",
    "activity_overlap",
    "bandwidth_kappa",
    "camera_operation",
    "deployments_frame",
    "detect_outages",
    "detection_history",
    "effort_days",
    "incidence_matrix",
    "independent_events",
    "naive_occupancy",
    "overlap_coefficient",
    "pairwise_overlap",
    "relative_abundance",
    "time_of_day_radians",
]
