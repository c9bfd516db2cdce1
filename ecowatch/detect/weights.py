"""Resolving a detector spec to a local weights file: registry name, local path or MLflow registry URI.

- A **registry name** (``mdv1000-larch``) resolves to ``<cache_dir>/detectors/<filename>``. A cached
  file is checked against the published checksum. A missing file is downloaded from the entry's
  URL only when ``offline`` is False (to a temporary file beside the target, checksummed, then
  renamed into place); offline, the error names the exact path to put the file in and the URL to
  get it from.
- A **path** to a ``.pt`` file is used as it is.
- An **MLflow registry URI** (``models:/name@alias`` or ``models:/name/3``) is fetched through
  :func:`ecowatch.tracking.fetch_model_artifact` into ``<cache_dir>/mlflow/<name>/<version>/``.

Whatever the source, the detector *version* is the first 16 hex digits of the weights file's
sha256: the same weights give the same version (and so the same ``detector_done`` rows) whether
they came from the registry, a path or MLflow, and different weights never share a version.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from ecowatch.detect.registry import BUNDLED_DIR, DetectorEntry, ResizeMode, get_detector
from ecowatch.errors import ModelNotFoundError

log = logging.getLogger(__name__)

#: Hex digits of the sha256 kept as the detector version.
VERSION_HEX_DIGITS = 16

_CHUNK = 1 << 20
_HASH_LENGTHS = {"md5": 32, "sha256": 64}
_DOWNLOAD_SCHEMES = ("https://", "http://", "file://")


@dataclass(frozen=True)
class ResolvedDetector:
    """A detector ready to load.

    Attributes:
        path: the local weights file (an ultralytics ``.pt`` checkpoint).
        name: registry name, file stem of a local path, or ``<model name>/<version>`` for MLflow.
        version: first 16 hex digits of the file's sha256.
        sha256: the file's full sha256 (hex).
        class_map: class index to category, or None when it is read from the checkpoint on load
            (local paths and MLflow artefacts).
        imgsz: native image size in pixels, or None when it is read from the checkpoint on load.
        resize_mode: ``letterbox`` (YOLO) or ``stretch`` (RT-DETR); None when decided on load.
        source: ``registry``, ``bundled``, ``path`` or ``mlflow``.
        origin: the registry URL, the path or the ``models:/`` URI it was resolved from.
    """

    path: Path
    name: str
    version: str
    sha256: str
    class_map: Mapping[int, str] | None
    imgsz: int | None
    resize_mode: ResizeMode | None
    source: Literal["registry", "bundled", "path", "mlflow"]
    origin: str


def cache_path(entry: DetectorEntry, cache_dir: Path) -> Path:
    """Where a registry detector's weights live in the cache: ``<cache_dir>/detectors/<filename>``."""
    return Path(cache_dir) / "detectors" / entry.filename


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks.

    Args:
        path: the file.
        algorithm: a :mod:`hashlib` algorithm name (``sha256``, ``md5``).

    Returns:
        The lower-case hex digest.
    """
    digest = hashlib.new(algorithm)
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def parse_checksum(checksum: str) -> tuple[str, str]:
    """Split ``"md5:<hex>"`` / ``"sha256:<hex>"`` into (algorithm, hex).

    Raises:
        ValueError: an unknown algorithm or a hex string of the wrong length.
    """
    algorithm, _, value = checksum.partition(":")
    if algorithm not in _HASH_LENGTHS:
        raise ValueError(f"checksum {checksum!r}: algorithm must be one of {sorted(_HASH_LENGTHS)}")
    if len(value) != _HASH_LENGTHS[algorithm] or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"checksum {checksum!r}: expected {_HASH_LENGTHS[algorithm]} lower-case hex digits")
    return algorithm, value


def resolve_detector(
    spec: str,
    *,
    cache_dir: Path,
    offline: bool,
    tracking_uri: str | None = None,
    registry: Mapping[str, DetectorEntry] | None = None,
) -> ResolvedDetector:
    """Resolve a detector spec to a local, verified weights file.

    Args:
        spec: a registry name (``mdv1000-larch``), a path to a ``.pt`` file (absolute, or relative
            to ``cache_dir``), or ``models:/<name>@<alias>`` / ``models:/<name>/<version>``.
        cache_dir: folder for downloaded weights (the catalog's ``models`` dataset).
        offline: never reach the network: a registry file missing from the cache is an error.
        tracking_uri: MLflow tracking URI, required for ``models:/`` specs.
        registry: registry to resolve names in (the built-in one by default).

    Returns:
        The resolved detector.

    Raises:
        ModelNotFoundError: an unknown name, a registry entry ultralytics cannot load, a file that
            is missing (offline: with the cache path and the URL in the message), a checksum
            mismatch, a failed download, or an MLflow URI that cannot be fetched.
    """
    cache_dir = Path(cache_dir)
    text = spec.strip()
    if text.startswith("models:/"):
        return _resolve_mlflow(text, cache_dir=cache_dir, tracking_uri=tracking_uri)
    try:
        entry = get_detector(text, registry=registry)
    except ModelNotFoundError:
        path = Path(text).expanduser()
        if not path.is_absolute() and not path.exists():
            path = cache_dir / path
        if path.suffix == ".pt" or path.exists():
            return _resolve_path(path, origin=text)
        raise  # neither a registry name nor a path: the error lists the closest registered names
    return _resolve_registry(entry, cache_dir=cache_dir, offline=offline)


def _resolve_registry(entry: DetectorEntry, *, cache_dir: Path, offline: bool) -> ResolvedDetector:
    if not entry.loadable:
        raise ModelNotFoundError(f"detector {entry.name!r} cannot run in ecowatch: {entry.refusal}")
    if entry.bundled:
        return _resolve_bundled(entry)
    target = cache_path(entry, cache_dir)
    if not target.is_file():
        if offline:
            raise ModelNotFoundError(
                f"detector {entry.name!r}: weights not in the cache and downloads are off. Put the file at "
                f"{target} (get it from {entry.url}), or set detect.allow_download: true to fetch it on first use."
            )
        if entry.checksum is None:
            log.warning("detector %s: no published checksum; the download from %s cannot be verified",
                        entry.name, entry.url)
        download(entry.url, target, checksum=entry.checksum)
    elif entry.checksum is not None:
        _verify(target, entry.checksum, fix=f"delete it and fetch it again from {entry.url}")
    return _resolved_entry(entry, target, source="registry")


def _resolve_bundled(entry: DetectorEntry) -> ResolvedDetector:
    target = BUNDLED_DIR / entry.filename
    if not target.is_file():
        raise ModelNotFoundError(
            f"detector {entry.name!r}: the bundled weights {target} are missing (an incomplete install?). "
            f"Reinstall ecowatch, or reproduce them with `python scripts/train_default_detector.py --workdir "
            f"<scratch folder>` ({entry.url})."
        )
    if entry.checksum is not None:
        _verify(target, entry.checksum, fix="reinstall ecowatch or re-run scripts/train_default_detector.py")
    return _resolved_entry(entry, target, source="bundled")


def _resolved_entry(entry: DetectorEntry, target: Path, *, source: Literal["registry", "bundled"]) -> ResolvedDetector:
    """A registry entry's verified local file, versioned by its sha256."""
    sha256 = file_digest(target)
    return ResolvedDetector(
        path=target,
        name=entry.name,
        version=sha256[:VERSION_HEX_DIGITS],
        sha256=sha256,
        class_map=dict(entry.class_map),
        imgsz=entry.imgsz,
        resize_mode=entry.resize_mode,
        source=source,
        origin=entry.url,
    )


def _resolve_path(path: Path, *, origin: str) -> ResolvedDetector:
    if not path.is_file():
        raise ModelNotFoundError(
            f"detector weights {path} do not exist. Give an existing ultralytics .pt file, a registry name "
            "(see ecowatch.detect.registry.list_detectors()) or an MLflow URI models:/<name>@<alias>."
        )
    if path.suffix != ".pt":
        raise ModelNotFoundError(f"detector weights {path}: expected an ultralytics PyTorch checkpoint (.pt).")
    sha256 = file_digest(path)
    return ResolvedDetector(
        path=path.resolve(),
        name=path.stem,
        version=sha256[:VERSION_HEX_DIGITS],
        sha256=sha256,
        class_map=None,
        imgsz=None,
        resize_mode=None,
        source="path",
        origin=origin,
    )


def _resolve_mlflow(uri: str, *, cache_dir: Path, tracking_uri: str | None) -> ResolvedDetector:
    from ecowatch.tracking import TrackingError, fetch_model_artifact

    if not tracking_uri:
        raise ModelNotFoundError(
            f"detector {uri}: an MLflow registry URI needs the tracking store; give tracking_uri "
            "(the catalog's tracking dataset, e.g. sqlite:///abs/path/mlflow.db)."
        )
    try:
        artifact = fetch_model_artifact(uri, cache_dir / "mlflow", tracking_uri=tracking_uri)
    except TrackingError as exc:
        raise ModelNotFoundError(f"detector {uri}: {exc}") from exc
    weights = artifact.single_file(".pt", uri=uri, what="detector",
                                   example="models:/<name>@<alias>/weights/best.pt")
    resolved = _resolve_path(weights, origin=uri)
    return replace(resolved, name=f"{artifact.name}/{artifact.version}", source="mlflow")


def download(url: str, target: Path, *, checksum: str | None) -> Path:
    """Download a file to ``target`` atomically, verifying its checksum before it takes the name.

    The bytes go to a temporary file in the target's folder, which is checksummed and then
    renamed into place: an interrupted or corrupt download never leaves a file at ``target``.

    Args:
        url: ``https://``, ``http://`` or ``file://`` URL.
        target: where the file ends up (its folder is created).
        checksum: ``"md5:<hex>"`` / ``"sha256:<hex>"`` to verify, or None.

    Returns:
        The target path.

    Raises:
        ModelNotFoundError: an unsupported URL scheme, a failed download or a checksum mismatch.
    """
    if not url.lower().startswith(_DOWNLOAD_SCHEMES):
        raise ModelNotFoundError(f"cannot download {url!r}: only {', '.join(_DOWNLOAD_SCHEMES)} URLs are supported.")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    temp = Path(temp_name)
    log.info("downloading %s to %s", url, target)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310
            while chunk := response.read(_CHUNK):
                out.write(chunk)
        if checksum is not None:
            _verify(temp, checksum, fix=f"the download from {url} is corrupt or the file changed upstream; retry")
        os.replace(temp, target)
    except (urllib.error.URLError, OSError) as exc:
        raise ModelNotFoundError(
            f"cannot download {url} to {target}: {exc}. Download it by hand and put it at {target}."
        ) from exc
    finally:
        temp.unlink(missing_ok=True)
    return target


def _verify(path: Path, checksum: str, *, fix: str) -> None:
    algorithm, expected = parse_checksum(checksum)
    actual = file_digest(path, algorithm)
    if actual != expected:
        raise ModelNotFoundError(f"{path}: {algorithm} is {actual}, the published checksum is {expected}: {fix}.")
