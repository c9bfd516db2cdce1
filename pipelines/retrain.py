"""The retrain run: new labels in, a challenger trained, promoted only if it beats the champion.

:func:`run_retrain` (``ecowatch retrain``), in order:

1. read every labelled set of ``conf/retrain.yaml`` and merge them; their fingerprint equal to the
   last successful run's: "nothing new", return without training (the tracking server is not needed);
2. replay offline tracking journals a previous run left (the tracking store must answer now:
   the champion is read from its registry);
3. the fixed holdout locations (configured, or chosen on the first round and kept in the state
   file); the champion ``models:/<name>@champion`` from the registry, if any;
4. one MLflow run: fine-tune the challenger from the champion (from scratch without one, or when
   the backbone changed), with calibration and unknown threshold refitted by
   :func:`ecowatch.classify.train.train_classifier`; refit the context priors; evaluate
   champion and challenger on the same holdout crops; decide; log both evaluations, the decision
   and the checkpoint; register the challenger (alias ``challenger``); move ``champion`` to it
   when promoted (``previous-champion`` keeps the replaced version);
5. write the state file.

:func:`run_worklist` (``ecowatch worklist``) writes the review worklist of the configured dump.
The commands are registered in the ``ecowatch`` CLI by :mod:`pipelines.cli`.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipelines.options import parse_overrides, set_option

if TYPE_CHECKING:  # the CLI starts without torch: the library is imported when a command runs
    from ecowatch.retrain.config import LoadedRetrainConfig
    from ecowatch.retrain.context_hook import ContextPriorsResult
    from ecowatch.retrain.holdout import HoldoutEvaluation
    from ecowatch.retrain.journal import ReplayResult
    from ecowatch.retrain.promotion import PromotionDecision
    from ecowatch.retrain.state import RetrainState
    from ecowatch.tracking import AliasChange

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "conf/retrain.yaml"
RUN_KIND = "retrain"


@dataclass
class RetrainSummary:
    """What one retrain run did.

    Attributes:
        status: ``nothing_new`` (labels unchanged: nothing trained) or ``trained``.
        model_name: the registered model.
        fingerprint: fingerprint of the labelled set.
        labels: labels in the merged set (excluded taxa left out).
        per_source: labels per source.
        skipped: per labelled set, labels left out by reason.
        holdout_locations: the fixed holdout.
        champion_version: registry version of the champion it was compared with (None: none).
        challenger_version: registry version of the challenger (None when registered offline).
        checkpoint: the challenger's checkpoint file.
        init_mode: ``scratch``, or ``champion`` (fine-tuned from the champion).
        champion: the champion's holdout figures.
        challenger: the challenger's holdout figures.
        decision: the promotion decision.
        alias_change: what happened to the champion alias (None: not promoted, or offline).
        context_priors: the context-priors step.
        mlflow_run_id: the MLflow run (None if the server was lost before it was created).
        offline_journal: the journal holding the records the server did not get (None: all logged).
        replayed: journals of earlier runs replayed at the start.
        seconds: wall time.
    """

    status: str
    model_name: str
    fingerprint: str
    labels: int = 0
    per_source: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)
    holdout_locations: tuple[str, ...] = ()
    champion_version: str | None = None
    challenger_version: str | None = None
    checkpoint: Path | None = None
    init_mode: str = ""
    champion: HoldoutEvaluation | None = None
    challenger: HoldoutEvaluation | None = None
    decision: PromotionDecision | None = None
    alias_change: AliasChange | None = None
    context_priors: ContextPriorsResult | None = None
    mlflow_run_id: str | None = None
    offline_journal: Path | None = None
    replayed: list[ReplayResult] = field(default_factory=list)
    seconds: float = 0.0


def run_retrain(loaded: LoadedRetrainConfig, *, force: bool = False, on_step: Callable[[str], None] | None = None,
                progress_bar: bool = False) -> RetrainSummary:
    """Retrain when the labelled set changed (see the module docstring).

    Args:
        loaded: the validated retrain configuration (:func:`ecowatch.retrain.config.load_retrain_config`).
        force: train even when the labels did not change.
        on_step: called with each step's name as it starts (``intake``, ``replay``, ``champion``,
            ``train``, ``context_priors``, ``evaluate``, ``decide``, ``log``, ``register``, ``promote``).
        progress_bar: show Lightning's progress bar.

    Returns:
        The summary (``status`` ``nothing_new`` when nothing was trained).

    Raises:
        TrackingUnavailable: the tracking server cannot be reached at the start of a run that has
            something to train (nothing was done).
        ConfigError: the classifier configuration asks for several training processes.
        CatalogError: a required labelled set or the taxonomy is missing.
        InputDataError: unreadable labels, no labels, or too few locations for a holdout.
        ModelNotFoundError: the champion's artefact cannot be fetched or loaded.
    """
    from ecowatch.classify.train import train_classifier
    from ecowatch.errors import InputDataError
    from ecowatch.retrain.champion import fetch_champion, fine_tune_start
    from ecowatch.retrain.config import challenger_config
    from ecowatch.retrain.context_hook import refit_context_priors
    from ecowatch.retrain.holdout import evaluate_checkpoint, resolve_holdout
    from ecowatch.retrain.intake import read_labelled_sets
    from ecowatch.retrain.journal import TrackingJournal, replay_if_reachable, replay_journals
    from ecowatch.retrain.labels import fingerprint, merge_labels
    from ecowatch.retrain.promotion import decide_promotion
    from ecowatch.retrain.records import comparison_metrics, write_comparison_files
    from ecowatch.retrain.state import FINGERPRINT_TAG, HOLDOUT_PARAM, load_state, state_from_mlflow
    from ecowatch.tables import read_taxonomy
    from ecowatch.tracking import TrackingUnavailable, check_reachable, tracked_run, tracking_target

    started = time.perf_counter()
    cfg, catalog, names, promo = loaded.config, loaded.catalog, loaded.config.datasets, loaded.config.promotion
    clf = challenger_config(loaded.classifier)
    name = clf.model.name
    step = on_step or (lambda _name: None)
    state_dir = Path(catalog.location(names.state))
    journal_root = state_dir / "tracking-journal"
    models_dir = Path(catalog.location(names.models))
    target = tracking_target(catalog.location(names.tracking))

    step("intake")
    taxa = read_taxonomy(catalog.input_path(names.taxonomy))
    sets = read_labelled_sets(loaded, taxa)
    merged = merge_labels(s.labels for s in sets)
    excluded = set(clf.data.exclude_taxa)
    labels = [label for label in merged.labels if label.taxon_id not in excluded]
    summary = RetrainSummary("nothing_new", name, fingerprint(labels), labels=len(labels),
                             per_source=merged.per_source, skipped={s.name: s.skipped for s in sets if s.skipped})
    state = load_state(state_dir, name)
    if _unchanged(state, summary, force):  # nothing to do: the tracking server is not needed
        summary.replayed = replay_if_reachable(target, journal_root)
        summary.seconds = time.perf_counter() - started
        return summary

    step("replay")
    try:
        check_reachable(target)
    except TrackingUnavailable as exc:
        raise TrackingUnavailable(f"{exc} Nothing was trained: retraining needs the model registry at its start "
                                  "(to find the champion). Start the server, or point the catalog's tracking dataset "
                                  "at a reachable store, and run again.") from exc
    summary.replayed = replay_journals(target, journal_root)
    if state is None:
        state = state_from_mlflow(target, cfg.tracking.experiment, name, kind=RUN_KIND)
        if _unchanged(state, summary, force):
            summary.seconds = time.perf_counter() - started
            return summary
    if not labels:
        raise InputDataError("the labelled sets hold no labels of species in the taxonomy (see the warnings above); "
                             "check the labels section of the retrain configuration.")
    holdout = resolve_holdout(labels, configured=cfg.holdout.locations, kept=state.holdout_locations if state else (),
                              fraction=cfg.holdout.fraction, seed=cfg.holdout.seed)
    summary.holdout_locations = holdout
    train_labels = [label for label in labels if label.location_id not in set(holdout)]
    holdout_labels = [label for label in labels if label.location_id in set(holdout)]

    step("champion")
    champion = fetch_champion(target, name, alias=promo.champion_alias, models_dir=models_dir)
    init_from, summary.init_mode = fine_tune_start(champion, clf.model.backbone)
    summary.champion_version = champion.version if champion else None

    journal = TrackingJournal(journal_root, f"{RUN_KIND}-{name}") if cfg.tracking.offline_journal else None
    with tracked_run(target, experiment=cfg.tracking.experiment, run_name=f"{RUN_KIND}-{name}", offline=journal,
                     tags={"ecowatch.kind": RUN_KIND, "ecowatch.model": name, FINGERPRINT_TAG: summary.fingerprint}
                     ) as tracker:
        summary.mlflow_run_id = tracker.run_id
        tracker.log_params({
            "labels.fingerprint": summary.fingerprint, "labels.count": len(labels), "labels.train": len(train_labels),
            "labels.holdout": len(holdout_labels), HOLDOUT_PARAM: ",".join(holdout), "config": str(loaded.source),
            "champion.version": summary.champion_version or "", "init": summary.init_mode,
            **{f"labels.source.{k}": v for k, v in merged.per_source.items()},
            **{f"promotion.{k}": v for k, v in promo.model_dump().items()},
        })
        step("train")
        result = train_classifier(clf, sources=[label.crop_source() for label in train_labels], taxa=taxa,
                                  models_dir=models_dir, cache_dir=models_dir / "crop_cache",
                                  progress_bar=progress_bar, init_from=init_from)
        assert result is not None  # None only in DDP ranks other than 0; the retrain trains in one process
        summary.checkpoint = result.checkpoint
        tracker.log_metrics({f"challenger.fit.{k}": v for k, v in result.metrics().items()})

        step("context_priors")
        context_config = loaded.root / cfg.context_priors.config if cfg.context_priors.config else None
        summary.context_priors = refit_context_priors(labels, out_dir=state_dir / "context_priors",
                                                      enabled=cfg.context_priors.enabled, context_config=context_config)
        tracker.set_tags({"ecowatch.context_priors": f"{summary.context_priors.status}: "
                                                     f"{summary.context_priors.message}"})
        if summary.context_priors.artifact is not None:
            tracker.log_artifact(summary.context_priors.artifact, "context_priors")

        step("evaluate")
        class_ids = sorted(set(result.taxonomy.class_ids) | set(champion.class_ids if champion else ()))
        sources = [label.crop_source() for label in holdout_labels if label.taxon_id in set(class_ids)]
        workers = clf.data.cache_workers
        summary.challenger = evaluate_checkpoint(result.checkpoint, sources, class_ids=class_ids,
                                                 cache_dir=models_dir / "crop_cache", workers=workers)
        if champion is not None:
            summary.champion = evaluate_checkpoint(champion.checkpoint, sources, class_ids=class_ids,
                                                   cache_dir=models_dir / "crop_cache", workers=workers)

        step("decide")
        summary.decision = decide_promotion(
            challenger=summary.challenger.report, champion=summary.champion.report if summary.champion else None,
            min_macro_f1_gain=promo.min_macro_f1_gain, max_class_recall_drop=promo.max_class_recall_drop,
            min_holdout_crops=cfg.holdout.min_crops)
        for reason in summary.decision.reasons:
            log.info("promotion: %s", reason)

        step("log")
        tracker.log_metrics(comparison_metrics(summary.challenger, summary.champion, summary.decision))
        with tempfile.TemporaryDirectory() as tmp:
            tracker.log_artifact(write_comparison_files(
                Path(tmp) / "retrain", decision=summary.decision, challenger=summary.challenger,
                champion=summary.champion, champion_version=summary.champion_version,
                holdout_locations=holdout, labels_fingerprint=summary.fingerprint, init_mode=summary.init_mode),
                "retrain")
        tracker.log_artifact(result.checkpoint, "classifier")
        if summary.context_priors.artifact is not None:
            tracker.log_artifact(summary.context_priors.artifact, "context_priors")

        step("register")
        registered = tracker.register_artifact(
            f"classifier/{result.checkpoint.name}", name=name, alias=promo.challenger_alias,
            tags={"model_version": result.model_version, "backbone": clf.model.backbone,
                  "holdout.macro_f1": f"{summary.challenger.report.macro_f1:.4f}", FINGERPRINT_TAG: summary.fingerprint,
                  "ecowatch.retrain_run": tracker.run_id or ""})
        summary.challenger_version = registered.version if registered else None

        step("promote")
        if summary.decision.promote and tracker.enabled:
            summary.alias_change = tracker.promote(
                name, summary.challenger_version, expected_current=summary.champion_version,
                alias=promo.champion_alias, previous_alias=promo.previous_alias,
                tags={"ecowatch.promoted_by_run": tracker.run_id or "",
                      "holdout.macro_f1": f"{summary.challenger.report.macro_f1:.4f}"})
        tracker.set_tags({"ecowatch.decision": "promote" if summary.decision.promote else "keep champion",
                          "ecowatch.challenger_version": summary.challenger_version or "(registered offline)"})
    if journal is not None and journal.active:
        summary.offline_journal = journal.folder
    summary.status = "trained"
    _save_state(state_dir, summary, journal_root)
    summary.seconds = time.perf_counter() - started
    return summary


def _unchanged(state: RetrainState | None, summary: RetrainSummary, force: bool) -> bool:
    """Whether the labels have the last run's fingerprint (and no ``--force``); fills in the holdout then."""
    if force or state is None or state.labels_fingerprint != summary.fingerprint:
        return False
    log.info("labels unchanged since run %s (fingerprint %s): nothing new to train on", state.last_run_id,
             summary.fingerprint[:12])
    summary.holdout_locations = state.holdout_locations
    return True


def _save_state(state_dir: Path, summary: RetrainSummary, journal_root: Path) -> None:
    from ecowatch.retrain.journal import pending_journals
    from ecowatch.retrain.state import RetrainState, save_state, utc_now

    change = summary.alias_change
    champion = change.version if change is not None and change.applied else summary.champion_version
    save_state(state_dir, RetrainState(
        model_name=summary.model_name, labels_fingerprint=summary.fingerprint, labels=summary.labels,
        per_source=summary.per_source, holdout_locations=summary.holdout_locations,
        last_run_id=summary.mlflow_run_id, last_run_utc=utc_now(),
        last_decision=summary.decision.to_record() if summary.decision else None,
        champion_version=champion, challenger_version=summary.challenger_version,
        pending_journals=[p.name for p in pending_journals(journal_root)],
    ))


# --- the worklist -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorklistSummary:
    """What ``ecowatch worklist`` wrote: the CSV, its rows and why they were chosen."""

    path: Path
    rows: int
    reasons: dict[str, int]
    model_name: str


def run_worklist(loaded: LoadedRetrainConfig, *, out: Path | None = None) -> WorklistSummary:
    """Write the review worklist of the configured dump (``worklist`` section of ``conf/retrain.yaml``).

    Images already labelled in the labelled sets (same images dataset) are left out.

    Args:
        loaded: the retrain configuration.
        out: the CSV to write; default ``<worklists>/worklist-<dump>-<UTC time>.csv``.

    Returns:
        The file and its counts.

    Raises:
        StoreError: the results store cannot be opened.
        CatalogError: the taxonomy or a required labelled set is missing.
    """
    from collections import Counter

    from ecowatch.retrain.intake import read_labelled_sets
    from ecowatch.retrain.labels import merge_labels
    from ecowatch.retrain.worklist import WorklistWeights, select_worklist, write_worklist
    from ecowatch.store import open_store
    from ecowatch.tables import read_taxonomy

    cfg, catalog, w = loaded.config, loaded.catalog, loaded.config.worklist
    images = w.images or w.dump
    taxa = read_taxonomy(catalog.input_path(cfg.datasets.taxonomy))
    labelled = merge_labels(s.labels for s in read_labelled_sets(loaded, taxa)).labels
    prefix = f"{images}/"
    done = {label.image_key.removeprefix(prefix) for label in labelled if label.image_key.startswith(prefix)}
    store = open_store(catalog.location(cfg.datasets.store))
    try:
        rows = select_worklist(
            store, dump_id=w.dump, model_name=loaded.classifier.model.name, size=w.size,
            weights=WorklistWeights(w.uncertainty_weight, w.unknown_weight, w.prior_weight),
            min_detection_conf=w.min_detection_conf, one_per_image=w.one_per_image,
            max_per_deployment=w.max_per_deployment, exclude_relpaths=done)
    finally:
        store.dispose()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out or Path(catalog.location(cfg.datasets.worklists)) / f"worklist-{w.dump}-{stamp}.csv"
    write_worklist(rows, path, taxa=taxa)
    return WorklistSummary(path, len(rows), dict(Counter(r.reason for r in rows)), loaded.classifier.model.name)


# --- commands -----------------------------------------------------------------------------------------------

config_option = click.option("--config", "-c", "config_path", default=DEFAULT_CONFIG, show_default=True,
                             type=click.Path(dir_okay=False), help="Retrain configuration (conf/retrain.yaml).")


def _load(config_path: str, overrides: tuple[str, ...]) -> LoadedRetrainConfig:
    from ecowatch.retrain.config import load_retrain_config

    return load_retrain_config(config_path, overrides=parse_overrides(overrides))


@click.command("retrain")
@config_option
@set_option
@click.option("--force", is_flag=True, help="Train even when the labels did not change since the last run.")
def retrain_command(config_path: str, overrides: tuple[str, ...], force: bool) -> None:
    """Retrain the species classifier when the labelled sets changed; promote the challenger only if it
    beats the champion on the fixed holdout."""
    import sys

    summary = run_retrain(_load(config_path, overrides), force=force, progress_bar=sys.stderr.isatty())
    for replay in summary.replayed:
        click.echo(f"replayed offline journal {replay.folder.name} to MLflow run {replay.run_id}")
    if summary.status == "nothing_new":
        click.echo(f"nothing new: the labels ({summary.labels}, fingerprint {summary.fingerprint[:12]}) are those "
                   "of the last retrain; nothing trained.")
        return
    click.echo(f"retrain of {summary.model_name} on {summary.labels} labels (fingerprint {summary.fingerprint[:12]}) "
               f"in {summary.seconds:.0f} s")
    start = (f"fine-tuned from champion version {summary.champion_version}" if summary.init_mode == "champion"
             else "trained from scratch")
    click.echo(f"  holdout locations: {', '.join(summary.holdout_locations)}; challenger {start}")
    for role, figures in (("champion", summary.champion), ("challenger", summary.challenger)):
        if figures is not None:
            click.echo(f"  {role}: holdout macro-F1 {figures.report.macro_f1:.3f}, top-1 {figures.report.top1:.3f} "
                       f"on {figures.report.n} crops")
    decision = summary.decision
    assert decision is not None
    click.echo(f"  decision: {'PROMOTE' if decision.promote else 'keep the champion'}")
    for reason in decision.reasons:
        click.echo(f"    - {reason}")
    if summary.challenger_version:
        click.echo(f"  registered: models:/{summary.model_name}/{summary.challenger_version} (alias challenger)")
    if summary.alias_change is not None:
        click.echo(f"  {summary.alias_change.reason}")
    if summary.context_priors is not None:
        click.echo(f"  context priors: {summary.context_priors.status} ({summary.context_priors.message})")
    if summary.mlflow_run_id:
        click.echo(f"  MLflow run: {summary.mlflow_run_id}")
    if summary.offline_journal is not None:
        click.echo(f"  the tracking server was lost during the run: its records are kept in {summary.offline_journal}; "
                   "replay them with `ecowatch tracking replay` (or the next `ecowatch retrain`).")


@click.group("models")
def models_group() -> None:
    """The species model's versions in the MLflow registry: list, roll back."""


@models_group.command("list")
@config_option
@set_option
def models_list(config_path: str, overrides: tuple[str, ...]) -> None:
    """List the registered versions with their aliases, holdout macro-F1 and promotion history."""
    from ecowatch.tracking import list_model_versions, tracking_target

    loaded = _load(config_path, overrides)
    name = loaded.classifier.model.name
    target = tracking_target(loaded.catalog.location(loaded.config.datasets.tracking))
    versions = list_model_versions(target, name)
    if not versions:
        click.echo(f"no versions of {name} in {target.tracking_uri}")
        return
    click.echo(f"{name} in {target.tracking_uri}")
    click.echo(f"{'version':>7}  {'aliases':28s} {'holdout F1':>10}  {'created (UTC)':20s} {'run':32s}  history")
    for v in versions:
        history = []
        if "ecowatch.promoted_utc" in v.tags:
            replaced = v.tags.get("ecowatch.replaced") or "none"
            history.append(f"promoted {v.tags['ecowatch.promoted_utc']} (replaced {replaced})")
        if "ecowatch.rolled_back_utc" in v.tags:
            back = v.tags.get("ecowatch.rolled_back_to")
            history.append(f"rolled back {v.tags['ecowatch.rolled_back_utc']} to {back}")
        click.echo(f"{v.version:>7}  {','.join(v.aliases) or '-':28s} {v.tags.get('holdout.macro_f1', '-'):>10}  "
                   f"{v.created_utc:20s} {v.run_id:32s}  {'; '.join(history)}")


@models_group.command("rollback")
@config_option
@set_option
@click.option("--to", "to_version", default=None,
              help="Version to go back to (default: the one the champion replaced).")
def models_rollback(config_path: str, overrides: tuple[str, ...], to_version: str | None) -> None:
    """Move the champion alias back to the previous champion (one step; run again to go further back)."""
    from ecowatch.tracking import rollback_alias, tracking_target

    loaded = _load(config_path, overrides)
    promo = loaded.config.promotion
    target = tracking_target(loaded.catalog.location(loaded.config.datasets.tracking))
    change = rollback_alias(target, loaded.classifier.model.name, alias=promo.champion_alias,
                            previous_alias=promo.previous_alias, to_version=to_version)
    click.echo(change.reason)
    if change.applied:
        click.echo(f"the nightly run now resolves models:/{change.name}@{change.alias} to version {change.version}")


@click.command("worklist")
@config_option
@set_option
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="CSV to write (default: <worklists>/worklist-<dump>-<UTC time>.csv).")
def worklist_command(config_path: str, overrides: tuple[str, ...], out: str | None) -> None:
    """Write the review worklist: the configured dump's most informative crops (uncertain, unknown, disagreeing
    with the prior) as a Timelapse-layout CSV; fill in its Species column and the next retrain reads it."""
    summary = run_worklist(_load(config_path, overrides), out=Path(out) if out else None)
    click.echo(f"worklist of {summary.rows} crops written to {summary.path}")
    if summary.reasons:
        click.echo("  reasons: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.reasons.items())))


@click.group("tracking")
def tracking_group() -> None:
    """MLflow tracking: replay records kept offline while the server could not be reached."""


@tracking_group.command("replay")
@config_option
@set_option
def tracking_replay(config_path: str, overrides: tuple[str, ...]) -> None:
    """Replay the offline journals of runs that lost the tracking server, to the server."""
    from ecowatch.retrain.journal import pending_journals, replay_journals
    from ecowatch.tracking import tracking_target

    loaded = _load(config_path, overrides)
    root = Path(loaded.catalog.location(loaded.config.datasets.state)) / "tracking-journal"
    target = tracking_target(loaded.catalog.location(loaded.config.datasets.tracking))
    if not pending_journals(root):
        click.echo(f"no offline journal to replay in {root}")
        return
    for result in replay_journals(target, root):
        click.echo(f"replayed {result.folder.name}: MLflow run {result.run_id}, {result.ops} records, registered "
                   f"{', '.join(result.registered) or 'nothing'}")
        for change in result.alias_changes:
            click.echo(f"  {change}")
