"""Saved runs in SQLite: writing, reading, CSV, deleting, and runs left by a dead process."""

from __future__ import annotations

import csv
import io
import sqlite3
import subprocess
import sys

import pytest

from core.shallow.runs import RunStore, list_finished_runs

EVALUATION = {"loss": 0.4, "accuracy": 0.85, "precision": 0.88, "recall": 0.83, "confusion": [[1]]}


def finished_run(store: RunStore, epochs: int = 3) -> int:
    run_id = store.start_run(
        label="7 neurons", config={"hidden_units": [7]}, params=54904, engine="numpy", device="CPU"
    )
    for epoch in range(1, epochs + 1):
        store.add_epoch(
            run_id,
            {
                "epoch": epoch,
                "loss": 1 / epoch,
                "accuracy": 0.5,
                "val_loss": 1.1 / epoch,
                "val_accuracy": 0.6,
                "seconds": 2.0,
            },
        )
    model_path = store.model_path_for(run_id)
    model_path.write_bytes(b"model")
    store.finish_run(
        run_id, status="finished", duration_s=6.0, epochs_run=epochs, evaluation=EVALUATION, model_path=str(model_path)
    )
    return run_id


def test_database_is_created_in_wal_mode(tmp_path):
    """The file and its folder are created on first use, in WAL mode."""
    store = RunStore(tmp_path / "deep" / "runs.sqlite")
    assert store.path.exists()
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_run_round_trips(tmp_path):
    """Settings, history, metrics and the model path come back as written."""
    store = RunStore(tmp_path / "runs.sqlite")
    run_id = finished_run(store)
    run = store.get_run(run_id)
    assert run.status == "finished" and run.params == 54904 and run.config == {"hidden_units": [7]}
    assert run.test_accuracy == 0.85 and run.evaluation["confusion"] == [[1]] and run.has_model
    assert [row["epoch"] for row in store.history(run_id)] == [1, 2, 3]
    assert list_finished_runs(store.path)[0]["test_accuracy"] == 0.85


def test_history_exports_as_csv(tmp_path):
    """The CSV has a header and one row per epoch."""
    store = RunStore(tmp_path / "runs.sqlite")
    run_id = finished_run(store, epochs=2)
    rows = list(csv.DictReader(io.StringIO(store.history_csv(run_id))))
    assert [int(row["epoch"]) for row in rows] == [1, 2]
    assert float(rows[1]["loss"]) == 0.5
    with pytest.raises(KeyError):
        store.history_csv(999)


def test_delete_removes_run_history_and_model(tmp_path):
    """Deleting a run removes its rows and its .keras file; a running run cannot be deleted."""
    store = RunStore(tmp_path / "runs.sqlite")
    run_id = finished_run(store)
    model_path = store.get_run(run_id).model_path
    store.delete_run(run_id)
    assert store.list_runs() == [] and store.history(run_id) == []
    assert not (tmp_path / model_path).exists()
    running = store.start_run(label="x", config={}, params=1, engine="numpy", device="CPU")
    with pytest.raises(ValueError, match="still training"):
        store.delete_run(running)


def test_runs_of_a_dead_process_are_marked_interrupted(tmp_path):
    """A run left 'running' by a process that has exited is marked interrupted, history kept."""
    db = tmp_path / "runs.sqlite"
    code = (
        f"from core.shallow.runs import RunStore; s = RunStore({str(db)!r});"
        "r = s.start_run(label='x', config={}, params=1, engine='numpy', device='CPU');"
        "s.add_epoch(r, {'epoch': 1, 'loss': 1.0, 'accuracy': 0.5, 'val_loss': 1.0, 'val_accuracy': 0.5, 'seconds': 1})"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    store = RunStore(db)
    run = store.list_runs()[0]
    assert run.status == "interrupted" and "ended before it finished" in run.error
    assert len(store.history(run.run_id)) == 1


def test_own_running_runs_are_not_marked(tmp_path):
    """This process's running runs stay running when the store is reopened."""
    store = RunStore(tmp_path / "runs.sqlite")
    run_id = store.start_run(label="x", config={}, params=1, engine="numpy", device="CPU")
    assert RunStore(store.path).get_run(run_id).status == "running"


def test_concurrent_reader_sees_committed_epochs(tmp_path):
    """A second connection reads committed epochs while the writer keeps writing."""
    store = RunStore(tmp_path / "runs.sqlite")
    reader = RunStore(store.path)
    run_id = store.start_run(label="x", config={}, params=1, engine="numpy", device="CPU")
    for epoch in range(1, 4):
        store.add_epoch(run_id, {"epoch": epoch, "loss": 1.0})
        assert len(reader.history(run_id)) == epoch


OLD_SCHEMA = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL NOT NULL, finished_at REAL, status TEXT NOT NULL,
    label TEXT NOT NULL, config TEXT NOT NULL, params INTEGER NOT NULL, engine TEXT, device TEXT, duration_s REAL,
    epochs_run INTEGER DEFAULT 0, best_epoch INTEGER, seconds_per_epoch REAL, test_loss REAL, test_accuracy REAL,
    test_precision REAL, test_recall REAL, evaluation TEXT, model_path TEXT, error TEXT, owner_pid INTEGER,
    owner_token TEXT
);
CREATE TABLE history (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, epoch INTEGER NOT NULL,
    loss REAL, accuracy REAL, val_loss REAL, val_accuracy REAL, seconds REAL, PRIMARY KEY (run_id, epoch)
);
INSERT INTO runs (created_at, finished_at, status, label, config, params, test_accuracy)
    VALUES (1.0, 2.0, 'finished', 'old run', '{}', 7850, 0.8);
"""


def test_a_database_from_before_classroom_mode_is_migrated_in_place(tmp_path):
    """An old runs table gains session_owner and nickname; its run is kept, with no owner."""
    from core.classroom import Actor, NotYours

    path = tmp_path / "runs.sqlite"
    with sqlite3.connect(path) as connection:
        connection.executescript(OLD_SCHEMA)
    store = RunStore(path)
    columns = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(runs)")}
    assert {"session_owner", "nickname"} <= columns
    (old,) = store.list_runs()
    assert old.label == "old run" and old.session_owner is None and old.nickname is None
    RunStore(path)  # Opening a migrated database again changes nothing.
    with pytest.raises(NotYours):
        store.delete_run(old.run_id, Actor(owner="s" * 22, classroom=True))
    store.delete_run(old.run_id, Actor(owner="l" * 22, lecturer=True, classroom=True))
    assert store.list_runs() == []


def test_runs_record_their_session_and_nickname_and_only_it_deletes_them(tmp_path):
    """A run keeps its session and nickname; renaming renames all its runs; another session cannot delete it."""
    from core.classroom import Actor, NotYours

    store = RunStore(tmp_path / "runs.sqlite")
    mine = store.start_run(
        label="a", config={}, params=1, engine="numpy", device="CPU", session_owner="m" * 22, nickname="Ada"
    )
    store.finish_run(mine, status="finished", duration_s=1.0, epochs_run=1, evaluation=EVALUATION)
    assert store.get_run(mine).session_owner == "m" * 22 and store.nickname_of("m" * 22) == "Ada"
    store.set_nickname("m" * 22, "Grace")
    assert store.get_run(mine).nickname == "Grace" and store.nickname_of("o" * 22) is None
    with pytest.raises(NotYours, match="another session"):
        store.delete_run(mine, Actor(owner="o" * 22, classroom=True))
    store.delete_run(mine, Actor(owner="m" * 22, classroom=True))


def test_the_board_shows_runs_finished_since_it_was_cleared(tmp_path):
    """clear_board hides earlier runs from the board without deleting them; later ones appear."""
    store = RunStore(tmp_path / "runs.sqlite")
    before = finished_run(store)
    assert [run.run_id for run in store.board_runs()] == [before]
    store.clear_board()
    assert store.board_runs() == [] and len(store.list_runs()) == 1
    after = finished_run(store)
    running = store.start_run(label="r", config={}, params=1, engine="numpy", device="CPU")
    assert [run.run_id for run in store.board_runs()] == [after] and running != after
