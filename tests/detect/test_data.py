"""Decoding and letterboxing media files exactly as ultralytics does, in parallel DataLoader workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ecowatch.detect.data import MediaImageDataset, MediaItem, collate_samples, decode_image, letterbox

from .scenes import scene, write_scene

SHAPES = [(160, 160), (120, 200), (150, 90), (97, 161), (240, 320), (1, 300), (500, 40), (33, 17)]  # (h, w)


@pytest.mark.parametrize("hw", SHAPES, ids=[f"{h}x{w}" for h, w in SHAPES])
@pytest.mark.parametrize("mode", ["letterbox", "stretch"])
def test_letterbox_equals_ultralytics(hw: tuple[int, int], mode: str) -> None:
    from ecowatch.detect.yolo_env import prepare_ultralytics

    prepare_ultralytics()
    from ultralytics.data.augment import LetterBox

    image = np.random.default_rng(hw[0] * 1000 + hw[1]).integers(0, 256, (*hw, 3), dtype=np.uint8)
    for imgsz in (160, 224):
        theirs = LetterBox(imgsz, auto=False, scale_fill=mode == "stretch", stride=32)(image=image)
        ours = letterbox(image, imgsz, mode=mode)
        assert ours.shape == (imgsz, imgsz, 3)
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("hw", SHAPES, ids=[f"{h}x{w}" for h, w in SHAPES])
def test_minimal_padding_equals_ultralytics_rect_letterbox(hw: tuple[int, int]) -> None:
    """``stride`` pads to the next multiple of the stride, as ``LetterBox(auto=True)`` (predict's default)."""
    from ecowatch.detect.yolo_env import prepare_ultralytics

    prepare_ultralytics()
    from ultralytics.data.augment import LetterBox

    image = np.random.default_rng(hw[0] * 7 + hw[1]).integers(0, 256, (*hw, 3), dtype=np.uint8)
    for imgsz in (160, 224):
        theirs = LetterBox(imgsz, auto=True, stride=32)(image=image)
        ours = letterbox(image, imgsz, stride=32)
        assert ours.shape[0] % 32 == 0 and ours.shape[1] % 32 == 0 and max(ours.shape[:2]) == imgsz
        np.testing.assert_array_equal(ours, theirs)


def test_minimal_padding_batches_pad_to_the_smallest_common_rectangle(tmp_path: Path) -> None:
    wide = write_scene(tmp_path / "wide.png", (200, 120), seed=0)  # 160x96 at 160 px
    tall = write_scene(tmp_path / "tall.png", (90, 150), seed=1)  # 96x160
    items = [MediaItem("a", wide), MediaItem("b", wide), MediaItem("c", tall), MediaItem("gone", tmp_path / "x.jpg")]
    dataset = MediaImageDataset(items, imgsz=160, stride=32)

    same = collate_samples([dataset[0], dataset[1]], stride=32)
    assert same.images.shape == (2, 3, 96, 160)  # not the 160x160 square
    expected = letterbox(decode_image(wide), 160, stride=32)
    np.testing.assert_array_equal(same.images[0].permute(1, 2, 0).numpy(), expected)

    mixed = collate_samples([dataset[0], dataset[2], dataset[3]], stride=32)
    assert mixed.images.shape == (3, 3, 160, 160)
    assert mixed.errors[2] and mixed.orig_hw.tolist() == [[120, 200], [150, 90], [0, 0]]
    # each image sits centred in the common rectangle, as scale_boxes assumes when mapping boxes back
    np.testing.assert_array_equal(mixed.images[0].permute(1, 2, 0).numpy(),
                                  letterbox(decode_image(wide), 160))
    np.testing.assert_array_equal(mixed.images[1].permute(1, 2, 0).numpy(),
                                  letterbox(decode_image(tall), 160))


def test_decode_honours_exif_orientation(tmp_path: Path) -> None:
    upright, _ = scene((80, 50), seed=3)
    rotated = write_scene(tmp_path / "rot.png", (80, 50), seed=3, orientation=6)
    with Image.open(rotated) as stored:
        assert stored.size == (50, 80)  # stored sideways
    pixels = decode_image(rotated)
    assert pixels.shape == (50, 80, 3)  # displayed as the camera saw it
    np.testing.assert_array_equal(pixels, upright)


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_decode_converts_to_rgb(tmp_path: Path, mode: str) -> None:
    path = write_scene(tmp_path / f"{mode}.jpg", (64, 48), seed=1, mode=mode)
    pixels = decode_image(path)
    assert pixels.shape == (48, 64, 3) and pixels.dtype == np.uint8
    if mode == "L":
        assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()


def test_dataset_flags_unreadable_files_and_batches_in_workers(tmp_path: Path) -> None:
    good = write_scene(tmp_path / "good.png", (200, 120), seed=0)
    truncated = tmp_path / "truncated.jpg"
    full = write_scene(tmp_path / "full.jpg", (200, 120), seed=1).read_bytes()
    truncated.write_bytes(full[: len(full) // 2])
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    items = [MediaItem("m-good", good), MediaItem("m-trunc", truncated), MediaItem("m-text", text),
             MediaItem("m-gone", tmp_path / "deleted.jpg")]
    dataset = MediaImageDataset(items, imgsz=160)
    loader = DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=collate_samples)

    batches = list(loader)

    assert [b.media_ids for b in batches] == [["m-good", "m-trunc", "m-text"], ["m-gone"]]
    first = batches[0]
    assert first.images.shape == (3, 3, 160, 160) and first.images.dtype == torch.uint8
    assert first.orig_hw.tolist()[0] == [120, 200]
    assert first.errors[0] is None and all(e for e in first.errors[1:]) and batches[1].errors[0]
    assert "FileNotFoundError" in batches[1].errors[0]
    expected = letterbox(decode_image(good), 160)
    np.testing.assert_array_equal(first.images[0].permute(1, 2, 0).numpy(), expected)
