"""The species threshold's safeguard: precision with confidence, over sites when crops cluster by site."""

from __future__ import annotations

import numpy as np
import pytest

from ecowatch.context.fusion import FusedLabel
from ecowatch.context.weights import cluster_bootstrap_lower_bound, fit_species_threshold, wilson_lower_bound
from ecowatch.errors import InputDataError


def test_the_bound_over_sites_is_wider_when_the_errors_sit_at_one_site() -> None:
    trials = np.full(10, 100.0)
    spread = np.full(10, 95.0)  # every site 95 % right
    clustered = np.array([100.0] * 9 + [50.0])  # nine sites all right, one half wrong: also 95 % pooled
    wilson = wilson_lower_bound(950, 1000)
    assert 0.93 < wilson < 0.95
    assert cluster_bootstrap_lower_bound(spread, trials) == pytest.approx(0.95)  # no spread between sites
    clustered_bound = cluster_bootstrap_lower_bound(clustered, trials)
    assert clustered_bound < wilson - 0.02  # crops of one site are not independent evidence
    assert clustered_bound == cluster_bootstrap_lower_bound(clustered, trials)  # seeded
    assert cluster_bootstrap_lower_bound(np.zeros(0), np.zeros(0)) == 0.0


def _decide_at(scores: np.ndarray, predicted: list[str]):
    """Species label from ``threshold`` up, else the genus (a stand-in for the fused decision)."""
    def decide(threshold: float) -> list[FusedLabel]:
        return [FusedLabel(p, "species", float(s), "classifier") if s >= threshold else
                FusedLabel("genus_x", "genus", float(s), "rollup_to_genus")
                for s, p in zip(scores, predicted, strict=True)]
    return decide


def test_species_threshold_over_sites_is_stricter_when_one_site_is_confidently_wrong() -> None:
    rng = np.random.default_rng(0)
    sites = [f"site{i}" for i in range(20) for _ in range(60)]
    scores = rng.uniform(0.5, 1.0, len(sites))
    truths = ["a"] * len(sites)
    # one site's animals are a look-alike the classifier confuses, confidently, up to score 0.97
    predicted = ["b" if site == "site7" and score < 0.97 else "a" for site, score in zip(sites, scores, strict=True)]
    decide = _decide_at(scores, predicted)
    by_crops = fit_species_threshold(decide, truths, target_precision=0.95)
    by_sites = fit_species_threshold(decide, truths, target_precision=0.95, groups=sites)
    assert by_crops.species_min_score < by_sites.species_min_score <= 0.97
    assert by_sites.precision >= 0.95 and 0 < by_sites.share_species < by_crops.share_species
    with pytest.raises(InputDataError, match="give each crop.s site"):
        fit_species_threshold(decide, truths, groups=sites[:-1])
