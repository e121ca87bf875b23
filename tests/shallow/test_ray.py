"""Training jobs on a Ray instance on the loopback address: three at once, a Stop, a killed worker.

Ray is optional for the app but installed for `make test` (requirements-cluster.txt); the
tests that need it skip when it is missing. Each Ray instance offers the machine's 2 CPUs,
Ray keeps its files in a folder of its own under /tmp, and every test checks that no Ray
process is left once its executor is closed. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from core.shallow.config import TrainingConfig
from core.shallow.jobs import JobQueue, configured_executor
from core.shallow.ray_executor import WorkerStore, _Replay
from core.shallow.runs import RunStore

ROOT = Path(__file__).resolve().parents[2]
TINY = TrainingConfig(hidden_units=(8,), dropout=0.5, learning_rate=3e-3, train_limit=600, batch_size=50, epochs=3)
LONG = TINY.replace(epochs=500, train_limit=2000)


def processes_mentioning(text: str) -> list[int]:
    """PIDs of the processes whose command line contains `text` (Ray names its session folder in each)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def wait_until_gone(text: str, seconds: float = 60) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := processes_mentioning(text)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


@pytest.fixture
def ray_folder():
    """A short folder under /tmp for one Ray instance (its socket paths must stay short)."""
    pytest.importorskip("ray")
    folder = tempfile.mkdtemp(prefix="rt-", dir="/tmp")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_three_jobs_at_once_one_stopped_one_killed_all_accounted_for(tmp_path, ray_folder):
    """Three jobs train at once on Ray; one finishes, one is stopped, one loses its worker; the store has all three."""
    import keras
    import numpy as np
    import ray

    from core.data import load_fashion_mnist
    from core.shallow.ray_executor import RayExecutor

    store = RunStore(tmp_path / "runs.sqlite")
    executor = RayExecutor("local", num_cpus=2, cpus_per_job=0.5, temp_dir=ray_folder)
    try:
        assert executor.capacity() == 4
        queue = JobQueue(max_running=3, store=store, executor=executor)
        finishing, stopped, killed = queue.submit(TINY), queue.submit(LONG), queue.submit(LONG)
        wait_for(
            lambda: all(job.snapshot().history or job.snapshot().done for job in (stopped, killed)),
            240,
            "an epoch of both long jobs",
        )
        placements = [executor.placement(job.id) for job in (stopped, killed)]
        assert None not in placements and placements[0]["pid"] != placements[1]["pid"]
        assert all(job.snapshot().status == "running" for job in (stopped, killed))
        queue.cancel(stopped.id)
        os.kill(placements[1]["pid"], signal.SIGKILL)
        wait_for(lambda: all(job.snapshot().done for job in (finishing, stopped, killed)), 180, "the three ends")
        results = [job.wait(0) for job in (finishing, stopped, killed)]
        assert all(job._finished.is_set() for job in (finishing, stopped, killed)), "wait() would block"
        assert queue.active() == []
        done, halted, lost = results
        # Where they ran, as the page and the CLI show it.
        assert all(progress.executor == "ray" and "127.0.0.1" in progress.node for progress in results)

        # The finished job: the worker's history, metrics and model are in the app's store.
        assert done.status == "finished", done.error
        run = store.get_run(done.run_id)
        assert run.status == "finished" and run.epochs_run == 3 and run.has_model
        assert Path(run.model_path).parent == store.models_dir
        assert [row["epoch"] for row in store.history(run.run_id)] == [1, 2, 3]
        assert store.history(run.run_id) == [dict(row) for row in done.history]
        model = keras.models.load_model(run.model_path)
        _, (x_test, y_test) = load_fashion_mnist()
        predicted = model.predict(x_test[..., None] / 255.0, verbose=0, batch_size=1000).argmax(1)
        assert np.mean(predicted == y_test) == pytest.approx(run.test_accuracy, abs=1e-3)
        assert run.test_accuracy > 0.5

        # The stopped job: the best weights so far were evaluated and saved, as Stop does locally.
        assert halted.status == "stopped", halted.error
        run = store.get_run(halted.run_id)
        assert run.status == "stopped" and run.has_model and "Stop was pressed" in run.error
        assert 1 <= run.epochs_run == len(store.history(run.run_id)) and run.test_accuracy > 0.5

        # The killed worker: the job fails saying so, the run is interrupted with its epochs kept.
        assert lost.status == "failed" and "Ray worker" in lost.error and "lost" in lost.error
        assert "127.0.0.1" in lost.error
        run = store.get_run(lost.run_id)
        assert run.status == "interrupted" and run.error == lost.error
        assert run.epochs_run >= 1 and len(store.history(run.run_id)) >= run.epochs_run
        assert not run.has_model

        assert sorted(run.status for run in store.list_runs()) == ["finished", "interrupted", "stopped"]
    finally:
        executor.close()
    assert not ray.is_initialized()
    assert wait_until_gone(ray_folder) == [], "Ray processes were left running"


def test_the_same_job_on_ray_and_in_a_thread_learns_the_same(tmp_path, ray_folder):
    """A job trained by the Ray worker matches the same seeded job trained in this process."""
    from core.shallow.ray_executor import RayExecutor

    here = JobQueue(store=RunStore(tmp_path / "here.sqlite")).submit(TINY).wait(120)
    executor = RayExecutor("local", num_cpus=2, temp_dir=ray_folder)
    try:
        queue = JobQueue(store=RunStore(tmp_path / "ray.sqlite"), executor=executor)
        there = queue.submit(TINY).wait(180)
    finally:
        executor.close()
    assert here.status == there.status == "finished", (here.error, there.error)
    assert here.executor == "thread" and there.executor == "ray"
    assert len(there.history) == len(here.history) == 3
    for ours, theirs in zip(here.history, there.history, strict=True):
        assert theirs["val_loss"] == pytest.approx(ours["val_loss"], rel=1e-3)
    assert there.evaluation["accuracy"] == pytest.approx(here.evaluation["accuracy"], abs=2e-3)
    assert wait_until_gone(ray_folder) == []


def test_stop_while_waiting_for_a_worker_cancels_and_saves_nothing(tmp_path, ray_folder):
    """A job whose worker cannot be placed (no room on the cluster) ends cancelled when stopped."""
    from core.shallow.ray_executor import RayExecutor

    store = RunStore(tmp_path / "runs.sqlite")
    executor = RayExecutor("local", num_cpus=1, cpus_per_job=2, temp_dir=ray_folder)
    try:
        queue = JobQueue(store=store, executor=executor)
        job = queue.submit(TINY)
        wait_for(lambda: job.snapshot().message == "Waiting for a Ray worker", 30, "the wait for a worker")
        time.sleep(1)
        assert job.snapshot().status == "preparing"
        queue.cancel(job.id)
        progress = job.wait(30)
    finally:
        executor.close()
    assert progress.status == "cancelled" and "waiting for a Ray worker" in progress.message
    assert store.list_runs() == []
    assert wait_until_gone(ray_folder) == []


def test_the_cli_trains_on_ray_and_says_where(tmp_path, ray_folder):
    """With EXPLORER_RAY_ADDRESS=local the CLI trains on Ray, its --json names the executor and node, and Ray ends."""
    environment = {**os.environ, "EXPLORER_RAY_ADDRESS": "local", "TMPDIR": ray_folder}
    result = subprocess.run(
        [sys.executable, "-m", "core.shallow", "--neurons", "7", "--epochs", "1", "--train-limit", "500"]
        + ["--json", "--db", str(tmp_path / "runs.sqlite")],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert output["executor"] == "ray" and "127.0.0.1" in output["node"] and output["status"] == "finished"
    assert Path(output["model_path"]).is_file() and Path(output["model_path"]).parent == tmp_path / "models"
    assert wait_until_gone(ray_folder) == []


def test_without_the_setting_the_app_keeps_its_own_processes(monkeypatch):
    """With EXPLORER_RAY_ADDRESS unset there is no Ray executor, and Ray is never imported for it."""
    monkeypatch.delenv("EXPLORER_RAY_ADDRESS", raising=False)
    assert configured_executor() is None
    assert JobQueue(isolation="process").executor.name == "process"


def test_a_missing_ray_gives_a_message_that_says_what_to_install(monkeypatch):
    """EXPLORER_RAY_ADDRESS set without Ray installed is refused with the way to install it."""
    monkeypatch.setenv("EXPLORER_RAY_ADDRESS", "local")
    # The executor's settings for a local instance, set here so that they are undone afterwards.
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "unused")
    monkeypatch.setitem(sys.modules, "ray", None)  # What an absent package looks like to `import ray`.
    with pytest.raises(ValueError, match="requirements-cluster.txt"):
        configured_executor()


def test_a_workers_writes_replay_into_the_apps_store_with_its_own_ids(tmp_path):
    """The writes a worker records arrive in the app's store under the store's run ids, with the model beside it."""
    import keras

    store = RunStore(tmp_path / "runs.sqlite")
    store.start_run(label="an earlier run", config={}, params=1, engine="numpy", device="CPU")
    (tmp_path / "worker").mkdir()
    worker = WorkerStore(tmp_path / "worker")
    worker_id = worker.start_run(label="remote", config={"a": 1}, params=10, engine="numpy", device="CPU: x")
    worker.add_epoch(worker_id, {"epoch": 1, "loss": 2.0, "accuracy": 0.1, "val_loss": 2.1, "val_accuracy": 0.1})
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model_path = worker.save_model(model, worker_id)
    worker.finish_run(worker_id, status="finished", duration_s=1.0, epochs_run=1, model_path=str(model_path))
    assert not model_path.exists()  # Only the bytes travel; the worker keeps no file.

    replay = _Replay(store)
    replay.apply(worker.take())
    assert worker.take() == []
    run_id = replay.app_run_id(worker_id)
    assert worker_id == 1 and run_id == 2
    run = store.get_run(run_id)
    assert run.status == "finished" and run.label == "remote" and run.config == {"a": 1}
    assert run.model_path == str(store.models_dir / "run-2.keras") and run.has_model
    reloaded = keras.models.load_model(run.model_path)
    for saved, original in zip(reloaded.get_weights(), model.get_weights(), strict=True):
        assert (saved == original).all()
    assert [row["loss"] for row in store.history(run_id)] == [2.0]


class _FlakyRay:
    """`ray.init` failing as a busy ray:// head does ("Initialization failure from server") `failures` times."""

    def __init__(self, failures: int):
        self.failures, self.inits, self.shutdowns = failures, 0, 0

    def init(self, **kwargs):
        self.inits += 1
        if self.inits <= self.failures:
            raise ConnectionAbortedError("Initialization failure from server: Starting Ray client server failed.")

    def shutdown(self):
        self.shutdowns += 1


@pytest.mark.parametrize("failures", [1, 2])
def test_a_client_server_that_fails_to_start_is_asked_once_more(monkeypatch, failures):
    """One failed start of the head's client server is retried; a second one is reported with the advice."""
    from core.shallow import ray_executor

    monkeypatch.setattr(ray_executor, "_check_that_it_answers", lambda address: None)
    monkeypatch.setattr(ray_executor, "_use_the_clusters_token", lambda: False)
    monkeypatch.setattr(ray_executor, "CLIENT_RETRY_SECONDS", 0.0)
    executor = ray_executor.RayExecutor.__new__(ray_executor.RayExecutor)
    executor._ray = flaky = _FlakyRay(failures)
    if failures == 1:
        executor._connect("ray://127.0.0.1:10001", None, None)
    else:
        with pytest.raises(ValueError, match="Cannot reach the Ray cluster at 'ray://127.0.0.1:10001'"):
            executor._connect("ray://127.0.0.1:10001", None, None)
    assert (flaky.inits, flaky.shutdowns) == (2, 1)
