"""Splitting labelled crops into train, validation and test sets by location.

Crops of one camera location share background, lighting and often the same individuals; a
random split by crop would measure how well a model remembers sites, not how it does at a new
one. So whole locations go to one split (and with them their deployments).

:func:`split_locations` tries ``attempts`` seeded shuffles of the locations and keeps the one
that (in this order) leaves the fewest classes absent from training, then from validation, then
from test, and then comes closest to the wanted crop fractions. The same inputs and seed give the
same split.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ecowatch.errors import ConfigError


@dataclass(frozen=True)
class LocationSplit:
    """Location ids of each split (disjoint)."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def of(self, location_id: str) -> str | None:
        """``train``, ``val``, ``test`` or None for a location in no split."""
        for name in ("train", "val", "test"):
            if location_id in getattr(self, name):
                return name
        return None


def split_locations(
    class_counts: Mapping[str, Counter[str]],
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    attempts: int = 256,
    val_locations: Sequence[str] = (),
    test_locations: Sequence[str] = (),
) -> LocationSplit:
    """Assign every location to train, val or test.

    Args:
        class_counts: per location id, crops per class (taxon id).
        val_fraction: wanted share of crops in validation (0..1).
        test_fraction: wanted share of crops in test (0..1; 0 for no test split).
        seed: seed of the shuffles.
        attempts: number of shuffles tried.
        val_locations: locations forced into validation (then only the rest is shuffled).
        test_locations: locations forced into test.

    Returns:
        The split; every location is in exactly one of the three.

    Raises:
        ConfigError: bad fractions, a forced location that has no crops or is forced into both,
            or too few locations for the splits asked for.
    """
    if not (0.0 < val_fraction < 1.0 and 0.0 <= test_fraction < 1.0 and val_fraction + test_fraction < 1.0):
        raise ConfigError(
            f"split fractions val={val_fraction}, test={test_fraction}: need 0 < val < 1, 0 <= test < 1 and "
            "val + test < 1."
        )
    locations = sorted(class_counts)
    for name, forced in (("val_locations", val_locations), ("test_locations", test_locations)):
        unknown = sorted(set(forced) - set(locations))
        if unknown:
            raise ConfigError(f"split.{name}: {unknown} have no labelled crops; known locations: {locations}.")
    both = sorted(set(val_locations) & set(test_locations))
    if both:
        raise ConfigError(f"locations {both} are in both split.val_locations and split.test_locations.")
    free = [loc for loc in locations if loc not in set(val_locations) | set(test_locations)]
    need_val = 0 if val_locations else 1
    need_test = 0 if test_locations or test_fraction == 0 else 1
    if len(free) < 1 + need_val + need_test:
        raise ConfigError(
            f"{len(locations)} locations ({locations}) cannot make disjoint train/val"
            f"{'/test' if test_fraction else ''} splits; label crops from more locations or lower the splits."
        )
    totals = {loc: sum(c.values()) for loc, c in class_counts.items()}
    total = sum(totals.values())
    all_classes = set().union(*(set(c) for c in class_counts.values()))
    rng = np.random.default_rng(seed)
    best: tuple[tuple[float, ...], LocationSplit] | None = None
    for _ in range(max(attempts, 1)):
        order = [free[i] for i in rng.permutation(len(free))]
        val, test, train = list(val_locations), list(test_locations), []
        for loc in order:  # fill val, then test, until each reaches its share; the rest trains
            if not val_locations and _share(val, totals, total) < val_fraction:
                val.append(loc)
            elif need_test and _share(test, totals, total) < test_fraction:
                test.append(loc)
            else:
                train.append(loc)
        if not train:
            continue
        score = (
            len(all_classes - _classes(train, class_counts)),
            len(all_classes - _classes(val, class_counts)),
            len(all_classes - _classes(test, class_counts)) if test_fraction else 0,
            abs(_share(val, totals, total) - val_fraction) + abs(_share(test, totals, total) - test_fraction),
        )
        if best is None or score < best[0]:
            best = (score, LocationSplit(tuple(sorted(train)), tuple(sorted(val)), tuple(sorted(test))))
    if best is None:
        raise ConfigError(f"no location split leaves locations for training among {locations}; lower the fractions.")
    return best[1]


def _share(locs: Sequence[str], totals: Mapping[str, int], total: int) -> float:
    return sum(totals[loc] for loc in locs) / total if total else 0.0


def _classes(locs: Sequence[str], class_counts: Mapping[str, Counter[str]]) -> set[str]:
    return set().union(*(set(class_counts[loc]) for loc in locs)) if locs else set()
