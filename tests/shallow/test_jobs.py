"""Training jobs in worker threads, their progress snapshots, stopping, and the FIFO queue."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest

from core.shallow.config import TrainingConfig
from core.shallow.jobs import JobQueue
from core.shallow.runs import RunStore

TINY = TrainingConfig(hidden_units=(8,), dropout=0.5, learning_rate=3e-3, train_limit=600, batch_size=50, epochs=3)


@pytest.fixture
def queue(tmp_path):
    return JobQueue(store=RunStore(tmp_path / "runs.sqlite"))


def test_a_job_trains_in_a_worker_and_saves_the_run(queue):
    """The job runs off the caller's thread, learns, evaluates on the test set and is saved."""
    caller = threading.get_ident()
    job = queue.submit(TINY)
    seen_running = False
    while not job.snapshot().done:
        snapshot = job.snapshot()
        seen_running |= snapshot.status == "running" and snapshot.batch > 0
        time.sleep(0.02)
    progress = job.snapshot()
    assert progress.status == "finished", progress.error
    assert seen_running and threading.get_ident() == caller
    assert len(progress.history) == 3 and progress.history[-1]["loss"] < progress.history[0]["loss"]
    evaluation = progress.evaluation
    assert evaluation["accuracy"] > 0.5 and sum(map(sum, evaluation["confusion"])) == 10000
    assert 0 < evaluation["precision"] <= 1 and 0 < evaluation["recall"] <= 1
    run = queue.store.get_run(progress.run_id)
    assert run.status == "finished" and run.epochs_run == 3 and run.has_model
    assert run.engine == "numpy" and run.device.startswith(("CPU", "GPU"))


def test_saved_model_is_the_trained_keras_model(queue):
    """The .keras file reloads in Keras and reproduces the recorded test accuracy."""
    import keras
    import numpy as np

    from core.data import load_fashion_mnist

    progress = queue.submit(TINY.replace(epochs=1)).wait(120)
    run = queue.store.get_run(progress.run_id)
    model = keras.models.load_model(run.model_path)
    _, (x_test, y_test) = load_fashion_mnist()
    predicted = model.predict(x_test[..., None] / 255.0, verbose=0, batch_size=500).argmax(1)
    assert np.mean(predicted == y_test) == pytest.approx(run.test_accuracy, abs=1e-3)


@pytest.mark.parametrize(
    "changes",
    [
        {"hidden_units": (6, 5), "activation": "prelu"},
        {
            "architecture": "mlp",
            "hidden_units": (32, 16, 8),
            "activation": "elu",
            "optimizer": "rmsprop",
            "engine": "numpy",
        },
    ],
)
def test_every_network_trains_on_numpy_and_saves_its_keras_model(queue, changes):
    """Other per-pixel networks than the article's linear one train on the numpy engine by default (the MLP when chosen); the
    saved .keras model carries the trained weights (it reproduces the recorded accuracy)."""
    import keras
    import numpy as np

    from core.data import load_fashion_mnist

    progress = queue.submit(TINY.replace(epochs=2, **changes)).wait(120)
    assert progress.status == "finished", progress.error
    assert progress.engine == "numpy" and progress.evaluation["accuracy"] > 0.4
    run = queue.store.get_run(progress.run_id)
    model = keras.models.load_model(run.model_path)
    _, (x_test, y_test) = load_fashion_mnist()
    predicted = model.predict(x_test[..., None] / 255.0, verbose=0, batch_size=500).argmax(1)
    assert np.mean(predicted == y_test) == pytest.approx(run.test_accuracy, abs=1e-3)


def test_stop_keeps_what_was_learned(queue):
    """Stopping mid-run ends it as 'stopped' with an evaluation of the best weights so far."""
    job = queue.submit(TINY.replace(epochs=200, train_limit=2000))
    while len(job.snapshot().history) < 1:
        time.sleep(0.02)
    job.request_stop()
    progress = job.wait(120)
    assert progress.status == "stopped"
    assert 1 <= len(progress.history) < 200
    assert progress.evaluation["accuracy"] > 0.5
    assert queue.store.get_run(progress.run_id).status == "stopped"


def test_early_stopping_and_keras_engine(queue):
    """With patience 1 a ReLU net (Keras engine, chosen) stops when validation loss stops falling."""
    config = TrainingConfig(
        hidden_units=(4,),
        activation="relu",
        dropout=0.0,
        learning_rate=0.5,
        optimizer="sgd",
        train_limit=300,
        batch_size=100,
        epochs=30,
        patience=1,
        engine="keras",
    )
    progress = queue.submit(config).wait(120)
    assert progress.status == "finished" and progress.engine == "keras"
    losses = [row["val_loss"] for row in progress.history]
    assert len(losses) < 30 and losses[-1] >= min(losses[:-1])
    assert progress.best_epoch == losses.index(min(losses)) + 1


def test_queue_is_fifo_with_positions_and_cancel(queue):
    """One job runs at a time; the others wait in order, know their place, and can be cancelled."""
    first = queue.submit(TINY.replace(epochs=200, train_limit=2000))
    second, third = queue.submit(TINY), queue.submit(TINY)
    assert first.snapshot().queue_position == 0
    assert second.snapshot().queue_position == 1 and third.snapshot().queue_position == 2
    assert queue.cancel(second.id)
    assert second.snapshot().status == "cancelled"
    assert third.snapshot().queue_position == 1
    while first.snapshot().batch == 0:  # Stopped before its first batch, a job would end "cancelled".
        time.sleep(0.02)
    first.request_stop()
    assert third.wait(120).status == "finished"
    assert [job.snapshot().status for job in queue.jobs()] == ["stopped", "cancelled", "finished"]
    assert queue.active() == []


def test_unaffordable_jobs_are_refused_before_queueing(queue):
    """submit() raises ValueError and queues nothing when the model cannot fit in memory."""
    with pytest.raises(ValueError, match="GiB"):
        queue.submit(TrainingConfig(hidden_units=(4096, 4096, 4096), batch_size=4096))
    assert queue.jobs() == []


def test_mixed_precision_run_trains_with_keras(queue):
    """Mixed precision (bf16 hidden layers on a CPU, fp16 on a GPU) trains through Keras."""
    config = TINY.replace(mixed_precision=True, epochs=2)
    progress = queue.submit(config).wait(180)
    assert progress.status == "finished", progress.error
    assert progress.engine == "keras" and progress.evaluation["accuracy"] > 0.4


def test_process_isolation_trains_stops_and_mirrors_progress(tmp_path):
    """In a child process a job reports progress here, stops on request, and saves its run."""
    others = set(multiprocessing.active_children())  # E.g. the app's own queue, from page tests.
    queue = JobQueue(store=RunStore(tmp_path / "runs.sqlite"), isolation="process")
    queue.prestart()
    finished = queue.submit(TINY.replace(epochs=2))
    progress = finished.wait(300)
    assert progress.status == "finished", progress.error
    assert len(progress.history) == 2 and progress.evaluation["accuracy"] > 0.5
    assert queue.store.get_run(progress.run_id).status == "finished"

    stopped = queue.submit(TINY.replace(epochs=500, train_limit=2000))
    while len(stopped.snapshot().history) < 1:
        assert not stopped.snapshot().done, stopped.snapshot().error
        time.sleep(0.05)
    stopped.request_stop()
    progress = stopped.wait(300)
    assert progress.status == "stopped" and 1 <= len(progress.history) < 500
    assert queue.store.get_run(progress.run_id).status == "stopped"
    children = [child for child in multiprocessing.active_children() if child not in others]
    assert children and all(child.is_alive() for child in children)
    queue.close()
    for child in children:
        child.join(30)
    assert not any(child.is_alive() for child in children)


def test_a_dead_training_process_fails_the_job_and_marks_the_run(tmp_path):
    """If the child process dies mid-run, the job fails with a reason and the run is marked interrupted."""
    others = set(multiprocessing.active_children())  # E.g. the app's own queue, from page tests.
    queue = JobQueue(store=RunStore(tmp_path / "runs.sqlite"), isolation="process")
    job = queue.submit(TINY.replace(epochs=500, train_limit=2000))
    while len(job.snapshot().history) < 1:
        assert not job.snapshot().done, job.snapshot().error
        time.sleep(0.05)
    children = [child for child in multiprocessing.active_children() if child not in others]
    assert len(children) == 1
    children[0].kill()
    progress = job.wait(60)
    assert progress.status == "failed" and "ended unexpectedly" in progress.error
    assert queue.store.get_run(progress.run_id).status == "interrupted"


def test_submit_checks_time_for_the_device_the_page_assumed(queue, monkeypatch):
    """On a GPU server submit(has_gpu=True) accepts what the page's GPU estimate allowed; on a CPU it refuses."""
    import core.shallow.config

    monkeypatch.setattr(
        core.shallow.config, "machine_speed_factor", lambda: 200.0
    )  # A very slow CPU: 392 ReLU takes hours.
    config = TrainingConfig(hidden_units=(392,), activation="relu", engine="keras")
    with pytest.raises(ValueError, match="epoch would take"):
        queue.submit(config)
    job = queue.submit(config, has_gpu=True)
    queue.cancel(job.id)
    assert job.wait(120).status == "cancelled" and queue.active() == []
