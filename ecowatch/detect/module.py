"""The detector as a LightningModule whose ``predict_step`` returns detections per media id.

``predict_step`` runs the network on a letterboxed batch, then exactly what ultralytics'
predictors do after the forward pass: ``non_max_suppression`` for YOLO networks (the same call
and arguments as ``DetectionPredictor.postprocess``), score filtering for RT-DETR (as
``RTDETRPredictor.postprocess``), then ``scale_boxes`` back to the original image. Boxes leave as
``bbox_xywhn``: top-left x, y, width, height, normalised by the original (as displayed) width and
height, the MegaDetector convention.

On a GPU the network runs in fp16 when asked (as ultralytics' ``half=True``); on a CPU always in
fp32. The network and its input use the channels-last memory format.

Two deliberate differences from ultralytics: RT-DETR boxes are clipped to the image (ultralytics
leaves them overhanging; ``bbox_xywhn`` must lie in 0..1), and ultralytics' NMS stops after
``2 + 0.05 * batch`` seconds and silently returns no boxes for the rest of the batch. On a loaded
CPU (many low-confidence candidates, several jobs sharing cores) that would record images as done
with zero detections, so the limit here is :data:`NMS_SECONDS_PER_IMAGE` per image instead.

A :class:`~ecowatch.detect.data.TiledBatch` (tiled run) holds many network inputs per frame: they
run through the network ``max_inputs`` at a time, every input's boxes are post-processed as above
against its own rectangle of the frame (a tile or the whole frame) and shifted to frame pixels, and
the boxes of one frame are merged by :func:`~ecowatch.detect.tiling.merge_detections`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch

from ecowatch.detect.data import ImageBatch, TiledBatch
from ecowatch.detect.network import LoadedNetwork
from ecowatch.detect.tiling import FULL_FRAME, TileWindow, TilingParams, merge_detections

#: NMS time limit per image of a batch (ultralytics' 0.05 s can drop whole images under CPU load).
NMS_SECONDS_PER_IMAGE = 60.0


@dataclass(frozen=True)
class ImageDetections:
    """The detections of one image.

    Attributes:
        media_id: the media row's id.
        bbox_xywhn: ``float64`` array (N, 4): top-left x, y, width, height normalised to 0..1 by
            the original image's width and height.
        conf: ``float64`` array (N,): confidence 0..1, in descending order.
        class_id: ``int64`` array (N,): class index of the network (see the class map).
        error: why the image could not be decoded (then N = 0), or None.
        tile: per detection, the input it came from: ``"full"`` (the whole image) or the tile
            ``"x0,y0,w,h"`` in pixels of the image; None = every detection is ``"full"``.
        tiles: how many tiles the image was cut into (0 = it ran whole).
    """

    media_id: str
    bbox_xywhn: np.ndarray
    conf: np.ndarray
    class_id: np.ndarray
    error: str | None = None
    tile: tuple[str, ...] | None = None
    tiles: int = 0


@dataclass(frozen=True)
class PostprocessConfig:
    """Thresholds applied after the forward pass.

    Attributes:
        conf_threshold: minimum confidence (0..1) of a kept detection.
        iou_threshold: NMS intersection-over-union threshold (0..1); unused for RT-DETR.
        max_det: most detections kept per image.
        agnostic_nms: NMS across classes.
    """

    conf_threshold: float
    iou_threshold: float
    max_det: int
    agnostic_nms: bool = False


class DetectorModule(L.LightningModule):
    """Batched inference of an ultralytics detection network.

    Args:
        network: the loaded network (see :func:`ecowatch.detect.network.load_network`).
        postprocess: confidence/NMS settings.
        half: use fp16 when running on a CUDA device (ignored on CPU).
        channels_last: use the channels-last memory format for the network and its input.
        tiling: merge parameters of tiled batches (needed only for a :class:`TiledBatch`).
        max_inputs: most network inputs per forward pass of a tiled batch (None = all at once).
    """

    def __init__(
        self,
        network: LoadedNetwork,
        *,
        postprocess: PostprocessConfig,
        half: bool = True,
        channels_last: bool = True,
        tiling: TilingParams | None = None,
        max_inputs: int | None = None,
    ) -> None:
        super().__init__()
        self.network = network.model
        self.kind = network.kind
        self.end2end = network.end2end
        self.class_names: Mapping[int, str] = dict(network.names)
        self.post = postprocess
        self.half_on_gpu = half
        self.channels_last = channels_last
        self.tiling = tiling
        self.max_inputs = max_inputs
        self._fp16 = False

    def on_predict_start(self) -> None:
        """Put the network in eval mode and pick its precision and memory format for the device."""
        self.network.eval()
        self._fp16 = self.half_on_gpu and self.device.type == "cuda"
        if self._fp16:
            self.network.half()
        if self.channels_last:
            self.network.to(memory_format=torch.channels_last)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Run the network and the post-processing on a batch.

        Args:
            images: ``uint8`` tensor (B, 3, S, S), RGB, letterboxed.

        Returns:
            Per image a tensor (N, 6): x1, y1, x2, y2 in network-input pixels, confidence, class.
        """
        x = images.to(memory_format=torch.channels_last) if self.channels_last else images
        x = (x.half() if self._fp16 else x.float()).div_(255.0)
        preds = self.network(x)
        if self.kind == "rtdetr":
            return self._rtdetr_postprocess(preds, x.shape[2:])
        from ultralytics.utils.nms import non_max_suppression

        return non_max_suppression(
            preds,
            self.post.conf_threshold,
            self.post.iou_threshold,
            None,
            self.post.agnostic_nms,
            max_det=self.post.max_det,
            nc=0,
            max_time_img=NMS_SECONDS_PER_IMAGE,
            end2end=self.end2end,
        )

    def predict_step(self, batch: ImageBatch | TiledBatch, batch_idx: int,
                     dataloader_idx: int = 0) -> list[ImageDetections]:
        """Detections of every image of a batch, in original-image ``bbox_xywhn``, keyed by media id."""
        if isinstance(batch, TiledBatch):
            return self._predict_tiled(batch)
        dets = self(batch.images)
        input_hw = tuple(batch.images.shape[2:])
        out: list[ImageDetections] = []
        for det, media_id, error, hw in zip(dets, batch.media_ids, batch.errors, batch.orig_hw.tolist(), strict=True):
            if error is not None:
                out.append(_empty(media_id, error))
                continue
            h0, w0 = int(hw[0]), int(hw[1])
            det = det.float()
            out.append(
                ImageDetections(
                    media_id=media_id,
                    bbox_xywhn=_xywhn(self._to_source_pixels(det, input_hw, (h0, w0)), w0, h0),
                    conf=det[:, 4].cpu().double().numpy(),
                    class_id=det[:, 5].cpu().long().numpy(),
                )
            )
        return out

    def _to_source_pixels(self, det: torch.Tensor, input_hw: tuple[int, ...], source_hw: tuple[int, int]
                          ) -> np.ndarray:
        """Boxes of one network input (x1, y1, x2, y2 in input pixels) in pixels of what was fed in.

        ``source_hw`` is the (height, width) of the image or tile that was letterboxed (or
        stretched) into the input; the boxes come back clipped to it, as ``float64``.
        """
        from ultralytics.utils.ops import scale_boxes

        h0, w0 = source_hw
        boxes = det[:, :4].clone()
        if self.kind == "rtdetr":  # normalised to the stretched input: scale straight to the original
            boxes[:, [0, 2]] = (boxes[:, [0, 2]] / input_hw[1] * w0).clamp_(0, w0)
            boxes[:, [1, 3]] = (boxes[:, [1, 3]] / input_hw[0] * h0).clamp_(0, h0)
        else:
            boxes = scale_boxes(input_hw, boxes, (h0, w0))  # removes the padding and clips
        return boxes.cpu().double().numpy()

    def _predict_tiled(self, batch: TiledBatch) -> list[ImageDetections]:
        """Detections of every frame of a tiled batch: all inputs through the network, merged per frame."""
        if self.tiling is None:
            raise ValueError("a TiledBatch needs the module's tiling parameters (DetectorModule(tiling=...))")
        total = int(batch.inputs.shape[0])
        step = self.max_inputs or max(total, 1)
        dets: list[torch.Tensor] = []
        for start in range(0, total, step):
            dets.extend(self(batch.inputs[start : start + step]))
        input_hw = tuple(batch.inputs.shape[2:])
        parts: list[list[_InputBoxes]] = [[] for _ in batch.media_ids]
        for det, owner, k, (x0, y0, w, h) in zip(dets, batch.owner.tolist(), batch.tile_index.tolist(),
                                                 batch.windows.tolist(), strict=True):
            det = det.float()
            xyxy = self._to_source_pixels(det, input_hw, (h, w)) + np.array([x0, y0, x0, y0], dtype=np.float64)
            parts[owner].append(_InputBoxes(xyxy, det[:, 4].cpu().double().numpy(), det[:, 5].cpu().long().numpy(), k))
        out: list[ImageDetections] = []
        for position, (media_id, error, hw) in enumerate(zip(batch.media_ids, batch.errors, batch.orig_hw.tolist(),
                                                              strict=True)):
            if error is not None:
                out.append(_empty(media_id, error))
                continue
            tiles = [TileWindow(*t) for t in batch.tiles[position]]
            out.append(self._merge_frame(media_id, parts[position], tiles, self.tiling, (int(hw[0]), int(hw[1]))))
        return out

    def _merge_frame(self, media_id: str, parts: list[_InputBoxes], tiles: list[TileWindow], tiling: TilingParams,
                     frame_hw: tuple[int, int]) -> ImageDetections:
        """One frame's boxes from all its inputs in frame pixels, merged when the frame was tiled."""
        h0, w0 = frame_hw
        if not parts:
            return _empty(media_id, None)
        xyxy = np.concatenate([p.xyxy for p in parts]).reshape(-1, 4)
        conf = np.concatenate([p.conf for p in parts])
        class_id = np.concatenate([p.class_id for p in parts]).astype(np.int64)
        source = np.concatenate([np.full(len(p.conf), p.tile_index, dtype=np.int64) for p in parts])
        if tiles:  # with agnostic NMS the merge is across classes too
            merge_classes = np.zeros_like(class_id) if self.post.agnostic_nms else class_id
            keep = merge_detections(xyxy, conf, merge_classes, source, tiles, frame_wh=(w0, h0), params=tiling,
                                    max_det=self.post.max_det)
            xyxy, conf, class_id, source = xyxy[keep], conf[keep], class_id[keep], source[keep]
        labels = tuple(FULL_FRAME if s < 0 else tiles[s].label() for s in source.tolist())
        return ImageDetections(media_id=media_id, bbox_xywhn=_xywhn(xyxy, w0, h0), conf=conf, class_id=class_id,
                               tile=labels, tiles=len(tiles))

    def _rtdetr_postprocess(self, preds: torch.Tensor | tuple, input_hw: torch.Size) -> list[torch.Tensor]:
        """RTDETRPredictor.postprocess without the Results objects: boxes in input pixels."""
        from ultralytics.utils import ops

        if isinstance(preds, (list, tuple)):
            preds = preds[0]
        bboxes, scores, labels = preds.split((4, 1, 1), dim=-1)
        out = []
        for bbox, score, label in zip(bboxes, scores, labels, strict=True):
            keep = score.squeeze(-1) > self.post.conf_threshold
            pred = torch.cat([ops.xywh2xyxy(bbox), score, label], dim=-1)[keep][: self.post.max_det]
            pred[:, [0, 2]] *= input_hw[1]
            pred[:, [1, 3]] *= input_hw[0]
            out.append(pred)
        return out


@dataclass(frozen=True)
class _InputBoxes:
    """The boxes of one network input of a tiled batch, already in frame pixels."""

    xyxy: np.ndarray
    conf: np.ndarray
    class_id: np.ndarray
    tile_index: int  # -1 = the whole frame


def _xywhn(xyxy: np.ndarray, w0: int, h0: int) -> np.ndarray:
    """``float64`` (N, 4) boxes x1, y1, x2, y2 in pixels as ``bbox_xywhn`` of a ``w0`` x ``h0`` image."""
    return np.stack(
        [xyxy[:, 0] / w0, xyxy[:, 1] / h0, (xyxy[:, 2] - xyxy[:, 0]) / w0, (xyxy[:, 3] - xyxy[:, 1]) / h0],
        axis=1,
    )


def _empty(media_id: str, error: str | None) -> ImageDetections:
    return ImageDetections(
        media_id=media_id,
        bbox_xywhn=np.zeros((0, 4)),
        conf=np.zeros(0),
        class_id=np.zeros(0, dtype=np.int64),
        error=error,
    )
