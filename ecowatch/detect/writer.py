"""Writing detections to the results store, one transaction per batch.

For every image of a batch, its detection rows and its ``detector_done`` row are inserted in
the same transaction: either the whole batch is in the store or none of it is. Detection ids are
deterministic, ``<media_id>:<detector_version>:<index>`` with the index counting detections of that
image in descending confidence, and inserts ignore existing keys. So a run that is killed and
started again skips the batches already written (they have ``detector_done`` rows), redoes the
interrupted one, and ends with exactly the rows of an uninterrupted run: no duplicates, no gaps.

An image that could not be decoded gets a ``detect_unreadable`` flag and no ``detector_done`` row,
so the next run tries it again.

Each row's ``tile`` says which input the box came from: ``"full"`` for the whole image (every box
of an untiled run), ``"x0,y0,w,h"`` (pixels of the image) for a tile of a tiled run. The box
itself is always ``bbox_xywhn`` of the whole image.

In a distributed run (several processes, see :mod:`ecowatch.distributed`) the same rows go to
the process's shard instead, one line per batch, and rank 0 merges every shard into the store
when prediction ends (:class:`~ecowatch.shards.ShardSink`): the same rows, the same ids, each once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ecowatch.detect.module import ImageDetections
from ecowatch.detect.tiling import FULL_FRAME
from ecowatch.errors import ModelNotFoundError
from ecowatch.shards import ShardRecord, ShardSink
from ecowatch.store import Store
from ecowatch.store import schema as S
from ecowatch.store_writer import StoreBatchWriter

log = logging.getLogger(__name__)

#: Flag put on a media row whose file cannot be decoded by the detect stage.
DETECT_UNREADABLE = "detect_unreadable"

#: Tile label of detections on the whole image (tiled runs name the tile in pixels instead).
FULL_IMAGE_TILE = FULL_FRAME

#: The tables a detection batch fills, parents first.
DETECT_TABLES = (S.detections, S.detector_done, S.media_flags)

_ID_LENGTH = S.detections.c.detection_id.type.length or 64


def detection_id(media_id: str, detector_version: str, index: int) -> str:
    """The deterministic id of the ``index``-th detection (by descending confidence) of one image.

    Raises:
        ValueError: the id would not fit the ``detection_id`` column (64 characters).
    """
    value = f"{media_id}:{detector_version}:{index}"
    if len(value) > _ID_LENGTH:
        raise ValueError(f"detection id {value!r} is longer than {_ID_LENGTH} characters")
    return value


@dataclass
class WriteCounts:
    """What the writer has written so far.

    Attributes:
        media_done: images recorded in ``detector_done`` (with or without detections).
        media_failed: images that could not be decoded (flagged, not done).
        media_tiled: of the images done, those that were cut into tiles.
        detections: detection rows inserted.
        batches: batches committed.
        per_category: detections per category in the written batches.
    """

    media_done: int = 0
    media_failed: int = 0
    media_tiled: int = 0
    detections: int = 0
    batches: int = 0
    per_category: dict[str, int] = field(default_factory=dict)


class StoreDetectionWriter(StoreBatchWriter):
    """Writes each predicted batch into the store (``write_on_batch_end``), or into a shard.

    Args:
        store: the results store.
        detector_name: name recorded in ``detections.detector_name``.
        detector_version: version recorded in ``detections.detector_version`` and ``detector_done``.
        class_map: class index of the network to category (``animal``, ``person``, ``vehicle``).
        run_id: the pipeline run writing the rows.
        shards: in a distributed run, this process's shard: batches are appended to it, and when
            prediction ends rank 0 merges every process's shard into the store (then ``counts``
            of rank 0 are those of the whole run). None: each batch is committed to the store.
    """

    def __init__(
        self,
        store: Store,
        *,
        detector_name: str,
        detector_version: str,
        class_map: Mapping[int, str],
        run_id: str,
        shards: ShardSink | None = None,
    ) -> None:
        super().__init__(store, tables=DETECT_TABLES, counted=S.detections, run_id=run_id, shards=shards)
        self.detector_name = detector_name
        self.detector_version = detector_version
        self.class_map = dict(class_map)
        self.counts = WriteCounts()

    def count(self, prediction: Sequence[ImageDetections], record: ShardRecord, inserted: int) -> None:
        """Add a written batch to :attr:`counts`."""
        rows = record["rows"]
        self.counts.batches += 1
        self.counts.media_done += len(rows[S.detector_done.name])
        self.counts.media_failed += len(rows[S.media_flags.name])
        self.counts.media_tiled += len(record["tiled"])
        self.counts.detections += inserted
        for row in rows[S.detections.name]:
            self.counts.per_category[row["category"]] = self.counts.per_category.get(row["category"], 0) + 1

    def tally(self) -> _MergeTally:
        """Counts of merged shard records (distributed run)."""
        return _MergeTally()

    def record(self, prediction: Sequence[ImageDetections]) -> ShardRecord:
        """The rows of some images, without ``run_id`` (filled in when they are inserted).

        Returns:
            ``{"rows": {table: rows}, "tiled": [media ids of images cut into tiles]}``.
        """
        detections: list[dict[str, Any]] = []
        done: list[dict[str, Any]] = []
        flags: list[dict[str, Any]] = []
        tiled: list[str] = []
        for image in prediction:
            if image.error is not None:
                flags.append({"media_id": image.media_id, "flag": DETECT_UNREADABLE,
                              "message": f"the detect stage could not decode the file: {image.error}"})
                continue
            detections.extend(self._rows(image))
            done.append({"media_id": image.media_id, "detector_version": self.detector_version})
            if image.tiles > 0:
                tiled.append(image.media_id)
        rows = {S.detections.name: detections, S.detector_done.name: done, S.media_flags.name: flags}
        return {"rows": rows, "tiled": tiled}

    def _rows(self, image: ImageDetections) -> list[dict[str, Any]]:
        # Descending confidence, ties broken by position: the index in the id is reproducible.
        order = np.lexsort((image.bbox_xywhn[:, 1], image.bbox_xywhn[:, 0], -image.conf))
        rows = []
        for index, k in enumerate(order):
            class_id = int(image.class_id[k])
            category = self.class_map.get(class_id)
            if category is None:
                raise ModelNotFoundError(
                    f"detector {self.detector_name!r} predicted class {class_id}, which its class map "
                    f"{self.class_map} does not name."
                )
            x, y, w, h = (float(v) for v in image.bbox_xywhn[k])
            rows.append({
                "detection_id": detection_id(image.media_id, self.detector_version, index),
                "media_id": image.media_id,
                "category": category,
                "conf": float(image.conf[k]),
                "x": x, "y": y, "w": w, "h": h,
                "detector_name": self.detector_name,
                "detector_version": self.detector_version,
                "tile": FULL_IMAGE_TILE if image.tile is None else image.tile[k],
                "static_fp": False,
            })
        return rows


class _MergeTally:
    """Counts of the merged records of a distributed run, each image and detection once.

    Lightning's distributed sampler may give an image to two processes; its rows are then in
    two shards and in the store once, and counted once here.
    """

    def __init__(self) -> None:
        self.batches = 0
        self.done: set[str] = set()
        self.failed: set[str] = set()
        self.tiled: set[str] = set()
        self.category: dict[str, str] = {}  # detection id -> category

    def __call__(self, record: ShardRecord) -> None:
        rows = record["rows"]
        self.batches += 1
        self.done.update(row["media_id"] for row in rows.get(S.detector_done.name, ()))
        self.failed.update(row["media_id"] for row in rows.get(S.media_flags.name, ()))
        self.tiled.update(record.get("tiled", ()))
        self.category.update((row["detection_id"], row["category"]) for row in rows.get(S.detections.name, ()))

    def counts(self, inserted: int) -> WriteCounts:
        per_category: dict[str, int] = {}
        for category in self.category.values():
            per_category[category] = per_category.get(category, 0) + 1
        return WriteCounts(media_done=len(self.done), media_failed=len(self.failed - self.done),
                           media_tiled=len(self.tiled), detections=inserted, batches=self.batches,
                           per_category=per_category)
