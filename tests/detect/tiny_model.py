"""A tiny, seeded ultralytics detector for the tests (no training, no download).

Why not a trained model: fitting a nano YOLO on this machine (2 CPU cores) does not produce a
usable detector within a test budget. Measured: yolov8n, 20 generated 160 px images, 25 epochs,
19 s, and every confidence stayed at ~0.004 (the class-bias prior). A model with constant outputs
would make a weak parity test, so instead the network is randomly initialised, reproducibly
(``seed``), with two changes that make its output depend on the image:

- every convolution gets a variance-preserving normal init (PyTorch's default init shrinks the
  activations ~3x per layer, so a fresh 50-layer YOLO answers the same for every image);
- the class head's last layers get bias -3 and weights x300, so confidences spread over 0.05..0.99
  instead of all sitting near one value (ties would make the box order arbitrary).

It is a valid ultralytics checkpoint (saved with ``YOLO.save``), loadable by ``YOLO(path)`` and by
ecowatch alike, with MegaDetector's classes {0: animal, 1: person, 2: vehicle}.
"""

from __future__ import annotations

from pathlib import Path

CLASS_NAMES = {0: "animal", 1: "person", 2: "vehicle"}


def build_tiny_detector(path: Path, *, seed: int = 0, family: str = "v8/yolov8.yaml", scale: str = "yolov8n",
                        imgsz: int = 160) -> Path:
    """Write a seeded, randomly initialised nano detector with 3 classes to ``path``.

    Args:
        path: the ``.pt`` file to write.
        seed: random seed of the initialisation.
        family: ultralytics model yaml (relative to ``ultralytics/cfg/models``).
        scale: the file stem ultralytics reads the model scale from (``yolov8n``, ``yolo26n``, ...).
        imgsz: image size recorded as the checkpoint's training size.

    Returns:
        The path written.
    """
    from ecowatch.detect.yolo_env import prepare_ultralytics

    ultralytics = prepare_ultralytics()
    import torch
    import yaml
    from ultralytics import RTDETR, YOLO

    spec = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg" / "models" / family).read_text())
    spec["nc"] = len(CLASS_NAMES)
    spec_path = path.with_name(f"tiny-{scale}.yaml")
    spec_path.write_text(yaml.safe_dump(spec))
    torch.manual_seed(seed)
    yolo = (RTDETR if family.startswith("rt-detr") else YOLO)(str(spec_path))
    model = yolo.model
    model.names = dict(CLASS_NAMES)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d) and module.weight.requires_grad:  # the DFL conv is frozen
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
        head = model.model[-1]
        for branch in ("cv3", "one2one_cv3"):
            for seq in getattr(head, branch, None) or ():
                seq[-1].bias.fill_(-3.0)
                seq[-1].weight.mul_(300.0)
    yolo.ckpt = {"train_args": {"imgsz": imgsz}}
    yolo.save(str(path))
    return path
