"""Places as context: region polygons, the region of a point, and range maps as soft geofences.

Both kinds of polygons are read with geopandas (GeoJSON, GeoPackage, Shapefile: anything
``geopandas.read_file`` opens) and reprojected to WGS84 (EPSG:4326) longitude/latitude.

- Regions: one polygon per region; its id is the ``region`` column (else ``id``, else ``name``).
  A camera's region is the region polygon that contains its point (a geopandas ``sjoin``,
  predicate ``within``); a point in no polygon has no region.
- Range maps: one or more (multi)polygons per taxon; the taxon is the ``taxon_id`` column, else the
  ``scientific_name`` column turned into a taxon id (:func:`ecowatch.tables.taxon_id_for`). Several
  rows of one taxon are united.

Geometries travel inside the knowledge-graph artefact as WKT, so a saved graph needs no other file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ecowatch.errors import InputDataError
from ecowatch.tables import taxon_id_for

if TYPE_CHECKING:
    import geopandas as gpd

WGS84 = "EPSG:4326"
_REGION_ID_COLUMNS = ("region", "id", "name")


@dataclass(frozen=True)
class RegionPolygon:
    """One region.

    Attributes:
        region_id: the region's id (its ``region``/``id``/``name`` value).
        name: a human name (the ``name`` column when present, else the id).
        wkt: the polygon in WKT, WGS84 longitude/latitude.
    """

    region_id: str
    name: str
    wkt: str


@dataclass(frozen=True)
class RangeMap:
    """The range of one taxon.

    Attributes:
        taxon_id: the taxon.
        wkt: its (multi)polygon in WKT, WGS84 longitude/latitude.
    """

    taxon_id: str
    wkt: str


def _read(path: Path, what: str) -> gpd.GeoDataFrame:
    import geopandas as gpd

    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{what} file {path} not found; check its entry in data_catalog/catalog.yaml.")
    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - pyogrio/fiona raise many types; all mean "unreadable"
        raise InputDataError(f"{path}: not a readable {what} file ({type(exc).__name__}: {exc}).") from exc
    if frame.crs is None:
        raise InputDataError(f"{path}: the {what} have no coordinate reference system; save them with one "
                             "(e.g. EPSG:4326).")
    return frame.to_crs(WGS84)


def read_regions(path: Path) -> list[RegionPolygon]:
    """Read region polygons.

    Args:
        path: GeoJSON / GeoPackage / Shapefile with one polygon per region.

    Returns:
        The regions, sorted by id.

    Raises:
        InputDataError: missing or unreadable file, no CRS, no id column, or an id used twice.
    """
    frame = _read(path, "region polygons")
    column = next((c for c in _REGION_ID_COLUMNS if c in frame.columns), None)
    if column is None:
        raise InputDataError(f"{path}: region polygons need an id column, one of {list(_REGION_ID_COLUMNS)}; "
                             f"found {[c for c in frame.columns if c != 'geometry']}.")
    ids = [str(v) for v in frame[column]]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise InputDataError(f"{path}: region ids {duplicated} appear more than once; give each polygon its own id.")
    names = [str(v) for v in frame["name"]] if "name" in frame.columns and column != "name" else ids
    return sorted((RegionPolygon(i, n, g.wkt) for i, n, g in zip(ids, names, frame.geometry, strict=True)),
                  key=lambda r: r.region_id)


def read_range_maps(path: Path) -> list[RangeMap]:
    """Read range maps (one or more polygons per taxon).

    Args:
        path: GeoPackage / Shapefile / GeoJSON with a ``taxon_id`` or ``scientific_name`` column.

    Returns:
        One :class:`RangeMap` per taxon (rows of one taxon united), sorted by taxon id.

    Raises:
        InputDataError: missing or unreadable file, no CRS, or no taxon column.
    """
    frame = _read(path, "range maps")
    if "taxon_id" in frame.columns:
        taxa = [str(v) for v in frame["taxon_id"]]
    elif "scientific_name" in frame.columns:
        taxa = [taxon_id_for(str(v)) for v in frame["scientific_name"]]
    else:
        raise InputDataError(f"{path}: range maps need a 'taxon_id' or a 'scientific_name' column; found "
                             f"{[c for c in frame.columns if c != 'geometry']}.")
    frame = frame.assign(taxon_id_=taxa)
    united = frame.dissolve(by="taxon_id_")
    return [RangeMap(str(taxon), geometry.wkt) for taxon, geometry in sorted(united.geometry.items())]


def regions_of_points(points: Mapping[str, tuple[float, float]], regions: Sequence[RegionPolygon]) -> dict[str, str]:
    """The region containing each point (a geopandas spatial join).

    Args:
        points: id -> (latitude, longitude), WGS84 degrees.
        regions: region polygons.

    Returns:
        id -> region id, for the points inside a region (a point on two overlapping regions takes
        the first by id); points in no region are left out.
    """
    import geopandas as gpd
    from shapely import wkt as shapely_wkt
    from shapely.geometry import Point

    if not points or not regions:
        return {}
    ids = sorted(points)
    left = gpd.GeoDataFrame({"point_id": ids}, geometry=[Point(points[i][1], points[i][0]) for i in ids], crs=WGS84)
    right = gpd.GeoDataFrame({"region_id": [r.region_id for r in regions]},
                             geometry=[shapely_wkt.loads(r.wkt) for r in regions], crs=WGS84)
    joined = gpd.sjoin(left, right, how="inner", predicate="within").sort_values(["point_id", "region_id"])
    out: dict[str, str] = {}
    for point_id, region_id in zip(joined["point_id"], joined["region_id"], strict=True):
        out.setdefault(str(point_id), str(region_id))
    return out


class RangeIndex:
    """Point-in-range tests against range maps (geometries parsed once).

    Args:
        ranges: the range maps.
    """

    def __init__(self, ranges: Iterable[RangeMap]) -> None:
        from shapely import prepared
        from shapely import wkt as shapely_wkt

        self._prepared = {r.taxon_id: prepared.prep(shapely_wkt.loads(r.wkt)) for r in ranges}

    @property
    def taxa(self) -> frozenset[str]:
        """Taxa that have a range map."""
        return frozenset(self._prepared)

    def inside(self, taxon_id: str, latitude: float, longitude: float) -> bool | None:
        """True inside (or on the border of) the taxon's range, False outside, None without a range map."""
        from shapely.geometry import Point

        geometry = self._prepared.get(taxon_id)
        if geometry is None:
            return None
        return bool(geometry.intersects(Point(longitude, latitude)))
