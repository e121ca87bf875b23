"""The running app in a real browser: Debian's chromium, headless, driven by Playwright."""

from __future__ import annotations

import time

import pytest

from core.labs import LABS, available_labs

pytestmark = pytest.mark.browser


def test_home_page_renders_in_chromium(app_server, page, artifacts_dir):
    """A person opening the app sees the title, the four labs and the device badge."""
    started = time.perf_counter()
    page.goto(app_server.url)
    page.get_by_text("Image classification explorer").first.wait_for(timeout=30_000)
    elapsed = time.perf_counter() - started
    page.get_by_text(LABS[-1].summary).wait_for(timeout=30_000)
    body = page.inner_text("body")
    for title in ("Shallow-net lab", "Kernel lab", "Architectures", "Cat or dog"):
        assert title in body
    assert "CPU only" in body or "Training runs on" in body
    page.screenshot(path=str(artifacts_dir / "home.png"), full_page=True)
    print(f"home rendered {elapsed:.2f} s after navigation")


def test_presentation_mode_link_enlarges_text(app_server, page, artifacts_dir):
    """Opening ?present=1 hides Streamlit's header and makes the text larger."""
    page.goto(app_server.url)
    page.get_by_text("Image classification explorer").first.wait_for(timeout=30_000)
    normal = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
    page.goto(app_server.url + "/?present=1")
    page.get_by_text("Image classification explorer").first.wait_for(timeout=30_000)
    page.wait_for_function("parseFloat(getComputedStyle(document.documentElement).fontSize) > 20")
    large = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
    assert large > normal
    assert page.locator('[data-testid="stHeader"]').is_hidden()
    page.screenshot(path=str(artifacts_dir / "home-present.png"), full_page=True)
    # Switching it off in the sidebar takes ?present=1 out of the address again.
    page.get_by_test_id("stSidebar").get_by_text("Presentation mode").click()
    page.wait_for_function("!window.location.search.includes('present')")


def test_first_visit_by_deep_link_gets_the_app(page, artifacts_dir):
    """On a fresh server, opening a lab's address directly shows that lab inside the app's navigation."""
    from core.devserver import AppServer

    with AppServer(log_path=artifacts_dir / "server-deeplink.log") as fresh:
        page.goto(fresh.url + "/kernels?present=1")
        page.get_by_text("Kernel lab").first.wait_for(timeout=30_000)
        page.get_by_text("Presentation mode").first.wait_for(timeout=30_000)
        sidebar = page.get_by_test_id("stSidebar").inner_text()
        assert all(lab.title in sidebar for lab in available_labs())
        assert "shared" not in sidebar.split()
