"""The ``detect`` section of the run configuration is validated on load."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ecowatch.config import DetectConfig, RunConfig, load_config
from ecowatch.errors import ConfigError


def test_defaults_are_offline_and_megadetector() -> None:
    config = RunConfig().detect
    assert config == DetectConfig()
    assert config.detector == "mdv1000-larch" and config.allow_download is False
    assert config.imgsz is None and config.conf_threshold == 0.005 and config.iou_threshold == 0.7


@pytest.mark.parametrize(
    ("field", "value"),
    [("imgsz", 100), ("imgsz", 16), ("conf_threshold", 1.5), ("iou_threshold", -0.1), ("max_det", 1000),
     ("batch_size", 0), ("accelerator", "tpu"), ("threads", 0), ("detector", "")],
)
def test_bad_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        DetectConfig(**{field: value})


def test_unknown_key_in_conf_file_names_it(project_factory, tmp_path) -> None:
    conf = project_factory(dump=tmp_path, conf={"detect": {"detector": "mdv6-yolov9-c", "confidence": 0.2}})
    with pytest.raises(ConfigError, match="confidence"):
        load_config(conf)


def test_conf_file_section_is_loaded(project_factory, tmp_path) -> None:
    conf = project_factory(dump=tmp_path, conf={"detect": {"detector": "mdv6-yolov9-c", "imgsz": 640, "workers": 0}})
    loaded = load_config(conf, overrides={"detect.batch_size": 4}).config.detect
    assert (loaded.detector, loaded.imgsz, loaded.workers, loaded.batch_size) == ("mdv6-yolov9-c", 640, 0, 4)
