"""Accuracy of the species classifier at camera sites it never saw, within a training-time budget.

Trains with :func:`ecowatch.classify.train_classifier` on the training locations of generated
camera-trap dumps (``ecowatch generate-dump --preset train``) and prints, for the **test locations**
(whole sites, none of whose crops were seen in training or validation):

- top-1 and macro-F1, per-class recall;
- the look-alike pairs (from the dump's ``manifest.json``): each species' recall and how often it
  is taken for the other;
- ECE before and after the temperature and class biases fitted on validation;
- the AUROC of the unknown-species score, with ``--holdout`` species left out of training;
- training crops/s and the training wall time.

Macro-F1 and the AUROC come with their 90 % interval when the test sites are resampled (a cluster
bootstrap over sites): how much the figure depends on which sites the split happened to draw.

    python bench/classifier_accuracy.py --data /tmp/det/train                 # an existing dump
    python bench/classifier_accuracy.py --seeds 0,1,2,3 --workdir /tmp/ecw    # generate (once) and use 4 dumps

Several dumps are pooled; their location ids are prefixed with the dump's folder name, so the
same-named site of two seeds (a different generated scene) is two sites. Defaults are the CPU
recipe (``conf/classifier.yaml`` with the overrides below). Nothing is downloaded. Figures are
printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGETS = {"macro_f1": 0.85, "ece_after": 0.05, "unknown_auroc": 0.8}


def _dumps(args: argparse.Namespace) -> list[Path]:
    if args.data:
        return [Path(p) for p in args.data]
    from ecowatch.synth import DumpSpec, generate_dump

    out = []
    for seed in (int(s) for s in args.seeds.split(",")):
        folder = Path(args.workdir) / f"train-seed{seed}{'' if args.site_habitats else '-nohabitats'}"
        if not (folder / ".bench-complete").is_file():
            print(f"generating the train preset with seed {seed} in {folder} (once) ...", flush=True)
            started = time.perf_counter()
            generate_dump(folder, DumpSpec.preset("train", seed=seed, workers=args.generate_workers,
                                                  site_habitats=args.site_habitats), overwrite=True)
            (folder / ".bench-complete").write_text("ok\n")
            print(f"  {time.perf_counter() - started:.0f} s", flush=True)
        out.append(folder)
    return out


def _lookalike_pairs(dump: Path) -> list[tuple[str, str]]:
    manifest = json.loads((dump / "manifest.json").read_text())
    coco = json.loads((dump / "coco_camera_traps.json").read_text())
    taxon_of = {c.get("species_key"): c.get("taxon_id") for c in coco["categories"]}
    return [(taxon_of[p["a"]], taxon_of[p["b"]]) for p in manifest.get("lookalike_pairs", [])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", help="a generate-dump output folder (repeatable)")
    parser.add_argument("--seeds", default="0,1,2,3", help="without --data: train-preset seeds to generate and pool")
    parser.add_argument("--workdir", default="work/bench-classifier", help="generated dumps, crop cache, outputs")
    parser.add_argument("--generate-workers", type=int, default=2)
    parser.add_argument("--no-site-habitats", dest="site_habitats", action="store_false",
                        help="generate the dumps of ecowatch before site habitats (the world of earlier figures)")
    parser.add_argument("--config", default=str(REPO / "conf" / "classifier.yaml"))
    parser.add_argument("--backbone", default=None, help="override model.backbone")
    parser.add_argument("--input-size", type=int, default=None, help="override data.input_size")
    parser.add_argument("--epochs", type=int, default=None, help="override train.max_epochs")
    parser.add_argument("--minutes", type=float, default=15.0,
                        help="hard stop of the training loop (minutes); 0: none, the run trains its --epochs "
                             "(e.g. to compare 1 and 2 DDP processes, whose schedules do not follow a time budget)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: every core)")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers")
    parser.add_argument("--devices", type=int, default=None,
                        help="train.devices: 2 trains with DDP over 2 processes (gloo on CPU) at the same global batch")
    parser.add_argument("--holdout", default="meles_meles", help="comma-separated taxon ids kept out of training")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="any other configuration override, e.g. train.lr=0.003")
    parser.add_argument("--no-tracking", action="store_true", help="do not log to MLflow (workdir/mlflow)")
    parser.add_argument("--install", default=None, metavar="PATH",
                        help="copy the trained checkpoint there, its weights in float16 (the bundled default: "
                             "ecowatch/classify/bundled/ecowatch-species-synth.ckpt)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import yaml

    from ecowatch.classify.config import ClassifierTrainingConfig
    from ecowatch.classify.crops import sources_from_coco
    from ecowatch.classify.evaluate import pair_report
    from ecowatch.classify.train import train_classifier
    from ecowatch.distributed import launch_rank
    from ecowatch.tables import read_taxonomy
    from ecowatch.tracking import tracking_target

    raw = yaml.safe_load(Path(args.config).read_text())
    overrides: dict[str, object] = {"data.holdout_species": [t for t in args.holdout.split(",") if t],
                                    "train.max_minutes": args.minutes or None}
    for key, value in (("model.backbone", args.backbone), ("data.input_size", args.input_size),
                       ("train.max_epochs", args.epochs), ("train.threads", args.threads),
                       ("train.workers", args.workers), ("train.devices", args.devices)):
        if value is not None:
            overrides[key] = value
    for pair in args.overrides:
        key, _, value = pair.partition("=")
        overrides[key] = yaml.safe_load(value)
    for dotted, value in overrides.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    config = ClassifierTrainingConfig.model_validate(raw)
    say = print if launch_rank() == 0 else (lambda *a, **k: None)  # DDP re-runs this script in the other ranks

    workdir = Path(args.workdir)
    dumps = _dumps(args)
    sources = []
    for dump in dumps:
        found = sources_from_coco(dump / "coco_camera_traps.json", dump / "dump", exclude_taxa=config.data.exclude_taxa)
        if len(dumps) > 1:
            found = [replace(s, location_id=f"{dump.name}/{s.location_id}",
                             deployment_id=f"{dump.name}/{s.deployment_id}") for s in found]
        sources += found
    taxa = read_taxonomy(dumps[0] / "taxonomy.csv")
    pairs = _lookalike_pairs(dumps[0])
    say(f"data: {len(sources)} labelled animal boxes from {', '.join(str(d) for d in dumps)}")
    say(f"recipe: {config.model.backbone} at {config.data.input_size} px (crops {config.data.crop_size} px), "
          f"{config.train.max_epochs} epochs, global batch {config.train.batch_size} over "
          f"{config.train.world_size} process(es), lr {config.train.lr}, "
          f"hard stop {f'{args.minutes:.0f} min' if args.minutes else 'none'}, "
          f"held out: {list(config.data.holdout_species)}", flush=True)

    target = None if args.no_tracking else tracking_target(str((workdir / "mlflow" / "mlflow.db").resolve()))
    started = time.perf_counter()
    result = train_classifier(config, sources=sources, taxa=taxa, models_dir=workdir / "models",
                              cache_dir=workdir / "crop_cache", tracking=target,
                              extra_params={"data": ",".join(str(d) for d in dumps)})
    total = time.perf_counter() - started
    if result is None:  # a DDP rank other than 0
        return

    print(f"\nsplit (locations): train {len(result.split.train)}, val {len(result.split.val)}, "
          f"test {len(result.split.test)}: test = {list(result.split.test)}")
    print(f"crops: {result.crops}")
    print(f"training: {result.epochs} epochs ({result.steps} steps, {result.world_size} process(es)), "
          f"{result.train_seconds / 60:.1f} min in training steps, "
          f"{result.train_images_per_second:.1f} crops/s; whole run {total / 60:.1f} min")
    test = result.test or result.val
    rep = test.report
    names = {t: taxa[t].common_name for t in rep.class_ids}
    print(f"\nTEST (sites unseen in training), {rep.n} crops of {len(rep.recall)} species:")
    low, high = test.macro_f1_interval
    print(f"  top-1 {rep.top1:.3f}   macro-F1 {rep.macro_f1:.3f} [90 % over sites {low:.3f} .. {high:.3f}]   "
          f"(target >= {TARGETS['macro_f1']})")
    print("  per-class recall (n):")
    for taxon in sorted(rep.recall, key=lambda t: -rep.support[t]):
        print(f"    {names[taxon]:24s} {rep.recall[taxon]:.3f} ({rep.support[taxon]})   F1 {rep.f1[taxon]:.3f}")
    print("  look-alike pairs:")
    for a, b in pairs:
        if a in rep.class_ids and b in rep.class_ids:
            p = pair_report(rep, a, b)
            print(f"    {names[a]} / {names[b]}: recall {p.recall_a:.3f} / {p.recall_b:.3f} (n {p.n_a} / {p.n_b}); "
                  f"taken for the other {p.a_as_b:.3f} / {p.b_as_a:.3f}; pair F1 {p.pair_f1:.3f}")
    bias = result.class_bias.abs().max().item() if result.class_bias is not None else 0.0
    print(f"  calibration: temperature {result.temperature:.3f}, class biases up to {bias:.2f} (fitted on val); "
          f"ECE before {test.ece_before:.4f} -> "
          f"after {test.ece_after:.4f} (target <= {TARGETS['ece_after']}); NLL {test.nll_before:.3f} -> "
          f"{test.nll_after:.3f}")
    val = result.val
    print(f"  (val: ECE {val.ece_before:.4f} -> {val.ece_after:.4f}; top-1 {val.report.top1:.3f}, "
          f"macro-F1 {val.report.macro_f1:.3f})")
    if not math.isnan(test.unknown_auroc):
        low, high = test.unknown_auroc_interval
        print(f"  unknown species {list(config.data.holdout_species)}: AUROC {test.unknown_auroc:.3f} "
              f"[90 % over sites {low:.3f} .. {high:.3f}] "
              f"(target >= {TARGETS['unknown_auroc']}); at the validation threshold "
              f"({result.open_set.method}, known recall {result.open_set.known_recall}): "
              f"{test.unknown_flagged_unknown:.3f} of held-out crops and {test.unknown_flagged_known:.3f} of known "
              f"crops called unknown")
        print("  AUROC of each open-set score on the same crops: " + ", ".join(
            f"{m} {v:.3f}" for m, v in test.unknown_auroc_by_method.items()))
    print(f"\ncheckpoint: {result.checkpoint} (version {result.model_version})")
    if args.install:
        from ecowatch.classify.checkpoint import checkpoint_version, compact_classifier

        compact_classifier(result.checkpoint, Path(args.install))  # float16 weights: half the size in the repository
        print(f"installed: {args.install} ({Path(args.install).stat().st_size / 1e6:.1f} MB, float16 weights; "
              f"version {checkpoint_version(Path(args.install))})")
    if result.registered_uri:
        print(f"registered: {result.registered_uri}; MLflow run {result.mlflow_run_id} in {target.tracking_uri}")


if __name__ == "__main__":
    main()
