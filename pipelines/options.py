"""What every ``ecowatch`` command shares: ``--config`` / ``--set`` and loading the configuration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import yaml

from ecowatch.config import LoadedConfig, load_config

DEFAULT_CONFIG = "conf/nightly.yaml"


def parse_overrides(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs of ``--set`` to a dict (values parsed as YAML scalars)."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE (e.g. ingest.workers=0)", param_hint="--set")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def load(config: str, overrides: tuple[str, ...]) -> LoadedConfig:
    """The validated run configuration of a command."""
    return load_config(config, overrides=parse_overrides(overrides))


def progress(desc: str, unit: str = "file") -> tuple[Callable[[int], None], Callable[[], None]]:
    """A progress bar (hidden when not on a terminal): its ``update`` and ``close``."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit=unit, disable=None, dynamic_ncols=True)
    return bar.update, bar.close


config_option = click.option("--config", "-c", default=DEFAULT_CONFIG, show_default=True,
                             type=click.Path(dir_okay=False), help="Run configuration (conf/*.yaml).")
set_option = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                          help="Override a configuration key, e.g. --set ingest.workers=0 (repeatable).")
