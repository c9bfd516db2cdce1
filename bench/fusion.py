"""Does the context fuser help at camera sites the classifier never saw, and never hurt elsewhere?

Takes a trained classifier checkpoint and the generated dumps it was trained on, replicates the
training's location split (the training's own split function with the split settings of
``conf/classifier.yaml`` over the checkpoint's classes; several dumps are pooled with their folder
name prefixed to crop, location and event ids, as ``bench/classifier_accuracy.py`` does), and prints for the
**test locations** (whole sites unseen by the classifier and by the prior):

- image-only vs fused top-1 and macro-F1 with informative priors: the knowledge graph learns from
  the labels of train+val locations; the prior weights are fitted on validation locations against
  a graph of train locations only, so validation sites are as new to the prior as test sites (known
  by their region and, where the deployments table has one, their habitat; the same again with
  the habitats dropped). The same with the sequence vote on top (each crop labelled by its burst's
  pooled probabilities);
- the same with shuffled priors (the labels' species permuted, seeded; weights refitted on
  validation), and for a new region (each region in turn: its labels left out of the graph,
  the weights fitted with informative priors kept; figures on that region's test sites, pooled),
  each with and without range maps; and with no context at all. Each macro-F1 gain comes with its
  90 % interval when whole test sites are resampled (a cluster bootstrap: how much the gain
  depends on which sites happen to be in the test split);
- roll-up: precision of the labels emitted at species rank, the share rolled up (by rank) and the
  share called unknown, the crops of the species held out of training (novel) included; at the
  configured thresholds and at the species threshold fitted on validation (95 % confidence over
  validation sites, a cluster bootstrap); per crop (no vote), and per burst as the nightly stage
  decides and writes them (each burst's crops voted, the threshold fitted on validation bursts);
- sequences: event-level accuracy (one vote per burst) beside frame-level accuracy.

Figures only; nothing is asserted. The classifier's scores of the val/test crops are cached in
``--workdir`` (keyed by checkpoint version); the top-k of ``classify.top_k`` in ``--config`` is kept
and completed as the nightly stage does; the thresholds are ``fuse:`` of ``--config``.

    python bench/fusion.py --checkpoint CKPT --data DUMP1 --data DUMP2 ... [--crop-cache DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


@dataclass(frozen=True)
class CropMeta:
    """What the labels say about a crop's frame: camera-local time, burst, deployment, image."""

    timestamp: dt.datetime | None
    event_id: str
    deployment_id: str
    image_id: str


def _load_dumps(dumps: list[Path]) -> tuple[list, dict[str, CropMeta], list, list, dict]:
    """Crop sources, their frames' metadata, labelled observations, deployments and taxa of the dumps."""
    from ecowatch.classify.crops import sources_from_coco
    from ecowatch.context.labels import observations_from_coco
    from ecowatch.tables import read_deployments, read_taxonomy

    sources, meta, observations, deployments = [], {}, [], []
    for dump in dumps:
        prefix = f"{dump.name}/" if len(dumps) > 1 else ""
        labels = dump / "coco_camera_traps.json"
        sources += [replace(s, crop_id=prefix + s.crop_id, location_id=prefix + s.location_id,
                            deployment_id=prefix + s.deployment_id)
                    for s in sources_from_coco(labels, dump / "dump", exclude_taxa=["homo_sapiens"])]
        coco = json.loads(labels.read_text())
        images = {img["id"]: img for img in coco["images"]}
        for ann in coco["annotations"]:
            img = images[ann["image_id"]]
            stamp = dt.datetime.fromisoformat(img["datetime"]) if img.get("datetime") else None
            meta[prefix + str(ann["id"])] = CropMeta(stamp, prefix + str(img.get("seq_id") or img["id"]),
                                            prefix + str(img.get("deployment_id") or ""), prefix + str(img["id"]))
        observations += observations_from_coco(labels, exclude_taxa=["homo_sapiens"], prefix=prefix)
        deployments += [replace(d, deployment_id=prefix + d.deployment_id, location_id=prefix + d.location_id)
                        for d in read_deployments(dump / "deployments.csv")]
    return sources, meta, observations, deployments, read_taxonomy(dumps[0] / "taxonomy.csv")


def _scores(classifier: Any, crops: list, workdir: Path, threads: int) -> tuple[np.ndarray, np.ndarray]:
    """Full calibrated probabilities (N, C) and unknown scores (N,) of cached crops (cached in workdir)."""
    import torch

    from ecowatch.classify.crops import read_crop
    from ecowatch.classify.transforms import eval_transform

    cache = workdir / f"scores-{classifier.version}.npz"
    ids = np.array([c.crop_id for c in crops])
    if cache.is_file():
        stored = np.load(cache)
        if np.array_equal(stored["ids"], ids):
            return stored["probs"], stored["unknown"]
    torch.set_num_threads(threads)
    transform = eval_transform(classifier.preprocessing)
    probs, unknown = [], []
    started = time.perf_counter()
    for start in range(0, len(crops), 128):
        batch = torch.stack([transform(image=read_crop(c.path))["image"] for c in crops[start:start + 128]])
        p, u, _ = classifier.scores(batch)
        probs.append(p.double().numpy())
        unknown.append(u.double().numpy())
    out = np.concatenate(probs), np.concatenate(unknown)
    print(f"scored {len(crops)} crops in {time.perf_counter() - started:.0f} s ({threads} thread(s))", flush=True)
    workdir.mkdir(parents=True, exist_ok=True)
    np.savez(cache, ids=ids, probs=out[0], unknown=out[1])
    return out


def _top_k(probs: np.ndarray, class_ids: tuple[str, ...], k: int) -> np.ndarray:
    """What the store keeps (top-k per crop), completed again as the nightly stage does."""
    from ecowatch.context.fusion import full_probabilities

    out = np.empty_like(probs)
    for row, p in enumerate(probs):
        top = np.argsort(-p, kind="stable")[:k]
        out[row] = full_probabilities(class_ids, [class_ids[i] for i in top], [float(p[i]) for i in top])
    return out


def _macro(pred: np.ndarray, labels: np.ndarray, class_ids: tuple[str, ...]) -> tuple[float, float]:
    """(top-1, macro-F1) over crops of known classes."""
    from ecowatch.classify.evaluate import classification_report

    known = labels >= 0
    report = classification_report(pred[known], labels[known], class_ids)
    return report.top1, report.macro_f1


def _voted(p: np.ndarray, events: list[str]) -> np.ndarray:
    """Each row replaced by the mean of its event's rows (the sequence vote)."""
    from ecowatch.context.fusion import vote_sequence

    members: dict[str, list[int]] = defaultdict(list)
    for row, event in enumerate(events):
        members[event].append(row)
    out = np.empty_like(p)
    for rows in members.values():
        out[rows] = vote_sequence(p[rows], np.zeros(len(rows)))[0]
    return out


def _event_members(b: Bench, rows: np.ndarray) -> list[list[int]]:
    """Positions in ``rows`` grouped by burst (the nightly stage's unit of decision)."""
    members: dict[str, list[int]] = defaultdict(list)
    for position, row in enumerate(rows):
        members[b.meta[b.crops[row].crop_id].event_id].append(position)
    return list(members.values())


def _event_decisions(b: Bench, rows: np.ndarray, fused: np.ndarray, events: list[list[int]],
                     **overrides: float) -> list:
    """One decision per burst from its vote (:func:`~ecowatch.context.fusion.vote_sequence`), as the
    nightly stage decides and writes them."""
    from ecowatch.context.fusion import vote_sequence

    decisions = []
    for members in events:
        mean, unknown = vote_sequence(fused[members], b.unknown[rows][members])
        decisions += b.decisions(mean[None], np.array([unknown]), np.array([True]), **overrides)
    return decisions


def _event_truths(b: Bench, rows: np.ndarray, events: list[list[int]]) -> tuple[list[str], list[str]]:
    """Each burst's true taxon (its crops' majority) and site."""
    truths = [Counter(b.truths[rows[m]] for m in members).most_common(1)[0][0] for members in events]
    return truths, [b.crops[rows[members[0]]].location_id for members in events]


def _rollup_line(decisions: list, truths: list[str], taxonomy: Any, holdout: set[str]) -> str:
    """Species-rank precision, shares by rank, rolled-up correctness, novel crops given a species."""
    species = [(d, t) for d, t in zip(decisions, truths, strict=True) if d.rank == "species"]
    right = sum(d.taxon_id == t for d, t in species)
    kinds = Counter("unknown" if d.source == "unknown_animal" else d.rank for d in decisions)
    rolled = [(d, t) for d, t in zip(decisions, truths, strict=True)
              if d.rank not in ("species", None) and d.source != "unknown_animal"]
    rolled_right = sum(taxonomy.ancestor(t, d.rank) == d.taxon_id for d, t in rolled if t in taxonomy.taxa)
    novel = [d for d, t in zip(decisions, truths, strict=True) if t in holdout]
    n = len(decisions)
    shares = ", ".join(f"{r} {c / n:.3f}" for r, c in sorted(kinds.items(), key=lambda x: -x[1]))
    return (f"species-rank precision {right / max(len(species), 1):.3f} ({right}/{len(species)}); rolled up "
            f"{len(rolled) / n:.3f}, unknown {kinds.get('unknown', 0) / n:.3f} [{shares}]; rolled-up labels right at "
            f"their rank {rolled_right}/{len(rolled)}; novel-species crops given a species "
            f"{sum(d.rank == 'species' for d in novel)}/{len(novel)}")


class Bench:
    """The pooled data, the split, the cached scores, and fusion under any knowledge graph."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch
        import yaml

        from ecowatch.classify.checkpoint import load_classifier
        from ecowatch.classify.config import ClassifierTrainingConfig
        from ecowatch.classify.crops import CropCache
        from ecowatch.classify.datamodule import LabelledCrop
        from ecowatch.classify.train import split_crops  # the training's own split
        from ecowatch.config import RunConfig
        from ecowatch.context.fusion import Rollup
        from ecowatch.context.places import read_range_maps, read_regions
        from ecowatch.context.seasons import season_of, time_of_day
        from ecowatch.context.stage import thresholds_of

        torch.set_num_threads(args.threads)
        self.args = args
        dumps = [Path(p) for p in args.data]
        raw = yaml.safe_load(Path(args.config).read_text())
        self.run = RunConfig.model_validate({k: v for k, v in raw.items() if k in ("classify", "fuse")})
        self.thresholds = thresholds_of(self.run.fuse)
        self.classifier = load_classifier(Path(args.checkpoint))
        self.taxonomy = self.classifier.taxonomy
        self.class_ids = self.taxonomy.class_ids
        self.rollup = Rollup.from_taxonomy(self.taxonomy)
        sources, self.meta, self.observations, self.deployments, self.taxa = _load_dumps(dumps)
        started = time.perf_counter()
        cache = CropCache(Path(args.crop_cache or Path(args.workdir) / "crop_cache"),
                          self.classifier.preprocessing.geometry)
        paths = cache.build(sources, workers=0)
        self.crops = [LabelledCrop(s.crop_id, p, s.taxon_id, s.location_id, s.deployment_id)
                      for s, p in zip(sources, paths, strict=True) if p is not None]
        print(f"data: {len(self.crops)} labelled animal crops from {len(dumps)} dumps (crop cache "
              f"{time.perf_counter() - started:.0f} s)")
        split_config = ClassifierTrainingConfig.model_validate(yaml.safe_load(Path(args.classifier_config).read_text()))
        self.split = split_crops(self.crops, self.class_ids, split_config)
        print(f"split (locations): train {len(self.split.train)}, val {len(self.split.val)}, test "
              f"{len(self.split.test)}; test = {list(self.split.test)}")
        self.holdout = {c.taxon_id for c in self.crops} - set(self.class_ids)
        self.regions = read_regions(dumps[0] / "regions.geojson")
        self.ranges = read_range_maps(dumps[0] / "range_maps.gpkg")
        by_deployment = {d.deployment_id: d for d in self.deployments}
        self.crop_context = []  # (location, season, time of day) per crop
        for c in self.crops:
            m, d = self.meta[c.crop_id], by_deployment[self.meta[c.crop_id].deployment_id]
            self.crop_context.append((c.location_id, season_of(m.timestamp.month, d.latitude) if m.timestamp else None,
                                      time_of_day(m.timestamp, latitude=d.latitude, longitude=d.longitude,
                                                  utc_offset_min=d.utc_offset_min) if m.timestamp else None))
        index = {c: i for i, c in enumerate(self.class_ids)}
        self.index = index
        self.labels = np.array([index.get(c.taxon_id, -1) for c in self.crops])
        self.truths = [c.taxon_id for c in self.crops]
        of_split = np.array([self.split.of(c.location_id) or "" for c in self.crops])
        scored = np.flatnonzero(np.isin(of_split, ["val", "test"]))
        full, unknown = _scores(self.classifier, [self.crops[i] for i in scored], Path(args.workdir), args.threads)
        self.probs = np.zeros((len(self.crops), len(self.class_ids)))
        self.unknown = np.zeros(len(self.crops))
        self.probs[scored] = _top_k(full, self.class_ids, self.run.classify.top_k)
        self.unknown[scored] = unknown
        self.val, self.test = np.flatnonzero(of_split == "val"), np.flatnonzero(of_split == "test")
        self.train_locations = set(self.split.train)
        self.trainval_locations = set(self.split.train) | set(self.split.val)

    def graph(self, locations: set[str], *, shuffle: bool = False, drop_region: str | None = None,
              range_maps: bool = True, habitats: bool = True) -> Any:
        """The knowledge graph of the labels of some locations (species permuted, a region left out,
        the deployments' habitats dropped)."""
        from ecowatch.context.graph import build_knowledge_graph

        obs = [o for o in self.observations if o.location_id in locations]
        if shuffle:
            species = sorted({o.taxon_id for o in obs})
            perm = dict(zip(species, np.random.default_rng(self.args.seed).permutation(species), strict=True))
            obs = [replace(o, taxon_id=str(perm[o.taxon_id])) for o in obs]
        if drop_region is not None:
            obs = [o for o in obs if self.region_of(o.location_id) != drop_region]
        deployments = self.deployments if habitats else [replace(d, habitat="") for d in self.deployments]
        return build_knowledge_graph(obs, taxa=self.taxa, deployments=deployments, regions=self.regions,
                                     range_maps=self.ranges if range_maps else ())

    def region_of(self, location_id: str) -> str | None:
        if not hasattr(self, "_regions_by_location"):
            from ecowatch.context.places import regions_of_points

            points = {d.location_id: (d.latitude, d.longitude) for d in self.deployments}
            self._regions_by_location = regions_of_points(points, self.regions)
        return self._regions_by_location.get(location_id)

    def factors(self, graph: Any, rows: np.ndarray) -> Any:
        """The stacked context evidence of some crops under a graph (cached per location, season, time)."""
        from ecowatch.context.fusion import stack_factors
        from ecowatch.context.priors import ContextPriors

        priors = ContextPriors(graph, self.taxonomy)
        cache: dict[tuple, Any] = {}
        out = []
        for row in rows:
            key = self.crop_context[row]
            if key not in cache:
                location, season, tod = key
                cache[key] = priors.factors(graph.place(location_id=location), season=season, time_of_day=tod)
            out.append(cache[key])
        return stack_factors(out, priors.global_prior)

    def fit(self, graph: Any) -> Any:
        """Prior weights fitted on the validation crops under ``graph``."""
        from ecowatch.context.weights import fit_fusion_weights

        return fit_fusion_weights(self.probs[self.val], self.labels[self.val], self.factors(graph, self.val),
                                  range_outside_factor=self.thresholds.range_outside_factor,
                                  min_prior_information_nats=self.thresholds.min_prior_information_nats,
                                  objective=self.args.objective)

    def fused(self, rows: np.ndarray, graph: Any, weights: Any) -> tuple[np.ndarray, np.ndarray]:
        """Fused probabilities of some crops under a graph, and whether the prior was applied."""
        from ecowatch.context.fusion import combine

        return combine(self.probs[rows], self.factors(graph, rows), weights=weights,
                       range_outside_factor=self.thresholds.range_outside_factor,
                       min_prior_information_nats=self.thresholds.min_prior_information_nats)

    def decisions(self, fused: np.ndarray, unknown: np.ndarray, applied: np.ndarray, **overrides: float) -> list:
        from ecowatch.context.fusion import decide

        thresholds = replace(self.thresholds, **overrides)
        return [decide(fused[i], unknown_score=float(unknown[i]), rollup=self.rollup, thresholds=thresholds,
                       prior_applied=bool(applied[i])) for i in range(len(fused))]

    def line(self, name: str, rows: np.ndarray, fused: np.ndarray) -> None:
        from ecowatch.classify.evaluate import macro_f1_gain_interval

        base = _macro(self.probs[rows].argmax(1), self.labels[rows], self.class_ids)
        got = _macro(fused.argmax(1), self.labels[rows], self.class_ids)
        low, high = macro_f1_gain_interval(self.probs[rows].argmax(1), fused.argmax(1), self.labels[rows],
                                           [self.crops[i].location_id for i in rows], len(self.class_ids))
        print(f"  {name:42s} image-only top-1 {base[0]:.3f} macro-F1 {base[1]:.3f} | fused top-1 {got[0]:.3f} "
              f"macro-F1 {got[1]:.3f} | {100 * (got[1] - base[1]):+.2f} points [90 % over sites "
              f"{100 * low:+.2f} .. {100 * high:+.2f}] (n={int((self.labels[rows] >= 0).sum())})")


def _oracle(b: Bench, rows: np.ndarray, weights: Any) -> np.ndarray:
    """Fused with a prior no deployment has: each test site's own species shares (from its labels).

    About the most an annual place prior could add with this classifier (place weight 1, time of day
    as fitted): how informative the data's places are, to read the informative-prior line against.
    """
    from ecowatch.context.fusion import ContextFactors, combine

    factors = b.factors(b.graph(b.trainval_locations), rows)
    locations = np.array([b.crops[i].location_id for i in rows])
    place = np.zeros_like(factors.place_log_ratio)
    for location in np.unique(locations):
        at = locations == location
        labels = b.labels[rows][at]
        shares = np.bincount(labels[labels >= 0], minlength=len(b.class_ids)) + 0.5
        place[at] = np.log(shares / shares.sum()) - np.log(factors.reference)
    oracle = ContextFactors(factors.reference, place, factors.activity_log_ratio, None, "site")
    return combine(b.probs[rows], oracle, weights=weights, range_outside_factor=1.0, min_prior_information_nats=0.0)[0]


def _priors_section(b: Bench) -> tuple[Any, np.ndarray, np.ndarray]:
    from ecowatch.context.fusion import combine

    informative = b.fit(b.graph(b.train_locations))
    w = informative.weights
    print(f"prior weights fitted on {informative.n} validation crops ({informative.objective}; graph of train "
          f"locations): place {w.place:.2f}, activity {w.activity:.2f} ({informative.objective} "
          f"{informative.value:.4f}; {informative.baseline:.4f} at weights 0)")
    print("\nTEST: locations unseen by the classifier and by the prior (graph of train+val locations)")
    test = b.test
    fused, applied = b.fused(test, b.graph(b.trainval_locations), w)
    events = [b.meta[b.crops[i].crop_id].event_id for i in test]
    b.line("informative priors", test, fused)
    if any(d.habitat for d in b.deployments):
        plain = b.fit(b.graph(b.train_locations, habitats=False))
        b.line(f"informative priors, no habitats (refit {plain.weights.place:.2f}/{plain.weights.activity:.2f})",
               test, b.fused(test, b.graph(b.trainval_locations, habitats=False), plain.weights)[0])
    b.line("informative priors + sequence vote", test, _voted(fused, events))
    b.line("(no prior, sequence vote only)", test, _voted(b.probs[test], events))
    b.line("ceiling: each site's own species shares", test, _oracle(b, test, replace(w, place=1.0)))
    shuffled = b.fit(b.graph(b.train_locations, shuffle=True))
    label = f"shuffled priors (refit {shuffled.weights.place:.2f}/{shuffled.weights.activity:.2f})"
    b.line(label, test, b.fused(test, b.graph(b.trainval_locations, shuffle=True), shuffled.weights)[0])
    bare = b.fit(b.graph(b.train_locations, shuffle=True, range_maps=False))
    b.line(f"shuffled priors, no range maps (refit {bare.weights.place:.2f}/{bare.weights.activity:.2f})", test,
           b.fused(test, b.graph(b.trainval_locations, shuffle=True, range_maps=False), bare.weights)[0])
    for range_maps in (True, False):
        rows_all, fused_all = [], []
        for region in sorted({b.region_of(loc) for loc in b.split.test} - {None}):
            rows = np.array([i for i in test if b.region_of(b.crops[i].location_id) == region])
            new, _ = b.fused(rows, b.graph(b.trainval_locations, drop_region=region, range_maps=range_maps), w)
            if range_maps:
                b.line(f"new region {region} (its labels left out)", rows, new)
            rows_all.append(rows)
            fused_all.append(new)
        b.line(f"new region (pooled){'' if range_maps else ', no range maps'}", np.concatenate(rows_all),
               np.concatenate(fused_all))
    b.line("no context", test, combine(b.probs[test], None, weights=w, range_outside_factor=1.0,
                                       min_prior_information_nats=0.0)[0])
    return w, fused, applied


def _rollup_section(b: Bench, w: Any, fused: np.ndarray, applied: np.ndarray) -> None:
    from ecowatch.context.weights import fit_species_threshold

    truths = [b.truths[i] for i in b.test]
    t = b.thresholds
    print(f"\nROLL-UP and UNKNOWN (test crops, the {sum(x in b.holdout for x in truths)} crops of novel species "
          f"included; species_min_score {t.species_min_score}, rollup_min_score {t.rollup_min_score}):")
    for name, p, a in (("image-only", b.probs[b.test], np.zeros(len(b.test), bool)), ("fused", fused, applied)):
        print(f"  {name:10s} " + _rollup_line(b.decisions(p, b.unknown[b.test], a), truths, b.taxonomy, b.holdout))
    val_fused, val_applied = b.fused(b.val, b.graph(b.train_locations), w)
    chosen = fit_species_threshold(
        lambda s: b.decisions(val_fused, b.unknown[b.val], val_applied, species_min_score=s),
        [b.truths[i] for i in b.val], target_precision=b.args.target_precision,
        groups=[b.crops[i].location_id for i in b.val])
    print(f"  species_min_score fitted on validation (precision >= {b.args.target_precision} with 95 % "
          f"confidence over the {len(b.split.val)} sites): {chosen.species_min_score:.3f} (val precision "
          f"{chosen.precision:.3f}, species share {chosen.share_species:.3f}); on test:")
    decisions = b.decisions(fused, b.unknown[b.test], applied, species_min_score=chosen.species_min_score)
    print("  fused      " + _rollup_line(decisions, truths, b.taxonomy, b.holdout))
    val_events, test_events = _event_members(b, b.val), _event_members(b, b.test)
    val_truths, val_sites = _event_truths(b, b.val, val_events)
    test_truths, _ = _event_truths(b, b.test, test_events)
    per_event = fit_species_threshold(
        lambda s: _event_decisions(b, b.val, val_fused, val_events, species_min_score=s), val_truths,
        target_precision=b.args.target_precision, groups=val_sites)
    print(f"  what the nightly stage writes, one decision per burst (its crops' fused probabilities and unknown scores "
          f"averaged; {len(test_events)} test bursts): at species_min_score {t.species_min_score}:")
    print("  fused      " + _rollup_line(_event_decisions(b, b.test, fused, test_events), test_truths, b.taxonomy,
                                         b.holdout))
    print(f"  species_min_score fitted on validation bursts ({len(val_events)}; precision >= "
          f"{b.args.target_precision} with 95 % confidence over sites): {per_event.species_min_score:.3f} (val "
          f"precision {per_event.precision:.3f}, species share {per_event.share_species:.3f}); on test:")
    decisions = _event_decisions(b, b.test, fused, test_events, species_min_score=per_event.species_min_score)
    print("  fused      " + _rollup_line(decisions, test_truths, b.taxonomy, b.holdout))


def _sequence_section(b: Bench, fused: np.ndarray) -> None:
    from ecowatch.context.fusion import vote_sequence

    print("\nSEQUENCES (test, fused probabilities; one vote per burst = mean of its crops' probabilities):")
    test, labels = b.test, b.labels[b.test]
    events = [b.meta[b.crops[i].crop_id].event_id for i in test]
    members = _event_members(b, test)
    known = labels >= 0
    frame_right = fused.argmax(1)[known] == labels[known]
    voted_right = _voted(fused, events).argmax(1)[known] == labels[known]
    event_right, counts = [], []
    for rows, truth in zip(members, _event_truths(b, test, members)[0], strict=True):
        mean, _ = vote_sequence(fused[rows], b.unknown[test][rows])
        counts.append(max(Counter(b.meta[b.crops[test[r]].crop_id].image_id for r in rows).values()))
        if truth in b.index:
            event_right.append(int(mean.argmax()) == b.index[truth])
    print(f"  frame-level accuracy {frame_right.mean():.3f} ({known.sum()} crops); frames labelled by their event's "
          f"vote {voted_right.mean():.3f}; event-level accuracy {np.mean(event_right):.3f} ({len(event_right)} events "
          f"of known species; {len(test) / len(members):.1f} crops and {np.mean(counts):.2f} individuals per event)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="classifier checkpoint (.ckpt) trained on --data")
    parser.add_argument("--data", action="append", required=True, help="a generate-dump output folder (repeatable)")
    parser.add_argument("--workdir", default="work/bench-fusion", help="score cache (and crop cache by default)")
    parser.add_argument("--crop-cache", default=None, help="crop cache folder (default: WORKDIR/crop_cache)")
    parser.add_argument("--config", default=str(REPO / "conf" / "nightly.yaml"), help="fuse thresholds, top_k")
    parser.add_argument("--classifier-config", default=str(REPO / "conf" / "classifier.yaml"), help="split settings")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffled priors")
    parser.add_argument("--objective", default="nll", choices=("nll", "macro_f1"), help="weight-fitting objective")
    parser.add_argument("--target-precision", type=float, default=0.95, help="species-rank precision to fit for")
    parser.add_argument("--save-context", default=None, metavar="PATH",
                        help="write the knowledge graph of the train+val locations (the one the test figures use) "
                             "there, e.g. the bundled ecowatch/context/bundled/ecowatch-synth-context.json")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    b = Bench(args)
    print(f"\nclassifier {b.classifier.model_name} {b.classifier.version}: {len(b.class_ids)} classes, held out "
          f"(novel) {sorted(b.holdout)}; top-{b.run.classify.top_k} kept per crop; {b.thresholds}")
    w, fused, applied = _priors_section(b)
    _rollup_section(b, w, fused, applied)
    _sequence_section(b, fused)
    if args.save_context:
        graph = b.graph(b.trainval_locations)
        graph.save(Path(args.save_context))
        print(f"\ncontext model {graph.version} (train+val locations): {args.save_context}")


if __name__ == "__main__":
    main()
