"""The data catalog: every dataset the pipelines read or write, declared once by name.

``data_catalog/catalog.yaml`` maps names to a type, a location and a description; code asks
the catalog for a name and never builds paths itself (the idea of Kedro's catalog, without the
framework)::

    datasets:
      sample_dump:
        type: sdcard_dump
        path: work/sample/dump
        description: generated sample SD-card dump
        create_with: ecowatch generate-dump work/sample --preset sample

Relative paths are relative to the project root, the folder that holds ``data_catalog/``.
``${VAR}`` and ``~`` are expanded. A ``url`` may replace ``path`` for databases and tracking
servers. The file is validated on load: an unknown key or type, a missing field, or a missing
input file that ecowatch cannot create is a :class:`CatalogError` that names it and the fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from ecowatch.errors import CatalogError

DatasetType = Literal[
    "sdcard_dump",  # folder of camera-trap cards (input)
    "drone_flight",  # folder of drone frames (input)
    "deployments_csv",  # deployments table (input)
    "taxonomy_csv",  # taxonomy table (input)
    "coco_camera_traps",  # labels, COCO Camera Traps JSON (input)
    "camtrap_dp",  # Camtrap DP package (input or output)
    "station_species_folders",  # <station>/<species>/image.jpg labelled layout (input)
    "geojson",  # polygons (input)
    "geopackage",  # polygons, e.g. range maps (input)
    "results_store",  # SQLite file or database URL (output)
    "mlflow_tracking",  # MLflow tracking store: sqlite file or server URL (output)
    "model_dir",  # model artefacts (output)
    "directory",  # any output folder: exports, reports, caches (output)
]

INPUT_TYPES = frozenset(
    {
        "sdcard_dump",
        "drone_flight",
        "deployments_csv",
        "taxonomy_csv",
        "coco_camera_traps",
        "station_species_folders",
        "geojson",
        "geopackage",
    }
)


class DatasetEntry(BaseModel):
    """One catalog entry, as written in catalog.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: DatasetType
    path: str | None = None
    url: str | None = None
    description: str = ""
    create_with: str | None = None

    @model_validator(mode="after")
    def _one_location(self) -> DatasetEntry:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of 'path' or 'url'")
        return self


class _CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    datasets: dict[str, DatasetEntry]


@dataclass(frozen=True)
class Dataset:
    """A resolved catalog entry: ``location`` is an absolute path, or the URL as written."""

    name: str
    type: str
    location: str
    is_url: bool
    description: str
    create_with: str | None

    @property
    def path(self) -> Path:
        """The dataset's absolute path.

        Raises:
            CatalogError: the dataset is declared by URL.
        """
        if self.is_url:
            raise CatalogError(f"dataset {self.name!r} is a URL ({self.location}), not a path.")
        return Path(self.location)


def format_validation_error(source: str, exc: ValidationError) -> str:
    """Render a pydantic error as ``source: key.path: problem (got value)`` lines."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key; remove it or check its spelling"
        got = err.get("input")
        suffix = f" (got {got!r})" if err["type"] != "extra_forbidden" and not isinstance(got, dict) else ""
        lines.append(f"{source}: {key}: {message}{suffix}")
    return "\n".join(lines)


def read_yaml(path: Path, error: type[Exception]) -> object:
    """Read a YAML file, raising ``error`` with the path on a missing or unparsable file."""
    if not path.is_file():
        raise error(f"{path}: file not found.")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc


class Catalog:
    """The loaded, validated data catalog."""

    def __init__(self, datasets: dict[str, Dataset], source: Path) -> None:
        self._datasets = datasets
        self.source = source

    @property
    def names(self) -> list[str]:
        """All dataset names, sorted."""
        return sorted(self._datasets)

    def __contains__(self, name: object) -> bool:
        return name in self._datasets

    def get(self, name: str) -> Dataset:
        """The dataset called ``name``.

        Raises:
            CatalogError: no such dataset; the message lists the known names.
        """
        try:
            return self._datasets[name]
        except KeyError:
            raise CatalogError(
                f"{self.source}: no dataset named {name!r}. Known datasets: {', '.join(self.names)}. "
                "Declare it under 'datasets:' or fix the name."
            ) from None

    def input_path(self, name: str) -> Path:
        """The path of a dataset that must exist because it is about to be read.

        Raises:
            CatalogError: the dataset is unknown, is a URL, or its file or folder is missing;
                the message says how to create it when the catalog knows.
        """
        dataset = self.get(name)
        path = dataset.path
        if not path.exists():
            fix = f"Create it with `{dataset.create_with}`" if dataset.create_with else "Put the data there"
            raise CatalogError(
                f"dataset {name!r} ({dataset.type}) not found at {path}. {fix}, or point {name!r} "
                f"elsewhere in {self.source}."
            )
        return path

    def output_path(self, name: str) -> Path:
        """The path of a dataset about to be written; its parent folder is created."""
        path = self.get(name).path
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def location(self, name: str) -> str:
        """The path or URL of a dataset, as a string (databases and tracking stores)."""
        return self.get(name).location


def load_catalog(path: str | Path) -> Catalog:
    """Load and validate a catalog file.

    Args:
        path: the catalog YAML file, normally ``data_catalog/catalog.yaml``.

    Returns:
        The catalog with every path made absolute.

    Raises:
        CatalogError: unreadable YAML, unknown keys or types, a missing field, or an input
            dataset that ecowatch cannot create and that is missing on disk.
    """
    source = Path(path).resolve()
    raw = read_yaml(source, CatalogError)
    try:
        parsed = _CatalogFile.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        raise CatalogError(format_validation_error(str(source), exc)) from exc
    root = source.parent.parent
    datasets: dict[str, Dataset] = {}
    for name, entry in parsed.datasets.items():
        if entry.url is not None:
            location, is_url = os.path.expandvars(entry.url), True
        else:
            assert entry.path is not None  # guaranteed by DatasetEntry._one_location
            expanded = Path(os.path.expanduser(os.path.expandvars(entry.path)))
            location, is_url = str(expanded if expanded.is_absolute() else (root / expanded).resolve()), False
        dataset = Dataset(name, entry.type, location, is_url, entry.description, entry.create_with)
        if not is_url and entry.type in INPUT_TYPES and entry.create_with is None and not Path(location).exists():
            raise CatalogError(
                f"{source}: datasets.{name}.path: {location} does not exist. Put the {entry.type} there, "
                "fix the path, or add a 'create_with' command if ecowatch can generate it."
            )
        datasets[name] = dataset
    return Catalog(datasets, source)
