"""Classroom mode in a real browser: a job stays its owner's across a reload, a link only lets others watch."""

from __future__ import annotations

import re

import pytest
from browser_helpers import wait_until_idle

from core.devserver import AppServer

pytestmark = pytest.mark.browser

SETTLE_MS = 60_000
KEY = "owl-7-lantern"
# A run long enough to still be training while the test looks at it (the test stops it).
LINK = "/shallow_nets?units=78&images=2000&epochs=200&batch=16"


@pytest.fixture(scope="module")
def classroom_server(artifacts_dir, tmp_path_factory):
    state = tmp_path_factory.mktemp("classroom-state")
    env = {"EXPLORER_DATA_DIR": str(state), "EXPLORER_LECTURER_KEY": KEY}
    with AppServer(env=env, log_path=artifacts_dir / "classroom-server.log") as server:
        yield server


def stop_button(page):
    return page.get_by_role("button", name=re.compile(r"^Stop \(keeps"))


def test_the_owner_keeps_its_job_across_a_reload_and_a_link_only_watches(classroom_server, browser, artifacts_dir):
    """Start, reload: Stop is still there; another browser with the job link watches without Stop until unlocked."""
    owner_context = browser.new_context(viewport={"width": 1400, "height": 1000})
    owner = owner_context.new_page()
    owner.goto(classroom_server.url + LINK)
    owner.get_by_role("button", name="Start training").click(timeout=SETTLE_MS)
    stop_button(owner).wait_for(timeout=SETTLE_MS)
    owner.wait_for_function("window.location.search.includes('job=')", timeout=SETTLE_MS)
    job_link = owner.url
    cookies = {cookie["name"]: cookie["value"] for cookie in owner_context.cookies()}
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cookies["explorer_owner"])
    assert cookies["explorer_owner"] not in job_link

    owner.reload()
    stop_button(owner).wait_for(timeout=SETTLE_MS)
    # The server's job list is its own fragment and may draw a moment after the Stop button.
    owner.get_by_text("(yours)").first.wait_for(timeout=SETTLE_MS)
    assert "(yours)" in owner.inner_text("body")

    other_context = browser.new_context(viewport={"width": 1400, "height": 1000})
    other = other_context.new_page()
    other.goto(job_link)
    other.get_by_text("another session's job", exact=False).wait_for(timeout=SETTLE_MS)
    wait_until_idle(other)
    assert stop_button(other).count() == 0
    other.screenshot(path=str(artifacts_dir / "classroom-watcher.png"))

    sidebar = other.get_by_test_id("stSidebar")
    sidebar.get_by_label("Lecturer key").fill("not-the-key")
    sidebar.get_by_role("button", name="Unlock").click()
    sidebar.get_by_text("That is not the lecturer key", exact=False).wait_for(timeout=SETTLE_MS)
    sidebar.get_by_label("Lecturer key").fill(KEY)
    sidebar.get_by_role("button", name="Unlock").click()
    sidebar.get_by_text("You are the lecturer", exact=False).wait_for(timeout=SETTLE_MS)
    assert KEY not in other.url
    # A Stop before the first batch cancels the job with nothing to show (checked elsewhere):
    # this one comes once an epoch has been trained, so the owner must see the stopped run's results.
    other.wait_for_function(r"/Epoch\s+[1-9]\d* \/ 200/.test(document.body.innerText)", timeout=SETTLE_MS)
    stop_button(other).click(timeout=SETTLE_MS)
    owner.get_by_text("Results on the 10,000 test images", exact=True).wait_for(timeout=180_000)
    assert "stopped" in owner.inner_text("body")
    owner_context.close()
    other_context.close()
