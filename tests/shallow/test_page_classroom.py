"""The shallow-net lab in classroom mode, through AppTest: whose job is whose, across reloads and links.

A lecturer key is set in the environment. Each simulated browser is an owner cookie (Streamlit
reads cookies when a session connects; here `st.context.cookies` is swapped per session). The
jobs themselves 'train' until the test opens their gate, so no test waits for real training.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest
from streamlit.runtime.context import ContextProxy
from streamlit.testing.v1 import AppTest

from core.labs import ROOT
from core.shallow.jobs import TrainingJob, default_queue
from core.shallow.runs import RunStore
from pages._classroom import OWNER_COOKIE, WRONG_KEY_DELAY_SECONDS

PAGE = str(ROOT / "pages" / "shallow" / "lab.py")
KEY = "owl-7-lantern"
ALICE, BOB = "A" * 22, "B" * 22
browser_cookies: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def classroom(tmp_path_factory):
    """Classroom mode, a fresh saved-runs folder, and each session's cookies from `browser_cookies`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPLORER_DATA_DIR", str(tmp_path_factory.mktemp("classroom-runs")))
        patch.setenv("EXPLORER_LECTURER_KEY", KEY)
        patch.setattr(ContextProxy, "cookies", property(lambda self: dict(browser_cookies)))
        queue = default_queue()
        for job in queue.active():
            queue.cancel(job.id)
        queue.store = None
        yield queue
        queue.configure(None)


@pytest.fixture
def gates(monkeypatch):
    opened: defaultdict[str, threading.Event] = defaultdict(threading.Event)

    def gated_run_in(job: TrainingJob, process) -> None:
        job._update(status="running", message="Training", epoch=1, batch=1)
        opened[job.id].wait(30)
        job._update(status="finished", message="done", queue_position=None)
        job._finished.set()

    monkeypatch.setattr(TrainingJob, "run_in", gated_run_in)
    yield opened
    for job in default_queue().active():
        opened[job.id].set()
        job.wait(10)


def sidebar_script() -> None:
    """The app's sidebar alone (app.py's home page cannot rerun under AppTest: its page links fail there)."""
    import streamlit as st

    from pages._classroom import classroom_sidebar

    with st.sidebar:
        classroom_sidebar()


def open_as(owner: str | None, path: str = PAGE, **query) -> AppTest:
    """A new session (a new tab, or a reload) of a browser whose owner cookie is `owner`."""
    browser_cookies.clear()
    if owner:
        browser_cookies[OWNER_COOKIE] = owner
    if path == "sidebar":
        at = AppTest.from_function(sidebar_script, default_timeout=60)
    else:
        at = AppTest.from_file(path, default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def labels(at: AppTest) -> list[str]:
    return [button.label for button in at.button]


def popovers(at: AppTest) -> list[str]:
    return [block.proto.popover.label for block in at.get("popover")]


def click(at: AppTest, label: str) -> AppTest:
    next(button for button in at.button if button.label.startswith(label)).click().run()
    assert not at.exception, at.exception
    return at


def test_only_the_owner_can_stop_its_job_also_after_a_reload(gates):
    """Alice's job stays hers when her tab reloads; Bob, with the ?job= link, watches without Stop."""
    alice = click(open_as(ALICE, images="300", epochs="1"), "Start training")
    job = default_queue().get(alice.session_state["sn_job"])
    assert job.owner == ALICE and any(label.startswith("Stop") for label in labels(alice))

    reloaded = open_as(ALICE, job=job.id)
    assert reloaded.session_state["sn_job"] == job.id
    assert any(label.startswith("Stop") for label in labels(reloaded))

    bob = open_as(BOB, job=job.id)
    assert bob.session_state["sn_job"] == job.id
    assert not any(label.startswith(("Stop", "Cancel")) for label in labels(bob))
    assert any("another session's job" in caption.value for caption in bob.caption)
    assert ALICE not in str(dict(bob.query_params))  # The owner token never goes into a link.
    gates[job.id].set()
    assert job.wait(10).status == "finished"


def test_a_second_start_of_the_same_settings_is_refused_with_a_reason(gates):
    """Clicking Start again while the first is running queues nothing new and says why."""
    alice = click(open_as(ALICE, images="300", epochs="2"), "Start training")
    first = alice.session_state["sn_job"]
    click(alice, "Start training")
    assert any("this very configuration" in error.value for error in alice.error)
    assert len(default_queue().active(ALICE)) == 1
    gates[first].set()


def test_the_lecturer_stops_and_reorders_others_jobs(gates):
    """A lecturer session gets Stop, Cancel and Run next on every job and the queue settings."""
    jobs = [
        default_queue().get(click(open_as(owner, images="300", epochs="3"), "Start training").session_state["sn_job"])
        for owner in (ALICE, BOB, "C" * 22)
    ]
    lecturer = open_as("L" * 22)
    lecturer.session_state["class_lecturer"] = True
    lecturer.run()
    shown = labels(lecturer)
    assert shown.count("Stop") == 1 and shown.count("Cancel") == 2 and shown.count("Run next") == 1
    assert "Queue settings (lecturer)" in popovers(lecturer)
    waiting_cap = next(field for field in lecturer.number_input if field.label == "Waiting jobs per session")
    waiting_cap.set_value(2)
    next(button for button in lecturer.button if button.label == "Apply").click().run()
    assert default_queue().limits.waiting_per_session == 2
    click(lecturer, "Run next")
    assert default_queue().waiting() == [jobs[2], jobs[1]]
    click(lecturer, "Stop")
    assert jobs[0].stop_requested
    for job in jobs:
        gates[job.id].set()


def test_another_sessions_saved_run_is_read_only():
    """Bob sees Alice's saved run without Delete; Alice can delete it."""
    store = RunStore()
    run_id = store.start_run(label="a", config={}, params=7850, engine="numpy", device="CPU", session_owner=ALICE)
    store.finish_run(run_id, status="finished", duration_s=1.0, epochs_run=1)
    for owner, can_delete in ((BOB, False), (ALICE, True)):
        at = open_as(owner, run=str(run_id))
        at.session_state["sn_tab"] = "Saved runs"
        at.run()
        assert not at.exception, at.exception
        assert ("Delete" in popovers(at)) is can_delete
        assert any("read-only" in caption.value for caption in at.caption) is not can_delete


def test_a_wrong_lecturer_key_waits_and_says_so_and_the_right_one_unlocks():
    """The sidebar refuses a wrong key after a delay, keeps no typed key, and unlocks with the right one."""
    app = open_as(ALICE, "sidebar")
    assert any(field.label == "Lecturer key" for field in app.text_input)
    app.text_input(key="class_key_typed").input("owl-7")
    started = time.monotonic()
    click(app, "Unlock")
    assert time.monotonic() - started >= WRONG_KEY_DELAY_SECONDS
    assert any("not the lecturer key" in error.value for error in app.sidebar.error)
    assert app.text_input(key="class_key_typed").value == "" and "class_lecturer" not in app.session_state
    app.text_input(key="class_key_typed").input(KEY)
    click(app, "Unlock")
    assert any("You are the lecturer" in box.value for box in app.sidebar.success)
    assert KEY not in str(dict(app.query_params))
    assert len(app.text_input) == 1  # Only the nickname: the key field is gone.
    assert "class_lecturer" not in open_as(ALICE, "sidebar").session_state  # Not kept per browser.


def test_a_nickname_renames_the_sessions_runs_and_comes_back_after_a_reload():
    """A nickname typed in the sidebar names the session's saved runs; a reloaded tab shows it again."""
    owner = "N" * 22
    store = RunStore()
    run_id = store.start_run(label="n", config={}, params=1, engine="numpy", device="CPU", session_owner=owner)
    store.finish_run(run_id, status="finished", duration_s=1.0, epochs_run=1)
    sidebar = open_as(owner, "sidebar")
    sidebar.text_input(key="class_nickname_typed").input("  Ada\n Lovelace ").run()
    assert not sidebar.exception, sidebar.exception
    assert store.get_run(run_id).nickname == "Ada Lovelace"
    assert open_as(owner, "sidebar").text_input(key="class_nickname_typed").value == "Ada Lovelace"
    assert open_as("M" * 22, "sidebar").text_input(key="class_nickname_typed").value == ""


def test_watchers_share_one_chart_spec_per_epoch(gates, monkeypatch):
    """In classroom mode the curves are built once per epoch, whoever watches, and drawn as ready specs."""
    import pages.shallow.curves as curves

    builds = []
    original = curves.build_curves
    monkeypatch.setattr(curves, "build_curves", lambda *args: builds.append(args) or original(*args))
    curves.SPECS.clear()
    alice = click(open_as(ALICE, images="300", epochs="3"), "Start training")
    job = default_queue().get(alice.session_state["sn_job"])
    epoch = {"epoch": 1, "loss": 0.9, "accuracy": 0.7, "val_loss": 0.8, "val_accuracy": 0.72, "seconds": 1.0}
    job._update(history=(epoch,))
    watchers = [open_as(owner, job=job.id) for owner in (BOB, "C" * 22, "D" * 22)]
    alice.run()
    assert len(builds) == 1  # Four sessions, one epoch: one build.
    for at in [alice, *watchers]:
        assert len(at.get("vega_lite_chart")) == 2
    job._update(history=(epoch, {**epoch, "epoch": 2}))
    for at in watchers:
        at.run()
    assert len(builds) == 2
    gates[job.id].set()


def test_the_owner_polls_every_second_and_other_watchers_every_three(gates, monkeypatch):
    """Thirty tabs on someone else's run ask the server a third as often as its owner's tab does."""
    import pages.shallow.live as live

    asked = []
    st_fragment = live.st.fragment

    def recording(function=None, *, run_every=None):
        def decorate(body):
            if body.__name__ == "panel":  # The live panel's fragment.
                asked.append(run_every)
            return st_fragment(body, run_every=run_every)

        return decorate if function is None else decorate(function)

    monkeypatch.setattr(live.st, "fragment", recording)
    alice = click(open_as(ALICE, images="300", epochs="3"), "Start training")
    job_id = alice.session_state["sn_job"]
    open_as(BOB, job=job_id)
    assert asked[-1] == live.WATCHER_POLL_SECONDS
    open_as(ALICE, job=job_id)
    assert asked[-1] == live.CLASSROOM_POLL_SECONDS
    gates[job_id].set()
