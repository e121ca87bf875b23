"""Architectures page: time until the stored results show, and how long the parameter check's builds take."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

from core.devserver import CHROMIUM_ARGS, AppServer, chromium_path
from core.labs import ROOT

TITLE = "Architectures: stored results on screen, and model builds for the parameter check"
DESCRIPTION = """
Page: in headless Chromium, from clicking "Architectures" in the menu (home page already open) to
the results table's heading and the first Altair chart being visible; 3 fresh browser sessions on
one server, the first of which is the page's first run in that server. Script: one AppTest run of
`pages/architectures/lab.py` in a fresh Python process (cold imports, no TensorFlow). Builds:
`python -m core.architectures params --json` in a fresh process: TensorFlow/Keras import, then each
architecture built with `weights=None` and counted (the page does this once, on request, then caches).
"""


def page_render_seconds(sessions: int = 3) -> list[float]:
    from playwright.sync_api import sync_playwright

    timings = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        with AppServer() as server:
            for _ in range(sessions):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(server.url)
                page.get_by_text("Image classification explorer").first.wait_for(timeout=60_000)
                page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=60_000)
                started = time.perf_counter()
                page.get_by_test_id("stSidebarNav").get_by_text("Architectures").click()
                page.get_by_text("Stored results").wait_for(timeout=60_000)
                page.locator('[data-testid="stVegaLiteChart"]').first.wait_for(timeout=60_000)
                timings.append(time.perf_counter() - started)
                page.close()
        browser.close()
    return timings


def script_seconds() -> float:
    code = (
        "import time; t = time.perf_counter(); from streamlit.testing.v1 import AppTest; "
        f"AppTest.from_file({str(ROOT / 'pages' / 'architectures' / 'lab.py')!r}, default_timeout=60).run(); "
        "print(time.perf_counter() - t)"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(completed.stdout.strip().splitlines()[-1])


def builds() -> tuple[float, float, list[dict]]:
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", "import time; t = time.perf_counter(); import keras; print(time.perf_counter() - t)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    keras_import = float(completed.stdout.strip().splitlines()[-1])
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "core.architectures", "params", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return keras_import, time.perf_counter() - started, json.loads(completed.stdout)


def run() -> list[dict]:
    renders = page_render_seconds()
    scripts = [script_seconds() for _ in range(3)]
    keras_import, cli_total, reports = builds()
    rows = [
        {
            "metric": "menu click to stored results + first chart, first session",
            "value": renders[0],
            "unit": "s",
            "note": "target: within 2 s",
        },
        {
            "metric": "menu click to stored results + first chart, later sessions (median)",
            "value": statistics.median(renders[1:]),
            "unit": "s",
        },
        {
            "metric": "page script, one AppTest run in a fresh process (median of 3)",
            "value": statistics.median(scripts),
            "unit": "s",
        },
        {"metric": "import keras (TensorFlow backend), fresh process", "value": keras_import, "unit": "s"},
        {
            "metric": "python -m core.architectures params --json, whole command",
            "value": cli_total,
            "unit": "s",
            "note": f"{len(reports)} architectures",
        },
    ]
    for report in reports:
        rows.append(
            {
                "metric": f"build {report['key']}",
                "value": report["build_seconds"],
                "unit": "s",
                "note": f"{report['ours']['total']:,} parameters, depth {report['depth']}",
            }
        )
    return rows
