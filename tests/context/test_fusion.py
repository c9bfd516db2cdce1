"""The decision function: no context = the classifier exactly; prior, range maps, roll-up, unknown, sequence vote."""

from __future__ import annotations

import numpy as np
import pytest

from ecowatch.context.fusion import (
    ContextFactors,
    FusionThresholds,
    FusionWeights,
    Rollup,
    combine,
    full_probabilities,
    fuse_detection,
    vote_sequence,
)
from ecowatch.errors import ConfigError, InputDataError

THRESHOLDS = FusionThresholds(unknown_min_score=0.5, species_min_score=0.8, rollup_min_score=0.8,
                              min_prior_information_nats=0.01, range_outside_factor=0.05)


@pytest.fixture(scope="module")
def rollup(class_taxonomy) -> Rollup:
    return Rollup.from_taxonomy(class_taxonomy)


def _probs(class_taxonomy, **scores: float) -> np.ndarray:
    """A probability vector with the given classes' scores, the rest spread evenly."""
    ids = class_taxonomy.class_ids
    return full_probabilities(ids, list(scores), list(scores.values()))


def test_uniform_prior_gives_exactly_the_classifier(class_taxonomy, rollup) -> None:
    probs = _probs(class_taxonomy, vulpes_vulpes=0.83, martes_martes=0.1)
    n = class_taxonomy.num_classes
    uniform = np.full(n, 1.0 / n)
    uniform_prior = ContextFactors(reference=uniform, place_log_ratio=np.log(uniform) - np.log(uniform),
                                   activity_log_ratio=np.zeros(n), in_range=np.ones(n))
    alone = fuse_detection(probabilities=probs, unknown_score=0.1, context=None, weights=FusionWeights(),
                           thresholds=THRESHOLDS, rollup=rollup)
    for context in (uniform_prior, None):
        fused, applied = combine(probs, context, weights=FusionWeights(1.0, 1.0), range_outside_factor=0.05,
                                 min_prior_information_nats=0.01)
        assert np.array_equal(fused, probs) and not applied  # bit for bit
        label = fuse_detection(probabilities=probs, unknown_score=0.1, context=context, weights=FusionWeights(),
                               thresholds=THRESHOLDS, rollup=rollup)
        assert label == alone
    assert (alone.taxon_id, alone.rank, alone.score, alone.source) == ("vulpes_vulpes", "species", 0.83, "classifier")


def test_zero_weights_give_exactly_the_classifier(class_taxonomy, graph) -> None:
    from ecowatch.context.priors import ContextPriors

    priors = ContextPriors(graph, class_taxonomy)
    context = priors.factors(graph.place(location_id="S1"), season="winter", time_of_day="night")
    probs = _probs(class_taxonomy, martes_martes=0.6, martes_foina=0.3)
    fused, applied = combine(probs, context, weights=FusionWeights(0.0, 0.0), range_outside_factor=1.0,
                             min_prior_information_nats=0.01)
    assert np.array_equal(fused, probs) and not applied


def test_informative_prior_decides_between_look_alikes(class_taxonomy, graph, rollup) -> None:
    from ecowatch.context.priors import ContextPriors

    priors = ContextPriors(graph, class_taxonomy)
    probs = _probs(class_taxonomy, martes_martes=0.5, martes_foina=0.45)
    south = priors.factors(graph.place(location_id="S1"), season=None, time_of_day=None)
    north = priors.factors(graph.place(location_id="N1"), season=None, time_of_day=None)
    thresholds = FusionThresholds(species_min_score=0.6, rollup_min_score=0.6)
    at_south = fuse_detection(probabilities=probs, unknown_score=0.0, context=south, weights=FusionWeights(1.0, 0.0),
                              thresholds=thresholds, rollup=rollup)
    at_north = fuse_detection(probabilities=probs, unknown_score=0.0, context=north, weights=FusionWeights(1.0, 0.0),
                              thresholds=thresholds, rollup=rollup)
    assert (at_south.taxon_id, at_south.source) == ("martes_foina", "classifier+prior")  # stone martens live south
    assert (at_north.taxon_id, at_north.source) == ("martes_martes", "classifier+prior")
    assert at_south.score > 0.6 and at_north.score > 0.5


def test_range_map_excludes_an_out_of_range_species(class_taxonomy, graph, rollup) -> None:
    from ecowatch.context.priors import ContextPriors

    priors = ContextPriors(graph, class_taxonomy)
    probs = _probs(class_taxonomy, sciurus_carolinensis=0.6, sciurus_vulgaris=0.38)
    outside = graph.place(latitude=45.5, longitude=10.2)  # south: outside the grey squirrel's range
    inside = graph.place(latitude=50.4, longitude=0.3)
    no_prior = FusionWeights(0.0, 0.0)  # the range map alone
    there = fuse_detection(probabilities=probs, unknown_score=0.0, weights=no_prior, thresholds=THRESHOLDS,
                           rollup=rollup, context=priors.factors(outside, season=None, time_of_day=None))
    here = fuse_detection(probabilities=probs, unknown_score=0.0, weights=no_prior, thresholds=THRESHOLDS,
                          rollup=rollup, context=priors.factors(inside, season=None, time_of_day=None))
    assert (there.taxon_id, there.rank, there.source) == ("sciurus_vulgaris", "species", "classifier+prior")
    assert there.score == pytest.approx(0.38 / (0.38 + 0.6 * 0.05 + 0.02))  # grey squirrel x 0.05, renormalised
    assert here.taxon_id != "sciurus_vulgaris"  # inside both ranges the classifier's 0.6 : 0.38 stands
    fused_here, applied = combine(probs, priors.factors(inside, season=None, time_of_day=None), weights=no_prior,
                                  range_outside_factor=0.05, min_prior_information_nats=0.01)
    assert np.array_equal(fused_here, probs) and not applied
    plausible = {t.taxon_id: t for t in graph.plausible_taxa(month=6, latitude=45.5, longitude=10.2,
                                                             min_probability=0.0)}
    assert plausible["sciurus_carolinensis"].in_range is False and plausible["sciurus_vulgaris"].in_range is True
    assert plausible["vulpes_vulpes"].in_range is None  # no range map: no geofence


def test_roll_up_to_genus_then_family_when_no_species_is_confident(class_taxonomy, rollup) -> None:
    martens = fuse_detection(probabilities=_probs(class_taxonomy, martes_martes=0.5, martes_foina=0.42),
                             unknown_score=0.1, context=None, weights=FusionWeights(), thresholds=THRESHOLDS,
                             rollup=rollup)
    assert (martens.taxon_id, martens.rank, martens.source) == ("martes", "genus", "rollup_to_genus")
    assert martens.score == pytest.approx(0.92)  # Martes holds exactly these two classes
    deer = fuse_detection(probabilities=_probs(class_taxonomy, capreolus_capreolus=0.4, cervus_elaphus=0.3,
                                               dama_dama=0.25), unknown_score=0.1, context=None,
                          weights=FusionWeights(), thresholds=THRESHOLDS, rollup=rollup)
    assert (deer.taxon_id, deer.rank, deer.source) == ("cervidae", "family", "rollup_to_family")
    assert deer.score == pytest.approx(0.95)  # no genus reaches 0.8, the deer family does
    vague = fuse_detection(probabilities=np.full(class_taxonomy.num_classes, 1 / class_taxonomy.num_classes),
                           unknown_score=0.1, context=None, weights=FusionWeights(), thresholds=THRESHOLDS,
                           rollup=rollup)
    assert (vague.taxon_id, vague.rank) == ("mammalia", "class")  # all the classifier can say: a mammal
    confident = fuse_detection(probabilities=_probs(class_taxonomy, martes_martes=0.85), unknown_score=0.1,
                               context=None, weights=FusionWeights(), thresholds=THRESHOLDS, rollup=rollup)
    assert (confident.taxon_id, confident.rank, confident.source) == ("martes_martes", "species", "classifier")


def test_unknown_score_gives_an_unknown_animal_never_a_species(class_taxonomy, rollup) -> None:
    label = fuse_detection(probabilities=_probs(class_taxonomy, vulpes_vulpes=0.99), unknown_score=0.7, context=None,
                           weights=FusionWeights(), thresholds=THRESHOLDS, rollup=rollup)
    assert (label.taxon_id, label.rank, label.score, label.source) == ("animalia", "kingdom", 0.7, "unknown_animal")
    below = fuse_detection(probabilities=_probs(class_taxonomy, vulpes_vulpes=0.99), unknown_score=0.49,
                           context=None, weights=FusionWeights(), thresholds=THRESHOLDS, rollup=rollup)
    assert below.taxon_id == "vulpes_vulpes"


def test_top_k_completion_keeps_scores_and_spreads_the_rest() -> None:
    probs = full_probabilities(("a", "b", "c", "d"), ["c", "a"], [0.6, 0.3])
    assert probs.tolist() == [0.3, pytest.approx(0.05), 0.6, pytest.approx(0.05)]
    assert full_probabilities(("a", "b"), ["a", "b"], [0.7, 0.3]).tolist() == [0.7, 0.3]
    with pytest.raises(InputDataError, match="'z', which is not a class"):
        full_probabilities(("a", "b"), ["z"], [0.9])
    with pytest.raises(InputDataError, match="not a probability"):
        full_probabilities(("a", "b"), ["a"], [1.5])


def test_sequence_vote_gives_one_label_to_a_burst(class_taxonomy, rollup) -> None:
    from ecowatch.context.fusion import decide

    frames = np.stack([_probs(class_taxonomy, vulpes_vulpes=0.9),
                       _probs(class_taxonomy, vulpes_vulpes=0.6, felis_catus=0.3),
                       _probs(class_taxonomy, felis_catus=0.55, vulpes_vulpes=0.4)])
    alone = [class_taxonomy.class_ids[int(np.argmax(f))] for f in frames]
    assert alone == ["vulpes_vulpes", "vulpes_vulpes", "felis_catus"]  # frame by frame they disagree
    mean, unknown = vote_sequence(frames, np.array([0.1, 0.2, 0.3]))
    assert mean[class_taxonomy.index("vulpes_vulpes")] == pytest.approx((0.9 + 0.6 + 0.4) / 3)
    assert unknown == pytest.approx(0.2)
    label = decide(mean, unknown_score=unknown, rollup=rollup, thresholds=FusionThresholds(species_min_score=0.6),
                   prior_applied=False)
    assert (label.taxon_id, label.source) == ("vulpes_vulpes", "classifier")
    with pytest.raises(InputDataError, match="at least one detection"):
        vote_sequence(np.zeros((0, 3)), np.zeros(0))


def test_thresholds_and_weights_are_validated() -> None:
    with pytest.raises(ConfigError, match="species_min_score = 1.5"):
        FusionThresholds(species_min_score=1.5)
    with pytest.raises(ConfigError, match="range_outside_factor = 0"):
        FusionThresholds(range_outside_factor=0.0)
    with pytest.raises(ConfigError, match="bounded to 0..1"):
        FusionWeights(place=1.2)
