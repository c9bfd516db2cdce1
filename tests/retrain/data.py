"""Seeded fixture data of the retraining tests (run it to look at it: ``python -m tests.retrain.data OUT``).

One generated camera-trap dump (``ecowatch.synth``, 480x270 frames, 9 locations), cut by location
into the labelled sets of three retraining rounds, three clearly different species only:

- ``holdout.json``: every box of the three species at the 3 holdout locations (in every round);
- ``first_sites.json``: round 1, the first labelling effort: 2 other locations, red deer and fox
  only (no wild boar labelled yet), so the first champion cannot know boar;
- ``new_sites.json``: round 2, labels from the 4 remaining locations, all three species;
- ``new_sites_corrupted.json``: the same boxes with the species rotated (deer -> boar -> fox ->
  deer), as a broken re-export would be: round 3 overwrites ``new_sites.json`` with it.

Locations are assigned by a rule on the generated data (sorted by how many boxes they hold), so a
change of the generator does not break the tests as long as it keeps the species mixed.
"""

from __future__ import annotations

import itertools
import json
import shutil
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

SEED = 1
SPECIES = ("cervus_elaphus", "sus_scrofa", "vulpes_vulpes")
FIRST_SPECIES = ("cervus_elaphus", "vulpes_vulpes")
ROTATION = {"cervus_elaphus": "sus_scrofa", "sus_scrofa": "vulpes_vulpes", "vulpes_vulpes": "cervus_elaphus"}
DUMP_OVERRIDES = dict(seed=SEED, n_deployments=12, n_frames=900, image_size=(480, 270), workers=0,
                      include_broken_files=False, empty_fraction=0.2, n_days=120)


@dataclass(frozen=True)
class RoundsData:
    """Where the generated data is and how its locations were assigned."""

    root: Path
    holdout_locations: tuple[str, ...]
    first_locations: tuple[str, ...]
    new_locations: tuple[str, ...]

    @property
    def dump(self) -> Path:
        return self.root / "dump"

    @property
    def taxonomy(self) -> Path:
        return self.root / "taxonomy.csv"

    @property
    def deployments(self) -> Path:
        return self.root / "deployments.csv"


def _subset(coco: dict, keep: set[str], species: tuple[str, ...], rename: dict[str, str] | None = None) -> dict:
    images = {img["id"]: img for img in coco["images"] if img["location"] in keep}
    annotations = []
    for ann in coco["annotations"]:
        if ann["image_id"] in images and ann.get("bbox") and ann.get("taxon_id") in species:
            annotations.append({**ann, "taxon_id": (rename or {}).get(ann["taxon_id"], ann["taxon_id"])})
    used = {a["image_id"] for a in annotations}
    return {"info": coco.get("info", {}), "categories": coco["categories"],
            "images": [img for img in images.values() if img["id"] in used], "annotations": annotations}


def make_rounds(out: Path) -> RoundsData:
    """Generate the dump (about 6 s) and write the labelled sets; returns where they are."""
    from ecowatch.synth import DumpSpec, generate_dump

    generate_dump(out / "generated", DumpSpec.preset("tiny", **DUMP_OVERRIDES), overwrite=True)
    gen = out / "generated"
    for name in ("dump", "taxonomy.csv", "deployments.csv"):
        target = out / name
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        shutil.move(str(gen / name), target)
    coco = json.loads((gen / "coco_camera_traps.json").read_text())
    location = {img["id"]: img["location"] for img in coco["images"]}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for ann in coco["annotations"]:
        if ann.get("bbox") and ann.get("taxon_id") in SPECIES:
            counts[location[ann["image_id"]]][ann["taxon_id"]] += 1
    # the holdout: the 3 locations whose rarest species has the most boxes (then the fewest boxes in all);
    # round 1: the 2 smallest of the rest; round 2: the others
    def balance(trio: tuple[str, ...]) -> tuple[int, int]:
        total = sum((counts[loc] for loc in trio), Counter())
        return min(total[s] for s in SPECIES), -sum(total.values())

    holdout = max(itertools.combinations(sorted(counts), 3), key=balance)
    rest = sorted((loc for loc in counts if loc not in holdout), key=lambda loc: (sum(counts[loc].values()), loc))
    first, new = tuple(sorted(rest[:2])), tuple(sorted(rest[2:]))
    sets = {
        "holdout.json": _subset(coco, set(holdout), SPECIES),
        "first_sites.json": _subset(coco, set(first), FIRST_SPECIES),
        "new_sites.json": _subset(coco, set(new), SPECIES),
        "new_sites_corrupted.json": _subset(coco, set(new), SPECIES, ROTATION),
    }
    for name, data in sets.items():
        (out / name).write_text(json.dumps(data))
    shutil.rmtree(gen)
    return RoundsData(out, holdout, first, new)


if __name__ == "__main__":  # pragma: no cover
    data = make_rounds(Path(sys.argv[1]))
    for name in ("holdout.json", "first_sites.json", "new_sites.json"):
        anns = json.loads((data.root / name).read_text())["annotations"]
        print(name, dict(Counter(a["taxon_id"] for a in anns)))
    print(data)
