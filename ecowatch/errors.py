"""The project's own error types.

Every error raised on user input names the bad value, what is allowed, and the fix. Library
errors are wrapped with ``raise ... from exc`` so the original cause stays visible.
"""

from __future__ import annotations


class EcowatchError(Exception):
    """Base class of every error ecowatch raises on purpose."""


class ConfigError(EcowatchError):
    """A run configuration (``conf/*.yaml``) is invalid: unknown key, wrong type, bad value."""


class CatalogError(EcowatchError):
    """The data catalog is invalid, names an unknown dataset, or a dataset's file is missing."""


class InputDataError(EcowatchError):
    """An input table or file (deployments CSV, taxonomy CSV, labels) is malformed."""


class StoreError(EcowatchError):
    """The results store cannot be opened, has an incompatible schema, or a write failed."""


class ModelNotFoundError(EcowatchError):
    """A model (detector or classifier weights) cannot be found or loaded."""


class IngestError(EcowatchError):
    """The ingest stage cannot go on (e.g. a worker process died); re-running resumes it."""
