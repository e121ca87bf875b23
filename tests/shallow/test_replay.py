"""Replays of real full-length runs: the file format, its checks, the pacing, and the page."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from core.labs import ROOT
from core.shallow.config import TrainingConfig
from core.shallow.replay import Replay, epochs_shown, load_replays, parse_replay, replay_record

PAGE = str(ROOT / "pages" / "shallow" / "lab.py")


@pytest.fixture(scope="module")
def real_replay(tmp_path_factory):
    """The replay file of a real (tiny) run, made the way `python -m bench gpu` makes one."""
    from core.shallow.jobs import JobQueue
    from core.shallow.runs import RunStore

    folder = tmp_path_factory.mktemp("replays")
    store = RunStore(folder / "runs.sqlite")
    config = TrainingConfig(hidden_units=(8,), dropout=0.5, learning_rate=3e-3, train_limit=400, epochs=3)
    queue = JobQueue(store=store)
    try:
        progress = queue.submit(config).wait(300)
    finally:
        queue.close()
    run = store.get_run(progress.run_id)
    record = replay_record(config, run, store.history(run.run_id), "a test", "2026-12-01 12:00")
    (folder / "tiny.json").write_text(json.dumps(record))
    return folder, record, run


def test_a_real_run_round_trips_through_a_replay_file(real_replay):
    """The file keeps every epoch, the device, the engine and the test accuracy of the run it came from."""
    folder, record, run = real_replay
    replays, problems = load_replays(folder)
    assert problems == [] and len(replays) == 1
    replay = replays[0]
    assert [row["epoch"] for row in replay.history] == [1.0, 2.0, 3.0]
    assert replay.device == run.device and replay.engine == run.engine == "numpy"
    assert replay.test_accuracy == pytest.approx(run.test_accuracy)
    assert "3 epochs" in replay.title and replay.training_seconds > 0


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda data: data["history"].pop(1), "without gaps"),
        (lambda data: data["history"].clear(), "empty"),
        (lambda data: data["history"][0].update(loss="nan"), "not a number"),
        (lambda data: data.pop("device"), "device"),
        (lambda data: data["config"].update(dropout=1.5), "Dropout"),
    ],
)
def test_broken_replay_files_are_named_and_skipped(real_replay, tmp_path, change, message):
    """A file with a gap, no epochs, a NaN, a missing field or an impossible setting is refused by name."""
    _, record, _ = real_replay
    data = json.loads(json.dumps(record))
    change(data)
    (tmp_path / "broken.json").write_text(json.dumps(data))
    (tmp_path / "good.json").write_text(json.dumps(record))
    (tmp_path / "garbage.json").write_text("{not json")
    replays, problems = load_replays(tmp_path)
    assert [replay.name for replay in replays] == ["good.json"]
    assert any("broken.json" in problem and message in problem for problem in problems)
    assert any("garbage.json" in problem for problem in problems)
    with pytest.raises(ValueError, match="broken.json"):
        parse_replay("broken.json", data)


def test_epochs_come_at_their_real_pace_compressed():
    """Epochs of 4, 1, 1, 1, 1 s replayed in 8 s: the first one needs 4 s, then one every second."""
    history = tuple(
        {"epoch": index + 1.0, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.0, "val_accuracy": 0.5, "seconds": seconds}
        for index, seconds in enumerate([4.0, 1.0, 1.0, 1.0, 1.0])
    )
    replay = Replay("pace", TrainingConfig(), "CPU", "numpy", "today", "a test", history, 0.8, 0.5)
    assert [epochs_shown(replay, t, 8.0) for t in (0, 2, 3.9, 4.1, 5.5, 7.9, 8, 100)] == [0, 0, 0, 1, 2, 4, 5, 5]


def test_the_lab_offers_a_replay_only_when_one_was_recorded(real_replay, tmp_path, monkeypatch):
    """No files: no replay on the page. A real run's file: an expander that plays it to its last epoch."""
    folder, _, _ = real_replay
    monkeypatch.setenv("EXPLORER_REPLAY_DIR", str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert not [expander for expander in at.expander if "Replay" in expander.label]

    monkeypatch.setenv("EXPLORER_REPLAY_DIR", str(folder))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert [expander.label for expander in at.expander if "Replay" in expander.label] == [
        "Replay a full-length run (1 recorded)"
    ]
    at.radio(key="sn_replay_speed").set_value("10 s").run()
    at.button(key="sn_replay_play").click().run()
    assert not at.exception
    assert any("It really trained for" in caption.value for caption in at.caption)
