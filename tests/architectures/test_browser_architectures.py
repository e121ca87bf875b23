"""The Architectures page in a real browser: Debian's chromium, headless, driven by Playwright."""

from __future__ import annotations

import time

import pytest
from browser_helpers import choose_option, screenshot_whole_page, wait_until_idle

pytestmark = pytest.mark.browser

SETTLE_MS = 30_000
# Importing TensorFlow and building every model takes 15-30 s on a shared two-core machine.
BUILD_MS = 240_000


def open_architectures(page, url: str) -> float:
    """Opens the app and follows the menu to Architectures, as a new user does.

    Returns:
        Seconds from the menu click until the results table and the first chart show.
    """
    page.goto(url)
    page.get_by_text("Image classification explorer").first.wait_for(timeout=SETTLE_MS)
    wait_until_idle(page)
    started = time.perf_counter()
    page.get_by_test_id("stSidebarNav").get_by_text("Architectures").click()
    page.get_by_text("Stored results").wait_for(timeout=SETTLE_MS)
    page.locator('[data-testid="stVegaLiteChart"]').first.wait_for(timeout=SETTLE_MS)
    elapsed = time.perf_counter() - started
    wait_until_idle(page)
    assert page.url.endswith("/architectures")
    return elapsed


def test_stored_results_charts_and_notes_show(app_server, page, artifacts_dir):
    """A visitor sees the results table, charts naming their datasets, and the notes on contradictions."""
    elapsed = open_architectures(page, app_server.url)
    body = page.inner_text("body")
    assert "23 of 23 results" in body
    for text in ("MNIST", "CIFAR-10", "Fashion-MNIST", "Where the articles contradict themselves", "top-5"):
        assert text in body
    assert "Build the models and count parameters" in body
    page.locator('[data-testid="stVegaLiteChart"]').first.wait_for(timeout=SETTLE_MS)
    screenshot_whole_page(page, artifacts_dir / "architectures.png")
    print(f"/architectures showed its results {elapsed:.2f} s after the menu click")


def test_filter_then_parameter_check(app_server, page, artifacts_dir):
    """Filtering to VGG16 leaves its four rows; the button builds the models and shows our counts."""
    open_architectures(page, app_server.url)
    choose_option(page, page.get_by_test_id("stMultiSelect").filter(has_text="Model"), "VGG16", exact=True)
    page.keyboard.press("Escape")
    page.get_by_text("4 of 23 results").wait_for(timeout=SETTLE_MS)
    wait_until_idle(page)
    page.get_by_role("button", name="Build the models and count parameters").click()
    page.get_by_text("Layer summary of").wait_for(timeout=BUILD_MS)
    wait_until_idle(page, BUILD_MS)
    body = page.inner_text("body")
    # Tables and charts draw on canvases, so check the texts around them; the screenshot shows the rest.
    assert "Head: base with global pooling, Dropout, Dense(10). Convolution kernels: {'3x3': 13}." in body
    assert "Inside vgg16: 20 layers" in body
    screenshot_whole_page(page, artifacts_dir / "architectures-check.png")
