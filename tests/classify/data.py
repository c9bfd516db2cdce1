"""Tiny, seeded fixture data of the classifier tests (run it to look at it: ``python -m tests.classify.data OUT``).

- :func:`make_dump`: a small synthetic SD-card dump with COCO Camera Traps truth (ecowatch.synth's
  ``tiny`` preset with more locations, so a location split has a train, a val and a test site).
- :func:`fake_image`: a flat-coloured frame with one bright rectangle, for crop geometry tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SEED = 0
#: The dump: 6 deployments at 5 locations, 160 frames of 480x270.
DUMP_OVERRIDES = dict(seed=SEED, n_deployments=6, n_frames=160, image_size=(480, 270), workers=0)


def make_dump(out: Path) -> Path:
    """Write the tiny dump (about 3 s) and return its folder (``dump/``, ``coco_camera_traps.json`` ...)."""
    from ecowatch.synth import DumpSpec, generate_dump

    generate_dump(out, DumpSpec.preset("tiny", **DUMP_OVERRIDES), overwrite=True)
    return out


def fake_image(width: int = 200, height: int = 100, *, box: tuple[int, int, int, int] = (80, 30, 40, 20),
               background: int = 50, value: int = 200) -> np.ndarray:
    """A grey ``uint8`` RGB frame with one rectangle ``box`` = (x, y, w, h) in pixels of grey ``value``."""
    image = np.full((height, width, 3), background, dtype=np.uint8)
    x, y, w, h = box
    image[y:y + h, x:x + w] = value
    return image


if __name__ == "__main__":  # pragma: no cover
    print(make_dump(Path(sys.argv[1])))
