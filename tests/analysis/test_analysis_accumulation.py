"""Species accumulation: exact rarefaction against brute-force enumeration, seeded permutations."""

from __future__ import annotations

import datetime as dt
import itertools
import statistics

import pandas as pd
import pytest

from ecowatch.analysis import accumulation_exact, accumulation_random, incidence_matrix, independent_events
from ecowatch.errors import InputDataError

# 5 units x 3 taxa: a in 3 units, b in 2 (one shared with a), c in 1, one empty unit
INCIDENCE = pd.DataFrame(
    {
        "a": [True, True, True, False, False],
        "b": [False, True, False, True, False],
        "c": [False, False, False, False, True],
    },
    index=pd.Index(["u1", "u2", "u3", "u4", "u5"], name="deployment_id"),
)


def _enumerated(incidence: pd.DataFrame) -> list[tuple[float, float]]:
    """Mean and population sd of richness over every subset of h units (the exact rarefaction)."""
    rows = incidence.to_numpy()
    out = []
    for h in range(1, len(rows) + 1):
        richness = [int(rows[list(subset)].any(axis=0).sum()) for subset in itertools.combinations(range(len(rows)), h)]
        out.append((statistics.fmean(richness), statistics.pstdev(richness)))
    return out


def test_exact_rarefaction_matches_enumeration():
    exact = accumulation_exact(INCIDENCE)
    expected = _enumerated(INCIDENCE)
    assert exact["n_units"].tolist() == [1, 2, 3, 4, 5]
    assert exact["mean"].tolist() == pytest.approx([m for m, _ in expected], abs=1e-12)
    assert exact["sd"].tolist() == pytest.approx([s for _, s in expected], abs=1e-9)
    # one unit: a in 3/5, b in 2/5, c in 1/5 -> 6/5 species expected
    assert exact["mean"].iloc[0] == pytest.approx(1.2)
    assert exact["mean"].iloc[-1] == 3 and exact["sd"].iloc[-1] == 0


def test_random_accumulation_is_seeded_and_converges_to_exact():
    random_a = accumulation_random(INCIDENCE, n_permutations=3000, seed=4)
    random_b = accumulation_random(INCIDENCE, n_permutations=3000, seed=4)
    pd.testing.assert_frame_equal(random_a, random_b)
    exact = accumulation_exact(INCIDENCE)
    assert random_a["mean"].tolist() == pytest.approx(exact["mean"].tolist(), abs=0.05)
    assert random_a["sd"].tolist() == pytest.approx(exact["sd"].tolist(), abs=0.05)
    assert random_a["mean"].iloc[-1] == 3.0
    other_seed = accumulation_random(INCIDENCE, n_permutations=3000, seed=5)
    assert other_seed["mean"].tolist() != random_a["mean"].tolist()


def test_incidence_by_deployment_and_by_camera_day(deployments_table, records_table, outages_table):
    deps = deployments_table(
        [
            ("d1", "L1", "2024-05-01 00:00", "2024-05-04 00:00"),
            ("d2", "L2", "2024-05-01 12:00", "2024-05-02 12:00"),
            ("d3", "L3", "2024-05-01 00:00", "2024-05-02 00:00"),  # nothing seen: still a unit
        ]
    )
    outages = outages_table([("d1", "2024-05-02 00:00", "2024-05-03 00:00")])
    records = records_table(
        [
            ("d1", "2024-05-01 10:00", "fox", 1),
            ("d1", "2024-05-02 10:00", "deer", 1),  # during the outage day: no unit
            ("d1", "2024-05-03 10:00", "deer", 1),
            ("d2", "2024-05-02 08:00", "fox", 1),
        ]
    )
    events = independent_events(records, min_gap=dt.timedelta(minutes=30))
    by_deployment = incidence_matrix(events, deps)
    assert by_deployment.index.tolist() == ["d1", "d2", "d3"]
    assert by_deployment.loc["d1"].tolist() == [True, True]  # columns deer, fox
    assert by_deployment.loc["d3"].tolist() == [False, False]
    by_day = incidence_matrix(events, deps, outages, unit="day")
    units = [(d, t.strftime("%d")) for d, t in by_day.index]
    assert units == [("d1", "01"), ("d1", "03"), ("d2", "01"), ("d2", "02"), ("d3", "01")]
    assert int(by_day.to_numpy().sum()) == 3  # the outage-day deer is left out
    assert accumulation_exact(by_day)["mean"].iloc[-1] == 2


def test_accumulation_errors():
    with pytest.raises(InputDataError, match="n_permutations"):
        accumulation_random(INCIDENCE, n_permutations=1)
    with pytest.raises(InputDataError, match="DataFrame"):
        accumulation_exact(INCIDENCE.to_numpy())
    with pytest.raises(InputDataError, match="missing"):
        accumulation_exact(INCIDENCE.astype(float).where(INCIDENCE, None))
