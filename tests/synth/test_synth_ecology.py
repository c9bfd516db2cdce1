"""Location, season and hour carry information; look-alike species differ by traits that survive IR."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest
from shapely.geometry import Point

from ecowatch.synth import DumpSpec
from ecowatch.synth.bodies import Pose
from ecowatch.synth.deployments import plan_deployments
from ecowatch.synth.events import plan_frames
from ecowatch.synth.geo import REGIONS, species_range
from ecowatch.synth.species import DRAWN_SPECIES, Individual, draw_animal
from ecowatch.synth.taxa import LOOKALIKE_PAIRS, SPECIES


@pytest.fixture(scope="module")
def year_of_events():
    """Planned animal events of a year-long, 15-deployment study (planning only, nothing rendered)."""
    spec = DumpSpec.preset("train", n_frames=3000)
    events = []
    for plan in plan_deployments(spec):
        for job in plan_frames(spec, plan):
            if job.frame_num == 0 and job.placements and job.placements[0].individual is not None:
                events.append((plan.location.region.key, job.true_time.month, job.night, job.placements[0].category))
    return events


def test_species_mix_differs_between_regions(year_of_events) -> None:
    mix: dict[str, Counter] = defaultdict(Counter)
    for region, _, _, species in year_of_events:
        mix[region][species] += 1
    assert set(mix) == {"wessex", "hessen", "engadin"}
    keys = [s.key for s in SPECIES]
    shares = {r: np.asarray([c[k] for k in keys], float) / sum(c.values()) for r, c in mix.items()}
    for a in shares:
        for b in shares:
            if a < b:
                assert 0.5 * np.abs(shares[a] - shares[b]).sum() > 0.25, (a, b)  # total variation distance
    assert mix["wessex"]["grey_squirrel"] > 0 and mix["hessen"]["grey_squirrel"] == mix["engadin"]["grey_squirrel"] == 0
    assert mix["engadin"]["mountain_hare"] > 0 and mix["wessex"]["mountain_hare"] == mix["hessen"]["mountain_hare"] == 0


def test_absent_species_are_outside_their_range_maps() -> None:
    for s in SPECIES:
        area = species_range(s.key)
        for region in REGIONS:
            inside = area.contains(Point(region.centre_lon, region.centre_lat))
            assert inside == (s.abundance.get(region.key, 0.0) > 0), (s.key, region.key)


def test_hour_and_season_carry_information(year_of_events) -> None:
    night_share = {}
    for key in ("badger", "red_squirrel", "grey_squirrel"):
        flags = [night for _, _, night, species in year_of_events if species == key]
        night_share[key] = sum(flags) / max(1, len(flags))
    assert night_share["badger"] > 0.7
    assert night_share["red_squirrel"] < 0.2 and night_share["grey_squirrel"] < 0.2
    winter = Counter(s for _, m, _, s in year_of_events if m in (12, 1, 2))
    summer = Counter(s for _, m, _, s in year_of_events if m in (5, 6, 7))
    share = lambda counts, key: counts[key] / sum(counts.values())  # noqa: E731
    assert share(winter, "badger") < share(summer, "badger")


def _grey(key: str, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    ind = Individual(key, "x", male=False, juvenile=False, look_seed=3, **kwargs)
    sprite = draw_animal(ind, Pose("stand"), torso_px=90, facing=1, month=7)
    rgb = sprite.rgba[..., :3].astype(float)
    return 0.3 * rgb[..., 0] + 0.59 * rgb[..., 1] + 0.11 * rgb[..., 2], sprite.rgba[..., 3] > 127


def test_lookalike_pairs_are_listed_and_drawn_differently_in_greyscale() -> None:
    pairs = {frozenset(p[:2]) for p in LOOKALIKE_PAIRS}
    expected = [("pine_marten", "stone_marten"), ("red_squirrel", "grey_squirrel"), ("brown_hare", "mountain_hare"),
                ("red_deer", "fallow_deer"), ("wildcat", "domestic_cat")]
    assert {frozenset(p) for p in expected} <= pairs
    assert len(DRAWN_SPECIES) >= 10
    for a, b in expected:
        grey_a, mask_a = _grey(a)
        grey_b, mask_b = _grey(b)
        h, w = min(grey_a.shape[0], grey_b.shape[0]), min(grey_a.shape[1], grey_b.shape[1])
        shape_change = (mask_a[:h, :w] != mask_b[:h, :w]).mean()
        tone_change = abs(grey_a[mask_a].mean() - grey_b[mask_b].mean())
        assert shape_change > 0.03 or tone_change > 10, (a, b, shape_change, tone_change)


def test_the_separating_traits_are_where_they_should_be() -> None:
    # stone marten: white bib runs down the forelegs; pine marten: the legs stay dark
    def bright_in_leg_band(key: str) -> float:
        grey, mask = _grey(key)
        band = slice(int(grey.shape[0] * 0.55), int(grey.shape[0] * 0.8))
        return float(((grey[band] > 180) & mask[band]).sum())

    assert bright_in_leg_band("stone_marten") > 3 * bright_in_leg_band("pine_marten") + 5
    # brown hare's ears are much longer than the mountain hare's
    assert _grey("brown_hare")[1].shape[0] > 1.12 * _grey("mountain_hare")[1].shape[0]
    # wildcat: thick blunt tail; domestic cat: thin tapering tail (fewer tail pixels)
    assert _grey("wildcat")[1].sum() > 1.1 * _grey("domestic_cat", variant="tabby")[1].sum()


def test_a_site_habitat_shapes_its_species_mix_and_can_be_switched_off() -> None:
    from ecowatch.synth.taxa import HABITAT_MIX, HABITATS

    mix: dict[str, Counter] = defaultdict(Counter)
    for seed in range(3):
        spec = DumpSpec.preset("train", seed=seed, n_frames=3000)
        for plan in plan_deployments(spec):
            assert plan.location.habitat in HABITAT_MIX[plan.location.region.key]
            for job in plan_frames(spec, plan):
                if job.frame_num == 0 and job.placements and job.placements[0].individual is not None:
                    mix[plan.location.habitat][job.placements[0].category] += 1
    assert set(mix) <= set(HABITATS) and {"woodland", "settlement edge"} <= set(mix)

    def share(habitat: str, species: str) -> float:
        return mix[habitat][species] / sum(mix[habitat].values())

    for forest, town in (("pine_marten", "stone_marten"), ("wildcat", "domestic_cat")):
        assert share("woodland", forest) > share("settlement edge", forest)
        assert share("settlement edge", town) > share("woodland", town)
    plain = plan_deployments(DumpSpec.preset("train", seed=0, n_frames=3000, site_habitats=False))
    assert {p.location.habitat for p in plain} == {""}
