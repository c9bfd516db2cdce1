"""The retraining configuration (``conf/retrain.yaml``), validated on load.

It names datasets by their catalog names (never paths), lists the labelled sets in the order
they are merged (a later set's label of the same box wins), points at the classifier training
configuration whose settings the challenger is trained with, and holds the holdout, promotion,
tracking and worklist settings. An unknown key, a wrong type, a dataset the catalog does not know
or a labelled set of a type that cannot hold labels is a :class:`~ecowatch.errors.ConfigError`
naming the file, the key and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ecowatch.catalog import Catalog
from ecowatch.classify.config import ClassifierTrainingConfig, load_classifier_config
from ecowatch.config import load_validated
from ecowatch.errors import ConfigError
from ecowatch.ingest.assign import STATION_COLUMNS

LabelFormat = Literal["coco_camera_traps", "camtrap_dp", "station_species_folders", "timelapse_csv"]

#: The label format of each catalog type that can hold labels (``directory``: a folder of Timelapse
#: CSV exports or filled-in review worklists).
FORMAT_OF_TYPE: dict[str, str] = {
    "coco_camera_traps": "coco_camera_traps",
    "camtrap_dp": "camtrap_dp",
    "station_species_folders": "station_species_folders",
    "directory": "timelapse_csv",
}
_ALIAS = r"^[A-Za-z][A-Za-z0-9_-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrainDatasets(_Strict):
    """Catalog names of what retraining reads and writes.

    Attributes:
        taxonomy: the taxonomy table labels are matched against.
        models: checkpoints (``<models>/classifiers/``), the crop cache and MLflow downloads.
        tracking: the MLflow tracking store (a sqlite file, or the ``url`` of an mlflow server).
        state: a folder for the retrain state file and the offline tracking journal.
        store: the results store the review worklist reads (classifications of nightly runs).
        worklists: the folder review worklists are written to.
    """

    taxonomy: str = "sample_taxonomy"
    models: str = "models"
    tracking: str = "mlflow_tracking"
    state: str = "retrain_state"
    store: str = "results_store"
    worklists: str = "review_worklists"


class LabelledSetConfig(_Strict):
    """One labelled set.

    Attributes:
        dataset: its catalog name (type ``coco_camera_traps``, ``camtrap_dp``,
            ``station_species_folders``, or ``directory`` for a folder of Timelapse CSV files).
        format: how to read it; None: from the catalog type (see :data:`FORMAT_OF_TYPE`).
        images: catalog name of the folder the labels' image paths are relative to (COCO
            ``file_name``, Timelapse ``RelativePath/File``); not used by Camtrap DP and folders.
        deployments: catalog name of a deployments table: station folders and Timelapse rows
            without a location column get the location of their deployment.
        species_column: Timelapse: the data field holding the species (scientific name, common
            name or taxon id; empty rows are unlabelled).
        station_column: station folders: the deployments column the station folder names.
        camera_folders: station folders: a camera folder sits between station and species.
        human_only: Camtrap DP: only observations with ``classificationMethod`` ``human``.
        required: a missing dataset is an error (False: a set that may not exist yet, such as
            filled-in worklists, is skipped with a log message).
    """

    dataset: str
    format: LabelFormat | None = None
    images: str | None = None
    deployments: str | None = None
    species_column: str = Field("Species", min_length=1)
    station_column: str = "location_name"
    camera_folders: bool = False
    human_only: bool = True
    required: bool = True

    @model_validator(mode="after")
    def _station(self) -> LabelledSetConfig:
        if self.station_column not in STATION_COLUMNS:
            raise ValueError(f"station_column {self.station_column!r} must be one of {list(STATION_COLUMNS)}")
        return self


class HoldoutConfig(_Strict):
    """The fixed holdout: whole locations whose crops are never trained on; champion and challenger
    are compared on them.

    Attributes:
        locations: the holdout locations; empty: chosen once, on the first round (whole locations
            making up about ``fraction`` of the crops, every class present if possible), kept in
            the state file and logged, and never moved afterwards.
        fraction: share of crops the chosen holdout should hold.
        seed: seed of that choice.
        min_crops: fewer holdout crops than this and nothing is promoted (the comparison would be noise).
    """

    locations: tuple[str, ...] = ()
    fraction: float = Field(0.25, gt=0.0, lt=0.9)
    seed: int = 0
    min_crops: int = Field(20, ge=1)


class PromotionConfig(_Strict):
    """When a challenger replaces the champion, and the registry aliases.

    Attributes:
        min_macro_f1_gain: the challenger's holdout macro-F1 must exceed the champion's by at
            least this (absolute, 0..1).
        max_class_recall_drop: and no class's holdout recall may fall by more than this
            (absolute, 0..1) below the champion's.
        champion_alias: the alias the nightly run resolves (``models:/<name>@champion``).
        challenger_alias: the alias set on every newly trained version.
        previous_alias: the alias kept on the version a promotion replaced (for rollback).
    """

    min_macro_f1_gain: float = Field(0.02, ge=0.0, le=1.0)
    max_class_recall_drop: float = Field(0.10, ge=0.0, le=1.0)
    champion_alias: str = Field("champion", pattern=_ALIAS)
    challenger_alias: str = Field("challenger", pattern=_ALIAS)
    previous_alias: str = Field("previous-champion", pattern=_ALIAS)

    @model_validator(mode="after")
    def _distinct(self) -> PromotionConfig:
        names = [self.champion_alias, self.challenger_alias, self.previous_alias]
        if len(set(names)) != 3:
            raise ValueError(f"champion_alias, challenger_alias and previous_alias must differ (got {names})")
        return self


class RetrainTrackingConfig(_Strict):
    """MLflow of retrain runs.

    Attributes:
        experiment: the experiment of retrain runs.
        offline_journal: when the tracking server cannot be reached mid-run, keep every record in
            a local journal (under the state folder) and replay it later, instead of failing.
    """

    experiment: str = Field("ecowatch-retrain", min_length=1)
    offline_journal: bool = True


class ContextPriorsConfig(_Strict):
    """Refitting the context priors (location/season) from the labelled set.

    Attributes:
        enabled: run the step.
        config: the context-model build configuration whose taxonomy, deployments, regions, range
            maps and smoothing are used (a path relative to the project root); None skips the step.
    """

    enabled: bool = True
    config: str | None = "conf/context.yaml"


class WorklistConfig(_Strict):
    """The review worklist: the most informative crops of a dump for people to label next.

    Attributes:
        dump: catalog name of the dump whose classifications are reviewed.
        images: the catalog name the worklist's paths are relative to (the dump by default), so
            the filled-in worklist reads back as a Timelapse labelled set with the same ``images``.
        size: rows in the worklist.
        one_per_image: at most one box per image (Timelapse has one row per file).
        max_per_deployment: at most this many rows per deployment (None: no cap), so one busy
            camera does not fill the list.
        min_detection_conf: detections below this confidence (0..1) are not reviewed.
        uncertainty_weight: weight of ``1 - (top-1 - top-2 probability)``.
        unknown_weight: weight of the unknown-species score.
        prior_weight: weight of a disagreement between the classifier's top-1 and the taxon an
            observation with a context prior (source containing ``prior``) gives the image.
    """

    dump: str = "sample_dump"
    images: str | None = None
    size: int = Field(200, ge=1, le=100_000)
    one_per_image: bool = True
    max_per_deployment: int | None = Field(None, ge=1)
    min_detection_conf: float = Field(0.2, ge=0.0, le=1.0)
    uncertainty_weight: float = Field(1.0, ge=0.0)
    unknown_weight: float = Field(1.0, ge=0.0)
    prior_weight: float = Field(1.0, ge=0.0)


class RetrainConfig(_Strict):
    """A whole ``conf/retrain.yaml``.

    Attributes:
        catalog: the data catalog, relative to the project root.
        datasets: catalog names (:class:`RetrainDatasets`).
        labels: the labelled sets, merged in this order.
        classifier: the classifier training configuration (relative to the project root): its
            data, model, train and open-set settings train the challenger; its ``model.name`` is
            the registered model. Its own datasets, registry and tracking sections are not used.
        classifier_overrides: dotted keys set over it, e.g. ``{train.max_epochs: 10}``.
    """

    catalog: str = "data_catalog/catalog.yaml"
    datasets: RetrainDatasets = RetrainDatasets()
    labels: tuple[LabelledSetConfig, ...] = Field(min_length=1)
    classifier: str = "conf/classifier.yaml"
    classifier_overrides: dict[str, Any] = Field(default_factory=dict)
    holdout: HoldoutConfig = HoldoutConfig()
    promotion: PromotionConfig = PromotionConfig()
    tracking: RetrainTrackingConfig = RetrainTrackingConfig()
    context_priors: ContextPriorsConfig = ContextPriorsConfig()
    worklist: WorklistConfig = WorklistConfig()


@dataclass(frozen=True)
class LoadedRetrainConfig:
    """A validated retrain configuration with its catalog and classifier configuration.

    Attributes:
        config: the retrain configuration.
        catalog: the data catalog.
        classifier: the classifier training configuration with the overrides applied.
        source: the retrain configuration file.
        root: the project root (the folder holding ``conf/``).
    """

    config: RetrainConfig
    catalog: Catalog
    classifier: ClassifierTrainingConfig
    source: Path
    root: Path

    def label_format(self, index: int) -> str:
        """The format of ``labels[index]`` (given, or from its catalog type)."""
        spec = self.config.labels[index]
        return spec.format or FORMAT_OF_TYPE[self.catalog.get(spec.dataset).type]


def load_retrain_config(path: str | Path, *, overrides: dict[str, object] | None = None) -> LoadedRetrainConfig:
    """Load and validate ``conf/retrain.yaml``, its catalog and the classifier configuration it names.

    Args:
        path: the configuration file.
        overrides: dotted keys to override, e.g. ``{"promotion.min_macro_f1_gain": 0.05}``.

    Returns:
        The loaded configuration.

    Raises:
        ConfigError: unreadable YAML, an unknown key, a wrong type or value, a dataset name the
            catalog does not know, a labelled set whose catalog type holds no labels or whose
            format needs an ``images`` dataset, or an invalid classifier configuration.
        CatalogError: the catalog itself is invalid.
    """
    config, catalog, source = load_validated(path, RetrainConfig, overrides=overrides)
    root = source.parent.parent
    for index, spec in enumerate(config.labels):
        where = f"{source}: labels[{index}]"
        for key in ("dataset", "images", "deployments"):
            name = getattr(spec, key)
            if name is not None and name not in catalog:
                raise ConfigError(f"{where}.{key}: {name!r} is not in the catalog {catalog.source}. "
                                  f"Known datasets: {', '.join(catalog.names)}.")
        kind = catalog.get(spec.dataset).type
        if spec.format is None and kind not in FORMAT_OF_TYPE:
            raise ConfigError(f"{where}.dataset: {spec.dataset!r} is a {kind} dataset, which holds no labels; name a "
                              f"dataset of type {sorted(FORMAT_OF_TYPE)} or give its format.")
        fmt = spec.format or FORMAT_OF_TYPE[kind]
        if fmt in ("coco_camera_traps", "timelapse_csv") and spec.images is None:
            raise ConfigError(f"{where}.images: a {fmt} labelled set needs the catalog name of the folder its image "
                              f"paths are relative to (e.g. images: sample_dump).")
    for key in ("dump", "images"):
        name = getattr(config.worklist, key)
        if name is not None and name not in catalog:
            raise ConfigError(f"{source}: worklist.{key}: {name!r} is not in the catalog {catalog.source}.")
    classifier_path = Path(config.classifier)
    classifier_path = classifier_path if classifier_path.is_absolute() else root / classifier_path
    if not classifier_path.is_file():
        raise ConfigError(f"{source}: classifier: {classifier_path} not found; point it at the classifier training "
                          "configuration (e.g. conf/classifier.yaml).")
    try:
        classifier = load_classifier_config(classifier_path, overrides=dict(config.classifier_overrides)).config
    except ConfigError as exc:
        raise ConfigError(f"{source}: classifier ({classifier_path}, with classifier_overrides): {exc}") from exc
    return LoadedRetrainConfig(config, catalog, classifier, source, root)


def challenger_config(classifier: ClassifierTrainingConfig) -> ClassifierTrainingConfig:
    """The classifier configuration a challenger trains with: no test split (the fixed holdout is the
    test), and no tracking or registration of its own (the retrain run logs and registers).

    Raises:
        ConfigError: it asks for several training processes (the retrain trains in one).
    """
    if classifier.train.world_size > 1:
        raise ConfigError("the retrain trains its challenger in one process; set classifier_overrides "
                          "{train.devices: 1, train.num_nodes: 1} in the retrain configuration, or train with "
                          "several processes under torchrun with `ecowatch train classifier`.")
    split = classifier.data.split.model_copy(update={"test_fraction": 0.0, "test_locations": ()})
    return classifier.model_copy(update={
        "data": classifier.data.model_copy(update={"split": split}),
        "tracking": classifier.tracking.model_copy(update={"enabled": False}),
        "registry": classifier.registry.model_copy(update={"enabled": False}),
    })
