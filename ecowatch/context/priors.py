"""Priors from the knowledge graph: p(taxon | place, season) with hierarchical smoothing, and activity.

All priors are over a classifier's classes and count labelled *events* (:mod:`~ecowatch.context.graph`).
With ``n`` the events of a taxon at a level, ``N`` their sum, and the strengths of
:class:`PriorSettings` (pseudo-events):

- **global**, backed off through the taxonomy: going down the ranks (order, family, genus, species;
  ranks that do not split the classes are skipped), each taxon's share is
  ``q(t) = (n(t) + s_tax * q(parent) / K(parent)) / (N + s_tax)``, ``K`` the parent's children.
  A species nobody labelled gets a share of its genus' mass (more when congeners are common),
  a species of an unseen genus a share of its family's, and so on; with no labels at all the prior
  is uniform down the tree.
- **region**: ``p_r(t) = (n_r(t) + s_region * p_g(t)) / (N_r + s_region)``.
- **habitat** (the site's habitat category, where the deployments table gives one): what a habitat
  does to a taxon, learnt over all regions, ``h(t) = p_h(t) / p_g(t)`` with
  ``p_h(t) = (n_h(t) + s_habitat * p_g(t)) / (N_h + s_habitat)``, applied to the region's prior and
  then corrected by the habitat's own labels in that region:
  ``p_rh(t) = (n_rh(t) + s_habitat * b(t)) / (N_rh + s_habitat)``, ``b ~ p_r * h``. A habitat
  nobody labelled (or none given) leaves the region's prior as it is.
- **site** (location): ``p_s(t) = (n_s(t) + s_site * p_rh(t)) / (N_s + s_site)`` (``p_r`` without
  a habitat; a site in no region, or in a region with no labels, is shrunk towards global, adjusted
  for its habitat).
- **season** modulates the annual prior multiplicatively: ``m(t, season) = p(t | season) / p(t)
  = p(season | t) / p(season)``. Globally, a taxon's season profile ``p(season | t)`` is shrunk
  (``s_season``) towards its genus', family's, ... and the overall one, as activity is below (a
  taxon nobody labelled has its parent's profile, and with no seasonal labels ``m = 1``: no
  evidence is no modulation). At a region, the taxon's profile there is shrunk (``s_season``)
  towards the global profile (rescaled to the region's own share of events per season, its
  sampling effort). Then ``p(t | site, season) ~ p_s(t) * m_r(t, season)`` (site and season effects
  are assumed separable).
- **activity**: a taxon's time-of-day profile ``a(t, tod)`` shrunk (``s_activity``) towards its
  genus', family's, ... and the global one; the evidence of a time of day is ``a(t, tod) / p(tod)``.

The fusion uses the place prior *relative to the global prior* (``p(t | place, season) / p_g(t)``):
where the place tells nothing beyond the global picture (a new region, no labels) the ratio is 1
and the classifier's scores stand.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ecowatch.context.fusion import ContextFactors
from ecowatch.context.seasons import SEASONS, TIMES_OF_DAY
from ecowatch.errors import ConfigError
from ecowatch.tables import RANKS

if TYPE_CHECKING:
    from ecowatch.classify.taxonomy import ClassTaxonomy
    from ecowatch.context.graph import KnowledgeGraph, Place

_ROOT = "__root__"


@dataclass(frozen=True)
class PriorSettings:
    """Smoothing strengths, in pseudo-events (how many labelled events the coarser level is worth).

    Attributes:
        site_strength: pull of a site towards its region.
        region_strength: pull of a region towards the global prior.
        habitat_strength: pull of a habitat towards the global prior, and of a (region, habitat)
            towards the region's prior times the habitat's effect.
        season_strength: pull of a (region, season) towards the region's annual prior.
        taxonomy_strength: pull of each rank's shares towards the parent's (global prior).
        activity_strength: pull of a taxon's time-of-day profile towards its parent taxon's.
    """

    site_strength: float = 20.0
    region_strength: float = 20.0
    habitat_strength: float = 20.0
    season_strength: float = 50.0
    taxonomy_strength: float = 2.0
    activity_strength: float = 10.0

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if not value > 0:
                raise ConfigError(f"priors.{name} = {value}: a smoothing strength must be > 0 (pseudo-events).")


@dataclass(frozen=True)
class PlacePrior:
    """p(taxon | place, season) over the classes.

    Attributes:
        probabilities: (C,) sums to 1.
        events: (C,) labelled events of each class at ``level``.
        level: ``site``, ``habitat``, ``region`` or ``global``: the most specific level with labels.
    """

    probabilities: np.ndarray
    events: np.ndarray
    level: str


def _levels(taxonomy: ClassTaxonomy) -> list[list[str]]:
    """Per rank (coarse to fine), the node of each class; ranks that split nothing are dropped."""
    keys = [_ROOT] * taxonomy.num_classes
    levels = []
    for rank in (*RANKS[:-1], None):
        if rank is None:
            new = list(taxonomy.class_ids)
        else:
            new = [taxonomy.ancestor(c, rank) or keys[i] for i, c in enumerate(taxonomy.class_ids)]
        if len(set(new)) > len(set(keys)):
            levels.append(new)
            keys = new
    return levels


def taxonomy_backoff(counts: np.ndarray, taxonomy: ClassTaxonomy, strength: float) -> np.ndarray:
    """The global prior: class shares smoothed rank by rank towards the parent's (module docstring).

    Args:
        counts: (C,) events per class.
        taxonomy: the classes and their ancestors.
        strength: pseudo-events of the parent's share at each rank.

    Returns:
        (C,) probabilities summing to 1.
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = float(counts.sum())
    parent_of = [_ROOT] * len(counts)
    share = {_ROOT: 1.0}
    for level in _levels(taxonomy):
        children: dict[str, set[str]] = defaultdict(set)
        node_count: dict[str, float] = defaultdict(float)
        for i, node in enumerate(level):
            children[parent_of[i]].add(node)
            node_count[node] += counts[i]
        node_parent = {node: parent_of[i] for i, node in enumerate(level)}
        share = {node: (node_count[node] + strength * share[parent] / len(children[parent])) / (total + strength)
                 for node, parent in node_parent.items()}
        parent_of = level
    out = np.array([share[c] for c in taxonomy.class_ids], dtype=np.float64)
    return out / out.sum()


def _shrink(counts: np.ndarray, base: np.ndarray, strength: float) -> np.ndarray:
    """``(n + s * base) / (N + s)`` along the last axis."""
    return (counts + strength * base) / (counts.sum(axis=-1, keepdims=True) + strength)


class ContextPriors:
    """The smoothed priors of a graph over a classifier's classes (module docstring).

    Args:
        graph: the knowledge graph.
        taxonomy: the classifier's classes and their ancestors. Labels of other taxa are ignored.
    """

    def __init__(self, graph: KnowledgeGraph, taxonomy: ClassTaxonomy) -> None:
        from ecowatch.context.places import RangeIndex

        self.graph = graph
        self.taxonomy = taxonomy
        self.class_ids = tuple(taxonomy.class_ids)
        s = graph.settings
        index = {c: i for i, c in enumerate(self.class_ids)}
        regions = sorted({r.region_id for r in graph.regions}
                         | {loc.region_id for loc in graph.locations.values() if loc.region_id})
        self._region_index = {r: i for i, r in enumerate(regions)}
        self._location_index = {loc: i for i, loc in enumerate(sorted(graph.locations))}
        habitats = sorted({loc.habitat for loc in graph.locations.values() if loc.habitat})
        self._habitat_index = {h: i for i, h in enumerate(habitats)}
        n_c, n_s, n_t = len(self.class_ids), len(SEASONS), len(TIMES_OF_DAY)
        n_global = np.zeros(n_c)
        n_global_season = np.zeros((n_s, n_c))
        n_region = np.zeros((len(regions), n_c))
        n_region_season = np.zeros((len(regions), n_s, n_c))
        n_site = np.zeros((len(self._location_index), n_c))
        n_habitat = np.zeros((len(habitats), n_c))
        n_region_habitat = np.zeros((len(regions), len(habitats), n_c))
        n_tod = np.zeros((n_c, n_t))
        for link in graph.links:
            if link.taxon_id not in index:
                continue
            c = index[link.taxon_id]
            region = graph.locations[link.location_id].region_id
            habitat = self._habitat_index.get(graph.locations[link.location_id].habitat)
            n_global[c] += link.events
            if habitat is not None:
                n_habitat[habitat, c] += link.events
                if region is not None:
                    n_region_habitat[self._region_index[region], habitat, c] += link.events
            n_site[self._location_index[link.location_id], c] += link.events
            if region is not None:
                n_region[self._region_index[region], c] += link.events
            if link.season:
                season = SEASONS.index(link.season)
                n_global_season[season, c] += link.events
                if region is not None:
                    n_region_season[self._region_index[region], season, c] += link.events
            if link.time_of_day:
                n_tod[c, TIMES_OF_DAY.index(link.time_of_day)] += link.events
        self.global_prior = taxonomy_backoff(n_global, taxonomy, s.taxonomy_strength)
        self._n_global, self._n_region, self._n_site = n_global, n_region, n_site
        self._region = _shrink(n_region, self.global_prior, s.region_strength)
        self._n_habitat, self._n_region_habitat = n_habitat, n_region_habitat
        self._habitat_ratio = _shrink(n_habitat, self.global_prior, s.habitat_strength) / self.global_prior  # (H, C)
        # season modulations m = p(season | t) / p(season): (S, C) globally, (R, S, C) per region
        self._global_season = self._profile_ratios(n_global_season.T, taxonomy, s.season_strength).T
        effort = (n_region_season.sum(axis=2) + 1.0) / (n_region.sum(axis=1, keepdims=True) + len(SEASONS))  # (R, S)
        base = self._global_season[None, :, :] * effort[:, :, None]
        base = base / base.sum(axis=1, keepdims=True)  # p(season | t) at the region before its own labels
        seen = n_region_season.sum(axis=1, keepdims=True)  # (R, 1, C) events with a season
        self._region_season = (n_region_season + s.season_strength * base) / (seen + s.season_strength) / effort[:, :, None]
        self._activity = self._profile_ratios(n_tod, taxonomy, s.activity_strength)
        self._ranges = RangeIndex(graph.range_maps)

    @staticmethod
    def _profile_ratios(counts: np.ndarray, taxonomy: ClassTaxonomy, strength: float) -> np.ndarray:
        """(C, K) ratios ``p(k | t) / p(k)`` (k a time of day or a season), each class's profile shrunk
        towards its ancestors' (``strength`` pseudo-events at each rank), the root's is all events'."""
        overall = (counts.sum(axis=0) + 1.0) / (counts.sum() + counts.shape[1])  # Laplace
        profile = {_ROOT: overall}
        parent_of = [_ROOT] * counts.shape[0]
        for level in _levels(taxonomy):
            node_counts: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(counts.shape[1]))
            for i, node in enumerate(level):
                node_counts[node] = node_counts[node] + counts[i]
            node_parent = {node: parent_of[i] for i, node in enumerate(level)}
            profile = {node: _shrink(node_counts[node], profile[parent], strength)
                       for node, parent in node_parent.items()}
            parent_of = level
        return np.array([profile[c] for c in taxonomy.class_ids]) / overall

    def place_prior(self, place: Place, season: str | None) -> PlacePrior:
        """p(taxon | place, season) (season None: the annual prior).

        Args:
            place: from :meth:`~ecowatch.context.graph.KnowledgeGraph.place`.
            season: one of :data:`~ecowatch.context.seasons.SEASONS`, or None.
        """
        region = self._region_index.get(place.region_id) if place.region_id else None
        site = self._location_index.get(place.location_id) if place.location_id else None
        habitat = self._habitat_index.get(place.habitat) if place.habitat else None
        region_labelled = region is not None and self._n_region[region].sum() > 0
        if region_labelled:
            parent, events, level = self._region[region], self._n_region[region], "region"
        else:
            parent, events, level = self.global_prior, self._n_global, "global"
        if habitat is not None and self._n_habitat[habitat].sum() > 0:
            base = parent * self._habitat_ratio[habitat]
            base = base / base.sum()
            events = self._n_habitat[habitat]
            if level == "region":
                events = self._n_region_habitat[region, habitat]
                base = _shrink(events, base, self.graph.settings.habitat_strength)
            parent, level = base, "habitat"
        if site is not None and self._n_site[site].sum() > 0:
            prior = _shrink(self._n_site[site], parent, self.graph.settings.site_strength)
            events, level = self._n_site[site], "site"
        else:
            prior = parent
        if season is not None:
            s = SEASONS.index(season)
            modulation = self._region_season[region, s] if region_labelled else self._global_season[s]
            prior = prior * modulation
        return PlacePrior(prior / prior.sum(), events.copy(), level)

    def activity_log_ratio(self, time_of_day: str) -> np.ndarray:
        """(C,) ``log a(t, tod) - log p(tod)`` of a time of day (see :data:`~ecowatch.context.seasons.TIMES_OF_DAY`)."""
        return np.log(self._activity[:, TIMES_OF_DAY.index(time_of_day)])

    def in_range(self, place: Place) -> list[bool | None]:
        """Per class: inside its range map, outside, or None (no range map or no coordinates)."""
        if place.latitude is None or place.longitude is None:
            return [None] * len(self.class_ids)
        return [self._ranges.inside(c, place.latitude, place.longitude) for c in self.class_ids]

    def range_factors(self, place: Place, outside_factor: float = 0.05) -> np.ndarray:
        """(C,) 1 inside a class's range (or without one), ``outside_factor`` outside."""
        return np.array([outside_factor if inside is False else 1.0 for inside in self.in_range(place)])

    def factors(self, place: Place, *, season: str | None, time_of_day: str | None) -> ContextFactors:
        """The context evidence of a detection at a place, season and time of day.

        Args:
            place: where (a graph location, or a point with its region).
            season: the season, or None (unknown date).
            time_of_day: ``night``/``twilight``/``day``, or None (unknown time).

        Returns:
            :class:`~ecowatch.context.fusion.ContextFactors` over the classes.
        """
        prior = self.place_prior(place, season)
        inside = self.in_range(place)
        return ContextFactors(
            reference=self.global_prior,
            place_log_ratio=np.log(prior.probabilities) - np.log(self.global_prior),
            activity_log_ratio=self.activity_log_ratio(time_of_day) if time_of_day else None,
            in_range=None if all(v is None for v in inside) else np.array([0.0 if v is False else 1.0
                                                                           for v in inside]),
            level=prior.level,
        )
