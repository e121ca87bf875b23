"""Helpers the real-browser tests share (plain functions; the fixtures are in conftest.py)."""

from __future__ import annotations

SETTLE_MS = 30_000


def wait_until_idle(page, timeout: int = SETTLE_MS) -> None:
    """Waits until Streamlit has finished the current run (its status widget disappears)."""
    page.wait_for_timeout(300)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=timeout)


def screenshot_whole_page(page, path, timeout: int = SETTLE_MS) -> None:
    """Screenshots the whole page: Streamlit scrolls inside its own container, so grow the window."""
    height = page.evaluate(
        "Math.max(...[...document.querySelectorAll('[data-testid=stMain], section')].map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 100, 8000)})
    wait_until_idle(page, timeout)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})
