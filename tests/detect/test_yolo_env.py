"""ultralytics is imported offline, with settings and font in the session's config folder, threads restored."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ecowatch.detect.yolo_env import local_font, prepare_ultralytics, set_torch_threads


def test_prepare_ultralytics_uses_project_settings_and_local_font(offline_ultralytics: Path) -> None:
    prepare_ultralytics(threads=2)
    from ultralytics.utils import ONLINE, SETTINGS, USER_CONFIG_DIR

    assert Path(USER_CONFIG_DIR) == offline_ultralytics / "Ultralytics"
    assert (offline_ultralytics / "Ultralytics" / "settings.json").is_file()
    assert SETTINGS["sync"] is False and SETTINGS["mlflow"] is False
    assert not ONLINE  # YOLO_OFFLINE: no DNS probe, no downloads, no events
    assert os.environ["YOLO_AUTOINSTALL"] == "False"
    font = offline_ultralytics / "Ultralytics" / "Arial.ttf"
    assert font.is_file() and font.read_bytes() == local_font().read_bytes()
    assert torch.get_num_threads() == 2


def test_check_font_finds_the_local_copy_without_downloading() -> None:
    prepare_ultralytics()
    from ultralytics.utils.checks import check_font

    assert Path(check_font("Arial.ttf")).name == "Arial.ttf"  # the network guard fails the test on a download


def test_threads_default_to_every_core() -> None:
    assert set_torch_threads(None) == (os.cpu_count() or 1) == torch.get_num_threads()


def test_pillow_open_is_pillows_own_after_importing_ultralytics(tmp_path: Path) -> None:
    """ultralytics patches PIL.Image.open to pip-install pi-heif on unknown files; ecowatch undoes it."""
    import pytest
    from PIL import Image, UnidentifiedImageError

    prepare_ultralytics()
    from ultralytics.utils import patches

    assert Image.open is patches._image_open
    text = tmp_path / "IMG_0001.JPG"
    text.write_text("not a picture")
    with pytest.raises(UnidentifiedImageError):
        Image.open(text)
