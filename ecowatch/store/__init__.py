"""The results store: one database (SQLite file by default, PostgreSQL URL for shared use)."""

from ecowatch.store.db import Store, open_store
from ecowatch.store.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "Store", "open_store"]
