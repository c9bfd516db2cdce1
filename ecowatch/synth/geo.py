"""Geography of the synthetic world: regions, locations, range maps and the sun.

Three regions far apart (southern England, central German uplands, the Swiss Alps) with
different species assemblages, so a deployment's coordinates carry information. Range maps are
coarse hand-drawn sketches of real ranges (not survey data), consistent with the abundance
tables of :mod:`ecowatch.synth.taxa`: a species absent from a region has a range that excludes
that region.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from shapely.geometry import MultiPolygon, Point, Polygon, mapping
from shapely.ops import unary_union

from ecowatch.synth.taxa import SPECIES
from ecowatch.tables import taxon_id_for


@dataclass(frozen=True)
class Region:
    """A study region: deployments fall inside its polygon.

    Attributes:
        key: short key used by the ecology tables (``wessex``, ``hessen``, ``engadin``).
        code: three-letter prefix of location and deployment ids.
        name: human name.
        country: ISO 3166-1 alpha-2 country code.
        habitat: scene style key used by :mod:`ecowatch.synth.scene`.
        centre_lat: WGS84 latitude of the centre, degrees.
        centre_lon: WGS84 longitude of the centre, degrees.
        radius_deg: rough radius of the region polygon, degrees of latitude.
        utc_offset_min: camera clock offset from UTC (standard time; cameras ignore DST).
        elevation_m: typical elevation.
        place_names: names used for locations.
    """

    key: str
    code: str
    name: str
    country: str
    habitat: str
    centre_lat: float
    centre_lon: float
    radius_deg: float
    utc_offset_min: int
    elevation_m: float
    place_names: tuple[str, ...]

    def polygon(self) -> Polygon:
        """The region polygon: an irregular 9-gon around the centre (fixed, not seeded)."""
        radii = (1.0, 0.8, 0.95, 0.7, 1.05, 0.85, 0.9, 0.75, 1.0)
        lon_scale = 1.0 / math.cos(math.radians(self.centre_lat))
        points = []
        for i, r in enumerate(radii):
            angle = 2.0 * math.pi * i / len(radii) + 0.3
            points.append(
                (
                    self.centre_lon + self.radius_deg * r * lon_scale * math.cos(angle),
                    self.centre_lat + self.radius_deg * r * math.sin(angle),
                )
            )
        return Polygon(points)


REGIONS: tuple[Region, ...] = (
    Region(
        "wessex", "WSX", "New Forest, southern England", "GB", "lowland_broadleaf",
        50.87, -1.60, 0.14, 0, 40.0,
        ("Badger Hollow", "Beech Ride", "Holly Wood", "Heath Edge", "Oak Glade", "Fern Bank",
         "Stream Crossing", "Pony Track"),
    ),
    Region(
        "hessen", "HES", "Vogelsberg, central Germany", "DE", "beech_spruce",
        50.55, 9.25, 0.16, 60, 420.0,
        ("Buchenhang", "Wildwechsel", "Fichtenschlag", "Suhle", "Kahlschlag", "Bachgrund",
         "Forstweg", "Eichenkamp"),
    ),
    Region(
        "engadin", "ENG", "Lower Engadine, Swiss Alps", "CH", "subalpine",
        46.68, 10.20, 0.12, 60, 1850.0,
        ("Alp Buffalora", "Val Mingèr", "Larch Terrace", "Scree Foot", "Stabelchod", "Il Fuorn",
         "Marmot Meadow", "Pine Gully"),
    ),
)
REGIONS_BY_KEY: dict[str, Region] = {r.key: r for r in REGIONS}

# Coarse range sketches, (lon, lat) rings. Not survey data.
_RANGE_PARTS: dict[str, list[tuple[float, float]]] = {
    "great_britain": [(-5.7, 50.0), (1.8, 50.9), (1.7, 52.9), (0.2, 53.6), (-1.6, 55.6), (-2.0, 57.7),
                      (-3.0, 58.7), (-5.1, 58.6), (-6.2, 56.6), (-5.0, 55.0), (-3.2, 54.0), (-4.8, 53.2),
                      (-4.6, 52.0), (-5.3, 51.7), (-3.0, 51.2)],
    "scotland": [(-6.5, 55.0), (-1.5, 55.0), (-1.6, 55.6), (-2.0, 57.7), (-3.0, 58.7), (-5.1, 58.6),
                 (-6.2, 56.6)],
    "ireland": [(-10.5, 51.4), (-6.0, 52.0), (-5.5, 54.5), (-7.5, 55.4), (-10.2, 54.3)],
    "central_europe": [(-4.5, 48.5), (-1.0, 44.0), (5.0, 44.0), (6.0, 47.6), (16.0, 47.6), (24.0, 48.0),
                       (24.0, 54.5), (14.0, 54.5), (8.5, 55.0), (4.0, 51.5)],
    "alps": [(5.5, 44.0), (7.5, 43.8), (10.0, 45.6), (13.5, 46.0), (16.0, 47.0), (16.0, 47.6), (6.0, 47.6)],
    "scandinavia": [(5.0, 58.0), (12.0, 55.3), (19.0, 57.5), (21.5, 60.5), (30.0, 62.0), (30.0, 70.0),
                    (20.0, 70.0), (12.0, 66.0), (5.0, 62.0)],
}
_EVERYWHERE = ("great_britain", "ireland", "central_europe", "alps", "scandinavia")
_SPECIES_RANGE_PARTS: dict[str, tuple[str, ...]] = {
    "red_fox": _EVERYWHERE,
    "badger": _EVERYWHERE,
    "wild_boar": ("great_britain", "central_europe", "alps", "scandinavia"),
    "roe_deer": ("great_britain", "central_europe", "alps", "scandinavia"),
    "red_deer": _EVERYWHERE,
    "fallow_deer": ("great_britain", "ireland", "central_europe"),
    "pine_marten": _EVERYWHERE,
    "stone_marten": ("central_europe", "alps"),
    "red_squirrel": ("scotland", "ireland", "central_europe", "alps", "scandinavia"),
    "grey_squirrel": ("great_britain", "ireland"),
    "brown_hare": ("great_britain", "central_europe", "alps"),
    "mountain_hare": ("scotland", "ireland", "alps", "scandinavia"),
    "wildcat": ("scotland", "central_europe"),
    "domestic_cat": _EVERYWHERE,
}


def species_range(key: str) -> MultiPolygon:
    """The (multi)polygon range sketch of a species, WGS84 lon/lat.

    Raises:
        KeyError: unknown species key.
    """
    geometry = unary_union([Polygon(_RANGE_PARTS[part]) for part in _SPECIES_RANGE_PARTS[key]])
    return geometry if isinstance(geometry, MultiPolygon) else MultiPolygon([geometry])


def sample_point(region: Region, rng: np.random.Generator) -> tuple[float, float]:
    """A random (lat, lon) inside a region polygon, rounded to 5 decimals (about 1 m)."""
    polygon = region.polygon()
    min_lon, min_lat, max_lon, max_lat = polygon.bounds
    while True:
        lon = float(rng.uniform(min_lon, max_lon))
        lat = float(rng.uniform(min_lat, max_lat))
        if polygon.contains(Point(lon, lat)):
            return round(lat, 5), round(lon, 5)


def write_regions_geojson(path: Path, regions: tuple[Region, ...]) -> None:
    """Write the region polygons as a GeoJSON FeatureCollection (WGS84, RFC 7946)."""
    features = []
    for region in regions:
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "region": region.key,
                    "name": region.name,
                    "country": region.country,
                    "habitat": region.habitat,
                    "elevation_m": region.elevation_m,
                    "utc_offset_min": region.utc_offset_min,
                },
                "geometry": _rounded(mapping(region.polygon())),
            }
        )
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, indent=1) + "\n")


def _rounded(geometry: dict) -> dict:
    rings = [[[round(x, 6), round(y, 6)] for x, y in ring] for ring in geometry["coordinates"]]
    return {"type": geometry["type"], "coordinates": rings}


def write_range_maps(path: Path) -> None:
    """Write one MultiPolygon per species to a GeoPackage layer ``range_maps`` (EPSG:4326).

    Columns: ``species_key, taxon_id, scientific_name, common_name, geometry``. The GeoPackage
    timestamps are pinned so that the file is byte-identical run to run.
    """
    import geopandas as gpd
    import pyogrio

    frame = gpd.GeoDataFrame(
        {
            "species_key": [s.key for s in SPECIES],
            "taxon_id": [taxon_id_for(s.scientific_name) for s in SPECIES],
            "scientific_name": [s.scientific_name for s in SPECIES],
            "common_name": [s.common_name for s in SPECIES],
        },
        geometry=[species_range(s.key) for s in SPECIES],
        crs="EPSG:4326",
    )
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2000-01-01T00:00:00.000Z"})
    try:
        frame.to_file(path, layer="range_maps", driver="GPKG", engine="pyogrio")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})
