"""Home-page cold start in a real browser, and Fashion-MNIST load times."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from core.devserver import CHROMIUM_ARGS, AppServer, chromium_path

TITLE = "Foundation: home page cold start and Fashion-MNIST loading"
DESCRIPTION = """
Cold start: from launching `streamlit run app.py` to the home page's title being visible in
headless Chromium (Playwright driving Debian's chromium), median of 3 server starts.
Data: `load_fashion_mnist()` parsing the four Debian IDX .gz files in a fresh process, and a
second call in the same process (served from memory).
"""


def home_cold_start() -> tuple[float, float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        with AppServer() as server:
            healthy = time.perf_counter() - server.started_at
            page = browser.new_page()
            page.goto(server.url)
            page.get_by_text("Image classification explorer").first.wait_for(timeout=30_000)
            rendered = time.perf_counter() - server.started_at
        browser.close()
    return healthy, rendered


def data_load() -> tuple[float, float]:
    code = (
        "import time; t=time.perf_counter(); from core.data import load_fashion_mnist as f; f(); "
        "a=time.perf_counter(); f(); b=time.perf_counter(); print(a-t, b-a)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    first, second = map(float, output.split())
    return first, second


def run() -> list[dict]:
    starts = [home_cold_start() for _ in range(3)]
    loads = [data_load() for _ in range(3)]
    return [
        {"metric": "server start to healthy", "value": statistics.median(s[0] for s in starts), "unit": "s"},
        {
            "metric": "server start to home page rendered in Chromium",
            "value": statistics.median(s[1] for s in starts),
            "unit": "s",
            "note": "target: home renders within 3 s of the server being up",
        },
        {
            "metric": "home rendered after server healthy",
            "value": statistics.median(s[1] - s[0] for s in starts),
            "unit": "s",
        },
        {
            "metric": "load_fashion_mnist, first call (import + parse)",
            "value": statistics.median(l[0] for l in loads),
            "unit": "s",
        },
        {
            "metric": "load_fashion_mnist, second call",
            "value": statistics.median(l[1] for l in loads) * 1000,
            "unit": "ms",
        },
    ]
