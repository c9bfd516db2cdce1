"""Taxonomy and ecology of the synthetic species: who lives where, when, and at what hour.

Everything the generator draws is a real European mammal taxon with a stable taxon id. The
ecology tables are invented but plausible and deliberately informative: relative abundance per
region (zero means absent, and the species' range map excludes that region), a preference per
habitat of the camera site (:data:`HABITAT_PREFERENCE`: a woodland specialist is rare at a camera by
the village, a synanthropic one common), a month profile (rut, cubs, hibernation-like lulls, mast
years) and a daily activity pattern driven by the sun's elevation, so that location, habitat, season
and hour carry real information for a context prior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecowatch.tables import taxon_id_for

# Ranks above species shared by every mammal here: (rank, scientific name, common name).
_MAMMALIA = (
    ("kingdom", "Animalia", "animals"),
    ("phylum", "Chordata", "chordates"),
    ("class", "Mammalia", "mammals"),
)

_ORDER_NAMES = {
    "Carnivora": "carnivores",
    "Artiodactyla": "even-toed ungulates",
    "Rodentia": "rodents",
    "Lagomorpha": "hares and rabbits",
    "Primates": "primates",
}
_FAMILY_NAMES = {
    "Canidae": "dogs and foxes",
    "Mustelidae": "mustelids",
    "Felidae": "cats",
    "Suidae": "pigs",
    "Cervidae": "deer",
    "Sciuridae": "squirrels",
    "Leporidae": "hares and rabbits",
    "Hominidae": "great apes",
}
_GENUS_NAMES = {
    "Vulpes": "true foxes",
    "Meles": "Eurasian badgers",
    "Martes": "martens",
    "Felis": "small cats",
    "Sus": "pigs",
    "Capreolus": "roe deer",
    "Cervus": "red deer and allies",
    "Dama": "fallow deer",
    "Sciurus": "tree squirrels",
    "Lepus": "hares",
    "Homo": "humans",
}

# Daily activity patterns (see :func:`activity_weight`).
NOCTURNAL = "nocturnal"
DIURNAL = "diurnal"
CREPUSCULAR = "crepuscular"
CATHEMERAL = "cathemeral"


@dataclass(frozen=True)
class SpeciesEcology:
    """What the generator needs to know about one species apart from how it looks.

    Attributes:
        key: short snake-case key used in code and file names, e.g. ``"red_fox"``.
        common_name: English common name (the COCO category name).
        scientific_name: binomial.
        order: taxonomic order.
        family: taxonomic family.
        torso_length_m: length of the trunk (shoulder to rump) of an adult, metres.
        abundance: relative abundance per region key; 0 or missing = absent from that region.
        month_profile: 12 multipliers, January first (season of activity/visibility).
        activity: one of ``nocturnal``, ``diurnal``, ``crepuscular``, ``cathemeral``.
        group_sizes: (size, weight) pairs for the number of individuals in one event.
        walk_speed_m_s: typical speed when moving.
        trigger_range_m: (nearest, farthest) distance at which it triggers the camera.
        lookalike: key of the species it is most easily confused with, or ``""``.
        lookalike_trait: the one trait that separates the pair (documentation and tests).
    """

    key: str
    common_name: str
    scientific_name: str
    order: str
    family: str
    torso_length_m: float
    abundance: dict[str, float]
    month_profile: tuple[float, ...]
    activity: str
    group_sizes: tuple[tuple[int, float], ...] = ((1, 1.0),)
    walk_speed_m_s: float = 1.0
    trigger_range_m: tuple[float, float] = (1.5, 10.0)
    lookalike: str = ""
    lookalike_trait: str = ""

    @property
    def genus(self) -> str:
        """Genus, the first word of the binomial."""
        return self.scientific_name.split()[0]


def _flat(value: float = 1.0) -> tuple[float, ...]:
    return (value,) * 12


SPECIES: tuple[SpeciesEcology, ...] = (
    SpeciesEcology(
        "red_fox", "red fox", "Vulpes vulpes", "Carnivora", "Canidae", 0.42,
        {"wessex": 1.0, "hessen": 1.0, "engadin": 0.8},
        (1.4, 1.3, 1.0, 0.9, 0.9, 1.2, 1.3, 1.1, 0.9, 0.9, 1.0, 1.2), CREPUSCULAR,
        ((1, 0.85), (2, 0.1), (3, 0.05)), 1.2, (1.5, 14.0),
    ),
    SpeciesEcology(
        "badger", "European badger", "Meles meles", "Carnivora", "Mustelidae", 0.50,
        {"wessex": 1.0, "hessen": 0.8, "engadin": 0.3},
        (0.3, 0.4, 0.9, 1.2, 1.3, 1.3, 1.3, 1.2, 1.1, 1.0, 0.6, 0.3), NOCTURNAL,
        ((1, 0.75), (2, 0.2), (3, 0.05)), 0.8, (1.5, 10.0),
    ),
    SpeciesEcology(
        "wild_boar", "wild boar", "Sus scrofa", "Artiodactyla", "Suidae", 0.85,
        {"wessex": 0.15, "hessen": 1.4, "engadin": 0.08},
        (1.0, 0.9, 0.8, 0.8, 0.9, 1.0, 1.0, 1.1, 1.3, 1.5, 1.4, 1.1), NOCTURNAL,
        ((1, 0.4), (2, 0.2), (3, 0.2), (4, 0.12), (5, 0.08)), 1.0, (2.0, 18.0),
    ),
    SpeciesEcology(
        "roe_deer", "roe deer", "Capreolus capreolus", "Artiodactyla", "Cervidae", 0.70,
        {"wessex": 1.0, "hessen": 1.2, "engadin": 0.6},
        (0.8, 0.8, 0.9, 1.2, 1.3, 1.2, 1.4, 1.3, 0.9, 0.8, 0.8, 0.8), CREPUSCULAR,
        ((1, 0.6), (2, 0.3), (3, 0.1)), 1.0, (2.0, 18.0),
    ),
    SpeciesEcology(
        "red_deer", "red deer", "Cervus elaphus", "Artiodactyla", "Cervidae", 1.20,
        {"wessex": 0.3, "hessen": 0.7, "engadin": 1.3},
        (0.8, 0.8, 0.9, 1.0, 1.0, 1.0, 1.0, 1.1, 1.6, 1.5, 0.9, 0.8), CREPUSCULAR,
        ((1, 0.4), (2, 0.25), (3, 0.15), (4, 0.12), (5, 0.08)), 1.1, (3.0, 22.0),
        "fallow_deer", "red deer: plain coat, buff rump patch, short tail; fallow: white spots, "
        "white rump framed black and a long black-striped tail",
    ),
    SpeciesEcology(
        "fallow_deer", "fallow deer", "Dama dama", "Artiodactyla", "Cervidae", 0.95,
        {"wessex": 1.2, "hessen": 0.4},
        (0.9, 0.9, 0.9, 1.0, 1.0, 1.1, 1.1, 1.1, 1.1, 1.6, 1.0, 0.9), CREPUSCULAR,
        ((1, 0.35), (2, 0.25), (3, 0.2), (4, 0.12), (5, 0.08)), 1.0, (2.5, 20.0),
        "red_deer", "see red deer",
    ),
    SpeciesEcology(
        "pine_marten", "pine marten", "Martes martes", "Carnivora", "Mustelidae", 0.30,
        {"wessex": 0.1, "hessen": 0.35, "engadin": 0.5},
        (0.8, 0.8, 0.9, 1.0, 1.0, 1.2, 1.3, 1.3, 1.1, 1.0, 0.9, 0.8), NOCTURNAL,
        ((1, 1.0),), 1.3, (1.2, 8.0),
        "stone_marten", "pine marten: dark brown with a rounded yellow-orange throat bib; stone "
        "marten: paler grey-brown with a white bib forked down onto the forelegs",
    ),
    SpeciesEcology(
        "stone_marten", "stone marten", "Martes foina", "Carnivora", "Mustelidae", 0.30,
        {"hessen": 0.6, "engadin": 0.45},
        (0.9, 0.9, 0.9, 1.0, 1.0, 1.1, 1.2, 1.2, 1.1, 1.0, 0.9, 0.9), NOCTURNAL,
        ((1, 1.0),), 1.3, (1.2, 8.0),
        "pine_marten", "see pine marten",
    ),
    SpeciesEcology(
        "red_squirrel", "Eurasian red squirrel", "Sciurus vulgaris", "Rodentia", "Sciuridae", 0.14,
        {"hessen": 0.7, "engadin": 0.9},
        (0.5, 0.6, 0.8, 1.0, 1.0, 1.0, 1.0, 1.2, 1.6, 1.6, 1.0, 0.6), DIURNAL,
        ((1, 0.9), (2, 0.1)), 1.4, (1.0, 5.0),
        "grey_squirrel", "red squirrel: orange-red and darker, ear tufts; grey squirrel: grey, "
        "paler, no ear tufts, white-fringed tail",
    ),
    SpeciesEcology(
        "grey_squirrel", "eastern grey squirrel", "Sciurus carolinensis", "Rodentia", "Sciuridae", 0.17,
        {"wessex": 1.3},
        (0.6, 0.7, 0.9, 1.0, 1.0, 1.0, 1.0, 1.2, 1.5, 1.5, 1.0, 0.7), DIURNAL,
        ((1, 0.85), (2, 0.15)), 1.4, (1.0, 5.5),
        "red_squirrel", "see red squirrel",
    ),
    SpeciesEcology(
        "brown_hare", "European hare", "Lepus europaeus", "Lagomorpha", "Leporidae", 0.38,
        {"wessex": 0.4, "hessen": 0.5, "engadin": 0.1},
        (0.8, 1.1, 1.6, 1.5, 1.2, 1.0, 1.0, 0.9, 0.8, 0.8, 0.8, 0.8), NOCTURNAL,
        ((1, 0.85), (2, 0.15)), 1.5, (1.5, 12.0),
        "mountain_hare", "brown hare: ears much longer than the head with black tips, tail black "
        "on top; mountain hare: shorter ears, all-white tail, white coat in winter",
    ),
    SpeciesEcology(
        "mountain_hare", "mountain hare", "Lepus timidus", "Lagomorpha", "Leporidae", 0.33,
        {"engadin": 0.8},
        (1.3, 1.3, 1.2, 1.0, 0.9, 0.8, 0.8, 0.8, 0.9, 1.0, 1.2, 1.3), NOCTURNAL,
        ((1, 1.0),), 1.5, (1.5, 12.0),
        "brown_hare", "see brown hare",
    ),
    SpeciesEcology(
        "wildcat", "European wildcat", "Felis silvestris", "Carnivora", "Felidae", 0.36,
        {"hessen": 0.35},
        (1.1, 1.2, 1.1, 1.0, 1.0, 0.9, 0.9, 0.9, 1.0, 1.0, 1.0, 1.0), NOCTURNAL,
        ((1, 1.0),), 1.0, (1.5, 10.0),
        "domestic_cat", "wildcat: thick tail with 3-5 black rings and a blunt black tip, black "
        "dorsal line; domestic cat: thin tail tapering to a point",
    ),
    SpeciesEcology(
        "domestic_cat", "domestic cat", "Felis catus", "Carnivora", "Felidae", 0.32,
        {"wessex": 0.5, "hessen": 0.25, "engadin": 0.05},
        _flat(), CATHEMERAL,
        ((1, 1.0),), 1.0, (1.5, 10.0),
        "wildcat", "see wildcat",
    ),
)

SPECIES_BY_KEY: dict[str, SpeciesEcology] = {s.key: s for s in SPECIES}

#: Look-alike pairs (each pair once) with the trait that separates them.
LOOKALIKE_PAIRS: tuple[tuple[str, str, str], ...] = tuple(
    (s.key, s.lookalike, s.lookalike_trait)
    for s in SPECIES
    if s.lookalike and not s.lookalike_trait.startswith("see ")
)

#: Habitats of camera sites, as written in the deployments table's ``habitat`` column.
WOODLAND, FARMLAND, SETTLEMENT, UPLAND = "woodland", "farmland", "settlement edge", "open upland"
HABITATS: tuple[str, ...] = (WOODLAND, FARMLAND, SETTLEMENT, UPLAND)

#: Share of each region's camera sites in each habitat.
HABITAT_MIX: dict[str, dict[str, float]] = {
    "wessex": {WOODLAND: 0.45, FARMLAND: 0.3, SETTLEMENT: 0.25},
    "hessen": {WOODLAND: 0.5, FARMLAND: 0.3, SETTLEMENT: 0.2},
    "engadin": {WOODLAND: 0.4, SETTLEMENT: 0.15, UPLAND: 0.45},
}

#: Relative abundance of a species at a camera site of a habitat (multiplies the region's).
#: Invented, after the broad habitat use of each species: pine marten, wildcat and red squirrel
#: are forest animals; stone marten and domestic cat live around buildings; brown hare on
#: farmland, mountain hare on open upland; red deer in forest and on open hill, fallow in
#: parkland and farmland.
HABITAT_PREFERENCE: dict[str, dict[str, float]] = {
    "red_fox": {WOODLAND: 1.0, FARMLAND: 1.2, SETTLEMENT: 1.4, UPLAND: 0.7},
    "badger": {WOODLAND: 1.3, FARMLAND: 1.0, SETTLEMENT: 0.6, UPLAND: 0.4},
    "wild_boar": {WOODLAND: 1.5, FARMLAND: 1.0, SETTLEMENT: 0.2, UPLAND: 0.4},
    "roe_deer": {WOODLAND: 1.2, FARMLAND: 1.2, SETTLEMENT: 0.3, UPLAND: 0.6},
    "red_deer": {WOODLAND: 1.2, FARMLAND: 0.3, SETTLEMENT: 0.05, UPLAND: 1.6},
    "fallow_deer": {WOODLAND: 1.0, FARMLAND: 1.3, SETTLEMENT: 0.3, UPLAND: 0.1},
    "pine_marten": {WOODLAND: 1.8, FARMLAND: 0.2, SETTLEMENT: 0.05, UPLAND: 0.5},
    "stone_marten": {WOODLAND: 0.2, FARMLAND: 0.8, SETTLEMENT: 2.0, UPLAND: 0.4},
    "red_squirrel": {WOODLAND: 1.6, FARMLAND: 0.2, SETTLEMENT: 0.4, UPLAND: 0.3},
    "grey_squirrel": {WOODLAND: 1.2, FARMLAND: 0.4, SETTLEMENT: 1.5, UPLAND: 0.1},
    "brown_hare": {WOODLAND: 0.2, FARMLAND: 2.0, SETTLEMENT: 0.3, UPLAND: 0.4},
    "mountain_hare": {WOODLAND: 0.3, FARMLAND: 0.1, SETTLEMENT: 0.05, UPLAND: 2.0},
    "wildcat": {WOODLAND: 1.8, FARMLAND: 0.4, SETTLEMENT: 0.05, UPLAND: 0.3},
    "domestic_cat": {WOODLAND: 0.15, FARMLAND: 0.8, SETTLEMENT: 2.5, UPLAND: 0.1},
}

HUMAN = ("human", "Homo sapiens", "Primates", "Hominidae")

# Month profiles of the non-animal triggers.
PERSON_MONTHS = {
    "wessex": (0.6, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.6, 1.2, 1.0, 0.7, 0.6),
    "hessen": (0.5, 0.5, 0.7, 1.0, 1.2, 1.3, 1.4, 1.4, 1.2, 1.1, 0.8, 0.6),
    "engadin": (0.3, 0.4, 0.4, 0.4, 0.6, 1.6, 2.2, 2.2, 1.4, 0.8, 0.2, 0.2),
}
VEHICLE_MONTHS = {
    "wessex": _flat(),
    "hessen": (0.8, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.1, 1.3, 1.3, 1.0),  # forestry work
    "engadin": (0.1, 0.1, 0.1, 0.2, 0.6, 1.4, 1.6, 1.6, 1.2, 0.6, 0.1, 0.1),
}


def activity_weight(pattern: str, sun_elevation_deg: np.ndarray | float) -> np.ndarray:
    """Relative activity of a daily pattern at given sun elevations.

    Args:
        pattern: ``nocturnal``, ``diurnal``, ``crepuscular`` or ``cathemeral``.
        sun_elevation_deg: sun elevation(s) above the horizon in degrees (negative at night).

    Returns:
        Non-negative weights shaped like the input; only ratios matter.

    Raises:
        ValueError: unknown pattern (a programming error: patterns come from this module).
    """
    e = np.asarray(sun_elevation_deg, dtype=float)
    night = np.clip((3.0 - e) / 9.0, 0.0, 1.0)  # 1 below -6 deg, 0 above +3 deg
    twilight = 2.0 ** (-(((e + 1.0) / 6.0) ** 2))  # peaks around sunrise/sunset
    if pattern == NOCTURNAL:
        return 0.03 + night + 0.5 * twilight
    if pattern == DIURNAL:
        morning_peak = 0.6 * 2.0 ** (-(((e - 18.0) / 10.0) ** 2))
        return 0.005 + (1.0 - night) * (0.6 + morning_peak)
    if pattern == CREPUSCULAR:
        return 0.08 + 0.35 * night + 1.6 * twilight
    if pattern == CATHEMERAL:
        return 0.5 + 0.4 * night
    raise ValueError(f"unknown activity pattern {pattern!r}")


@dataclass(frozen=True)
class TaxonRow:
    """One taxonomy node (a row of ``taxonomy.csv``); ``lineage`` maps rank -> name."""

    taxon_id: str
    scientific_name: str
    rank: str
    parent_id: str
    common_name: str
    lineage: dict[str, str]


def taxonomy_rows() -> list[TaxonRow]:
    """Every node from kingdom to species for all species plus humans, parents first.

    Returns:
        Rows in a stable order; each parent appears before its children.
    """
    lineages = [
        (s.order, s.family, s.genus, s.scientific_name, s.common_name) for s in SPECIES
    ] + [(HUMAN[2], HUMAN[3], HUMAN[1].split()[0], HUMAN[1], HUMAN[0])]
    rows: dict[str, TaxonRow] = {}
    for order, family, genus, binomial, common in lineages:
        chain = list(_MAMMALIA) + [
            ("order", order, _ORDER_NAMES[order]),
            ("family", family, _FAMILY_NAMES[family]),
            ("genus", genus, _GENUS_NAMES[genus]),
            ("species", binomial, common),
        ]
        parent = ""
        lineage: dict[str, str] = {}
        for rank, name, common_name in chain:
            lineage = {**lineage, rank: name}
            tid = taxon_id_for(name)
            if tid not in rows:
                rows[tid] = TaxonRow(tid, name, rank, parent, common_name, lineage)
            parent = tid
    return list(rows.values())
