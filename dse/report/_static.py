"""The PNG/SVG writer: every chart through kaleido, in one headless Chromium (Debian's ``chromium`` package,
or any Chrome or Chromium the machine has). Nothing is downloaded: no browser at all is a clear error."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from dse.report._html import Chart

FORMATS = ("html", "png", "svg")
"""What a report may write: the HTML page, and each chart as PNG and/or SVG under ``figures/``."""
IMAGE_WIDTH = 1200
"""Pixels (CSS) of every exported chart; the height is the chart's own (its layout height)."""
PNG_SCALE = 2
"""PNG pixels per CSS pixel: sharp on high-density screens and in printed reports."""
BROWSER_ENV = ("DSE_BROWSER", "BROWSER_PATH")
"""Environment variables naming the browser to use (the first set wins; ``BROWSER_PATH`` is kaleido's own)."""
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
"""Executables looked up on PATH otherwise, in this order."""


class ExportError(RuntimeError):
    """Static export could not run (no browser, or the browser failed); the HTML report is still written."""


def find_browser() -> str | None:
    """The Chrome/Chromium executable kaleido will drive, or None."""
    for variable in BROWSER_ENV:
        if os.environ.get(variable):
            return os.environ[variable]
    return next((path for name in BROWSER_NAMES if (path := shutil.which(name))), None)


def _height(chart: Chart) -> int:
    return int(chart.figure.layout.height or 500)


def write_images(charts: Sequence[Chart], directory: Path, formats: Sequence[str]) -> list[Path]:
    """Write ``directory/<chart>.<format>`` for every chart and every format of ``formats`` other than html,
    in one browser session. Raises ``ExportError`` naming what to install when no browser is found."""
    formats = [f for f in formats if f != "html"]
    if not formats or not charts:
        return []
    browser = find_browser()
    if browser is None:
        raise ExportError(
            "PNG/SVG export needs Chrome or Chromium, and none was found: install Debian's package"
            " (`apt-get install chromium`) or set DSE_BROWSER to a Chrome/Chromium executable; the HTML report"
            " needs no browser and was written"
        )
    import kaleido

    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".export-") as scratch:
        jobs, paths = [], []
        for chart in charts:
            for fmt in formats:
                opts = {"format": fmt, "width": IMAGE_WIDTH, "height": _height(chart)}
                opts |= {"scale": PNG_SCALE} if fmt == "png" else {}
                jobs.append({"fig": chart.figure, "path": str(Path(scratch) / f"{chart.name}.{fmt}"), "opts": opts})
                paths.append(directory / f"{chart.name}.{fmt}")
        try:
            kaleido.write_fig_from_object_sync(jobs, kopts={"mathjax": False, "path": browser})
        except Exception as exc:  # choreographer and kaleido raise their own types for a browser that fails
            raise ExportError(f"PNG/SVG export with {browser} failed: {exc}") from None
        written = {p.name for p in Path(scratch).iterdir() if p.stat().st_size}
        missing = [p.name for p in paths if p.name not in written]
        if missing:
            raise ExportError(f"the browser wrote no image for: {', '.join(missing)}")
        for path in paths:  # an interrupted export leaves the previous images, never half an image
            os.replace(Path(scratch) / path.name, path)
    return paths
