"""Fixtures of the report tests: a tiny hand-made store, and ingested generated dumps."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ecowatch.config import load_config
from ecowatch.ingest import ingest_dump
from ecowatch.store import open_store
from ecowatch.synth import DumpSpec, generate_dump
from ecowatch.tables import read_deployments
from tests.conftest import SHARED_DATA, write_project
from tests.report.builders import TinyStore, build_tiny_store
from tests.report.fake_results import write_fake_results

CAMTRAP_DP_EXAMPLE = SHARED_DATA / "real" / "camtrap_dp_example" / "datapackage.json"


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[TinyStore]:
    """The tiny hand-made store (see tests/report/builders.py)."""
    built = build_tiny_store(tmp_path)
    yield built
    built.store.dispose()


@dataclass(frozen=True)
class NightlyProject:
    """An ecowatch project whose store holds an ingested generated dump plus detector rows."""

    conf: Path
    root: Path
    sample: Path

    @property
    def store_path(self) -> Path:
        return self.root / "work" / "results.sqlite"


@pytest.fixture(scope="session")
def tiny_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated ``tiny`` dump (folder with dump/, deployments.csv, taxonomy.csv, regions ...)."""
    out = tmp_path_factory.mktemp("report_tiny") / "sample"
    generate_dump(out, DumpSpec.preset("tiny"))
    return out


def _nightly_project(root: Path, sample: Path, *, classify: bool) -> NightlyProject:
    """Ingest the dump as the nightly run's first stage does, then write the detector's rows."""
    conf = write_project(root, dump=sample / "dump", deployments=sample / "deployments.csv",
                         taxonomy=sample / "taxonomy.csv", labels=sample / "coco_camera_traps.json",
                         conf={"tracking": {"enabled": False}, "ingest": {"workers": 0}})  # fmt: skip
    loaded = load_config(conf)
    store = open_store(loaded.catalog.location("store"))
    run_id = store.start_run("nightly", {"dump": "dump"})
    ingest_dump(store, dump_root=sample / "dump", dump_id="dump", deployments=read_deployments(
        sample / "deployments.csv"), config=loaded.config.ingest, run_id=run_id)
    counts = write_fake_results(store, dump_id="dump", coco_path=sample / "coco_camera_traps.json", run_id=run_id,
                                classify=classify)
    store.finish_run(run_id, status="finished", counts=counts, mlflow_run_id=None)
    store.dispose()
    return NightlyProject(conf, root, sample)


@pytest.fixture(scope="session")
def detector_project(tiny_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> NightlyProject:
    """A store as the nightly run leaves it today: media, flags, detections, detector observations."""
    return _nightly_project(tmp_path_factory.mktemp("detector_project"), tiny_sample, classify=False)


@pytest.fixture(scope="session")
def classified_project(tiny_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> NightlyProject:
    """The same, plus classifier rows naming species."""
    return _nightly_project(tmp_path_factory.mktemp("classified_project"), tiny_sample, classify=True)
