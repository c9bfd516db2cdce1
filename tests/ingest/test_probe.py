"""Per-file facts on tiny files written here: broken files become flags, EXIF is read right."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from PIL import ImageFile

from ecowatch.config import IngestConfig
from ecowatch.ingest import flags as F
from ecowatch.ingest.exif import parse_exif_datetime
from ecowatch.ingest.probe import probe_file
from ecowatch.ingest.scan import ScannedFile, classify_name

from .frames import frame_image, jpeg_bytes, make_exif, write_frame

WHEN = dt.datetime(2026, 3, 5, 10, 11, 12)


def probe(path: Path, root: Path):
    kind = classify_name(path.name, IngestConfig())
    assert kind is not None
    return probe_file(ScannedFile(path.relative_to(root).as_posix(), str(path), kind))


def flag_names(facts) -> list[str]:
    return [f.flag for f in facts.flags]


def test_exif_serial_gps_time_make_model(tmp_path: Path) -> None:
    path = write_frame(tmp_path / "IMG_0001.JPG", when=WHEN, serial="SN-0042", make="Reconyx ", model="HC600\x00",
                       gps=(-33.8625, 151.2083, -12.5))
    facts = probe(path, tmp_path)
    assert facts.status == "ok" and facts.media_type == "image" and facts.flags == ()
    assert facts.timestamp == WHEN and facts.timestamp_source == "exif_datetimeoriginal"
    assert (facts.exif.make, facts.exif.model, facts.exif.serial) == ("Reconyx", "HC600", "SN-0042")
    assert facts.exif.gps_latitude == pytest.approx(-33.8625, abs=1e-6)
    assert facts.exif.gps_longitude == pytest.approx(151.2083, abs=1e-6)
    assert facts.exif.gps_altitude_m == pytest.approx(-12.5)
    assert (facts.width, facts.height, facts.orientation, facts.color_mode) == (64, 48, 1, "RGB")
    assert facts.size_bytes == path.stat().st_size and len(facts.sha256) == 64


@pytest.mark.parametrize(("tag", "source"), [("digitized", "exif_datetimedigitized"), ("datetime", "exif_datetime")])
def test_time_falls_back_to_other_exif_tags(tmp_path: Path, tag: str, source: str) -> None:
    facts = probe(write_frame(tmp_path / "a.jpg", when=WHEN, tag=tag), tmp_path)
    assert (facts.timestamp, facts.timestamp_source) == (WHEN, source)
    assert F.NO_EXIF_TIME not in flag_names(facts)


def test_no_exif_time_uses_mtime_and_flags_it(tmp_path: Path) -> None:
    path = write_frame(tmp_path / "a.jpg")
    stamp = dt.datetime(2026, 1, 2, 3, 4, 5).timestamp()
    os.utime(path, (stamp, stamp))
    facts = probe(path, tmp_path)
    assert facts.status == "ok"
    assert (facts.timestamp, facts.timestamp_source) == (dt.datetime(2026, 1, 2, 3, 4, 5), "file_mtime")
    assert flag_names(facts) == [F.NO_EXIF_TIME]


def test_zeroed_exif_time_is_not_used_and_the_flag_says_why(tmp_path: Path) -> None:
    image = frame_image()
    exif = make_exif()
    exif.get_ifd(0x8769)[0x9003] = "0000:00:00 00:00:00"
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(image, exif))
    facts = probe(tmp_path / "a.jpg", tmp_path)
    assert facts.timestamp_source == "file_mtime"
    assert flag_names(facts) == [F.NO_EXIF_TIME]
    assert "DateTimeOriginal" in facts.flags[0].message and "0000:00:00" in facts.flags[0].message


def test_zero_byte(tmp_path: Path) -> None:
    (tmp_path / "IMG_0002.JPG").write_bytes(b"")
    facts = probe(tmp_path / "IMG_0002.JPG", tmp_path)
    assert (facts.status, facts.media_type, facts.size_bytes) == ("failed", "image", 0)
    assert flag_names(facts) == [F.ZERO_BYTE]


def test_truncated_jpeg_is_detected_despite_draft_decoding(tmp_path: Path) -> None:
    data = jpeg_bytes(frame_image((640, 480), seed=3), make_exif(when=WHEN))
    (tmp_path / "IMG_0003.JPG").write_bytes(data[: len(data) * 2 // 3])
    facts = probe(tmp_path / "IMG_0003.JPG", tmp_path)
    assert (facts.status, facts.media_type) == ("failed", "image")
    assert flag_names(facts) == [F.TRUNCATED]
    assert "truncated" in facts.flags[0].message
    # The header was readable: its facts are kept.
    assert (facts.width, facts.height, facts.timestamp) == (640, 480, WHEN)


def test_jpeg_cut_inside_its_header_is_truncated_not_a_non_image(tmp_path: Path) -> None:
    data = jpeg_bytes(frame_image(), make_exif(when=WHEN))
    (tmp_path / "a.jpg").write_bytes(data[:40])
    facts = probe(tmp_path / "a.jpg", tmp_path)
    assert facts.status == "failed" and flag_names(facts) == [F.TRUNCATED]


def test_text_named_jpg_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "IMG_0004.JPG").write_text("camera log: battery low\n")
    facts = probe(tmp_path / "IMG_0004.JPG", tmp_path)
    assert (facts.status, facts.media_type) == ("failed", "other")
    assert flag_names(facts) == [F.NOT_AN_IMAGE]
    assert "camera log" in facts.flags[0].message  # says what the file starts with


def test_garbage_after_a_jpeg_header_is_unreadable(tmp_path: Path) -> None:
    data = bytearray(jpeg_bytes(frame_image((256, 256), seed=1)))
    start = data.index(b"\xff\xda")  # start of scan: corrupt the markers after it
    data[start + 20 :] = b"\xff\xc0" * ((len(data) - start - 20) // 2)
    (tmp_path / "a.jpg").write_bytes(bytes(data))
    facts = probe(tmp_path / "a.jpg", tmp_path)
    assert facts.status == "failed"
    assert flag_names(facts)[0] in (F.UNREADABLE, F.TRUNCATED)


def test_appledouble_is_recorded_as_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "._IMG_0001.JPG").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    facts = probe(tmp_path / "._IMG_0001.JPG", tmp_path)
    assert (facts.status, facts.media_type) == ("skipped", "other")
    assert flag_names(facts) == [F.NOT_AN_IMAGE]
    assert "AppleDouble" in facts.flags[0].message and "IMG_0001.JPG" in facts.flags[0].message


def test_video_is_hashed_not_decoded(tmp_path: Path) -> None:
    (tmp_path / "MOV_0001.AVI").write_bytes(b"RIFF\x00\x00\x00\x00AVI LIST" + bytes(100))
    facts = probe(tmp_path / "MOV_0001.AVI", tmp_path)
    assert (facts.status, facts.media_type, facts.timestamp_source) == ("skipped", "video", "file_mtime")
    assert flag_names(facts) == [F.VIDEO_NOT_ANALYSED] and len(facts.sha256) == 64


@pytest.mark.parametrize(("orientation", "expected"), [(1, (80, 48)), (3, (80, 48)), (6, (48, 80)), (8, (48, 80))])
def test_displayed_size_follows_exif_orientation(tmp_path: Path, orientation: int, expected: tuple[int, int]) -> None:
    facts = probe(write_frame(tmp_path / "a.jpg", size=(80, 48), when=WHEN, orientation=orientation), tmp_path)
    assert facts.status == "ok"
    assert (facts.width, facts.height) == expected and facts.orientation == orientation


def test_greyscale_detection(tmp_path: Path) -> None:
    ir = probe(write_frame(tmp_path / "ir.jpg", size=(256, 192), grey=True, when=WHEN), tmp_path)
    colour = probe(write_frame(tmp_path / "day.jpg", size=(256, 192), when=WHEN), tmp_path)
    frame_image((64, 48)).convert("L").save(tmp_path / "l.jpg")
    mono = probe(tmp_path / "l.jpg", tmp_path)
    assert (ir.color_mode, ir.is_greyscale) == ("RGB", True)
    assert (colour.color_mode, colour.is_greyscale) == ("RGB", False)
    assert (mono.color_mode, mono.is_greyscale, mono.status) == ("L", True, "ok")


def test_cmyk_and_png_are_ok(tmp_path: Path) -> None:
    frame_image((64, 48)).convert("CMYK").save(tmp_path / "c.jpg")
    frame_image((30, 20)).save(tmp_path / "p.png")
    cmyk, png = probe(tmp_path / "c.jpg", tmp_path), probe(tmp_path / "p.png", tmp_path)
    assert (cmyk.status, cmyk.color_mode, cmyk.width, cmyk.height) == ("ok", "CMYK", 64, 48)
    assert (png.status, png.color_mode, png.width, png.height) == ("ok", "RGB", 30, 20)


def test_truncated_png(tmp_path: Path) -> None:
    frame_image((200, 150)).save(tmp_path / "p.png")
    data = (tmp_path / "p.png").read_bytes()
    (tmp_path / "p.png").write_bytes(data[: len(data) // 2])
    facts = probe(tmp_path / "p.png", tmp_path)
    assert facts.status == "failed" and flag_names(facts)[0] in (F.TRUNCATED, F.UNREADABLE)


def test_probing_restores_pillows_truncation_setting(tmp_path: Path) -> None:
    path = write_frame(tmp_path / "a.jpg", when=WHEN)
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        assert flag_names(probe(path, tmp_path)) == [F.TRUNCATED]  # strict while probing
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # and restored after
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


@pytest.mark.parametrize(
    ("text", "subsec", "expected"),
    [
        ("2026:03:05 10:11:12", None, WHEN),
        ("2026:03:05 10:11:12\x00", None, WHEN),
        ("2026-03-05T10:11:12+01:00", None, WHEN),
        (b"2026:03:05 10:11:12", "25", WHEN.replace(microsecond=250000)),
    ],
)
def test_parse_exif_datetime(text: object, subsec: object, expected: dt.datetime) -> None:
    assert parse_exif_datetime(text, subsec) == expected


@pytest.mark.parametrize("text", ["", "0000:00:00 00:00:00", "    :  :     :  :  ", "2026:13:01 00:00:00"])
def test_parse_exif_datetime_rejects_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        parse_exif_datetime(text)


def test_image_open_errors_never_escape(tmp_path: Path) -> None:
    # A TIFF header with a bogus IFD offset: Pillow raises while parsing; ingest flags it.
    (tmp_path / "a.tif").write_bytes(b"II*\x00\xff\xff\xff\x7f" + bytes(32))
    facts = probe(tmp_path / "a.tif", tmp_path)
    assert facts.status == "failed" and flag_names(facts)[0] in (F.UNREADABLE, F.TRUNCATED)
