"""Label intake: every labelled set of ``conf/retrain.yaml`` read into :class:`LabelledBox` records.

Readers (Timelapse CSV files are in :mod:`ecowatch.retrain.timelapse`):

======================== =====================================================================
format                   what becomes a label
======================== =====================================================================
coco_camera_traps        every annotation with a box and a taxon id
                         (:func:`ecowatch.classify.crops.sources_from_coco`); location from the
                         image's ``location``
camtrap_dp               observations of type ``animal`` classified by a human
                         (``classificationMethod`` ``human``): media-level rows with a box give
                         a box, without one the whole image; an event-level row labels the whole
                         images of its event when the event names one species only
station_species_folders  ``<station>/[<camera>/]<species>/<image>``: the whole image; the species
                         folder matched like :mod:`ecowatch.formats.folders_import` does; the
                         location from the deployments table (station folder = ``station_column``)
======================== =====================================================================

Labels whose species is not in the taxonomy table, that name no species (blank, human, vehicle,
unknown) or whose image file is missing are left out and counted in :attr:`SetIntake.skipped`
(a warning names the set and the counts), so one bad row never stops a retrain.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ecowatch.catalog import Catalog
from ecowatch.classify.crops import sources_from_coco
from ecowatch.config import IMAGE_EXTENSIONS
from ecowatch.errors import CatalogError, InputDataError
from ecowatch.formats.coco_camera_traps import load_coco_camera_traps
from ecowatch.formats.folders_import import TaxonMatcher
from ecowatch.ingest.assign import station_key
from ecowatch.retrain.config import LoadedRetrainConfig
from ecowatch.retrain.labels import LabelledBox, image_key
from ecowatch.tables import Deployment, Taxon, read_deployments

log = logging.getLogger(__name__)

# skipped-label reasons (keys of SetIntake.skipped)
NOT_IN_TAXONOMY = "not_in_taxonomy"
NOT_A_SPECIES = "not_a_species"
NO_IMAGE_FILE = "no_image_file"
NOT_HUMAN = "not_classified_by_a_human"
AMBIGUOUS_EVENT = "event_of_several_species"
NO_LOCATION = "no_location"
UNLABELLED = "unlabelled"


@dataclass(frozen=True)
class SetIntake:
    """One labelled set, read.

    Attributes:
        name: the catalog name of the set.
        format: its format.
        labels: its labels, in file order.
        skipped: reason -> labels left out (see the module docstring); ``unlabelled`` counts
            rows with an empty species field (e.g. worklist rows nobody filled in yet).
        missing: True when an optional set was not found (then it has no labels).
    """

    name: str
    format: str
    labels: tuple[LabelledBox, ...]
    skipped: dict[str, int] = field(default_factory=dict)
    missing: bool = False


def labels_from_coco(labels_path: Path, images_root: Path, *, name: str, images_name: str,
                     taxa: Mapping[str, Taxon]) -> SetIntake:
    """Labelled boxes of a COCO Camera Traps file.

    Args:
        labels_path: the COCO Camera Traps JSON (see :func:`~ecowatch.classify.crops.sources_from_coco`).
        images_root: the folder its ``file_name`` entries are relative to.
        name: the set's catalog name (recorded as the labels' source).
        images_name: the catalog name of ``images_root`` (the first part of image keys).
        taxa: the taxonomy table; labels of other taxa are left out.

    Returns:
        The set.

    Raises:
        InputDataError: the file is missing or not COCO Camera Traps.
    """
    sources = sources_from_coco(labels_path, images_root)
    times = {Path(images_root) / img["file_name"]: str(img.get("datetime") or "").replace(" ", "T")
             for img in load_coco_camera_traps(labels_path).images.values()}
    skipped: Counter[str] = Counter()
    labels = []
    for source in sources:
        if source.taxon_id not in taxa:
            skipped[NOT_IN_TAXONOMY] += 1
            continue
        labels.append(LabelledBox(
            label_id=source.crop_id, image_path=source.image_path,
            image_key=image_key(images_name, source.image_path, images_root), bbox_xywhn=source.bbox_xywhn,
            taxon_id=str(source.taxon_id), location_id=source.location_id, deployment_id=source.deployment_id,
            source=f"coco_camera_traps:{name}", timestamp=times.get(source.image_path, ""),
        ))
    return finish_set(name, "coco_camera_traps", labels, skipped)


def labels_from_camtrap_dp(package: Path, *, name: str, taxa: Mapping[str, Taxon],
                           human_only: bool = True) -> SetIntake:
    """Human labels of a Camtrap DP 1.x package whose media files lie beside it.

    Args:
        package: the ``datapackage.json`` or the folder holding it.
        name: the set's catalog name.
        taxa: the taxonomy table (taxon ids are :func:`ecowatch.tables.taxon_id_for` of the
            scientific name).
        human_only: keep only observations whose ``classificationMethod`` is ``human`` (a
            package without that column then gives no labels).

    Returns:
        The set (see the module docstring for media- and event-level observations).

    Raises:
        InputDataError: the package is not valid Camtrap DP 1.x (see
            :func:`ecowatch.formats.camtrap_dp_read.read_camtrap_dp`).
    """
    from ecowatch.formats.camtrap_dp_read import read_camtrap_dp

    pkg = read_camtrap_dp(package)
    base = Path(pkg.path).parent
    location_of = dict(zip(pkg.deployments["deployment_id"], pkg.deployments["location_id"], strict=True))
    media = {row.media_id: row for row in pkg.media.itertuples(index=False)}
    obs = pkg.observations
    skipped: Counter[str] = Counter()
    animal = obs[obs["observation_type"] == "animal"]
    if human_only:
        if "classification_method" in animal.columns:
            human = animal["classification_method"].str.strip().str.lower() == "human"
        else:  # no method recorded: nothing says a person identified these
            human = animal["observation_type"] == ""
        skipped[NOT_HUMAN] += int((~human).sum())
        animal = animal[human]
    labels: list[LabelledBox] = []
    media_level = animal[animal["observation_level"] == "media"]
    labelled_media = set(media_level["media_id"])
    for row in media_level.itertuples(index=False):
        box = tuple(getattr(row, k, float("nan")) for k in ("bbox_x", "bbox_y", "bbox_width", "bbox_height"))
        bbox = tuple(float(v) for v in box) if all(v == v for v in box) else None  # NaN != NaN
        label = _camtrap_label(row.observation_id, media.get(row.media_id), bbox, row.taxon_id, base=base, name=name,
                               taxa=taxa, location_of=location_of, skipped=skipped)
        if label is not None:
            labels.append(label)
    events = animal[animal["observation_level"] == "event"]
    by_event: dict[tuple[str, str], list] = defaultdict(list)
    for row in events.itertuples(index=False):
        by_event[(row.deployment_id, row.event_id or row.observation_id)].append(row)
    for rows in by_event.values():
        if len({r.taxon_id for r in rows}) > 1:
            skipped[AMBIGUOUS_EVENT] += len(rows)
            continue
        row = rows[0]
        in_event = pkg.media[(pkg.media["deployment_id"] == row.deployment_id)
                             & (pkg.media["timestamp"] >= row.event_start) & (pkg.media["timestamp"] <= row.event_end)]
        for media_id in in_event["media_id"]:
            if media_id in labelled_media:  # a media-level label is more precise
                continue
            label = _camtrap_label(f"{row.observation_id}/{media_id}", media[media_id], None, row.taxon_id, base=base,
                                   name=name, taxa=taxa, location_of=location_of, skipped=skipped)
            if label is not None:
                labels.append(label)
    return finish_set(name, "camtrap_dp", labels, skipped)


def _camtrap_label(label_id: str, media: object, bbox: tuple[float, ...] | None, taxon_id: str, *, base: Path,
                   name: str, taxa: Mapping[str, Taxon], location_of: Mapping[str, str],
                   skipped: Counter[str]) -> LabelledBox | None:
    if taxon_id not in taxa:
        skipped[NOT_IN_TAXONOMY if taxon_id else NOT_A_SPECIES] += 1
        return None
    path = None
    if media is not None:
        file_path = str(getattr(media, "file_path", ""))
        candidates = [] if re.match(r"^[a-z]+://", file_path) else [base / file_path]
        candidates.append(base / "media" / str(getattr(media, "file_name", "")))
        path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        skipped[NO_IMAGE_FILE] += 1
        return None
    stamp = getattr(media, "timestamp", None)
    return LabelledBox(
        label_id=str(label_id), image_path=path, image_key=image_key(name, path, base),
        bbox_xywhn=bbox, taxon_id=taxon_id,  # type: ignore[arg-type]
        location_id=str(location_of.get(media.deployment_id, media.deployment_id)),  # type: ignore[attr-defined]
        deployment_id=str(media.deployment_id),  # type: ignore[attr-defined]
        source=f"camtrap_dp:{name}", timestamp=stamp.isoformat() if stamp is not None and stamp == stamp else "",
    )


def labels_from_folders(root: Path, *, name: str, taxa: Mapping[str, Taxon],
                        deployments: Sequence[Deployment] = (), station_column: str = "location_name",
                        camera_folders: bool = False) -> SetIntake:
    """Whole-image labels of a ``<station>/[<camera>/]<species>/<image>`` tree (camtrapR's layout).

    Args:
        root: the folder holding the station folders.
        name: the set's catalog name.
        taxa: the taxonomy table the species folders are matched against.
        deployments: the deployments table; a station folder names a value of its
            ``station_column`` (case and surrounding spaces ignored) and gets that deployment's
            location (and deployment when the station has one). Without a table, or for a station
            it does not know, the station folder name is the location.
        station_column: ``location_name``, ``location_id`` or ``deployment_id``.
        camera_folders: a camera folder sits between station and species (matched against
            ``camera_id`` to pick the deployment).

    Returns:
        The set, in sorted path order.

    Raises:
        InputDataError: ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputDataError(f"{root}: station/species folder tree not found; point the catalog entry at it.")
    depth = 4 if camera_folders else 3
    by_station: dict[str, list[Deployment]] = defaultdict(list)
    for deployment in deployments:
        by_station[station_key(getattr(deployment, station_column))].append(deployment)
    matcher = TaxonMatcher(taxa)
    skipped: Counter[str] = Counter()
    labels = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if not path.is_file() or any(p.startswith(".") for p in parts) or path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if len(parts) != depth:
            continue
        label = matcher.label(parts[-2])
        if label.observation_type != "animal":
            skipped[NOT_A_SPECIES] += 1
            continue
        if not label.matched or label.taxon_id not in taxa:
            skipped[NOT_IN_TAXONOMY] += 1
            continue
        candidates = by_station.get(station_key(parts[0]), [])
        if camera_folders:
            candidates = [d for d in candidates if not d.camera_id or station_key(d.camera_id) == station_key(parts[1])]
        location = candidates[0].location_id if candidates else parts[0]
        deployment = candidates[0].deployment_id if len(candidates) == 1 else ""
        relative = path.relative_to(root).as_posix()
        labels.append(LabelledBox(
            label_id=relative, image_path=path.resolve(), image_key=f"{name}/{relative}", bbox_xywhn=None,
            taxon_id=str(label.taxon_id), location_id=location, deployment_id=deployment,
            source=f"station_species_folders:{name}",
        ))
    return finish_set(name, "station_species_folders", labels, skipped)


def finish_set(name: str, fmt: str, labels: Sequence[LabelledBox], skipped: Counter[str]) -> SetIntake:
    """A :class:`SetIntake`, with a log line (a warning naming the counts when labels were left out)."""
    counts = {k: v for k, v in sorted(skipped.items()) if v}
    left_out = {k: v for k, v in counts.items() if k != UNLABELLED}
    if left_out:
        log.warning("labelled set %s (%s): %d labels read, left out: %s", name, fmt, len(labels),
                    ", ".join(f"{k} {v}" for k, v in left_out.items()))
    else:
        log.info("labelled set %s (%s): %d labels", name, fmt, len(labels))
    return SetIntake(name, fmt, tuple(labels), counts)


def read_labelled_sets(loaded: LoadedRetrainConfig, taxa: Mapping[str, Taxon]) -> list[SetIntake]:
    """Read every labelled set of the retrain configuration, in its order.

    Args:
        loaded: the retrain configuration with its catalog.
        taxa: the taxonomy table.

    Returns:
        One :class:`SetIntake` per configured set (``missing`` for an optional set not found).

    Raises:
        CatalogError: a required set (or its images / deployments dataset) is missing.
        InputDataError: a set cannot be parsed.
    """
    from ecowatch.retrain.timelapse import labels_from_timelapse

    catalog: Catalog = loaded.catalog
    out = []
    for index, spec in enumerate(loaded.config.labels):
        fmt = loaded.label_format(index)
        try:
            path = catalog.input_path(spec.dataset)
        except CatalogError:
            if spec.required:
                raise
            log.info("labelled set %s: not found at %s (optional); skipped", spec.dataset,
                     catalog.location(spec.dataset))
            out.append(SetIntake(spec.dataset, fmt, (), missing=True))
            continue
        deployments = read_deployments(catalog.input_path(spec.deployments)) if spec.deployments else []
        if fmt == "coco_camera_traps":
            assert spec.images is not None  # checked when the configuration was loaded
            out.append(labels_from_coco(path, catalog.input_path(spec.images), name=spec.dataset,
                                        images_name=spec.images, taxa=taxa))
        elif fmt == "camtrap_dp":
            out.append(labels_from_camtrap_dp(path, name=spec.dataset, taxa=taxa, human_only=spec.human_only))
        elif fmt == "station_species_folders":
            out.append(labels_from_folders(path, name=spec.dataset, taxa=taxa, deployments=deployments,
                                           station_column=spec.station_column, camera_folders=spec.camera_folders))
        else:
            assert spec.images is not None
            out.append(labels_from_timelapse(path, catalog.input_path(spec.images), name=spec.dataset,
                                             images_name=spec.images, taxa=taxa, deployments=deployments,
                                             species_column=spec.species_column))
    return out
