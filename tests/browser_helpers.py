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


def choose_option(page, widget, name: str, *, exact: bool = False, tries: int = 5) -> None:
    """Opens a selectbox or multiselect and clicks the option called ``name``.

    A rerun that lands just after the click (a slow machine finishing the previous run, an image
    arriving) redraws the widget and closes its list, so the option never shows; open it again.
    """
    option = page.get_by_role("option", name=name, exact=exact)
    for attempt in range(tries):
        widget.click()
        try:
            option.click(timeout=5_000)
            return
        except Exception:  # Playwright's TimeoutError; the last try re-raises it.
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")
            wait_until_idle(page)
