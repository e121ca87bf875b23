"""The shallow-net lab in a real browser: Debian's chromium, headless, driven by Playwright."""

from __future__ import annotations

import re

import pytest
from browser_helpers import screenshot_whole_page, wait_until_idle
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = pytest.mark.browser

SETTLE_MS = 30_000
TRAIN_MS = 180_000
# A shared link: a small network on 1,000 images for 2 epochs, trained in seconds on two cores.
LINK = "/shallow_nets?units=10&images=1000&epochs=2&lr=0.01&dropout=0.5"


def metric(page, label: str) -> str:
    """The text of the metric with exactly this label."""
    return page.get_by_test_id("stMetric").filter(has=page.get_by_text(label, exact=True)).inner_text()


def number_input(page, label: str):
    return page.get_by_role("spinbutton", name=label, exact=True)


def test_a_shared_link_trains_live_to_results(app_server, page, browser, artifacts_dir):
    """A link fills the form; Start shows live progress and curves, then results, and a second tab sees the job."""
    page.goto(app_server.url + LINK)
    page.get_by_role("button", name="Start training").wait_for(timeout=SETTLE_MS)
    wait_until_idle(page)
    assert number_input(page, "Neurons, layer 1").input_value() == "10"
    assert number_input(page, "Training images").input_value() == "1000"
    assert number_input(page, "Epochs (at most)").input_value() == "2"
    assert "78,430" in metric(page, "Parameters")
    screenshot_whole_page(page, artifacts_dir / "shallow-nets-form.png")

    page.get_by_role("button", name="Start training").click()
    page.get_by_test_id("stMetric").filter(has_text="Samples/s").wait_for(timeout=SETTLE_MS)
    page.wait_for_function("window.location.search.includes('job=')", timeout=SETTLE_MS)
    job_id = re.search(r"job=([\w-]+)", page.url).group(1)

    # A second tab with a plain link sees the job on the server instead of starting its own.
    other = browser.new_page(viewport={"width": 1400, "height": 1000})
    other.goto(app_server.url + "/shallow_nets")
    other.get_by_role("button", name="Start training").wait_for(timeout=SETTLE_MS)
    if "Results on the 10,000 test images" not in page.inner_text("body"):
        other.get_by_text(job_id).wait_for(timeout=SETTLE_MS)
    other.close()

    page.get_by_text("Results on the 10,000 test images", exact=True).wait_for(timeout=TRAIN_MS)
    wait_until_idle(page)
    body = page.inner_text("body")
    assert "finished" in body
    assert "2 / 2" in metric(page, "Epoch")
    accuracy = metric(page, "Test accuracy")
    assert float(re.search(r"([\d.]+)%", accuracy).group(1)) > 20  # Chance is 10%.
    page.locator('[data-testid="stVegaLiteChart"]').nth(2).wait_for(timeout=SETTLE_MS)  # Curves and the matrix.
    page.locator('[data-testid="stImage"] img').nth(9).wait_for(timeout=SETTLE_MS)  # Drill-down and mistakes.
    screenshot_whole_page(page, artifacts_dir / "shallow-nets-results.png")

    # Clicking the Trouser/Trouser cell of the confusion matrix shows the images behind it.
    cell = page.locator(".st-key-sn_job_confusion g.mark-rect path").nth(11)  # Row-major: true 1, predicted 1.
    chosen = page.locator("p").filter(has_text="True class Trouser, predicted Trouser")
    for _ in range(3):  # The chart takes a moment to become interactive after it is drawn.
        page.wait_for_timeout(1500)
        cell.click()
        try:
            chosen.wait_for(timeout=5000)
            break
        except Exception:
            continue
    assert chosen.count() == 1

    # Reloading the page (a returning user) finds the same job and its results.
    page.reload()
    page.get_by_text("Results on the 10,000 test images", exact=True).wait_for(timeout=SETTLE_MS)
    assert f"job={job_id}" in page.url


def test_saved_runs_list_the_trained_run(app_server, page, artifacts_dir):
    """Under Saved runs the run from the previous test is listed, compared and opened with its downloads."""
    page.goto(app_server.url + "/shallow_nets")
    page.get_by_role("tab", name="Saved runs").wait_for(timeout=SETTLE_MS)
    page.get_by_role("tab", name="Saved runs").click()
    page.get_by_text("Compare runs").first.wait_for(timeout=SETTLE_MS)
    wait_until_idle(page)
    chooser = page.get_by_test_id("stSelectbox").filter(has_text="Open a saved run").locator("input")
    for _ in range(5):  # A rerun that lands just after the click closes the list; open it again.
        chooser.click()
        try:
            page.get_by_role("option").first.click(timeout=3_000)  # The newest run is the first option.
            break
        except PlaywrightTimeout:
            wait_until_idle(page)
    page.get_by_role("button", name="History (CSV)").wait_for(timeout=SETTLE_MS)
    wait_until_idle(page)
    assert page.get_by_role("button", name="Model (.keras)").count() == 1
    assert "run=" in page.url
    screenshot_whole_page(page, artifacts_dir / "shallow-nets-saved-runs.png")
