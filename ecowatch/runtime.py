"""Safe process-wide defaults for the libraries ecowatch wraps.

Nothing may reach the network at run time unless the user asks for a download: ultralytics
settings sync and font downloads, MLflow telemetry and albumentations update checks are off by
default. Each default is only set when the user has not set the variable already.
"""

from __future__ import annotations

import os

_OFFLINE_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "NO_ALBUMENTATIONS_UPDATE": "1",
    "YOLO_OFFLINE": "1",
    "YOLO_AUTOINSTALL": "False",  # never pip-install a missing module while loading a checkpoint
    "YOLO_VERBOSE": "False",
    "GIT_PYTHON_REFRESH": "quiet",
}


def apply_offline_defaults() -> None:
    """Set the offline/telemetry environment defaults that are not already set."""
    for key, value in _OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
