"""Importing ultralytics safely: offline, with project-controlled settings, and with threads restored.

ultralytics does several things on import and first use that a nightly pipeline on an offline
machine must not do (all observed with ultralytics 8.4):

- it writes ``settings.json`` (``sync: true``, ``mlflow: true``, ...) into ``~/.config/Ultralytics``
  unless ``YOLO_CONFIG_DIR`` is set *before* the import;
- with ``sync`` on and a network it sends usage events; with ``mlflow`` on, every training logs an
  MLflow run into the current folder;
- it downloads ``Arial.ttf`` on first plot unless that file is in its config folder;
- it pip-installs missing packages it thinks a checkpoint needs unless ``YOLO_AUTOINSTALL=False``;
- it sets ``OMP_NUM_THREADS=1`` on import and ``torch.set_num_threads`` in ``select_device``.

:func:`prepare_ultralytics` is the only way ecowatch imports ultralytics. It sets the environment
first (only variables the user has not set), points ultralytics at a folder ecowatch controls,
turns sync and the logging integrations off, puts a local TrueType font in place of Arial, and
sets the torch thread count deliberately afterwards.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from pathlib import Path
from types import ModuleType

from ecowatch.errors import ModelNotFoundError

log = logging.getLogger(__name__)

_ENV_DEFAULTS = {
    "YOLO_OFFLINE": "1",  # no DNS probe, no downloads, no events
    "YOLO_AUTOINSTALL": "False",  # never pip-install at run time
    "YOLO_VERBOSE": "False",
}

# Ultralytics settings ecowatch needs off: telemetry and the training-logger integrations.
_SETTINGS_OFF = ("sync", "mlflow", "clearml", "comet", "dvc", "raytune", "tensorboard", "wandb", "vscode_msg",
                 "openvino_msg")


def default_config_dir() -> Path:
    """Where ecowatch keeps ultralytics' settings when neither the caller nor ``YOLO_CONFIG_DIR`` says.

    Returns:
        ``$XDG_CACHE_HOME/ecowatch/ultralytics`` (``~/.cache/ecowatch/ultralytics`` by default).
    """
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ecowatch" / "ultralytics"


def local_font() -> Path | None:
    """A TrueType font shipped with an installed package (matplotlib's DejaVuSans), found without importing it.

    Returns:
        The font file, or None when matplotlib is not installed.
    """
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or spec.origin is None:
        return None
    font = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    return font if font.is_file() else None


def prepare_ultralytics(config_dir: Path | None = None, *, threads: int | None = None) -> ModuleType:
    """Import ultralytics with ecowatch's offline settings (idempotent).

    Args:
        config_dir: folder to use as ``YOLO_CONFIG_DIR`` when the environment does not set one
            (ultralytics keeps its files in ``<config_dir>/Ultralytics``); :func:`default_config_dir`
            when None. Ignored when ultralytics was already imported with another folder (logged).
        threads: torch CPU threads to set after the import; None = ``os.cpu_count()``.

    Returns:
        The ``ultralytics`` module.

    Raises:
        ModelNotFoundError: ultralytics is not installed.
    """
    for key, value in _ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    wanted = Path(os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir or default_config_dir())))
    wanted.mkdir(parents=True, exist_ok=True)
    try:
        import ultralytics
        from ultralytics.utils import SETTINGS, USER_CONFIG_DIR
    except ImportError as exc:  # pragma: no cover - ultralytics is a core dependency
        raise ModelNotFoundError(
            "the detector needs ultralytics, which is not installed: `pip install ultralytics==8.4.190` "
            "(or reinstall ecowatch)."
        ) from exc
    if Path(USER_CONFIG_DIR).resolve().parent != wanted.resolve():
        log.warning("ultralytics was imported before ecowatch configured it; its settings stay in %s", USER_CONFIG_DIR)
    off = {key: False for key in _SETTINGS_OFF if SETTINGS.get(key) is not False and key in SETTINGS}
    if off:
        SETTINGS.update(off)
    _install_font(Path(USER_CONFIG_DIR))
    _restore_pillow_open()
    set_torch_threads(threads)
    return ultralytics


def _restore_pillow_open() -> None:
    """Undo ultralytics' process-wide patch of ``PIL.Image.open``.

    On import, ultralytics replaces ``PIL.Image.open`` with a wrapper that, when Pillow cannot
    identify a file, pip-installs ``pi-heif`` and retries. ecowatch decodes images itself, must
    never install packages at run time, and its ingest stage relies on Pillow's own
    ``UnidentifiedImageError`` to flag files that are not images; so Pillow's function goes back.
    """
    from PIL import Image
    from ultralytics.utils import patches

    original = getattr(patches, "_image_open", None)
    if original is not None and Image.open is not original:
        Image.open = original


def set_torch_threads(threads: int | None) -> int:
    """Set torch's CPU thread count deliberately (ultralytics pins it on import and device selection).

    Args:
        threads: the number of threads; None = ``os.cpu_count()``.

    Returns:
        The number of threads now set.
    """
    import torch

    count = threads or os.cpu_count() or 1
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


def _install_font(user_config_dir: Path) -> None:
    """Put a local font where ultralytics looks for Arial.ttf, so it never downloads one."""
    target = user_config_dir / "Arial.ttf"
    if target.exists():
        return
    font = local_font()
    if font is None:
        log.warning("no local TrueType font found; ultralytics would try to download Arial.ttf if it plots")
        return
    user_config_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(font, target)
