"""Priors: site -> region -> global shrinkage, taxonomic back-off of unseen species, seasons, activity."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from ecowatch.context.priors import ContextPriors, taxonomy_backoff
from ecowatch.context.seasons import season_of, time_of_day
from ecowatch.errors import InputDataError


@pytest.fixture(scope="module")
def priors(graph, class_taxonomy) -> ContextPriors:
    return ContextPriors(graph, class_taxonomy)


def _p(priors: ContextPriors, prior: np.ndarray, taxon: str) -> float:
    return float(prior[priors.class_ids.index(taxon)])


def test_site_shrinks_to_region_shrinks_to_global(graph, priors) -> None:
    site = priors.place_prior(graph.place(location_id="N1"), None)
    unlabelled_site = priors.place_prior(graph.place(location_id="N2"), None)  # north, no labels of its own
    new_point = priors.place_prior(graph.place(latitude=50.9, longitude=0.1), None)  # north, unknown camera
    nowhere = priors.place_prior(graph.place(latitude=60.0, longitude=30.0), None)  # in no region
    assert (site.level, unlabelled_site.level, new_point.level, nowhere.level) == ("site", "region", "region", "global")
    fox = {name: _p(priors, p.probabilities, "vulpes_vulpes")
           for name, p in (("site", site), ("region", unlabelled_site), ("global", nowhere))}
    # N1: 30 of 40 events are foxes; the north region is N1 only; globally 35 of 80
    assert fox["site"] == pytest.approx((30 + 20 * fox["region"]) / (40 + 20))
    assert fox["region"] == pytest.approx((30 + 20 * fox["global"]) / (40 + 20))
    assert fox["global"] == pytest.approx(priors.global_prior[priors.class_ids.index("vulpes_vulpes")])
    assert fox["site"] > fox["region"] > fox["global"]
    assert np.array_equal(new_point.probabilities, unlabelled_site.probabilities)
    assert np.array_equal(nowhere.probabilities, priors.global_prior)
    boar = _p(priors, priors.place_prior(graph.place(location_id="S1"), None).probabilities, "sus_scrofa")
    assert boar > 5 * _p(priors, site.probabilities, "sus_scrofa")  # boar are a southern thing
    assert site.events[priors.class_ids.index("vulpes_vulpes")] == 30


def test_unseen_species_back_off_through_genus_and_family(priors, class_taxonomy) -> None:
    g = priors.global_prior
    seen = {t for t in ("vulpes_vulpes", "martes_martes", "sciurus_carolinensis", "martes_foina", "sus_scrofa")}
    assert all(g[i] > 0 for i in range(len(g)))  # nothing is impossible a priori
    # red squirrel: unseen, but its genus (grey squirrel) is seen; mountain hare: genus and family unseen
    assert _p(priors, g, "sciurus_vulgaris") > _p(priors, g, "lepus_timidus")
    # badger: unseen species of a seen family (martens, Mustelidae) beats a species of an unseen order (hares)
    assert _p(priors, g, "meles_meles") > _p(priors, g, "lepus_timidus")
    assert min(_p(priors, g, t) for t in seen) > 10 * max(_p(priors, g, t) for t in priors.class_ids if t not in seen)
    assert g.sum() == pytest.approx(1.0)
    uniform = taxonomy_backoff(np.zeros(class_taxonomy.num_classes), class_taxonomy, 2.0)
    assert uniform.sum() == pytest.approx(1.0)  # no labels: uniform down the tree (orders equal, then split)
    carnivora = [c for c in class_taxonomy.class_ids if class_taxonomy.ancestor(c, "order") == "carnivora"]
    lagomorpha = [c for c in class_taxonomy.class_ids if class_taxonomy.ancestor(c, "order") == "lagomorpha"]
    by = dict(zip(class_taxonomy.class_ids, uniform, strict=True))
    assert sum(by[c] for c in carnivora) == pytest.approx(sum(by[c] for c in lagomorpha))


def test_season_modulates_and_activity_separates_night_from_day(graph, priors) -> None:
    winter = priors.place_prior(graph.place(location_id="N1"), "winter").probabilities
    summer = priors.place_prior(graph.place(location_id="N1"), "summer").probabilities
    assert winter.sum() == pytest.approx(1.0) and not np.allclose(winter, summer)
    night, day = priors.activity_log_ratio("night"), priors.activity_log_ratio("day")
    squirrel, fox = priors.class_ids.index("sciurus_carolinensis"), priors.class_ids.index("vulpes_vulpes")
    assert day[squirrel] > 0 > night[squirrel]  # labelled by day only
    assert night[fox] > 0 > day[fox]
    hare = priors.class_ids.index("lepus_timidus")  # never labelled: close to the overall profile
    assert abs(night[hare]) < abs(night[fox]) and abs(day[hare]) < abs(day[squirrel])


def test_a_season_says_nothing_about_a_taxon_nobody_labelled(graph, priors) -> None:
    """Its season profile is its parent's (here none: the overall one), so no season suppresses it.

    (A season-conditioned share shrunk towards the annual share used to divide an unlabelled taxon by
    (events in that season + strength) / strength in every season: a new region's mountain hare lost.)
    """
    hare = priors.class_ids.index("lepus_timidus")  # never labelled, nor any other Lepus
    assert priors._n_global[hare] == 0
    for place in (graph.place(latitude=60.0, longitude=30.0), graph.place(location_id="N1")):
        annual = priors.place_prior(place, None).probabilities
        for season in ("winter", "spring", "summer", "autumn"):
            seasonal = priors.place_prior(place, season).probabilities
            assert 0.85 < seasonal[hare] / annual[hare] < 1.2, (place, season)  # was 0.66..0.75


def test_seasons_follow_the_hemisphere_and_time_of_day_the_sun() -> None:
    assert [season_of(m, 50.0) for m in (1, 4, 7, 10)] == ["winter", "spring", "summer", "autumn"]
    assert [season_of(m, -33.9) for m in (1, 4, 7, 10)] == ["summer", "autumn", "winter", "spring"]
    where = dict(latitude=50.9, longitude=-1.6, utc_offset_min=0)
    assert time_of_day(dt.datetime(2025, 6, 21, 13, 0), **where) == "day"
    assert time_of_day(dt.datetime(2025, 6, 21, 1, 0), **where) == "night"
    assert time_of_day(dt.datetime(2025, 12, 21, 16, 20), **where) == "twilight"  # December dusk
    assert time_of_day(dt.datetime(2025, 6, 21, 16, 20), **where) == "day"  # the same clock time in June
    with pytest.raises(InputDataError, match="month 13"):
        season_of(13, 10.0)
