"""Validate a Camtrap DP 1.0.2 package fully offline.

Two steps, as in the README of the schema folder (``camtrap-dp-1.0.2/``):

1. the descriptor (``datapackage.json``) against ``camtrap-dp-profile.json`` with jsonschema,
   whose ``referencing`` registry maps the profile's two remote ``$ref`` URLs (the Frictionless
   Data Package profile and the GeoJSON schema) to the local copies under ``refs/``;
2. the tables with frictionless, after replacing each Camtrap DP resource's ``schema`` URL by
   the local table schema and the package ``profile`` URL by ``data-package`` (frictionless would
   otherwise download both).

Nothing here opens a network connection. The schema folder is a parameter; by default it is the
``ECOWATCH_CAMTRAP_DP_SCHEMAS`` environment variable, else ``../shared/data/camtrap-dp-1.0.2``
next to the repository.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecowatch.errors import InputDataError

logger = logging.getLogger(__name__)

SCHEMAS_ENV = "ECOWATCH_CAMTRAP_DP_SCHEMAS"
_DEFAULT_SCHEMAS = Path(__file__).resolve().parents[3] / "shared" / "data" / "camtrap-dp-1.0.2"
_REMOTE_REFS = {
    "https://specs.frictionlessdata.io/schemas/data-package.json": "refs/data-package.json",
    "http://json.schemastore.org/geojson.json": "refs/geojson.json",
}
TABLES: tuple[str, ...] = ("deployments", "media", "observations")


@dataclass(frozen=True)
class ValidationIssue:
    """One problem found in a package.

    Attributes:
        file: the file it is in (``datapackage.json``, ``media.csv`` ...).
        row: 1-based row number in the CSV file counting the header as row 1; None for the
            descriptor and for whole-table problems.
        field: the column (table) or JSON path (descriptor, e.g. ``project/samplingDesign``);
            "" when the problem is not tied to one.
        kind: the kind of problem (a jsonschema keyword such as ``required``/``enum``, or a
            frictionless error type such as ``constraint-error``/``missing-label``).
        message: a human-readable description.
    """

    file: str
    row: int | None
    field: str
    kind: str
    message: str


@dataclass(frozen=True)
class ValidationReport:
    """Outcome of :func:`validate_camtrap_dp`.

    Attributes:
        package_dir: the folder validated.
        valid: True when both steps found no problem.
        errors: every problem found (descriptor problems first).
    """

    package_dir: Path
    valid: bool
    errors: list[ValidationIssue] = field(default_factory=list)

    def summary(self, limit: int = 20) -> str:
        """One line per problem (at most ``limit``), for logs and error messages."""
        lines = [f"{e.file}:{e.row or '-'}:{e.field or '-'}: [{e.kind}] {e.message}" for e in self.errors[:limit]]
        if len(self.errors) > limit:
            lines.append(f"... and {len(self.errors) - limit} more")
        return "\n".join(lines) if lines else "valid"


def default_schema_dir() -> Path:
    """The Camtrap DP 1.0.2 schema folder: ``$ECOWATCH_CAMTRAP_DP_SCHEMAS`` or the shared data copy."""
    env = os.environ.get(SCHEMAS_ENV, "").strip()
    return Path(env).expanduser() if env else _DEFAULT_SCHEMAS


def _schema_dir(schema_dir: str | Path | None) -> Path:
    folder = Path(schema_dir) if schema_dir is not None else default_schema_dir()
    needed = ["camtrap-dp-profile.json", *(f"{t}-table-schema.json" for t in TABLES), *_REMOTE_REFS.values()]
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise InputDataError(
            f"Camtrap DP schema folder {folder} lacks {missing}. Point {SCHEMAS_ENV} (or schema_dir) at a "
            "folder holding camtrap-dp-profile.json, the three *-table-schema.json files and refs/ "
            "(data-package.json, geojson.json), e.g. ../shared/data/camtrap-dp-1.0.2."
        )
    return folder


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputDataError(f"{path}: not a readable JSON file ({exc}).") from exc


def _descriptor_issues(descriptor: dict[str, Any], folder: Path) -> list[ValidationIssue]:
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    profile = _load_json(folder / "camtrap-dp-profile.json")
    registry = Registry().with_resources(
        (url, Resource.from_contents(_load_json(folder / rel), default_specification=DRAFT4))
        for url, rel in _REMOTE_REFS.items()
    )
    cls = jsonschema.validators.validator_for(profile, default=jsonschema.Draft4Validator)
    validator = cls(profile, registry=registry, format_checker=cls.FORMAT_CHECKER)
    issues = []
    for error in sorted(validator.iter_errors(descriptor), key=lambda e: list(map(str, e.absolute_path))):
        issues.append(
            ValidationIssue(
                file="datapackage.json",
                row=None,
                field="/".join(str(p) for p in error.absolute_path),
                kind=str(error.validator),
                message=error.message[:500],
            )
        )
    return issues


def _table_issues(descriptor: dict[str, Any], package_dir: Path, folder: Path) -> list[ValidationIssue]:
    import frictionless

    local = json.loads(json.dumps(descriptor))
    local["profile"] = "data-package"
    for resource in local.get("resources", []):
        if isinstance(resource, dict) and resource.get("name") in TABLES:
            resource["schema"] = _load_json(folder / f"{resource['name']}-table-schema.json")
    try:
        package = frictionless.Package(local, basepath=str(package_dir))
        report = package.validate()
    except frictionless.FrictionlessException as exc:
        return [ValidationIssue("datapackage.json", None, "", exc.error.type, exc.error.message)]
    issues = [ValidationIssue("datapackage.json", None, "", e.type, e.message) for e in report.errors]
    for task in report.tasks:
        place = Path(task.place).name if task.place and task.place != "<memory>" else f"resource {task.name}"
        for error in task.errors:
            issues.append(
                ValidationIssue(
                    file=place,
                    row=getattr(error, "row_number", None),
                    field=str(getattr(error, "field_name", "") or getattr(error, "label", "") or ""),
                    kind=error.type,
                    message=error.message[:500],
                )
            )
    return issues


def validate_camtrap_dp(package_dir: str | Path, *, schema_dir: str | Path | None = None) -> ValidationReport:
    """Validate a Camtrap DP 1.0.2 package (descriptor and tables) without the network.

    Args:
        package_dir: the package folder, or its ``datapackage.json``.
        schema_dir: folder with ``camtrap-dp-profile.json``, the three ``*-table-schema.json``
            and ``refs/``; default :func:`default_schema_dir`.

    Returns:
        A :class:`ValidationReport`; ``valid`` is False when any problem was found, each
        naming its file, row (tables) and field. A descriptor that is not valid JSON is
        reported, not raised.

    Raises:
        InputDataError: the schema folder is missing or incomplete, or there is no
            ``datapackage.json``.
    """
    folder = _schema_dir(schema_dir)
    package_dir = Path(package_dir)
    if package_dir.name == "datapackage.json":
        package_dir = package_dir.parent
    descriptor_path = package_dir / "datapackage.json"
    if not descriptor_path.is_file():
        raise InputDataError(f"{descriptor_path}: no such file; give a Camtrap DP package folder.")
    try:
        descriptor = json.loads(descriptor_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        issue = ValidationIssue("datapackage.json", None, "", "json", f"not valid JSON: {exc}")
        return ValidationReport(package_dir, False, [issue])
    if not isinstance(descriptor, dict):
        issue = ValidationIssue("datapackage.json", None, "", "type", "the descriptor must be a JSON object")
        return ValidationReport(package_dir, False, [issue])
    issues = _descriptor_issues(descriptor, folder)
    issues += _table_issues(descriptor, package_dir, folder)
    report = ValidationReport(package_dir=package_dir, valid=not issues, errors=issues)
    logger.info("validated %s: %s", package_dir, "valid" if report.valid else f"{len(issues)} problem(s)")
    return report
