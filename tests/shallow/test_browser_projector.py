"""The shallow-net lab on a 1280 x 720 projector in presentation mode: Start and the live curves on the first screen."""

from __future__ import annotations

import re

import pytest
from browser_helpers import wait_until_idle

pytestmark = pytest.mark.browser

SETTLE_MS = 60_000
LINK = "/shallow_nets?present=1&units=78&images=2000&epochs=200&batch=16"
CUT_METRICS = (
    "[...document.querySelectorAll('[data-testid=stMetricValue], [data-testid=stMetricValue] *')]"
    ".filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)"
)
PAGE_HEIGHT = "Math.max(...[...document.querySelectorAll('[data-testid=stMain], section')].map(e => e.scrollHeight))"


def top_of_page(page) -> None:
    page.evaluate("document.querySelectorAll('[data-testid=stMain], section').forEach(e => e.scrollTo(0, 0))")
    page.wait_for_timeout(300)


def on_first_screen(locator, visible_px: float | None = None) -> bool:
    """Whether the element (or its top `visible_px`: a chart's title and plot, its legend may be lower) is unscrolled."""
    box = locator.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + (visible_px or box["height"]) <= 720


def test_start_settings_and_live_curves_fit_the_first_screen(app_server, browser, artifacts_dir):
    """At 1280 x 720: Start, the neurons and the accuracy curve are visible unscrolled; no big number is cut."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.goto(app_server.url + LINK)
    start = page.get_by_role("button", name="Start training")
    start.wait_for(timeout=SETTLE_MS)
    wait_until_idle(page)
    top_of_page(page)
    assert on_first_screen(start)
    assert on_first_screen(page.get_by_role("spinbutton", name="Neurons, layer 1", exact=True))
    page.screenshot(path=str(artifacts_dir / "projector-1280x720-idle.png"))

    start.click()
    chart = page.get_by_test_id("stVegaLiteChart").first
    chart.wait_for(timeout=SETTLE_MS)
    page.get_by_test_id("stMetric").filter(has_text="Val. acc.").filter(has_text=re.compile(r"\d%")).wait_for(
        timeout=SETTLE_MS
    )
    top_of_page(page)
    assert on_first_screen(start) and on_first_screen(chart, visible_px=250)
    assert page.evaluate(CUT_METRICS) == []
    assert page.evaluate(PAGE_HEIGHT) < 2500  # Was 4,179 px during a run before the projector layout.
    page.screenshot(path=str(artifacts_dir / "projector-1280x720-running.png"))
    page.get_by_role("button", name=re.compile(r"^Stop \(keeps")).click()
    page.get_by_text("Results on the 10,000 test images", exact=True).wait_for(timeout=180_000)
    context.close()
