"""The knowledge graph of taxa, places and seasons, and its versioned artefact.

Nodes and edges (plain tables, no graph library):

- **taxa**: kingdom to species, each with its parent (the taxonomy table);
- **places**: deployment -> location (latitude, longitude, habitat) -> region (the region polygon
  containing the location, :func:`~ecowatch.context.places.regions_of_points`); the habitat is the
  deployments table's ``habitat`` category (``woodland``, ``settlement edge``, ...), so that a new
  camera site is known by its region *and* its habitat;
- **time**: season (by hemisphere) and time of day (by the sun), see :mod:`~ecowatch.context.seasons`;
- **observed links**: taxon seen at location in season at time of day, with the number of events
  (independent bursts) and of individuals (the most seen in one frame of each event, summed);
- **range maps**: one polygon per taxon (optional soft geofences).

:func:`build_knowledge_graph` makes it from labelled observations; :meth:`KnowledgeGraph.save`
writes one JSON file (format :data:`GRAPH_FORMAT` version :data:`GRAPH_FORMAT_VERSION`, keys
sorted, geometries as WKT) whose ``version`` is the first 16 hex digits of the sha256 of its
content, so the same labels and settings always give the same version;
:func:`load_knowledge_graph` reads it back. :meth:`KnowledgeGraph.plausible_taxa` answers "which
species are plausible here in March?" from the smoothed priors of :mod:`~ecowatch.context.priors`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ecowatch.context.labels import LabelledObservation
from ecowatch.context.places import RangeMap, RegionPolygon, regions_of_points
from ecowatch.context.priors import PriorSettings
from ecowatch.context.seasons import season_of, time_of_day
from ecowatch.errors import InputDataError, ModelNotFoundError
from ecowatch.tables import Deployment, Taxon, normalise_habitat

log = logging.getLogger(__name__)

GRAPH_FORMAT = "ecowatch-context-graph"
GRAPH_FORMAT_VERSION = 2  # 2: location habitats and the habitat smoothing strength
VERSION_HEX_DIGITS = 16
LINK_COLUMNS: tuple[str, ...] = ("taxon_id", "location_id", "season", "time_of_day", "events", "individuals")


@dataclass(frozen=True)
class Location:
    """A camera location of the graph.

    Attributes:
        location_id: its id.
        latitude: WGS84 degrees (None when no deployment gave coordinates).
        longitude: WGS84 degrees east (None likewise).
        region_id: the region polygon containing it, or None.
        habitat: the habitat category of its deployments ("" when none was given).
    """

    location_id: str
    latitude: float | None
    longitude: float | None
    region_id: str | None
    habitat: str = ""


@dataclass(frozen=True)
class Link:
    """A taxon seen at a location: events (and individuals) by season and time of day.

    ``season`` / ``time_of_day`` are "" when the events had no usable timestamp or coordinates.
    """

    taxon_id: str
    location_id: str
    season: str
    time_of_day: str
    events: int
    individuals: int


@dataclass(frozen=True)
class Place:
    """Where a question is asked: a known location, or a point, resolved to its region.

    Attributes:
        location_id: a location of the graph, or None for a place the graph has no labels from.
        latitude: WGS84 degrees, or None.
        longitude: WGS84 degrees east, or None.
        region_id: the region containing the point (or the known location), or None.
        habitat: the habitat category of the site ("" when unknown).
    """

    location_id: str | None
    latitude: float | None
    longitude: float | None
    region_id: str | None
    habitat: str = ""


@dataclass(frozen=True)
class PlausibleTaxon:
    """One answer of :meth:`KnowledgeGraph.plausible_taxa`.

    Attributes:
        taxon_id: the species.
        probability: p(taxon | place, season), 0..1 (range maps applied as soft geofences).
        in_range: inside its range map (None without one).
        events: labelled events of the taxon at the place's most specific level with data.
        level: ``site``, ``habitat``, ``region`` or ``global``: the most specific level with labels there.
    """

    taxon_id: str
    probability: float
    in_range: bool | None
    events: int
    level: str


@dataclass
class KnowledgeGraph:
    """Taxa, places, observed links and range maps (see the module docstring).

    Attributes:
        taxa: taxonomy by id.
        locations: locations by id.
        deployments: deployment id -> (location id, UTC offset in minutes).
        regions: region polygons.
        range_maps: range polygons by taxon.
        links: observed links, sorted.
        settings: the smoothing strengths the priors use.
        version: sha256 prefix of the content ("" until computed by :meth:`content_version`).
    """

    taxa: dict[str, Taxon]
    locations: dict[str, Location]
    deployments: dict[str, tuple[str, int]]
    regions: tuple[RegionPolygon, ...]
    range_maps: tuple[RangeMap, ...]
    links: tuple[Link, ...]
    settings: PriorSettings = field(default_factory=PriorSettings)
    version: str = ""

    def __post_init__(self) -> None:
        if not self.version:
            self.version = self.content_version()

    def to_record(self) -> dict[str, Any]:
        """The JSON-serialisable content (without ``version``)."""
        return {
            "format": GRAPH_FORMAT,
            "format_version": GRAPH_FORMAT_VERSION,
            "settings": asdict(self.settings),
            "taxa": [[t.taxon_id, t.scientific_name, t.rank, t.parent_id, t.common_name]
                     for t in sorted(self.taxa.values(), key=lambda t: t.taxon_id)],
            "regions": [asdict(r) for r in self.regions],
            "range_maps": [asdict(r) for r in self.range_maps],
            "locations": [asdict(loc) for loc in sorted(self.locations.values(), key=lambda loc: loc.location_id)],
            "deployments": [[d, loc, off] for d, (loc, off) in sorted(self.deployments.items())],
            "links": {"columns": list(LINK_COLUMNS), "rows": [[getattr(link, c) for c in LINK_COLUMNS]
                                                              for link in self.links]},
        }

    def content_version(self) -> str:
        """First 16 hex digits of the sha256 of the canonical JSON content."""
        text = json.dumps(self.to_record(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:VERSION_HEX_DIGITS]

    def save(self, path: Path) -> Path:
        """Write the artefact atomically (a temporary file renamed into place); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"version": self.version, **self.to_record()}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, sort_keys=True, indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    # ---- queries ---------------------------------------------------------------------------------
    def species_ids(self) -> list[str]:
        """Every species-rank taxon id of the graph's taxonomy, sorted."""
        return sorted(t.taxon_id for t in self.taxa.values() if t.rank == "species")

    def place(self, *, location_id: str | None = None, deployment_id: str | None = None,
              latitude: float | None = None, longitude: float | None = None, habitat: str | None = None) -> Place:
        """Resolve a deployment, a location or a point to a :class:`Place`.

        A known deployment or location wins (with its habitat, else ``habitat``); otherwise the
        point's region is looked up in the region polygons. Unknown ids with no point give a place
        with no region (global priors, adjusted for the habitat when one is given).

        Args:
            location_id: a location id.
            deployment_id: a deployment id (its location is used).
            latitude: WGS84 degrees (with ``longitude``).
            longitude: WGS84 degrees east.
            habitat: the site's habitat category (the deployments table's ``habitat``), if known.
        """
        habitat = normalise_habitat(habitat)
        if deployment_id and deployment_id in self.deployments:
            location_id = self.deployments[deployment_id][0]
        if location_id and location_id in self.locations:
            loc = self.locations[location_id]
            return Place(location_id, loc.latitude, loc.longitude, loc.region_id, loc.habitat or habitat)
        region = None
        if latitude is not None and longitude is not None:
            region = regions_of_points({"p": (latitude, longitude)}, self.regions).get("p")
        return Place(None, latitude, longitude, region, habitat)

    def plausible_taxa(self, *, month: int, location_id: str | None = None, deployment_id: str | None = None,
                       latitude: float | None = None, longitude: float | None = None, habitat: str | None = None,
                       min_probability: float = 0.01) -> list[PlausibleTaxon]:
        """Which species are plausible at a place in a month, most probable first.

        Args:
            month: 1..12 (the season follows the place's hemisphere; northern without a latitude).
            location_id: a location of the graph.
            deployment_id: a deployment of the graph.
            latitude: WGS84 degrees, for a place the graph does not know.
            longitude: WGS84 degrees east.
            habitat: the site's habitat category, for a place the graph does not know.
            min_probability: leave out species below this prior probability (0..1).

        Returns:
            Species with p(taxon | place, season) >= ``min_probability``.

        Raises:
            InputDataError: a month outside 1..12 or a latitude outside -90..90.
        """
        where = self.place(location_id=location_id, deployment_id=deployment_id, latitude=latitude,
                           longitude=longitude, habitat=habitat)
        return self.plausible_at(where, month=month, min_probability=min_probability)

    def plausible_at(self, where: Place, *, month: int, min_probability: float = 0.01) -> list[PlausibleTaxon]:
        """:meth:`plausible_taxa` at a place already resolved by :meth:`place`."""
        from ecowatch.classify.taxonomy import ClassTaxonomy
        from ecowatch.context.priors import ContextPriors

        species = self.species_ids()
        if not species:
            return []
        priors = ContextPriors(self, ClassTaxonomy.from_taxa(self.taxa, species))
        season = season_of(month, where.latitude if where.latitude is not None else 0.0)
        prior = priors.place_prior(where, season)
        probability = prior.probabilities * priors.range_factors(where)
        probability = probability / probability.sum()
        inside = priors.in_range(where)
        out = [PlausibleTaxon(t, float(p), inside[i], int(prior.events[i]), prior.level)
               for i, (t, p) in enumerate(zip(species, probability, strict=True)) if p >= min_probability]
        return sorted(out, key=lambda x: (-x.probability, x.taxon_id))


def build_knowledge_graph(
    observations: Sequence[LabelledObservation],
    *,
    taxa: Mapping[str, Taxon],
    deployments: Sequence[Deployment],
    regions: Sequence[RegionPolygon] = (),
    range_maps: Sequence[RangeMap] = (),
    settings: PriorSettings | None = None,
) -> KnowledgeGraph:
    """Build the graph from labelled observations.

    Args:
        observations: labelled frames (see :mod:`~ecowatch.context.labels`); their location ids
            must match the deployments' (several dumps: prefix both alike).
        taxa: the taxonomy table by id (:func:`ecowatch.tables.read_taxonomy`).
        deployments: the deployments (coordinates and UTC offsets of the locations).
        regions: region polygons (:func:`~ecowatch.context.places.read_regions`).
        range_maps: range polygons (:func:`~ecowatch.context.places.read_range_maps`).
        settings: smoothing strengths (defaults of :class:`PriorSettings`).

    Returns:
        The graph, with its content version.

    Raises:
        InputDataError: an observation's taxon is not in the taxonomy.
    """
    unknown = sorted({o.taxon_id for o in observations} - set(taxa))
    if unknown:
        raise InputDataError(f"labelled taxa {unknown[:10]} are not in the taxonomy table; add them (with every "
                             "ancestor) or fix the labels.")
    coords: dict[str, tuple[float, float]] = {}
    deps: dict[str, tuple[str, int]] = {}
    offsets: dict[str, int] = {}
    habitats: dict[str, str] = {}
    for d in sorted(deployments, key=lambda d: d.deployment_id):
        coords.setdefault(d.location_id, (d.latitude, d.longitude))
        offsets.setdefault(d.location_id, d.utc_offset_min)
        if d.habitat:
            habitats.setdefault(d.location_id, normalise_habitat(d.habitat))
        deps[d.deployment_id] = (d.location_id, d.utc_offset_min)
    region_of = regions_of_points(coords, regions)
    location_ids = sorted(set(coords) | {o.location_id for o in observations})
    no_coords = sorted({o.location_id for o in observations} - set(coords))
    if no_coords:
        log.warning("labelled locations %s have no deployment with coordinates: they count for the global prior only",
                    no_coords[:10])
    locations = {
        loc: Location(loc, *(coords[loc] if loc in coords else (None, None)), region_of.get(loc), habitats.get(loc, ""))
        for loc in location_ids
    }
    events: dict[tuple[str, str, str], list[LabelledObservation]] = defaultdict(list)
    for o in observations:
        events[(o.location_id, o.event_id, o.taxon_id)].append(o)
    counts: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for (location, _event, taxon), frames in events.items():
        times = [f.timestamp for f in frames if f.timestamp is not None]
        season = tod = ""
        loc = locations[location]
        if times and loc.latitude is not None and loc.longitude is not None:
            start = min(times)
            offset = deps.get(frames[0].deployment_id, (location, offsets.get(location, 0)))[1]
            season = season_of(start.month, loc.latitude)
            tod = time_of_day(start, latitude=loc.latitude, longitude=loc.longitude, utc_offset_min=offset)
        count = counts[(taxon, location, season, tod)]
        count[0] += 1
        count[1] += max(f.individuals for f in frames)
    links = tuple(Link(t, loc, s, tod, n, ind) for (t, loc, s, tod), (n, ind) in sorted(counts.items()))
    graph = KnowledgeGraph(dict(sorted(taxa.items())), locations, deps, tuple(regions), tuple(range_maps), links,
                           settings or PriorSettings())
    log.info("knowledge graph %s: %d taxa, %d locations (%d in a region, %d with a habitat), %d events in %d links, "
             "%d range maps", graph.version, len(taxa), len(locations), len(region_of), len(habitats),
             sum(link.events for link in links), len(links), len(range_maps))
    return graph


def load_knowledge_graph(path: Path) -> KnowledgeGraph:
    """Read a graph written by :meth:`KnowledgeGraph.save`.

    Raises:
        ModelNotFoundError: the file is missing, not a graph, of another format version, or its
            content does not match its version (edited or damaged).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(
            f"context model {path} not found; build it with `ecowatch train context --config "
            "conf/context.yaml` (labels, deployments, regions and range maps from the catalog)."
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelNotFoundError(f"{path} is not a context model (not JSON: {exc}).") from exc
    if not isinstance(record, dict) or record.get("format") != GRAPH_FORMAT:
        raise ModelNotFoundError(f"{path} is not an ecowatch context model (format {record.get('format')!r}).")
    if record.get("format_version") != GRAPH_FORMAT_VERSION:
        raise ModelNotFoundError(f"{path} has context-model format version {record.get('format_version')!r}; this "
                                 f"ecowatch reads version {GRAPH_FORMAT_VERSION} (version 2 added site habitats). "
                                 "Rebuild it with `ecowatch train context --config conf/context.yaml`.")
    try:
        columns = record["links"]["columns"]
        graph = KnowledgeGraph(
            taxa={r[0]: Taxon(*r) for r in record["taxa"]},
            locations={r["location_id"]: Location(**r) for r in record["locations"]},
            deployments={d: (loc, int(off)) for d, loc, off in record["deployments"]},
            regions=tuple(RegionPolygon(**r) for r in record["regions"]),
            range_maps=tuple(RangeMap(**r) for r in record["range_maps"]),
            links=tuple(Link(**dict(zip(columns, row, strict=True))) for row in record["links"]["rows"]),
            settings=PriorSettings(**record["settings"]),
            version=str(record["version"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelNotFoundError(f"{path}: damaged context model ({type(exc).__name__}: {exc}); rebuild it.") from exc
    if graph.content_version() != graph.version:
        raise ModelNotFoundError(f"{path}: content does not match its version {graph.version} (edited or damaged); "
                                 "rebuild it.")
    return graph

