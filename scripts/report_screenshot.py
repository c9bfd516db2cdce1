#!/usr/bin/env python3
"""Render an ecowatch HTML report to a full-page PNG with headless Chromium (Debian's ``chromium``).

Usage::

    python scripts/report_screenshot.py work/reports/report-sample_dump.html docs/report.png [--width 1280]

Chromium's ``--screenshot`` captures the window only, so this runs it twice: first on a copy of
the page with a one-line script that writes the page height into the DOM (read back with
``--dump-dom``), then on the report itself with the window that tall. Nothing is fetched from the
network (the report is self-contained). Install Chromium with ``apt-get install chromium``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--disable-extensions", "--disable-background-networking", "--disable-sync", "--mute-audio")  # fmt: skip
MEASURE = (
    "<script>addEventListener('load',function(){var h=Math.max(document.documentElement.scrollHeight,"
    "document.body.scrollHeight);document.body.setAttribute('data-page-height',h);});</script>"
)
MAX_HEIGHT = 16_000  # Chromium's texture limit is 16,384 px


def find_chromium() -> str | None:
    """The path of a Chromium/Chrome binary on PATH, or None."""
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def _run(binary: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, *FLAGS, *args], capture_output=True, text=True, timeout=timeout, check=False)


def page_height(binary: str, html: Path, width: int, *, timeout: float = 120) -> int:
    """The rendered height in CSS pixels of ``html`` at ``width`` px."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.html"
        text = html.read_text(encoding="utf-8")
        probe.write_text(text.replace("</body>", MEASURE + "</body>", 1), encoding="utf-8")
        result = _run(binary, f"--window-size={width},1000", "--virtual-time-budget=5000", "--dump-dom",
                      probe.as_uri(), timeout=timeout)  # fmt: skip
    match = re.search(r'data-page-height="(\d+)"', result.stdout)
    if result.returncode != 0 or match is None:
        raise RuntimeError(f"chromium could not measure {html}: {result.stderr[-2000:]}")
    return int(match.group(1))


def screenshot(html: Path, png: Path, *, width: int = 1280, binary: str | None = None, timeout: float = 120) -> Path:
    """Write a full-page PNG of ``html`` at ``width`` px.

    Raises:
        FileNotFoundError: no Chromium binary and none given.
        RuntimeError: Chromium failed.
    """
    binary = binary or find_chromium()
    if binary is None:
        raise FileNotFoundError(f"no Chromium found (looked for {', '.join(CANDIDATES)}); apt-get install chromium")
    html = html.resolve()
    height = min(page_height(binary, html, width, timeout=timeout), MAX_HEIGHT)
    png = png.resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    result = _run(binary, f"--window-size={width},{height}", f"--screenshot={png}", "--virtual-time-budget=5000",
                  html.as_uri(), timeout=timeout)  # fmt: skip
    if result.returncode != 0 or not png.is_file():
        raise RuntimeError(f"chromium could not take a screenshot of {html}: {result.stderr[-2000:]}")
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the report HTML file")
    parser.add_argument("png", type=Path, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1280, help="page width in CSS pixels (default 1280)")
    parser.add_argument("--chromium", default=None, help="Chromium binary (default: found on PATH)")
    args = parser.parse_args(argv)
    try:
        out = screenshot(args.html, args.png, width=args.width, binary=args.chromium)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
