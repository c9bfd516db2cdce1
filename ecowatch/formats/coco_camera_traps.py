"""Reading a COCO Camera Traps file (the labels format of LILA and of ecowatch's generated dumps).

One loader for every reader of labels (detector training, classifier crops, context priors,
retraining intake, the detector's evaluation): it checks the three lists the format needs and
indexes them, and the callers keep only their own interpretation of the records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecowatch.errors import InputDataError


@dataclass(frozen=True)
class CocoCameraTraps:
    """A loaded COCO Camera Traps document.

    Attributes:
        path: the file.
        images: image records by ``id`` (``file_name``, ``width``, ``height``, ``location``,
            ``datetime``, ``seq_id`` ... as the file has them), in file order.
        categories: category records by ``id``.
        annotations: the annotation records, in file order (``image_id``, ``category_id``,
            optionally ``bbox`` in pixels [x, y, width, height] and ``taxon_id``).
    """

    path: Path
    images: dict[Any, dict[str, Any]]
    categories: dict[Any, dict[str, Any]]
    annotations: list[dict[str, Any]]


def load_coco_camera_traps(path: str | Path) -> CocoCameraTraps:
    """Load and index a COCO Camera Traps JSON file.

    Raises:
        InputDataError: the file is missing, not JSON, or lacks the ``images`` / ``annotations``
            lists (``categories`` may be absent: no category then).
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        images = {img["id"]: img for img in document["images"]}
        categories = {cat["id"]: cat for cat in document.get("categories", [])}
        annotations = list(document["annotations"])
    except FileNotFoundError as exc:
        raise InputDataError(f"{path}: labels file not found; check the catalog's labels entry.") from exc
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise InputDataError(f"{path}: not a COCO Camera Traps file ({type(exc).__name__}: {exc}); it needs "
                             "'images' and 'annotations' lists.") from exc
    return CocoCameraTraps(path, images, categories, annotations)
