"""Loading an ultralytics detection checkpoint as a plain, fused, eval-mode torch network.

The network is prepared the way ultralytics' own predictor prepares it (``AutoBackend`` with
``fuse=True`` and the default ``nms=None``): the checkpoint's EMA/model weights in fp32, the
one-to-many head selected (``end2end = False``, so YOLOv10/YOLO26 checkpoints run with NMS as
``YOLO(path).predict`` does), Conv+BatchNorm fused, gradients off. What happens after the forward
pass (NMS for YOLO, score filtering for RT-DETR) is in :mod:`ecowatch.detect.module`.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from torch import nn

from ecowatch.detect.yolo_env import prepare_ultralytics
from ecowatch.errors import ModelNotFoundError

NetworkKind = Literal["yolo", "rtdetr"]


@dataclass
class LoadedNetwork:
    """A detection network ready for inference.

    Attributes:
        model: the fused, eval-mode fp32 network on the CPU (an ultralytics ``DetectionModel``).
        names: class index to class name, as stored in the checkpoint.
        stride: the largest stride of the network in pixels (input sizes must be multiples of it).
        kind: ``yolo`` (NMS over dense predictions) or ``rtdetr`` (set prediction, no NMS).
        end2end: whether the head emits final boxes (``(B, N, 6)``) rather than dense predictions.
        trained_imgsz: the image size the checkpoint was trained at, if recorded.
    """

    model: nn.Module
    names: Mapping[int, str]
    stride: int
    kind: NetworkKind
    end2end: bool
    trained_imgsz: int | None


def load_network(path: Path, *, config_dir: Path | None = None, threads: int | None = None) -> LoadedNetwork:
    """Load an ultralytics ``.pt`` detection checkpoint.

    Args:
        path: the checkpoint file.
        config_dir: ultralytics config folder (see :func:`~ecowatch.detect.yolo_env.prepare_ultralytics`).
        threads: torch CPU threads to set after importing ultralytics; None = every core.

    Returns:
        The prepared network.

    Raises:
        ModelNotFoundError: the file is not a loadable ultralytics checkpoint (e.g. an original
            YOLOv5/YOLOv9 checkpoint, or a damaged file), or it is not a detection model.
    """
    prepare_ultralytics(config_dir, threads=threads)
    from ultralytics.nn.tasks import RTDETRDetectionModel, load_checkpoint

    try:
        model, ckpt = load_checkpoint(str(path), device="cpu")
    except (TypeError, ModuleNotFoundError, AttributeError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise ModelNotFoundError(
            f"cannot load detector weights {path} with ultralytics: {exc}. ecowatch runs ultralytics "
            "checkpoints (YOLOv8/9/10/11/26, RT-DETR); for MegaDetector v5 and MDv1000 redwood/spruce/cedar "
            "see ecowatch.detect.registry."
        ) from exc
    task = getattr(model, "task", None)
    if task != "detect":
        raise ModelNotFoundError(f"{path} is a {task!r} model; the detector needs an ultralytics detection model.")
    if hasattr(model, "end2end"):
        model.end2end = False  # ultralytics' predictor default (nms=None): the one-to-many head plus NMS
    if hasattr(model, "fuse"):
        model = model.fuse(verbose=False)
    model = model.float().eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    kind: NetworkKind = "rtdetr" if isinstance(model, RTDETRDetectionModel) else "yolo"
    trained = (ckpt.get("train_args") or {}).get("imgsz")
    return LoadedNetwork(
        model=model,
        names={int(k): str(v) for k, v in dict(model.names).items()},
        stride=max(int(model.stride.max()), 32),
        kind=kind,
        end2end=bool(getattr(model, "end2end", False)),
        trained_imgsz=int(max(trained)) if isinstance(trained, (list, tuple)) else (int(trained) if trained else None),
    )
