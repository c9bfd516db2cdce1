"""Import images that people sorted into station and species folders (the camtrapR layout).

The layout, one folder level per piece of information::

    <root>/<station>/<species>/IMG_0001.JPG               (camera_level=False)
    <root>/<station>/<camera>/<species>/IMG_0001.JPG      (camera_level=True: camtrapR's
                                                           cameraID="directory" / camerasIndependent)

The media go through the ingest stage (:func:`ecowatch.ingest.ingest_dump`): hashing, decode
checks, EXIF time, failure flags, sequences, and deployment assignment by station folder and
time (:class:`ecowatch.ingest.assign.StationLayout`: the station folder names a value of one
deployments column, ``location_name`` by default). Then every readable image (status ``ok``)
at the layout's depth gets one media-level observation with ``source`` ``human``:

=======================================  ===================================================
species folder (case, spaces, ``_``       observation
and ``-`` ignored)
=======================================  ===================================================
``empty``, ``blank``, ``nothing``,        ``observation_type`` blank, no taxon
``none``, ``no animal``
``human``, ``person``, ``people``, ...    human, no taxon
``vehicle``, ``car``, ...                 vehicle, no taxon
``unknown``, ``unidentified``             unknown, no taxon
anything else                             animal; ``taxon_id`` the taxon whose scientific
                                          name, common name or id matches the folder name in
                                          ``taxonomy``; without a taxonomy, or when nothing
                                          matches (a warning, and a count in the summary),
                                          :func:`ecowatch.tables.taxon_id_for` of the name
=======================================  ===================================================

Ids: media ids are those of ingest (``sha1(dump_id + '/' + relpath)``); an observation's id is
``sha1(dump_id + '/folder_label/' + relpath)``. Writes skip existing rows, so importing the same
tree again adds nothing, and a killed import is finished by running it again. A re-import never
changes rows already written (a moved file is a new file; a changed taxonomy does not relabel).

Not labelled (counted in the summary): files that ingest marked failed or skipped (not an
image, zero bytes, truncated, videos, AppleDouble files), and files at another depth than the
layout's (e.g. directly in a station folder).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ecowatch.config import IngestConfig
from ecowatch.ingest import IngestSummary, ingest_dump
from ecowatch.ingest.assign import StationLayout, station_key
from ecowatch.store import Store
from ecowatch.store import schema as S
from ecowatch.tables import Deployment, Taxon, read_deployments, read_taxonomy, taxon_id_for

logger = logging.getLogger(__name__)

SOURCE_HUMAN = "human"
RUN_KIND = "import_folders"

# Species folder names (normalised with taxon_id_for) that are not taxa.
BLANK_NAMES = frozenset({"empty", "blank", "nothing", "none", "no_animal", "no_animals"})
HUMAN_NAMES = frozenset({"human", "humans", "person", "persons", "people", "homo_sapiens"})
VEHICLE_NAMES = frozenset({"vehicle", "vehicles", "car", "cars"})
UNKNOWN_NAMES = frozenset({"unknown", "unidentified"})
_TYPE_BY_NAME = {
    **dict.fromkeys(BLANK_NAMES, "blank"),
    **dict.fromkeys(HUMAN_NAMES, "human"),
    **dict.fromkeys(VEHICLE_NAMES, "vehicle"),
    **dict.fromkeys(UNKNOWN_NAMES, "unknown"),
}

# Media ids read per page when labelling (keyset pagination: memory does not grow with the dump).
_PAGE = 1000
_EXAMPLES = 5


@dataclass(frozen=True)
class FolderLabel:
    """What a species folder name says.

    Attributes:
        observation_type: ``animal``, ``human``, ``vehicle``, ``blank`` or ``unknown``.
        taxon_id: the taxon of an animal folder, else None.
        taxon_rank: the taxon's rank when the taxonomy gives it, else None.
        matched: False for an animal folder that a given taxonomy does not know.
    """

    observation_type: str
    taxon_id: str | None = None
    taxon_rank: str | None = None
    matched: bool = True


@dataclass(frozen=True)
class FolderImportSummary:
    """What :func:`import_species_folders` found and wrote.

    Counts other than ``ingest`` and ``observations_inserted`` describe the whole dump in the
    store after the import, so a re-import reports the same figures with nothing inserted.

    Attributes:
        dump_id: the dump the media were recorded under.
        root: the folder imported (absolute).
        run_id: the run that wrote this import's rows.
        ingest: the ingest stage's summary (files seen, new, flags ...).
        media_labelled: images with a label observation (status ok, at the layout's depth).
        observations_inserted: observations written by this call (0 on a re-import).
        observation_types: observation type -> labelled images.
        taxa: taxon id -> labelled images.
        unmatched_species: species folder name -> images, for names the given taxonomy does
            not know (their taxon id is derived from the name); empty without a taxonomy.
        media_not_labelled: files at the layout's depth that ingest marked failed or skipped.
        media_outside_layout: files at another depth than ``<station>/[<camera>/]<species>/``.
        media_without_deployment: media of the dump that no deployment was assigned to.
        stations_not_in_deployments: station folder -> media, for stations the deployments
            table does not name (in the station column).
    """

    dump_id: str
    root: Path
    run_id: str
    ingest: IngestSummary
    media_labelled: int
    observations_inserted: int
    observation_types: dict[str, int]
    taxa: dict[str, int]
    unmatched_species: dict[str, int]
    media_not_labelled: int
    media_outside_layout: int
    media_without_deployment: int
    stations_not_in_deployments: dict[str, int]


class TaxonMatcher:
    """Species folder names to taxa: by scientific name, taxon id, then common name.

    Names are compared after :func:`ecowatch.tables.taxon_id_for` (case, accents, spaces,
    underscores and punctuation ignored). A common name shared by several taxa matches none of
    them (logged), since the folder does not say which one is meant.

    Args:
        taxonomy: taxa by id (:func:`ecowatch.tables.read_taxonomy`), or None: every animal
            folder becomes ``taxon_id_for(name)``, without a warning.
    """

    def __init__(self, taxonomy: Mapping[str, Taxon] | None) -> None:
        self.taxonomy = taxonomy
        self._by_key: dict[str, Taxon] = {}
        self._ambiguous: dict[str, list[str]] = {}
        if not taxonomy:
            return
        common: dict[str, list[Taxon]] = {}
        for taxon in taxonomy.values():
            for key in (taxon_id_for(taxon.scientific_name), taxon_id_for(taxon.taxon_id)):
                if key:
                    self._by_key.setdefault(key, taxon)
            key = taxon_id_for(taxon.common_name)
            if key:
                common.setdefault(key, []).append(taxon)
        for key, taxa in common.items():
            if key in self._by_key:
                continue  # a scientific name or id wins over a common name
            if len(taxa) == 1:
                self._by_key[key] = taxa[0]
            else:
                self._ambiguous[key] = sorted(t.taxon_id for t in taxa)

    def label(self, folder: str) -> FolderLabel:
        """The label a species folder name stands for (see the module docstring)."""
        key = taxon_id_for(folder)
        if key in _TYPE_BY_NAME:
            return FolderLabel(_TYPE_BY_NAME[key])
        if not key:  # a name of punctuation only
            return FolderLabel("unknown")
        if not self.taxonomy:
            return FolderLabel("animal", key)
        taxon = self._by_key.get(key)
        if taxon is None:
            return FolderLabel("animal", key, matched=False)
        return FolderLabel("animal", taxon.taxon_id, taxon.rank or None)

    def ambiguity(self, folder: str) -> list[str]:
        """The taxa sharing a folder name as their common name ([] when it is not ambiguous)."""
        return self._ambiguous.get(taxon_id_for(folder), [])


def observation_id_for(dump_id: str, relpath: str) -> str:
    """The id of a folder label's observation: sha1 hex of ``'<dump_id>/folder_label/<relpath>'``."""
    return hashlib.sha1(f"{dump_id}/folder_label/{relpath}".encode()).hexdigest()


def _station_keys(deployments: Sequence[Deployment], column: str) -> set[str]:
    return {station_key(getattr(d, column)) for d in deployments}


def import_species_folders(
    store: Store,
    root: str | Path,
    *,
    dump_id: str,
    deployments: Sequence[Deployment] | str | Path,
    taxonomy: Mapping[str, Taxon] | str | Path | None = None,
    station_column: str = "location_name",
    camera_folders: bool = False,
    run_id: str | None = None,
    config: IngestConfig | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> FolderImportSummary:
    """Import a ``<station>/[<camera>/]<species>/<image>`` tree: media plus one human label each.

    Args:
        store: the results store.
        root: the folder holding the station folders.
        dump_id: the id the media are recorded under (media and observation ids derive from
            it and the relpath under ``root``).
        deployments: the deployments table (ecowatch's or a Camtrap DP ``deployments.csv``), as
            rows or as the path of the CSV (read with :func:`ecowatch.tables.read_deployments`).
        taxonomy: taxa by id, or the path of a taxonomy CSV, to match species folder names
            against; None: taxon ids are derived from the folder names.
        station_column: the deployments column the station folders name: ``location_name``,
            ``location_id`` or ``deployment_id``.
        camera_folders: the layout has a camera folder between station and species; it is
            matched against the deployments' ``camera_id``.
        run_id: the run to record the rows under; None: a run of kind ``import_folders`` is
            started and finished in the store.
        config: the ingest settings (extensions, workers, batch size, clock tolerance in hours,
            sequence gap in seconds); None: the defaults.
        on_progress: called with the number of files handled after each ingest batch.

    Returns:
        A :class:`FolderImportSummary`.

    Raises:
        InputDataError: ``root`` is not a folder, or the deployments / taxonomy CSV is malformed.
        ConfigError: ``station_column`` is not one of the allowed columns.
        IngestError: an ingest worker process died (run the import again to resume).
        sqlalchemy.exc.SQLAlchemyError: the store failed; committed batches stay valid.

    Problems with single files never raise: they are media flags, and the import goes on.
    """
    layout = StationLayout(column=station_column, camera_level=camera_folders)
    config = config if config is not None else IngestConfig()
    table = read_deployments(Path(deployments)) if isinstance(deployments, str | Path) else list(deployments)
    taxa = read_taxonomy(Path(taxonomy)) if isinstance(taxonomy, str | Path) else taxonomy
    root = Path(root)
    own_run = run_id is None
    if run_id is None:
        run_id = store.start_run(RUN_KIND, {"root": str(root), "dump_id": dump_id, "station_column": station_column,
                                            "camera_folders": camera_folders, "deployments": len(table),
                                            "taxonomy": len(taxa) if taxa else 0})  # fmt: skip
    try:
        ingest = ingest_dump(store, dump_root=root, dump_id=dump_id, deployments=table, config=config,
                             run_id=run_id, on_progress=on_progress, stations=layout)  # fmt: skip
        summary = _label(store, root.resolve(), dump_id=dump_id, run_id=run_id, ingest=ingest, layout=layout,
                         matcher=TaxonMatcher(taxa), stations=_station_keys(table, station_column),
                         batch_size=config.batch_size)  # fmt: skip
    except BaseException:
        if own_run:
            store.finish_run(run_id, status="failed", counts={})
        raise
    if own_run:
        store.finish_run(run_id, status="finished", counts=_counts(summary))
    return summary


def _counts(summary: FolderImportSummary) -> dict[str, Any]:
    return {
        "files_new": summary.ingest.files_new,
        "media_labelled": summary.media_labelled,
        "observations_inserted": summary.observations_inserted,
        "unmatched_species": sum(summary.unmatched_species.values()),
        "media_without_deployment": summary.media_without_deployment,
        "media_outside_layout": summary.media_outside_layout,
        "media_not_labelled": summary.media_not_labelled,
    }


def _label(
    store: Store,
    root: Path,
    *,
    dump_id: str,
    run_id: str,
    ingest: IngestSummary,
    layout: StationLayout,
    matcher: TaxonMatcher,
    stations: set[str],
    batch_size: int,
) -> FolderImportSummary:
    """Write one human observation per labelled media file of the dump; count the rest."""
    depth = 4 if layout.camera_level else 3  # path parts: station, [camera,] species, file
    media = S.media
    base = (
        sa.select(media.c.media_id, media.c.relpath, media.c.status, media.c.media_type, media.c.deployment_id,
                  media.c.sequence_id)
        .where(media.c.dump_id == dump_id)
        .order_by(media.c.media_id)
        .limit(_PAGE)
    )  # fmt: skip
    types: Counter[str] = Counter()
    taxa: Counter[str] = Counter()
    unmatched: Counter[str] = Counter()
    missing_stations: Counter[str] = Counter()
    outside_examples: list[str] = []
    outside = not_labelled = without_deployment = inserted = 0
    pending: list[dict[str, Any]] = []
    last: str | None = None
    while True:
        with store.engine.connect() as conn:
            page = conn.execute(base if last is None else base.where(media.c.media_id > last)).all()
        if not page:
            break
        last = page[-1].media_id
        for row in page:
            parts = row.relpath.split("/")
            if row.deployment_id is None:
                without_deployment += 1
                if len(parts) > 1 and station_key(parts[0]) not in stations:
                    missing_stations[parts[0]] += 1
            if len(parts) != depth:
                outside += 1
                if len(outside_examples) < _EXAMPLES:
                    outside_examples.append(row.relpath)
                continue
            if row.status != "ok" or row.media_type != "image":
                not_labelled += 1
                continue
            label = matcher.label(parts[-2])
            types[label.observation_type] += 1
            if label.taxon_id:
                taxa[label.taxon_id] += 1
            if not label.matched:
                unmatched[parts[-2]] += 1
            pending.append(
                {
                    "observation_id": observation_id_for(dump_id, row.relpath),
                    "level": "media",
                    "deployment_id": row.deployment_id,
                    "media_id": row.media_id,
                    "sequence_id": row.sequence_id,
                    "observation_type": label.observation_type,
                    "taxon_id": label.taxon_id,
                    "taxon_rank": label.taxon_rank,
                    "probability": None,
                    "count": None,
                    "source": SOURCE_HUMAN,
                    "run_id": run_id,
                }
            )
            if len(pending) >= batch_size:
                inserted += _write(store, pending)
                pending = []
    inserted += _write(store, pending)
    _warn(dump_id, unmatched, matcher, missing_stations, (outside, outside_examples), depth)
    summary = FolderImportSummary(
        dump_id=dump_id,
        root=root,
        run_id=run_id,
        ingest=ingest,
        media_labelled=sum(types.values()),
        observations_inserted=inserted,
        observation_types=dict(sorted(types.items())),
        taxa=dict(sorted(taxa.items())),
        unmatched_species=dict(sorted(unmatched.items())),
        media_not_labelled=not_labelled,
        media_outside_layout=outside,
        media_without_deployment=without_deployment,
        stations_not_in_deployments=dict(sorted(missing_stations.items())),
    )
    logger.info(
        "folder import %s from %s: %d labelled media (%s), %d observations new, %d without deployment, "
        "%d not labelled (failed/skipped), %d outside the layout",
        dump_id, root, summary.media_labelled, summary.observation_types, inserted, without_deployment,
        not_labelled, outside,
    )  # fmt: skip
    return summary


def _write(store: Store, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    with store.transaction() as conn:
        return store.insert_ignore(conn, S.observations, rows)


def _warn(dump_id: str, unmatched: Counter[str], matcher: TaxonMatcher, missing_stations: Counter[str],
          outside: tuple[int, list[str]], depth: int) -> None:  # fmt: skip
    for folder, count in sorted(unmatched.items()):
        shared = matcher.ambiguity(folder)
        why = f"is the common name of several taxa ({', '.join(shared)})" if shared else "matches no taxon"
        logger.warning(
            "folder import %s: species folder %r (%d images) %s in the taxonomy; recorded as taxon id %r. "
            "Rename the folder to a scientific name or add the taxon to the taxonomy.",
            dump_id, folder, count, why, taxon_id_for(folder),
        )  # fmt: skip
    if missing_stations:
        logger.warning(
            "folder import %s: station folder(s) not in the deployments table, media recorded without deployment: %s",
            dump_id, ", ".join(f"{name!r} ({count} files)" for name, count in missing_stations.items()),
        )  # fmt: skip
    count, examples = outside
    if count:
        layout = "<station>/<camera>/<species>/<file>" if depth == 4 else "<station>/<species>/<file>"
        logger.warning(
            "folder import %s: %d file(s) are not at %s and get no label, e.g. %s",
            dump_id, count, layout, ", ".join(examples),
        )  # fmt: skip
