"""Shared fixtures: the app served for real, and Debian's chromium driven by Playwright."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.devserver import CHROMIUM_ARGS, AppServer, chromium_path

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def app_server(artifacts_dir, tmp_path_factory):
    """The app on a free loopback port, with its own saved-runs folder; stopped by PID at the end."""
    state = tmp_path_factory.mktemp("app-state")
    server = AppServer(env={"EXPLORER_DATA_DIR": str(state)}, log_path=artifacts_dir / "server.log")
    with server:
        yield server


@pytest.fixture(scope="session")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    yield page
    context.close()
