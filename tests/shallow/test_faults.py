"""Fault injection for the training queue and the run store: dead children, refused writes, NaN, Stop.

Each test is bounded in time (tiny models, a few hundred images, fixed seeds, and timeouts on
every wait), so the suite runs in `make test`.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import random
import signal
import sqlite3
import struct
import threading
import time

import pytest

import core.shallow.evaluation
import core.shallow.jobs
from core.shallow.config import TrainingConfig
from core.shallow.jobs import JobQueue, Progress, TrainingJob, TrainingProcess
from core.shallow.runs import RunStore, RunStoreError

TINY = TrainingConfig(hidden_units=(8,), dropout=0.5, learning_rate=3e-3, train_limit=600, batch_size=50, epochs=3)
LONG = TINY.replace(epochs=500, train_limit=2000)


# Children that misbehave, for TrainingProcess(target=...) --------------------------------------
def _die_in_mid_message(requests, events, stop_flag) -> None:
    """Takes a job, writes the first kilobyte of a 1 MB message, and dies as a kill would leave it."""
    requests.get()
    os.write(events.fileno(), struct.pack("!i", 1 << 20) + b"x" * 1024)
    os._exit(9)


def _finish_at_once(requests, events, stop_flag) -> None:
    """Takes jobs and reports each as finished (a stand-in child without TensorFlow)."""
    while requests.get() is not None:
        events.send(("done", dataclasses.asdict(Progress(job_id="x", status="finished", message="done"))))


def _mirror(process: TrainingProcess, job: TrainingJob, seconds: float) -> bool:
    """Runs `process.train(job)` in a thread; returns whether it came back within `seconds`."""
    thread = threading.Thread(target=process.train, args=(job,), daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


def new_children(before: set) -> list:
    return [child for child in multiprocessing.active_children() if child not in before]


# 1. A dead child never freezes the queue ------------------------------------------------------
def test_a_child_killed_in_mid_message_fails_the_job_instead_of_blocking(tmp_path):
    """A child that dies halfway through a large message is seen as dead within seconds."""
    store = RunStore(tmp_path / "runs.sqlite")
    job = TrainingJob(TINY, store=store)
    process = TrainingProcess(target=_die_in_mid_message)
    assert _mirror(process, job, 30), "reading the half-written message blocked"
    progress = job.snapshot()
    assert progress.status == "failed" and "ended unexpectedly" in progress.error
    assert not process.alive


def test_a_failed_spawn_fails_its_job_and_the_next_job_starts(tmp_path, monkeypatch):
    """When starting the training process raises, the job fails with the reason and the queue goes on."""
    attempts = []

    def spawn(target=None):
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError(12, "Cannot allocate memory")
        return TrainingProcess(target=_finish_at_once)

    monkeypatch.setattr(core.shallow.jobs, "TrainingProcess", spawn)
    queue = JobQueue(store=RunStore(tmp_path / "runs.sqlite"), isolation="process")
    first, second = queue.submit(TINY), queue.submit(TINY)
    progress = first.wait(30)
    assert progress.status == "failed" and "Cannot allocate memory" in progress.error
    assert second.wait(60).status == "finished"
    assert queue.active() == []
    queue.close()


def test_kills_at_random_points_never_stop_the_queue(tmp_path):
    """Killing the training child at random moments fails that job each time; the next job still trains."""
    others = set(multiprocessing.active_children())
    queue = JobQueue(store=RunStore(tmp_path / "runs.sqlite"), isolation="process")
    chooser = random.Random(12)
    for _ in range(2):
        job = queue.submit(LONG)
        deadline = time.monotonic() + 180
        while job.snapshot().status not in ("running", "stopping") and time.monotonic() < deadline:
            assert not job.snapshot().done, job.snapshot().error
            time.sleep(0.02)
        time.sleep(chooser.uniform(0.0, 2.0))
        for child in new_children(others):
            child.kill()
        progress = job.wait(60)
        assert progress.status == "failed" and "ended unexpectedly" in progress.error
        if progress.run_id is not None:
            run = queue.store.get_run(progress.run_id)
            assert run.status == "interrupted" and run.epochs_run == len(queue.store.history(run.run_id))
    progress = queue.submit(TINY.replace(epochs=1)).wait(240)
    assert progress.status == "finished", progress.error
    queue.close()


# 2. A server stop keeps what was learned -------------------------------------------------------
def test_sigterm_to_the_child_saves_the_best_weights_and_history(tmp_path):
    """SIGTERM (a stopping server) makes the child stop the job, evaluate, save the model, then exit."""
    others = set(multiprocessing.active_children())
    queue = JobQueue(store=RunStore(tmp_path / "runs.sqlite"), isolation="process")
    job = queue.submit(LONG)
    deadline = time.monotonic() + 240
    while len(job.snapshot().history) < 2:
        assert not job.snapshot().done and time.monotonic() < deadline, job.snapshot().error
        time.sleep(0.05)
    # The queue's own training process (other tests' children may still be winding down).
    (child,) = [process.process for process in queue.executor._processes]
    assert child in new_children(others)
    os.kill(child.pid, signal.SIGTERM)
    # Polled rather than joined: after other tests' children, join can return early here.
    deadline = time.monotonic() + 120
    while child.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not child.is_alive() and child.exitcode in (0, None)
    job.wait(60)
    run = RunStore(queue.store.path).list_runs()[0]
    assert run.status == "stopped" and run.has_model and run.test_accuracy > 0.5
    assert "shutting down" in run.error
    assert run.epochs_run >= 2 and len(queue.store.history(run.run_id)) == run.epochs_run
    assert 1 <= run.best_epoch <= run.epochs_run


# 3. Refused writes keep the evaluation and leave no stuck row ----------------------------------
def test_an_unwritable_data_folder_gives_a_message_naming_it(tmp_path):
    """A data folder that cannot be created gives a RunStoreError naming the path and what to do."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(RunStoreError, match="a-file.*EXPLORER_DATA_DIR"):
        RunStore(blocker / "runs.sqlite")


def test_a_read_only_database_gives_a_message_not_a_traceback(tmp_path):
    """Writes to a database opened read-only fail with RunStoreError saying it is read-only."""
    store = RunStore(tmp_path / "runs.sqlite")
    original = store._connect

    def read_only():
        connection = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True, isolation_level=None)
        connection.row_factory = sqlite3.Row
        return connection

    store._connect = read_only
    with pytest.raises(RunStoreError, match="readonly"):
        store.start_run(label="x", config={}, params=1, engine="numpy", device="CPU")
    store._connect = original


def test_a_locked_database_says_locked_not_cannot_rollback(tmp_path):
    """A write that times out on another writer's lock reports 'database is locked'."""
    store = RunStore(tmp_path / "runs.sqlite", timeout=0.2)
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(RunStoreError, match="database is locked") as caught:
            store.start_run(label="x", config={}, params=1, engine="numpy", device="CPU")
        assert "rollback" not in str(caught.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_failed_model_save_leaves_no_partial_file(tmp_path):
    """A model save that fails half-way (a full disk) leaves neither the file nor a partial one."""

    class HalfWritten:
        def save(self, path):
            with open(path, "wb") as handle:
                handle.write(b"PK\x03\x04 partial")
            raise OSError(28, "No space left on device")

    store = RunStore(tmp_path / "runs.sqlite")
    with pytest.raises(RunStoreError, match="No space left"):
        store.save_model(HalfWritten(), 1)
    assert list(store.models_dir.iterdir()) == []


def _refuse(error_text: str):
    def refused(*args, **kwargs):
        raise RunStoreError(error_text)

    return refused


def test_failed_saves_keep_the_evaluation_and_leave_no_stuck_row(tmp_path, monkeypatch):
    """With both the model save and the closing write refused, the job keeps its test results,
    says what failed, the run never reads as running, and the record is written once writes work."""
    store = RunStore(tmp_path / "runs.sqlite")
    monkeypatch.setattr(RunStore, "save_model", _refuse("Cannot save the model: No space left on device"))
    real_finish = RunStore.finish_run
    monkeypatch.setattr(RunStore, "finish_run", _refuse("Cannot write the saved runs: database or disk is full"))
    progress = JobQueue(store=store).submit(TINY.replace(epochs=2)).wait(120)
    assert progress.status == "finished" and progress.evaluation["accuracy"] > 0.5
    assert "No space left" in progress.error and "disk is full" in progress.error
    run = store.get_run(progress.run_id)
    assert run.status == "finished" and run.test_accuracy == progress.evaluation["accuracy"]
    assert not run.has_model and list(store.models_dir.glob("*.keras")) == []
    monkeypatch.setattr(RunStore, "finish_run", real_finish)
    store.delete_run(run.run_id)  # Not stuck: it can be deleted, and the deferred write goes first.
    assert store.list_runs() == [] and store.deferred() == {}


def test_a_deferred_closing_write_lands_at_the_next_write(tmp_path):
    """A refused closing write is written to the database by the next write that succeeds."""
    store = RunStore(tmp_path / "runs.sqlite")
    run_id = store.start_run(label="x", config={}, params=1, engine="numpy", device="CPU")
    from core.shallow.runs import finish_columns

    store.defer_finish(run_id, finish_columns(status="stopped", duration_s=1.0, epochs_run=0))
    assert store.get_run(run_id).status == "stopped"
    store.start_run(label="y", config={}, params=1, engine="numpy", device="CPU")
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0] == "stopped"
    assert store.deferred() == {}


# 6. The record says what happened: NaN divergence and Stop at every status ---------------------
class FaultyEngine:
    """Wraps a real engine: losses turn NaN from an epoch on, or Stop is pressed at a given batch."""

    def __init__(self, engine, job, nan_from: int | None = None, stop_at: tuple[int, int] | None = None):
        self.engine, self.job, self.nan_from, self.stop_at = engine, job, nan_from, stop_at
        self.name = engine.name
        self.epoch = 0

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def _nan(self) -> bool:
        return self.nan_from is not None and self.epoch >= self.nan_from

    def train_epoch(self, images, labels, on_batch):
        self.epoch += 1

        def hooked(batch, loss, accuracy):
            if (self.epoch, batch) == self.stop_at:
                self.job.request_stop()
            return on_batch(batch, math.nan if self._nan() else loss, accuracy)

        loss, accuracy = self.engine.train_epoch(images, labels, hooked)
        return (math.nan if self._nan() else loss), accuracy

    def evaluate(self, images, labels):
        loss, accuracy = self.engine.evaluate(images, labels)
        return (math.nan if self._nan() else loss), accuracy


def faulty(monkeypatch, **faults):
    real = TrainingJob._make_engine
    monkeypatch.setattr(
        TrainingJob, "_make_engine", lambda job, model, name: FaultyEngine(real(job, model, name), job, **faults)
    )


def test_nan_from_the_first_epoch_fails_as_diverged(tmp_path, monkeypatch):
    """A run whose loss is NaN from the start says it diverged and saves no untrained model."""
    faulty(monkeypatch, nan_from=1)
    store = RunStore(tmp_path / "runs.sqlite")
    progress = JobQueue(store=store).submit(TINY.replace(epochs=5, patience=2)).wait(120)
    assert progress.status == "failed" and "diverged" in progress.error and "lower learning rate" in progress.error
    assert progress.evaluation is None
    run = store.get_run(progress.run_id)
    assert run.status == "failed" and "diverged" in run.error and not run.has_model


def test_nan_later_keeps_the_best_finite_epoch_and_says_so(tmp_path, monkeypatch):
    """A run that diverges in epoch 3 is evaluated with epoch 2's weights, and its record says so."""
    faulty(monkeypatch, nan_from=3)
    store = RunStore(tmp_path / "runs.sqlite")
    progress = JobQueue(store=store).submit(TINY.replace(epochs=6)).wait(120)
    assert progress.status == "finished" and progress.evaluation["accuracy"] > 0.5
    run = store.get_run(progress.run_id)
    assert run.epochs_run == 2 and run.best_epoch == 2 and run.has_model
    assert "diverged in epoch 3" in run.error and "epoch 2" in run.error


def test_stop_while_queued_cancels(tmp_path):
    """Stop (cancel) on a waiting job ends it cancelled, with no run saved."""
    queue = JobQueue(store=RunStore(tmp_path / "runs.sqlite"))
    first, second = queue.submit(LONG), queue.submit(TINY)
    queue.cancel(second.id)
    assert second.snapshot().status == "cancelled"
    queue.cancel(first.id)
    first.wait(120)
    assert second.snapshot().run_id is None


def test_stop_while_preparing_cancels_and_saves_nothing(tmp_path, monkeypatch):
    """A Stop during data loading stays a Stop: no 'running' status after it, no one-batch run saved."""
    release = threading.Event()
    real_split = core.shallow.jobs.split_data

    def slow_split(config, data_path=None):
        release.wait(30)
        return real_split(config, data_path)

    monkeypatch.setattr(core.shallow.jobs, "split_data", slow_split)
    store = RunStore(tmp_path / "runs.sqlite")
    job = JobQueue(store=store).submit(TINY)
    time.sleep(0.2)
    job.request_stop()
    assert job.snapshot().status == "stopping"
    release.set()
    statuses = set()
    while not job.snapshot().done:
        statuses.add(job.snapshot().status)
        time.sleep(0.005)
    progress = job.snapshot()
    assert "running" not in statuses and progress.status == "cancelled"
    assert "before training began" in progress.message and store.list_runs() == []


def test_stop_in_mid_epoch_records_the_epoch_its_weights_come_from(tmp_path, monkeypatch):
    """A Stop in mid-epoch 2 keeps that partial epoch in the history, and best_epoch matches it."""
    faulty(monkeypatch, stop_at=(2, 3))
    store = RunStore(tmp_path / "runs.sqlite")
    progress = JobQueue(store=store).submit(TINY.replace(epochs=10)).wait(120)
    assert progress.status == "stopped"
    run = store.get_run(progress.run_id)
    history = store.history(run.run_id)
    assert [row["epoch"] for row in history] == [1, 2] and run.epochs_run == 2
    losses = [row["val_loss"] for row in history]
    assert run.best_epoch == losses.index(min(losses)) + 1
    assert "Stopped in epoch 2" in run.error


def test_stop_during_evaluation_keeps_the_run_finished(tmp_path, monkeypatch):
    """A Stop that arrives after training ended does not relabel a finished run 'stopped'."""
    holder = {}
    real_evaluate = core.shallow.evaluation.evaluate_predictions

    def evaluate_then_stop(probabilities, labels):
        holder["job"].request_stop()
        return real_evaluate(probabilities, labels)

    monkeypatch.setattr(core.shallow.evaluation, "evaluate_predictions", evaluate_then_stop)
    store = RunStore(tmp_path / "runs.sqlite")
    job = JobQueue(store=store).submit(TINY.replace(epochs=2))
    holder["job"] = job
    progress = job.wait(120)
    assert progress.status == "finished" and len(progress.history) == 2
    assert store.get_run(progress.run_id).status == "finished"


# 7. Long uptime ---------------------------------------------------------------------------------
def test_finished_jobs_are_dropped_beyond_the_bound(tmp_path):
    """Only the newest `finished_kept` finished jobs are kept in memory; waiting and running ones stay."""
    queue = JobQueue(store=RunStore(tmp_path / "runs.sqlite"), finished_kept=3)
    running = queue.submit(LONG)
    for _ in range(8):
        queue.cancel(queue.submit(TINY).id)
    kept = queue.jobs()
    assert running in kept and len(kept) == 1 + 3
    assert all(job.snapshot().status == "cancelled" for job in kept if job is not running)
    queue.cancel(running.id)
    running.wait(120)


def test_spawning_a_child_never_swaps_main_for_other_threads():
    """While a training child starts, every other thread keeps seeing the real __main__ module."""
    import sys

    real_main, seen, stop = sys.modules["__main__"], set(), threading.Event()

    def watch():
        while not stop.is_set():
            seen.add(id(sys.modules["__main__"]))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # Hand the GIL over often, as a busy server's threads would take it.
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        for _ in range(3):
            process = TrainingProcess(target=_finish_at_once)
            process.close()
            process.process.join(30)
    finally:
        sys.setswitchinterval(interval)
    stop.set()
    watcher.join()
    assert seen == {id(real_main)}
