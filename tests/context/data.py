"""Tiny, seeded fixture data of the context tests (run it to look at it: ``python -m tests.context.data OUT``).

Two square regions far apart, three camera locations, labelled events drawn from fixed
per-region species mixes, and range maps in which the grey squirrel lives only in the north:

=========  =====================  ==========================================================
region     box (lon, lat)         labelled events
=========  =====================  ==========================================================
north      0..1 E, 50..51 N        N1: red fox 30, pine marten 6, grey squirrel 4 (N2: none)
south      10..11 E, 45..46 N      S1: stone marten 20, wild boar 15, red fox 5
=========  =====================  ==========================================================

A fourth deployment (X1, 30 E 60 N) lies in no region. Taxa are the generator's real taxonomy.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np

from ecowatch.context.labels import LabelledObservation
from ecowatch.tables import Deployment, Taxon

SEED = 0
REPO = Path(__file__).resolve().parents[2]
REGIONS = {"north": (0.0, 50.0, 1.0, 51.0), "south": (10.0, 45.0, 11.0, 46.0)}  # lon0, lat0, lon1, lat1
#: location -> (latitude, longitude)
LOCATIONS = {"N1": (50.5, 0.5), "N2": (50.2, 0.8), "S1": (45.5, 10.5), "X1": (60.0, 30.0)}
EVENTS = {"N1": {"vulpes_vulpes": 30, "martes_martes": 6, "sciurus_carolinensis": 4},
          "S1": {"martes_foina": 20, "sus_scrofa": 15, "vulpes_vulpes": 5}}
#: taxon -> range box (lon0, lat0, lon1, lat1); taxa without one have no range map
RANGES = {"sciurus_carolinensis": (-2.0, 49.0, 3.0, 52.0), "sciurus_vulgaris": (-20.0, 30.0, 40.0, 70.0)}


def taxa() -> dict[str, Taxon]:
    """The generator's taxonomy (kingdom to species), by id."""
    from ecowatch.synth.taxa import taxonomy_rows

    return {r.taxon_id: Taxon(r.taxon_id, r.scientific_name, r.rank, r.parent_id, r.common_name)
            for r in taxonomy_rows()}


def deployments() -> list[Deployment]:
    """One deployment per location (``D-<location>``), all of 2025 at UTC+0."""
    start, end = dt.datetime(2025, 1, 1), dt.datetime(2025, 12, 31)
    return [Deployment(f"D-{loc}", loc, loc, lat, lon, start, end, 0) for loc, (lat, lon) in LOCATIONS.items()]


def observations(seed: int = SEED) -> list[LabelledObservation]:
    """Labelled events (two frames each) at seeded times; foxes and martens at night, squirrels by day."""
    rng = np.random.default_rng(seed)
    out = []
    for loc, counts in EVENTS.items():
        for taxon, n in counts.items():
            for k in range(n):
                day = dt.datetime(2025, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365)))
                hour = 12 if taxon.startswith("sciurus") else 1
                start = day + dt.timedelta(hours=hour, minutes=int(rng.integers(0, 60)))
                for frame in range(2):
                    out.append(LabelledObservation(taxon, loc, f"D-{loc}", f"{loc}-{taxon}-{k}",
                                                   start + dt.timedelta(seconds=frame), 1))
    return out


def write_polygons(out: Path) -> tuple[Path, Path]:
    """Write ``regions.geojson`` and ``range_maps.gpkg`` (EPSG:4326) into ``out``; returns both paths."""
    import geopandas as gpd
    from shapely.geometry import box

    out.mkdir(parents=True, exist_ok=True)
    regions = gpd.GeoDataFrame({"region": list(REGIONS), "name": [f"{r} region" for r in REGIONS]},
                               geometry=[box(*b) for b in REGIONS.values()], crs="EPSG:4326")
    ranges = gpd.GeoDataFrame({"taxon_id": list(RANGES)}, geometry=[box(*b) for b in RANGES.values()],
                              crs="EPSG:4326")
    regions.to_file(out / "regions.geojson", driver="GeoJSON")
    ranges.to_file(out / "range_maps.gpkg", layer="range_maps", driver="GPKG")
    return out / "regions.geojson", out / "range_maps.gpkg"


def write_untrained_checkpoint(taxonomy_csv: Path, path: Path, *, seed: int = SEED) -> Path:
    """A real standalone classifier checkpoint (an untrained, seeded MobileNetV3-small at 32 px) whose
    classes are the taxonomy's species except people; the fuse stage reads its classes and taxonomy.
    Another ``seed`` gives other weights, hence another model version."""
    import torch

    from ecowatch.classify.backbones import build_backbone
    from ecowatch.classify.checkpoint import save_classifier
    from ecowatch.classify.crops import CropGeometry
    from ecowatch.classify.openset import OpenSetCalibration
    from ecowatch.classify.taxonomy import ClassTaxonomy, species_ids
    from ecowatch.classify.transforms import Preprocessing
    from ecowatch.tables import read_taxonomy

    torch.manual_seed(seed)
    taxa = read_taxonomy(taxonomy_csv)
    taxonomy = ClassTaxonomy.from_taxa(taxa, species_ids(taxa, exclude=["homo_sapiens"]))
    return save_classifier(path, network=build_backbone("mobilenet_v3_small", taxonomy.num_classes, pretrained=False),
                           model_name="tiny-species", backbone="mobilenet_v3_small", taxonomy=taxonomy,
                           preprocessing=Preprocessing(CropGeometry(40), input_size=32), temperature=1.0,
                           open_set=OpenSetCalibration("energy", 0.0, 1.0, 0.95))


if __name__ == "__main__":  # pragma: no cover
    print(write_polygons(Path(sys.argv[1])))
