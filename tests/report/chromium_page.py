"""One HTML report in real headless Chromium (Debian's ``chromium``, or any Chrome the machine has): each plot's
traces and drawn elements read back from the page, console errors, and requests that tried to leave the
machine (blocked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dse.report import find_browser

BROWSER = find_browser()
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--enable-unsafe-swiftshader",  # WebGL (Scattergl) on a machine without a GPU
    "--use-angle=swiftshader",
]

READ_BACK = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => ({
  id: gd.id,
  traces: gd._fullData.map(t => [t.type, t.visible === true ? (t.x || t.dimensions?.[0]?.values || []).length : 0]),
  svgMarkers: gd.querySelectorAll('.scatterlayer .trace .points path').length,
  bars: gd.querySelectorAll('.barlayer .point').length,
  glCanvases: gd.querySelectorAll('canvas').length,
  parcoordsLines: gd._fullData[0].type === 'parcoords' ? gd._fullData[0].dimensions[0].values.length : 0,
}))"""


def open_page(path: Path) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Load ``path`` in Chromium; (each plot's read-back, console errors, requests that left the machine)."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=BROWSER, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        def route(request_route: Any) -> None:
            url = request_route.request.url
            if url.startswith(("file:", "data:", "blob:")):
                request_route.continue_()
            else:
                outside.append(url)
                request_route.abort()

        page.route("**/*", route)
        page.goto(path.as_uri())
        expected = page.evaluate("() => document.querySelectorAll('.chart').length")
        page.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot').length === {expected}")
        page.wait_for_timeout(300)  # WebGL draws on the next frame
        plots = page.evaluate(READ_BACK)
        browser.close()
    return plots, errors, outside
