"""DumpSpec presets and validation, and the generate-dump command's option handling."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner

from ecowatch.errors import ConfigError
from ecowatch.synth import PRESETS, DumpSpec
from ecowatch.synth.camera import CAMERAS_BY_KEY
from ecowatch.synth.cli import generate_dump_command


def test_presets_have_the_documented_shape() -> None:
    tiny, sample, train, drone = (DumpSpec.preset(n) for n in ("tiny", "sample", "train", "drone"))
    assert tiny.image_size == (480, 270) and 60 <= tiny.n_frames <= 100 and tiny.include_broken_files
    assert 3 <= tiny.n_deployments <= 4
    assert sample.image_size == (1280, 720) and 400 <= sample.n_frames <= 600 and 5 <= sample.n_deployments <= 6
    assert train.image_size == (960, 540) and train.n_frames >= 2000 and train.n_deployments >= 12
    assert train.n_days >= 365
    assert drone.mode == "drone" and drone.image_size == (4000, 3000)


def test_unknown_preset_names_the_allowed_ones() -> None:
    with pytest.raises(ConfigError) as info:
        DumpSpec.preset("huge")
    for name in PRESETS:
        assert name in str(info.value)


def test_overrides_are_applied_and_unknown_fields_rejected() -> None:
    spec = DumpSpec.preset("tiny", seed=7, n_frames=90)
    assert (spec.seed, spec.n_frames, spec.image_size) == (7, 90, (480, 270))
    with pytest.raises(ConfigError, match="frames"):
        DumpSpec.preset("tiny", frames=90)


@pytest.mark.parametrize(
    "field, value",
    [("mode", "satellite"), ("image_size", (10, 10)), ("empty_fraction", 1.5), ("workers", -1),
     ("files_per_folder", 1), ("drone_animals", (50, 10))],
)
def test_invalid_values_raise_config_error_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        DumpSpec.preset("tiny", **{field: value})


def test_record_leaves_out_workers_and_is_json_ready() -> None:
    record = DumpSpec.preset("sample").to_record()
    assert "workers" not in record
    assert record["start_date"] == dt.date(2025, 4, 1).isoformat()
    assert record["image_size"] == [1280, 720]


def test_card_file_names_follow_each_make_and_roll_over() -> None:
    reconyx, browning, bushnell = (CAMERAS_BY_KEY[k] for k in ("reconyx_hf2", "browning_hp5", "bushnell_core"))
    assert reconyx.file_name(0, 100) == "100RECNX/IMG_0001.JPG"
    assert reconyx.file_name(100, 100) == "101RECNX/IMG_0101.JPG"  # numbering continues
    assert browning.file_name(100, 100) == "101BMCIM/IMAG0001.JPG"  # numbering restarts per folder
    assert bushnell.file_name(4, 100, ext=".AVI") == "100EK113/EK000005.AVI"


def test_cli_rejects_a_bad_image_size_and_a_non_empty_folder(tmp_path) -> None:
    runner = CliRunner()
    bad = runner.invoke(generate_dump_command, [str(tmp_path / "a"), "--preset", "tiny", "--image-size", "big"])
    assert bad.exit_code != 0 and "WIDTHxHEIGHT" in bad.output
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("mine")
    busy = runner.invoke(generate_dump_command, [str(tmp_path / "b"), "--preset", "tiny"])
    assert busy.exit_code == 1 and "--overwrite" in busy.output
    assert (tmp_path / "b" / "keep.txt").read_text() == "mine"


def test_cli_generates_a_dump_and_prints_a_summary(tmp_path) -> None:
    import json

    result = CliRunner().invoke(
        generate_dump_command,
        [str(tmp_path / "out"), "--preset", "tiny", "--frames", "30", "--image-size", "320x180", "--seed", "5",
         "--workers", "0"],
    )
    assert result.exit_code == 0, result.output
    assert "frames" in result.output and "frames/s" in result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["spec"]["image_size"] == [320, 180] and manifest["spec"]["seed"] == 5
