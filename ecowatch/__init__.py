"""ecowatch: camera-trap and drone imagery to the numbers ecologists publish.

Importing the package has no side effects beyond setting safe offline defaults for the
third-party libraries it wraps (see :mod:`ecowatch.runtime`).
"""

from ecowatch.runtime import apply_offline_defaults

__all__ = ["__version__"]
__version__ = "0.1.0"

apply_offline_defaults()
