"""Safe process-wide defaults for the libraries ecowatch wraps.

Nothing may reach the network at run time unless the user asks for a download: ultralytics
settings sync and font downloads, MLflow telemetry and albumentations update checks are off by
default. Each default is only set when the user has not set the variable already.

One default is about speed, not the network: ``OMP_WAIT_POLICY=PASSIVE``. By default torch's
OpenMP threads spin while they wait for work; when the cores are shared (DataLoader workers,
another job on the machine) the spinning threads starve the ones with work. Measured on a
2-core machine with one core busy elsewhere, the detect stage (2 torch threads, 1 decoding
worker) ran at 2.4 images/s with spinning threads and 53 images/s with passive ones (56 with a
single thread). It only takes effect when set before torch is imported.
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
    "OMP_WAIT_POLICY": "PASSIVE",  # see the module docstring
}


def apply_offline_defaults() -> None:
    """Set the offline/telemetry environment defaults that are not already set."""
    for key, value in _OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
