"""The torchvision backbones a species classifier can use, by name, and how their weights are found.

Each :class:`BackboneEntry` names a torchvision model builder, its ImageNet weights (as the
torchvision enum name, whose URL gives the file name torch hub caches it under), a suggested input
size, and whether it is meant for CPU training or for a GPU. A test builds every entry, so no
entry can rot.

ImageNet weights are **never downloaded**: :func:`build_backbone` looks for the weights file in
the torch hub cache (``$TORCH_HOME/hub/checkpoints``, or the folder given), loads it if present,
and otherwise starts from random weights with a logged warning. To use pretrained weights on an
offline machine, copy the file named by :func:`weights_filename` into that folder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from ecowatch.errors import ConfigError, ModelNotFoundError

log = logging.getLogger(__name__)

#: Batch-norm running-statistics momentum of every backbone (PyTorch's default). torchvision builds
#: MobileNetV3 and EfficientNet with 0.01, tuned for long ImageNet runs: after a few hundred steps
#: on crops their running statistics still lag the weights, and evaluation-mode outputs collapse.
BATCHNORM_MOMENTUM = 0.1


@dataclass(frozen=True)
class BackboneEntry:
    """One registered backbone.

    Attributes:
        name: the torchvision builder (``torchvision.models.<name>``), or the registry name of ``builder``.
        weights: the torchvision ImageNet weights enum, e.g. ``ResNet18_Weights.IMAGENET1K_V1``; None where
            no ImageNet weights are published (always random initialisation).
        input_size: a suggested network input size in pixels for camera-trap crops.
        target: ``cpu`` (trains in minutes on a laptop CPU at ~96-128 px) or ``gpu``.
        cpu_bf16: bf16 mixed precision speeds its training up on a CPU with bf16 matrix units (see
            :func:`cpu_bf16_units`): true for networks of dense convolutions (ResNet18 at 96 px, one
            thread, AMX: 64 -> 123 crops/s), false for depthwise-separable ones, which run slower in
            bf16 there (MobileNetV3-Small: 313 -> 144 crops/s).
        licence: licence of the ImageNet weights.
        builder: makes the network (1000 classes) where ``torchvision.models.<name>`` does not exist.
    """

    name: str
    weights: str | None
    input_size: int
    target: Literal["cpu", "gpu"]
    cpu_bf16: bool = False
    licence: str = "BSD-3-Clause (torchvision)"
    builder: Callable[[], nn.Module] | None = None


def resnet_at_width(layers: tuple[int, int, int, int], widths: tuple[int, int, int, int],
                    num_classes: int = 1000) -> nn.Module:
    """torchvision's ResNet of basic blocks (``layers`` blocks per stage) with ``widths`` channels per stage
    instead of 64-128-256-512, initialised as torchvision initialises its ResNets.

    ResNet18 at half width (32-64-128-256) has a quarter of the multiply-adds and trains 3.1-3.2 times
    as fast on a 2-core AMD EPYC (bf16, 96 px, batch 64: 789-815 against 251 crops/s of bare training
    steps).
    """
    from torchvision.models.resnet import BasicBlock, ResNet

    model = ResNet(BasicBlock, list(layers), num_classes=num_classes)
    model.inplanes = widths[0]
    model.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
    model.bn1 = nn.BatchNorm2d(widths[0])
    for stage, (blocks, width) in enumerate(zip(layers, widths, strict=True), start=1):
        setattr(model, f"layer{stage}", model._make_layer(BasicBlock, width, blocks, stride=1 if stage == 1 else 2))
    model.fc = nn.Linear(widths[-1], num_classes)
    for module in model.modules():  # torchvision's ResNet initialisation, for the rebuilt layers
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.constant_(module.weight, 1)
            nn.init.constant_(module.bias, 0)
    return model


def resnet18_half() -> nn.Module:
    """ResNet18 at half width (32-64-128-256 channels): see :func:`resnet_at_width`."""
    return resnet_at_width((2, 2, 2, 2), (32, 64, 128, 256))


BACKBONES: Mapping[str, BackboneEntry] = {
    e.name: e
    for e in (
        BackboneEntry("mobilenet_v3_small", "MobileNet_V3_Small_Weights.IMAGENET1K_V1", 112, "cpu"),
        BackboneEntry("resnet18", "ResNet18_Weights.IMAGENET1K_V1", 112, "cpu", cpu_bf16=True),
        BackboneEntry("resnet18_half", None, 96, "cpu", cpu_bf16=True, builder=resnet18_half),
        BackboneEntry("regnet_y_400mf", "RegNet_Y_400MF_Weights.IMAGENET1K_V2", 112, "cpu", cpu_bf16=True),
        BackboneEntry("mobilenet_v3_large", "MobileNet_V3_Large_Weights.IMAGENET1K_V2", 160, "gpu"),
        BackboneEntry("efficientnet_b0", "EfficientNet_B0_Weights.IMAGENET1K_V1", 224, "gpu"),
        BackboneEntry("efficientnet_v2_s", "EfficientNet_V2_S_Weights.IMAGENET1K_V1", 288, "gpu"),
        BackboneEntry("convnext_tiny", "ConvNeXt_Tiny_Weights.IMAGENET1K_V1", 224, "gpu"),
        BackboneEntry("resnet50", "ResNet50_Weights.IMAGENET1K_V2", 224, "gpu", cpu_bf16=True),
    )
}


def get_backbone(name: str) -> BackboneEntry:
    """The registered backbone called ``name``.

    Raises:
        ConfigError: not registered; the message lists the registered names.
    """
    try:
        return BACKBONES[name]
    except KeyError:
        raise ConfigError(
            f"backbone {name!r} is not registered; choose one of {sorted(BACKBONES)} "
            "(cpu: " + ", ".join(sorted(n for n, e in BACKBONES.items() if e.target == "cpu")) + ")."
        ) from None


def cpu_bf16_units() -> str | None:
    """The CPU's bf16 matrix units, or None: ``"amx"`` (AMX tiles, Intel Xeon 4th generation and later),
    ``"avx512_bf16"`` (bf16 dot products in AVX-512, e.g. AMD EPYC Zen 4, Intel Cooper Lake). On either,
    bf16 autocast trains dense convolutional networks faster than float32: ResNet18 at 96 px, batch 64,
    2 threads, bare training steps: 85 -> 135 crops/s on a 2-core AMD EPYC with AVX512-BF16."""
    for units, probe_name in (("amx", "_is_amx_tile_supported"), ("avx512_bf16", "_is_avx512_bf16_supported")):
        probe = getattr(torch.cpu, probe_name, None)  # private in torch 2.x; absent: assume not
        try:
            if probe is not None and probe():
                return units
        except RuntimeError:  # pragma: no cover - a torch build without the CPU feature probe
            continue
    return None


def weights_filename(name: str) -> str | None:
    """The file name torch hub stores the backbone's ImageNet weights under (e.g. ``resnet18-f37072fd.pth``),
    or None for a backbone without published ImageNet weights."""
    from torchvision.models import get_weight

    weights = get_backbone(name).weights
    return None if weights is None else get_weight(weights).url.rsplit("/", 1)[-1]


def hub_checkpoint_dir() -> Path:
    """torch hub's weights cache folder (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def build_backbone(name: str, num_classes: int, *, pretrained: bool = True,
                   weights_dir: Path | None = None) -> nn.Module:
    """A torchvision network with a ``num_classes`` head.

    Args:
        name: a registered backbone (see :data:`BACKBONES`).
        num_classes: size of the new classification head.
        pretrained: start from the ImageNet weights if their file is in ``weights_dir``
            (nothing is downloaded; a missing file gives random weights and a warning).
        weights_dir: where to look for the weights file; torch hub's cache by default.

    Returns:
        The network (train mode), its last linear layer replaced by a new ``num_classes`` one and
        its batch-norm momentum set to :data:`BATCHNORM_MOMENTUM`.

    Raises:
        ConfigError: an unregistered name.
        ModelNotFoundError: a weights file that is present but cannot be loaded.
    """
    import torchvision

    entry = get_backbone(name)
    model = entry.builder() if entry.builder is not None else torchvision.models.get_model(name, weights=None)
    if pretrained and entry.weights is None:
        log.warning("backbone %s: no ImageNet weights are published for it; training from random weights.", name)
    elif pretrained:
        path = Path(weights_dir or hub_checkpoint_dir()) / weights_filename(name)
        if path.is_file():
            try:
                model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            except Exception as exc:  # noqa: BLE001 - any unpickling/shape failure means an unusable file
                raise ModelNotFoundError(
                    f"ImageNet weights {path} for {name} cannot be loaded ({exc}); delete the file or replace it "
                    f"with torchvision's {weights_filename(name)}."
                ) from exc
            log.info("backbone %s: ImageNet weights from %s", name, path)
        else:
            log.warning(
                "backbone %s: no ImageNet weights at %s; training from random weights (slower to converge, "
                "less accurate). Nothing is downloaded: copy torchvision's %s there to use them.",
                name, path, weights_filename(name),
            )
    _replace_head(model, num_classes)
    for module in model.modules():  # torchvision's 0.01 (MobileNetV3, EfficientNet) suits long ImageNet runs only
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = BATCHNORM_MOMENTUM
    return model


def _replace_head(model: nn.Module, num_classes: int) -> None:
    """Swap the last ``nn.Linear`` of a torchvision classifier for a fresh ``num_classes`` one."""
    last_name = None
    for module_name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last_name = module_name
    if last_name is None:  # pragma: no cover - every registered backbone ends in a linear layer
        raise ModelNotFoundError(f"{type(model).__name__} has no linear classification layer to replace")
    parent_name, _, child = last_name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, child)
    setattr(parent, child, nn.Linear(old.in_features, num_classes))


def channels_last(images: torch.Tensor) -> torch.Tensor:
    """A batch of images (N, C, H, W) in channels-last memory, the layout the networks' weights use
    (about 1.4x faster training and inference of MobileNetV3 on one CPU thread than NCHW, and what
    GPUs' tensor cores want); other tensors unchanged."""
    return images.contiguous(memory_format=torch.channels_last) if images.dim() == 4 else images
