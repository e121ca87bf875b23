"""Training jobs that run in worker threads, report progress, stop cleanly, and queue up.

A `TrainingJob` trains one `TrainingConfig` in a worker thread (never the caller's): it
prepares the data and the Keras model, trains with the fastest engine that fits, keeps
the weights with the best validation loss (the article's checkpoint) and stops early after
`patience` epochs without improvement, then evaluates on the 10,000 test images and saves
the run (history epoch by epoch, then metrics and the `.keras` model) in the `RunStore`.
`snapshot()` returns an immutable `Progress` that a page can poll several times a second.

`JobQueue` runs jobs in FIFO order, one at a time by default (`max_running`), tells each
queued job its position, and cancels queued jobs; `default_queue()` is the process-wide one.
With `isolation="process"` (the app's queue) each job trains in a warm child process and
its progress is mirrored into the job: a web server's Python threads (page reruns, chart
building) would otherwise hold the GIL that the training thread needs between its numpy
calls, and slow it down many times over.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import multiprocessing
import os
import queue as queue_module
import sys
import threading
import time
import traceback
import types
from collections import deque
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from core.shallow import TrainingConfig, check_affordable, count_params, resolve_engine

FINAL_STATUSES = ("finished", "stopped", "failed", "cancelled")


@dataclass(frozen=True)
class Progress:
    """An immutable snapshot of a job, safe to read from any thread."""

    job_id: str
    status: str = "queued"  # queued, preparing, running, stopping, evaluating, + FINAL_STATUSES
    queue_position: int | None = None  # 1 = next to run; 0 = running; None = done.
    message: str = "Waiting in the queue"
    epoch: int = 0  # The epoch in progress (1-based), or the last one completed.
    epochs: int = 0
    batch: int = 0
    batches_per_epoch: int = 0
    train_loss: float | None = None
    train_accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    best_epoch: int | None = None
    samples_per_second: float | None = None
    eta_seconds: float | None = None
    elapsed_seconds: float = 0.0
    history: tuple[dict, ...] = ()
    engine: str | None = None
    device: str | None = None
    run_id: int | None = None
    evaluation: dict | None = None
    error: str | None = None
    created_at: float = field(default_factory=time.time)

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def fraction_done(self) -> float:
        if not self.epochs or not self.batches_per_epoch:
            return 0.0
        completed = len(self.history) + (self.batch / self.batches_per_epoch if self.status == "running" else 0)
        return min(1.0, completed / self.epochs)


@cache
def training_device() -> str:
    """Where Keras computes, asked of the backend itself (imports Keras)."""
    import keras

    backend = keras.config.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                details = tf.config.experimental.get_device_details(gpus[0])
                return f"GPU: {details.get('device_name', gpus[0].name)} (tensorflow)"
        elif backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform != "cpu":
                return f"GPU: {device.device_kind} (jax)"
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return f"GPU: {torch.cuda.get_device_name(0)} (torch)"
    except Exception:  # A broken driver must not stop training on the CPU.
        pass
    from core.device import describe_device

    return f"CPU: {describe_device().cpu_model} ({backend})"


def has_gpu() -> bool:
    return training_device().startswith("GPU")


@cache
def _dataset(path: str | None):
    """Fashion-MNIST as float32 in [0, 1], flattened: (60000, 784), labels, test likewise."""
    from core.data import load_fashion_mnist

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(path)
    scale = np.float32(1 / 255)
    return (
        x_train.reshape(len(x_train), -1).astype(np.float32) * scale,
        y_train.astype(np.int64),
        x_test.reshape(len(x_test), -1).astype(np.float32) * scale,
        y_test.astype(np.int64),
    )


def split_data(config: TrainingConfig, data_path: str | None = None):
    """Training, validation and test arrays for a config.

    As Keras' `validation_split` does, the last share of the 60,000 training images is the
    validation set; a `train_limit` takes a seeded random subset of the rest.
    """
    x_all, y_all, x_test, y_test = _dataset(data_path)
    pool = config.train_pool
    x_train, y_train = x_all[:pool], y_all[:pool]
    x_val, y_val = x_all[pool:], y_all[pool:]
    if config.train_limit:
        chosen = np.sort(np.random.default_rng(config.seed).choice(pool, config.train_limit, replace=False))
        x_train, y_train = x_train[chosen], y_train[chosen]
    return (x_train, y_train), (x_val, y_val), (x_test, y_test)


def make_engine(config: TrainingConfig, model, engine_name: str):
    """The engine `engine_name` for a config and its freshly built Keras model, as jobs train with it."""
    from core.engines import KerasEngine, NumpyPerPixelEngine

    if engine_name == "numpy":
        return NumpyPerPixelEngine(config, model.get_weights(), threads=min(os.cpu_count() or 1, 4))
    return KerasEngine(config, model)


class TrainingJob:
    """One training run in a worker thread; poll `snapshot()`, end it with `request_stop()`."""

    _ids = itertools.count(1)

    def __init__(self, config: TrainingConfig, *, owner: str | None = None, store=None, data_path=None):
        self.config = config
        self.owner = owner
        self.id = f"job-{next(self._ids)}-{os.getpid()}"
        self.store = store
        self.data_path = data_path
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._progress = Progress(job_id=self.id, epochs=config.epochs, batches_per_epoch=config.batches_per_epoch)
        self._finished = threading.Event()
        self.queue: JobQueue | None = None

    # Thread-safe state ---------------------------------------------------------------------------
    def snapshot(self) -> Progress:
        with self._lock:
            progress = self._progress
        if self.queue is not None and progress.status == "queued":
            progress = dataclasses.replace(progress, queue_position=self.queue.position(self))
        return progress

    def _update(self, **changes) -> None:
        with self._lock:
            self._progress = dataclasses.replace(self._progress, **changes)

    def request_stop(self) -> None:
        """Ends training after the current batch; the best weights so far are evaluated and saved."""
        self._stop.set()
        with self._lock:
            if self._progress.status in ("preparing", "running"):
                self._progress = dataclasses.replace(self._progress, status="stopping", message="Stopping...")

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def wait(self, timeout: float | None = None) -> Progress:
        self._finished.wait(timeout)
        return self.snapshot()

    def _cancel(self) -> None:
        self._update(status="cancelled", message="Cancelled while waiting", queue_position=None)
        self._finished.set()

    def run_in(self, process: TrainingProcess) -> None:
        """Trains in a child process, mirroring its progress here until it ends."""
        try:
            process.train(self)
        finally:
            self._finished.set()

    # The work ------------------------------------------------------------------------------------
    def run(self) -> None:
        """Trains, evaluates and saves; called in the worker thread."""
        started = time.perf_counter()
        run_id = engine = None
        try:
            self._update(status="preparing", queue_position=0, message="Loading data and building the model")
            if self.store is None:
                from core.runs import RunStore

                self.store = RunStore()
            (x_train, y_train), (x_val, y_val), (x_test, y_test) = split_data(self.config, self.data_path)
            import keras

            from core.shallow import build_model

            keras.utils.set_random_seed(self.config.seed)
            model = build_model(self.config)
            device = training_device()
            engine = self._make_engine(model, resolve_engine(self.config, device.startswith("GPU")))
            run_id = self.store.start_run(
                label=self.config.label,
                config=self.config.to_dict(),
                params=count_params(self.config),
                engine=engine.name,
                device=device,
            )
            self._update(engine=engine.name, device=device, run_id=run_id)
            outcome = self._train(engine, x_train, y_train, x_val, y_val, started, run_id)
            self._update(status="evaluating", message="Evaluating on the 10,000 test images")
            engine.set_weights(outcome["best_weights"])
            model.set_weights(engine.get_weights())
            from core.evaluation import evaluate_predictions

            evaluation = evaluate_predictions(engine.predict(x_test), y_test).to_dict()
            model_path = self.store.model_path_for(run_id)
            model.save(model_path)
            status = "stopped" if self._stop.is_set() else "finished"
            duration = time.perf_counter() - started
            self.store.finish_run(
                run_id,
                status=status,
                duration_s=duration,
                epochs_run=outcome["epochs_run"],
                best_epoch=outcome["best_epoch"],
                seconds_per_epoch=outcome["seconds_per_epoch"],
                evaluation=evaluation,
                model_path=str(model_path),
            )
            message = f"Test accuracy {evaluation['accuracy']:.2%} after {outcome['epochs_run']} epochs"
            if outcome["early_stopped"]:
                message += f" (early stop: no better validation loss for {self.config.patience} epochs)"
            self._update(
                status=status,
                message=message,
                evaluation=evaluation,
                elapsed_seconds=duration,
                eta_seconds=0.0,
                queue_position=None,
            )
        except Exception as error:
            detail = f"{type(error).__name__}: {error}"
            if run_id is not None and self.store is not None:
                try:
                    self.store.finish_run(
                        run_id,
                        status="failed",
                        duration_s=time.perf_counter() - started,
                        epochs_run=len(self.snapshot().history),
                        error=detail + "\n" + traceback.format_exc(limit=5),
                    )
                except Exception:
                    pass
            self._update(status="failed", message=f"Training failed: {detail}", error=detail, queue_position=None)
        finally:
            if engine is not None:
                engine.close()
            self._finished.set()

    def _make_engine(self, model, engine_name: str):
        return make_engine(self.config, model, engine_name)

    def _train(self, engine, x_train, y_train, x_val, y_val, started: float, run_id: int) -> dict:
        config = self.config
        batches = config.batches_per_epoch
        best_loss, best_epoch, best_weights, waited = math.inf, None, engine.get_weights(), 0
        history: list[dict] = []
        epoch_seconds: list[float] = []
        early_stopped = False
        self._update(status="running", message="Training")
        for epoch in range(1, config.epochs + 1):
            epoch_start = time.perf_counter()
            window = {"time": epoch_start, "batch": 0}

            def on_batch(batch, loss, accuracy, epoch=epoch, epoch_start=epoch_start, window=window) -> bool:
                now = time.perf_counter()
                done = batch + 1
                rate = done * config.batch_size / max(now - epoch_start, 1e-9)
                per_epoch = (batches * config.batch_size) / rate if not epoch_seconds else np.mean(epoch_seconds[-3:])
                remaining = (batches - done) / batches * per_epoch + (config.epochs - epoch) * per_epoch
                if now - window["time"] >= 0.1 or done == batches:
                    window["time"] = now
                    self._update(
                        epoch=epoch,
                        batch=done,
                        train_loss=loss,
                        train_accuracy=accuracy,
                        samples_per_second=rate,
                        eta_seconds=remaining,
                        elapsed_seconds=now - started,
                    )
                return not self._stop.is_set()

            train_loss, train_accuracy = engine.train_epoch(x_train, y_train, on_batch)
            if self._stop.is_set():
                # A partial epoch: keep what it learned if it beats the best full epoch.
                val_loss, _ = engine.evaluate(x_val, y_val)
                if val_loss < best_loss:
                    best_weights, best_loss = engine.get_weights(), val_loss
                break
            val_loss, val_accuracy = engine.evaluate(x_val, y_val)
            seconds = time.perf_counter() - epoch_start
            epoch_seconds.append(seconds)
            row = {
                "epoch": epoch,
                "loss": train_loss,
                "accuracy": train_accuracy,
                "val_loss": val_loss,
                "val_accuracy": val_accuracy,
                "seconds": seconds,
            }
            history.append(row)
            self.store.add_epoch(run_id, row)
            if val_loss < best_loss:
                best_loss, best_epoch, best_weights, waited = val_loss, epoch, engine.get_weights(), 0
            else:
                waited += 1
            self._update(
                history=tuple(history),
                val_loss=val_loss,
                val_accuracy=val_accuracy,
                best_epoch=best_epoch,
                elapsed_seconds=time.perf_counter() - started,
            )
            if waited >= config.patience:
                early_stopped = True
                break
        return {
            "best_weights": best_weights,
            "best_epoch": best_epoch,
            "epochs_run": len(history),
            "seconds_per_epoch": float(np.median(epoch_seconds)) if epoch_seconds else None,
            "early_stopped": early_stopped,
        }


_spawn_lock = threading.Lock()
MIRRORED_FIELDS = tuple(f.name for f in dataclasses.fields(Progress) if f.name not in ("job_id", "created_at"))


class TrainingProcess:
    """A warm child process that trains jobs one at a time, away from the parent's GIL.

    The child imports Keras and loads the data as soon as it starts, then waits for jobs;
    it reports each job's progress snapshots through a queue and watches a stop flag.
    """

    def __init__(self):
        context = multiprocessing.get_context("spawn")  # Forking a process with TensorFlow in it is unsafe.
        self.requests = context.Queue()
        self.events = context.Queue()
        self.stop_flag = context.Event()
        self.process = context.Process(
            target=_process_main, args=(self.requests, self.events, self.stop_flag), name="training", daemon=True
        )
        # A spawned child re-runs the parent's __main__ file; under Streamlit (and AppTest)
        # that is a page script. The child needs only core.jobs, so it is shown a bare
        # __main__ while it starts.
        with _spawn_lock:
            real_main = sys.modules["__main__"]
            sys.modules["__main__"] = types.ModuleType("__main__")
            try:
                self.process.start()
            finally:
                sys.modules["__main__"] = real_main

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def train(self, job: TrainingJob) -> None:
        """Sends `job` to the child and mirrors its progress into `job` until it ends."""
        self.stop_flag.clear()
        store_path = str(job.store.path) if job.store is not None else None
        self.requests.put((job.config.to_dict(), store_path, job.data_path))
        while True:
            if job.stop_requested:
                self.stop_flag.set()
            try:
                kind, fields = self.events.get(timeout=0.1)
            except queue_module.Empty:
                if not self.process.is_alive():
                    detail = f"the training process ended unexpectedly (exit code {self.process.exitcode})"
                    job._update(
                        status="failed", message=f"Training failed: {detail}", error=detail, queue_position=None
                    )
                    if job.store is not None:
                        job.store.mark_interrupted()
                    return
                continue
            job._update(**{name: fields[name] for name in MIRRORED_FIELDS})
            if kind == "done":
                return

    def close(self) -> None:
        if self.alive:
            self.requests.put(None)


def _process_main(requests, events, stop_flag) -> None:
    """The child process: warm up, then train each requested job and stream its snapshots."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warm_up()
    from core.runs import RunStore

    while True:
        request = requests.get()
        if request is None:
            return
        config_data, store_path, data_path = request
        job = TrainingJob(TrainingConfig.from_dict(config_data), store=RunStore(store_path), data_path=data_path)
        worker = threading.Thread(target=job.run, name=f"train-{job.id}", daemon=True)
        worker.start()
        sent = None
        while worker.is_alive():
            worker.join(0.1)
            if stop_flag.is_set() and not job.stop_requested:
                job.request_stop()
            snapshot = job.snapshot()
            if snapshot is not sent:
                events.put(("progress", dataclasses.asdict(snapshot)))
                sent = snapshot
        events.put(("done", dataclasses.asdict(job.snapshot())))


class JobQueue:
    """FIFO queue of training jobs with at most `max_running` at once.

    Args:
        max_running: jobs that train at the same time.
        store: the `RunStore` (default: created at first submit, at the default path).
        data_path: a Fashion-MNIST folder (default: the loader's search order).
        isolation: "thread" trains in a thread of this process; "process" in warm child
            processes (for servers, whose own threads would compete for the GIL).
    """

    def __init__(self, max_running: int = 1, store=None, data_path=None, isolation: str = "thread"):
        if max_running < 1:
            raise ValueError("max_running must be at least 1")
        if isolation not in ("thread", "process"):
            raise ValueError(f"isolation must be 'thread' or 'process', not {isolation!r}")
        self.max_running = max_running
        self.store = store
        self.data_path = data_path
        self.isolation = isolation
        self._idle_processes: list[TrainingProcess] = []
        self._processes: list[TrainingProcess] = []  # Every one started, idle or busy.
        self._lock = threading.RLock()
        self._waiting: deque[TrainingJob] = deque()
        self._running: set[TrainingJob] = set()
        self._jobs: dict[str, TrainingJob] = {}

    def submit(self, config: TrainingConfig, owner: str | None = None) -> TrainingJob:
        """Queues a job after checking it is affordable.

        Raises:
            ValueError: the settings cannot fit in memory or would take too long.
        """
        check_affordable(config)
        with self._lock:
            job = TrainingJob(config, owner=owner, store=self.run_store(), data_path=self.data_path)
            job.queue = self
            self._jobs[job.id] = job
            self._waiting.append(job)
            self._dispatch()
        return job

    def _dispatch(self) -> None:
        with self._lock:
            while self._waiting and len(self._running) < self.max_running:
                job = self._waiting.popleft()
                self._running.add(job)
                job._update(queue_position=0, status="preparing", message="Starting")
                threading.Thread(target=self._work, args=(job,), name=f"train-{job.id}", daemon=True).start()

    def run_store(self):
        """The saved-runs store jobs write to, created at the default path on first use."""
        with self._lock:
            if self.store is None:
                from core.runs import RunStore

                self.store = RunStore()
            return self.store

    def prestart(self) -> None:
        """Starts (and warms up) a training process ahead of the first job."""
        if self.isolation == "process":
            with self._lock:
                if not self._idle_processes:
                    self._idle_processes.append(self._new_process())

    def close(self) -> None:
        """Ends the training processes (a busy one finishes its job first)."""
        with self._lock:
            processes, self._processes, self._idle_processes = self._processes, [], []
        for process in processes:
            process.close()
        for process in processes:
            process.process.join(timeout=30)

    def _new_process(self) -> TrainingProcess:
        process = TrainingProcess()
        with self._lock:
            self._processes.append(process)
        return process

    def _take_process(self) -> TrainingProcess:
        with self._lock:
            while self._idle_processes:
                process = self._idle_processes.pop()
                if process.alive:
                    return process
        return self._new_process()

    def _work(self, job: TrainingJob) -> None:
        try:
            if self.isolation == "process":
                process = self._take_process()
                job.run_in(process)
                if process.alive:
                    with self._lock:
                        self._idle_processes.append(process)
            else:
                job.run()
        finally:
            with self._lock:
                self._running.discard(job)
                self._dispatch()

    def position(self, job: TrainingJob) -> int | None:
        """1 for the next job to run, 2 after it...; 0 while running; None once done."""
        with self._lock:
            if job in self._running:
                return 0
            try:
                return self._waiting.index(job) + 1
            except ValueError:
                return None

    def cancel(self, job_id: str) -> bool:
        """Cancels a waiting job, or asks a running one to stop. Returns whether it was found."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return False
            if job in self._waiting:
                self._waiting.remove(job)
                job._cancel()
                return True
        if not job.snapshot().done:
            job.request_stop()
        return True

    def get(self, job_id: str) -> TrainingJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self, owner: str | None = None) -> list[TrainingJob]:
        with self._lock:
            return [job for job in self._jobs.values() if owner is None or job.owner == owner]

    def active(self, owner: str | None = None) -> list[TrainingJob]:
        """Jobs not yet done (waiting or running), oldest first."""
        return [job for job in self.jobs(owner) if not job.snapshot().done]


_default_queue: JobQueue | None = None
_default_lock = threading.Lock()


def default_queue() -> JobQueue:
    """The process-wide queue (`EXPLORER_MAX_RUNNING_JOBS` sets how many run at once).

    Jobs train in child processes (`isolation="process"`); creating the queue starts one,
    which imports TensorFlow and loads the data while the user is still choosing settings.
    """
    global _default_queue
    with _default_lock:
        if _default_queue is None:
            _default_queue = JobQueue(
                max_running=int(os.environ.get("EXPLORER_MAX_RUNNING_JOBS", "1")), isolation="process"
            )
            _default_queue.prestart()
        return _default_queue


def warm_up() -> None:
    """Imports Keras, finds the device and loads the data (seconds, once per process)."""
    try:
        training_device()
        _dataset(None)
    except Exception:  # The job itself reports any real problem with a message.
        pass
