"""From Start to the first curve point, in a real browser on the running app."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

TITLE = "From Start to the first curve point in the app (a real browser)"
DESCRIPTION = """
The app runs as `make run` runs it (`streamlit run app.py` on 127.0.0.1, the training queue's
warm child process started with the server); Debian's Chromium, headless, driven by
Playwright, opens the lab with a shared link, waits until the page is idle (settings drawn,
estimate shown), clicks **Start training** and waits for the live panel's first chart: the
loss curve with its first point, drawn from the first batches. The time is from the click
to that chart in the page. Each network is started three times in a row on the same server,
stopped after its first point each time: the first start after the server came up, then two
more (the child process already warm from the run before).
"""

NETWORKS = {
    "the page's default (392 neurons, no activation, 0.8, 5,000 images)": "/shallow_nets",
    "the article's headline network on all 54,000 images": "/shallow_nets?images=all",
    "392 neurons, ReLU, dropout 0.5": "/shallow_nets?activation=relu&dropout=0.5",
    "78 + 78 neurons": "/shallow_nets?units=78,78&dropout=0.5",
    "conventional MLP, 392 neurons": "/shallow_nets?arch=mlp&dropout=0.5",
}
SETTLE_MS = 120_000


def _first_curve_seconds(page, url: str) -> float:
    page.goto(url)
    page.get_by_role("button", name="Start training").wait_for(timeout=SETTLE_MS)
    # The estimate timed (a few real batches, off the page): the page as a student sees it before Start.
    page.get_by_text("timed on a few real batches", exact=False).first.wait_for(timeout=SETTLE_MS)
    page.wait_for_timeout(1500)
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    before = charts.count()
    page.get_by_role("button", name="Start training").click()
    clicked = time.perf_counter()
    page.wait_for_function(
        f'document.querySelectorAll(\'[data-testid="stVegaLiteChart"] canvas, '
        f'[data-testid="stVegaLiteChart"] svg\').length > {before}',
        timeout=SETTLE_MS,
        polling=20,
    )
    seconds = time.perf_counter() - clicked
    stop = page.get_by_role("button").filter(has_text="Stop (keeps the best weights")
    stop.click()
    page.get_by_text("Results on the 10,000 test images", exact=True).wait_for(timeout=SETTLE_MS)
    return seconds


def run(tiny: bool = False) -> list[dict]:
    from playwright.sync_api import sync_playwright

    from core.devserver import CHROMIUM_ARGS, AppServer, chromium_path

    networks = dict(list(NETWORKS.items())[:1]) if tiny else NETWORKS
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        server = AppServer(env={"EXPLORER_DATA_DIR": folder}, log_path=Path(folder) / "server.log").start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 720})
                for name, link in networks.items():
                    times = [_first_curve_seconds(page, server.url + link) for _ in range(1 if tiny else 3)]
                    print(f"{name}: {', '.join(f'{t:.2f}' for t in times)} s", file=sys.stderr)
                    rows.append(
                        {
                            "metric": f"Start to first curve point: {name}",
                            "value": statistics.median(times),
                            "unit": "s",
                            "note": "target: under 3 s; each start: " + ", ".join(f"{t:.2f} s" for t in times),
                        }
                    )
                browser.close()
        finally:
            server.stop()
    return rows
