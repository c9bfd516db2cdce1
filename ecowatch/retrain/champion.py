"""The champion: the registry version the nightly run uses, fetched to fine-tune the challenger from.

:func:`fetch_champion` resolves ``models:/<name>@champion`` to a version number first, then
downloads that version (``models:/<name>/<version>``), so the checkpoint evaluated and fine-tuned
from is the version the decision names even if the alias moves meanwhile.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ecowatch.tracking import TrackingTarget, get_alias_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Champion:
    """The current champion.

    Attributes:
        version: its registry version number.
        checkpoint: the downloaded standalone checkpoint.
        backbone: its backbone name.
        class_ids: its classes.
    """

    version: str
    checkpoint: Path
    backbone: str
    class_ids: tuple[str, ...]


def fetch_champion(target: TrackingTarget, name: str, *, alias: str, models_dir: Path) -> Champion | None:
    """The version ``alias`` points to, downloaded under ``<models_dir>/mlflow``; None when no version has it.

    Raises:
        TrackingError: the registry cannot be read.
        ModelNotFoundError: the version's artefact cannot be fetched or is not a classifier checkpoint.
    """
    from ecowatch.classify.checkpoint import load_classifier
    from ecowatch.classify.stage import resolve_classifier

    current = get_alias_version(target, name, alias)
    if current is None:
        return None
    path = resolve_classifier(f"models:/{name}/{current.version}", cache_dir=models_dir,
                              tracking_uri=target.tracking_uri).path
    classifier = load_classifier(path)
    return Champion(current.version, path, classifier.backbone, classifier.taxonomy.class_ids)


def fine_tune_start(champion: Champion | None, backbone: str) -> tuple[Path | None, str]:
    """What the challenger starts from: (checkpoint, ``champion``), or (None, ``scratch``) without a
    champion or when the configured backbone is another one than the champion's."""
    if champion is None:
        return None, "scratch"
    if champion.backbone != backbone:
        log.warning("the champion is a %s, the configuration trains a %s: the challenger is trained from scratch",
                    champion.backbone, backbone)
        return None, "scratch"
    return champion.checkpoint, "champion"
