"""Training jobs that run in worker threads, report progress, stop cleanly, and queue up.

A `TrainingJob` trains one `TrainingConfig` in a worker thread (never the caller's): it
prepares the data and the Keras model, trains with the fastest engine that fits, keeps
the weights with the best validation loss (the article's checkpoint) and stops early after
`patience` epochs without improvement, then evaluates on the 10,000 test images and saves
the run (history epoch by epoch, then metrics and the `.keras` model) in the `RunStore`.
`snapshot()` returns an immutable `Progress` that a page can poll several times a second.

`JobQueue` runs jobs one at a time by default (`max_running`), tells each queued job its
position and estimated start, and cancels queued jobs; `default_queue()` is the process-wide
one. The queue decides *when* a job runs: who goes next is a scheduler's decision
(`core.shallow.scheduling`: first come first served, or in classroom mode round-robin between
sessions with per-session caps). An `Executor` decides *where*: `ThreadExecutor` in a thread
of this process, `ProcessExecutor` in a warm child process (the app's default, with the job's
progress mirrored into it: a web server's Python threads, page reruns and chart building,
would otherwise hold the GIL that the training thread needs between its numpy calls, and slow
it down many times over), and `core.shallow.ray_executor.RayExecutor` on a Ray cluster when
`EXPLORER_RAY_ADDRESS` is set (`configured_executor()`).
"""

from __future__ import annotations

import abc
import dataclasses
import itertools
import math
import multiprocessing
import multiprocessing.spawn
import os
import signal
import socket
import threading
import time
import traceback
from collections import Counter, deque
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from core.classroom import ANYONE, Actor, ClassLimits, NotYours
from core.shallow.config import TrainingConfig, check_affordable, count_params, resolve_engine
from core.shallow.scheduling import FairScheduler, FifoScheduler, check_job_minutes, plan

FINAL_STATUSES = ("finished", "stopped", "failed", "cancelled")
FINISHED_JOBS_KEPT = 50


@dataclass(frozen=True)
class Progress:
    """An immutable snapshot of a job, safe to read from any thread."""

    job_id: str
    status: str = "queued"  # queued, preparing, running, stopping, evaluating, + FINAL_STATUSES
    queue_position: int | None = None  # 1 = next to run; 0 = running; None = done.
    start_in_seconds: float | None = None  # While queued: the estimated wait, from the jobs ahead.
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
    unrecorded: dict | None = None  # The run's closing columns, when the database refused them.
    executor: str | None = None  # Where it trains: "thread", "process" or "ray".
    node: str | None = None  # The machine it trains on (a host name, or a Ray node's address).
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


def make_engine(config: TrainingConfig, model, engine_name: str):
    """The engine that trains `model` (the source of truth for its weights) for `config`.

    "numpy" is the two-product per-pixel engine for the article's linear one-layer network,
    its piecewise extension for one per-pixel layer with ReLU, LeakyReLU or PReLU, and the
    general numpy engine for every other network; "jax" the compiled JAX engine;
    "keras" is Keras' own `fit`.
    """
    from core.shallow.engines import KerasEngine

    if engine_name == "numpy":
        return numpy_engine(config, model.get_weights())
    if engine_name == "jax":
        from core.shallow.jax_engine import JaxEngine

        return JaxEngine(config, model.get_weights())
    return KerasEngine(config, model)


def numpy_engine(config: TrainingConfig, weights: list[np.ndarray]):
    """The numpy engine for `config`, from the Keras model's weights: the two-product engine
    for the linear one-layer net, its piecewise extension for one layer with another
    activation, the general dense engine for the rest."""
    from core.shallow.dense_engine import NumpyDenseEngine
    from core.shallow.engines import NumpyPerPixelEngine
    from core.shallow.piecewise_engine import NumpyPiecewiseEngine, fits_piecewise_engine

    threads = min(os.cpu_count() or 1, 4)
    if config.fits_numpy_engine:
        return NumpyPerPixelEngine(config, weights, threads=threads)
    if fits_piecewise_engine(config):
        return NumpyPiecewiseEngine(config, weights, threads=threads)
    return NumpyDenseEngine(config, weights, threads=threads)


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


class TrainingJob:
    """One training run in a worker thread; poll `snapshot()`, end it with `request_stop()`.

    What the record says, at each point a Stop can arrive: while queued or preparing, the
    job ends "cancelled" and nothing is saved; while training, the epoch in progress is cut
    short and kept as a (partial) history row, then the best weights are evaluated and the
    run is "stopped"; while evaluating or saving, the run ends "finished" as it would have.
    A loss that is not a number ends training as diverged: the best finite epoch is kept,
    or, when there is none, the run fails with the advice to lower the learning rate.
    """

    _ids = itertools.count(1)

    def __init__(
        self,
        config: TrainingConfig,
        *,
        owner: str | None = None,
        nickname: str | None = None,
        store=None,
        store_path=None,
        data_path=None,
        estimated_seconds: float | None = None,
    ):
        self.config = config
        self.owner = owner
        self.nickname = nickname
        self.estimated_seconds = estimated_seconds
        self.pinned = False  # The lecturer moved it to the front of the queue.
        self.started_at: float | None = None  # When the queue gave it a slot (time.time()).
        self.id = f"job-{next(self._ids)}-{os.getpid()}"
        self.store = store
        self.store_path = store_path
        self.data_path = data_path
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stop_reason = "Stop was pressed"
        self._progress = Progress(job_id=self.id, epochs=config.epochs, batches_per_epoch=config.batches_per_epoch)
        self._finished = threading.Event()
        self.queue: JobQueue | None = None

    # Thread-safe state ---------------------------------------------------------------------------
    def snapshot(self) -> Progress:
        with self._lock:
            progress = self._progress
        if self.queue is not None and progress.status == "queued":
            position, start_in = self.queue.place(self)
            progress = dataclasses.replace(progress, queue_position=position, start_in_seconds=start_in)
        return progress

    def _update(self, **changes) -> None:
        with self._lock:
            if self._stop.is_set() and changes.get("status") in ("preparing", "running"):
                # A Stop already asked for is not undone by a later step starting.
                changes.update(status="stopping", message="Stopping...")
            self._progress = dataclasses.replace(self._progress, **changes)

    def request_stop(self, reason: str = "Stop was pressed") -> None:
        """Ends training after the current batch; the best weights so far are evaluated and saved."""
        self._stop_reason = reason
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

    def _fail(self, detail: str, run_status: str = "failed") -> None:
        """Ends the job as failed (unless it already ended) and closes its run with the reason."""
        progress = self.snapshot()
        if not progress.done:
            self._update(status="failed", message=f"Training failed: {detail}", error=detail, queue_position=None)
        if progress.run_id is not None and self.store is not None:
            try:
                self.store.end_run(progress.run_id, status=run_status, error=detail)
            except Exception:
                self._defer(progress.run_id, status=run_status, epochs_run=len(progress.history), error=detail)
        self._finished.set()

    def _defer(self, run_id: int, **finish) -> None:
        """Keeps a closing write the store refused, here and (from a child) in the parent."""
        from core.shallow.runs import finish_columns

        columns = finish_columns(duration_s=finish.pop("duration_s", None), **finish)
        try:
            self.store.defer_finish(run_id, columns)
        except Exception:
            pass
        self._update(unrecorded=columns)

    def run_in(self, process: TrainingProcess) -> None:
        """Trains in a child process, mirroring its progress here until it ends."""
        try:
            process.train(self)
            unrecorded = self.snapshot().unrecorded
            if unrecorded and self.store is not None and self.snapshot().run_id is not None:
                self.store.defer_finish(self.snapshot().run_id, unrecorded)
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
                from core.shallow.runs import RunStore

                self.store = RunStore(self.store_path)
            (x_train, y_train), (x_val, y_val), (x_test, y_test) = split_data(self.config, self.data_path)
            import keras

            from core.shallow.config import build_model

            keras.utils.set_random_seed(self.config.seed)
            model = build_model(self.config)
            device = training_device()
            engine = self._make_engine(model, resolve_engine(self.config, device.startswith("GPU")))
            device = getattr(engine, "device", device)
            if self._stop.is_set():
                self._end_untrained()
                return
            run_id = self.store.start_run(
                label=self.config.label,
                config=self.config.to_dict(),
                params=count_params(self.config),
                engine=engine.name,
                device=device,
                session_owner=self.owner,
                nickname=self.nickname,
            )
            self._update(engine=engine.name, device=device, run_id=run_id)
            outcome = self._train(engine, x_train, y_train, x_val, y_val, started, run_id)
            if outcome["epochs_run"] == 0 and outcome["diverged_epoch"] is None:
                self.store.discard_run(run_id)
                self._end_untrained()
                return
            if outcome["best_epoch"] is None:  # Diverged before any epoch with a finite loss.
                detail = self._divergence_note(outcome)
                self.store.finish_run(
                    run_id,
                    status="failed",
                    duration_s=time.perf_counter() - started,
                    epochs_run=outcome["epochs_run"],
                    error=detail,
                )
                self._update(status="failed", message=detail, error=detail, queue_position=None, eta_seconds=0.0)
                return
            self._update(status="evaluating", message="Evaluating on the 10,000 test images")
            engine.set_weights(outcome["best_weights"])
            model.set_weights(engine.get_weights())
            from core.shallow.evaluation import evaluate_predictions

            evaluation = evaluate_predictions(engine.predict(x_test), y_test).to_dict()
            self._update(evaluation=evaluation)  # Kept whatever happens to the saves below.
            self._save(model, run_id, outcome, evaluation, started)
        except Exception as error:
            detail = f"{type(error).__name__}: {error}"
            if run_id is not None and self.store is not None:
                epochs = len(self.snapshot().history)
                duration = time.perf_counter() - started
                full = detail + "\n" + traceback.format_exc(limit=5)
                try:
                    self.store.finish_run(run_id, status="failed", duration_s=duration, epochs_run=epochs, error=full)
                except Exception:
                    self._defer(run_id, status="failed", duration_s=duration, epochs_run=epochs, error=full)
            self._update(status="failed", message=f"Training failed: {detail}", error=detail, queue_position=None)
        finally:
            if engine is not None:
                engine.close()
            self._finished.set()

    def _end_untrained(self) -> None:
        self._update(
            status="cancelled",
            message=f"{self._stop_reason} before training began; nothing was saved",
            queue_position=None,
            eta_seconds=0.0,
        )

    def _divergence_note(self, outcome: dict) -> str:
        note = (
            f"Training diverged in epoch {outcome['diverged_epoch']} (the loss is not a number): "
            f"try a lower learning rate than {self.config.learning_rate:g}."
        )
        if outcome["best_epoch"] is not None:
            note += f" The best weights before that, from epoch {outcome['best_epoch']}, were evaluated and kept."
        return note

    def _save(self, model, run_id: int, outcome: dict, evaluation: dict, started: float) -> None:
        """Saves the model, then the run's record; a failure of either keeps the evaluation and says so."""
        problems = []
        if outcome["diverged_epoch"] is not None:
            problems.append(self._divergence_note(outcome))
        if outcome["stopped"]:
            status = "stopped"
            problems.append(f"Stopped in epoch {outcome['stopped_epoch']}: {self._stop_reason}.")
        else:
            status = "finished"
        model_path = None
        try:
            model_path = str(self.store.save_model(model, run_id))
        except Exception as error:
            problems.append(f"The model file was not saved: {error}")
        duration = time.perf_counter() - started
        finish = {
            "status": status,
            "duration_s": duration,
            "epochs_run": outcome["epochs_run"],
            "best_epoch": outcome["best_epoch"],
            "seconds_per_epoch": outcome["seconds_per_epoch"],
            "evaluation": evaluation,
            "model_path": model_path,
            "error": "\n".join(problems) or None,
        }
        try:
            self.store.finish_run(run_id, **finish)
        except Exception as error:
            problems.append(
                f"The run's results could not be recorded ({error}); they are shown here and written "
                "as soon as the database accepts writes again."
            )
            self._defer(run_id, **finish)
        message = f"Test accuracy {evaluation['accuracy']:.2%} after {outcome['epochs_run']} epochs"
        if outcome["early_stopped"]:
            message += f" (early stop: no better validation loss for {self.config.patience} epochs)"
        self._update(
            status=status,
            message=message,
            error=" ".join(problems) or None,
            elapsed_seconds=duration,
            eta_seconds=0.0,
            queue_position=None,
        )

    def _make_engine(self, model, engine_name: str):
        return make_engine(self.config, model, engine_name)

    def _train(self, engine, x_train, y_train, x_val, y_val, started: float, run_id: int) -> dict:
        """The epochs; returns the best weights and what happened (stopped, diverged, early stop)."""
        config = self.config
        batches = config.batches_per_epoch
        best_loss, best_epoch, best_weights, waited = math.inf, None, engine.get_weights(), 0
        history: list[dict] = []
        epoch_seconds: list[float] = []
        early_stopped = False
        stopped_epoch = diverged_epoch = None
        self._update(status="running", message="Training")
        for epoch in range(1, config.epochs + 1):
            if self._stop.is_set():  # Asked between epochs: nothing of the next one is trained.
                stopped_epoch = epoch - 1
                break
            epoch_start = time.perf_counter()
            window = {"time": epoch_start, "batch": 0, "diverged": False}

            def on_batch(batch, loss, accuracy, epoch=epoch, epoch_start=epoch_start, window=window) -> bool:
                now = time.perf_counter()
                done = batch + 1
                rate = done * config.batch_size / max(now - epoch_start, 1e-9)
                per_epoch = (batches * config.batch_size) / rate if not epoch_seconds else np.mean(epoch_seconds[-3:])
                remaining = (batches - done) / batches * per_epoch + (config.epochs - epoch) * per_epoch
                window["batch"] = done
                if not math.isfinite(loss):
                    window["diverged"] = True
                    return False
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
            if window["diverged"]:
                diverged_epoch = epoch
                break
            val_loss, val_accuracy = engine.evaluate(x_val, y_val)
            if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
                diverged_epoch = epoch
                break
            partial = self._stop.is_set() and window["batch"] < batches
            seconds = time.perf_counter() - epoch_start
            if not partial:
                epoch_seconds.append(seconds)
            # A Stop in mid-epoch keeps the partial epoch as a history row, so that if its
            # weights are the best, the record names the epoch they came from.
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
            if self._stop.is_set() and epoch < config.epochs:
                stopped_epoch = epoch
                break
            if waited >= config.patience:
                early_stopped = True
                break
        return {
            "best_weights": best_weights,
            "best_epoch": best_epoch,
            "epochs_run": len(history),
            "seconds_per_epoch": float(np.median(epoch_seconds)) if epoch_seconds else None,
            "early_stopped": early_stopped,
            "stopped": stopped_epoch is not None,
            "stopped_epoch": stopped_epoch,
            "diverged_epoch": diverged_epoch,
        }


_spawn_lock = threading.Lock()
_bare_main = threading.local()


def _preparation_data_without_main(name):
    """multiprocessing's spawn preparation data, without the parent's __main__ for our own children.

    A spawned child re-runs the parent's __main__ file; under Streamlit (and AppTest) that is
    a page script. Leaving it out of the preparation data, for spawns from this module's
    thread only, spares the child that, without ever swapping `sys.modules["__main__"]`,
    which Streamlit's own script threads read at any moment.
    """
    data = _real_preparation_data(name)
    if getattr(_bare_main, "active", False):
        data.pop("init_main_from_name", None)
        data.pop("init_main_from_path", None)
    return data


_real_preparation_data = getattr(
    multiprocessing.spawn.get_preparation_data, "__wrapped__", multiprocessing.spawn.get_preparation_data
)
_preparation_data_without_main.__wrapped__ = _real_preparation_data
multiprocessing.spawn.get_preparation_data = _preparation_data_without_main


# What a worker's snapshot says of a job; where it runs is the executor's to say.
MIRRORED_FIELDS = tuple(
    f.name for f in dataclasses.fields(Progress) if f.name not in ("job_id", "created_at", "executor", "node")
)


class TrainingProcess:
    """A warm child process that trains jobs one at a time, away from the parent's GIL.

    The child imports Keras and loads the data as soon as it starts, then waits for jobs;
    it reports each job's progress snapshots through a one-way pipe and watches a stop flag.
    The parent closes its copy of the pipe's write end, so a child that dies (even in the
    middle of a message) is seen at once as an end of file, never as a read that blocks.
    """

    def __init__(self, target=None):
        context = multiprocessing.get_context("spawn")  # Forking a process with TensorFlow in it is unsafe.
        self.requests = context.Queue()
        self.events, events_writer = context.Pipe(duplex=False)
        self.stop_flag = context.Event()
        self.process = context.Process(
            target=target or _process_main,
            args=(self.requests, events_writer, self.stop_flag),
            name="training",
            daemon=True,
        )
        # The child needs only core.shallow.jobs: it starts without the parent's __main__ (a page script).
        with _spawn_lock:
            _bare_main.active = True
            try:
                self.process.start()
            finally:
                _bare_main.active = False
                events_writer.close()

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def train(self, job: TrainingJob) -> None:
        """Sends `job` to the child and mirrors its progress into `job` until it ends."""
        self.stop_flag.clear()
        store_path = str(job.store.path) if job.store is not None else None
        self.requests.put((job.config.to_dict(), store_path, job.data_path, job.owner, job.nickname))
        while True:
            if job.stop_requested:
                self.stop_flag.set()
            try:
                message = self.events.recv() if self.events.poll(0.1) else None
            except Exception:  # EOF: the child is gone, perhaps in mid-message; or a garbled stream.
                self._lost(job)
                return
            if message is None:
                if not self.process.is_alive():
                    self._lost(job)
                    return
                continue
            kind, fields = message
            job._update(**{name: fields[name] for name in MIRRORED_FIELDS})
            if kind == "done":
                return

    def _lost(self, job: TrainingJob) -> None:
        """The child died or its stream broke: it is ended for good, the job fails, its run is marked."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(10)  # Reaped, so its PID no longer counts as an owner of running runs.
        detail = f"the training process ended unexpectedly (exit code {self.process.exitcode})"
        job._fail(detail, run_status="interrupted")

    def close(self) -> None:
        if self.alive:
            self.requests.put(None)


class _EventSender:
    """Sends a child's events to the parent from a thread of its own, in order.

    Consecutive progress snapshots are merged (only the newest matters), and the training
    loop never blocks on the pipe: at a server stop, when the parent no longer reads, the
    child still saves its run and exits.
    """

    def __init__(self, connection):
        self.connection = connection
        self._pending: deque = deque()
        self._ready = threading.Condition()
        threading.Thread(target=self._send_forever, name="training-events", daemon=True).start()

    def put(self, kind: str, progress: Progress) -> None:
        with self._ready:
            if kind == "progress" and self._pending and self._pending[-1][0] == "progress":
                self._pending[-1] = (kind, progress)
            else:
                self._pending.append((kind, progress))
            self._ready.notify()

    def _send_forever(self) -> None:
        while True:
            with self._ready:
                while not self._pending:
                    self._ready.wait()
                kind, progress = self._pending.popleft()
            try:
                self.connection.send((kind, dataclasses.asdict(progress)))
            except OSError:  # The parent is gone; the run store still gets the job's outcome.
                return


def _process_main(requests, events, stop_flag) -> None:
    """The child process: warm up, then train each requested job and stream its snapshots.

    Ctrl-C reaches every process of the terminal's group, so the child ignores SIGINT and
    leaves the decision to the parent. SIGTERM (what a stopping parent, or a service manager,
    sends) stops the job in progress as Stop does: the best weights so far are evaluated and
    saved with the history, and the child exits; an idle child exits at once.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    shutdown = threading.Event()
    state = {"busy": False}

    def on_terminate(signum, frame) -> None:
        shutdown.set()
        if not state["busy"]:
            raise SystemExit(0)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_terminate)
    warm_up()
    sender = _EventSender(events)
    while not shutdown.is_set():
        request = requests.get()
        if request is None:
            return
        state["busy"] = True
        config_data, store_path, data_path, owner, nickname = request
        job = TrainingJob(
            TrainingConfig.from_dict(config_data),
            owner=owner,
            nickname=nickname,
            store_path=store_path,
            data_path=data_path,
        )
        worker = threading.Thread(target=job.run, name=f"train-{job.id}", daemon=True)
        worker.start()
        sent = None
        while worker.is_alive():
            worker.join(0.1)
            if shutdown.is_set() and not job.stop_requested:
                job.request_stop(reason="the server is shutting down")
            elif stop_flag.is_set() and not job.stop_requested:
                job.request_stop()
            snapshot = job.snapshot()
            if snapshot is not sent:
                sender.put("progress", snapshot)
                sent = snapshot
        sender.put("done", job.snapshot())
        state["busy"] = False


class Executor(abc.ABC):
    """Where a dispatched job trains; the `JobQueue` decides when.

    `run(job)` trains one job to its end on the caller's thread (a queue worker thread),
    keeping `job`'s progress up to date and passing a Stop through; whatever goes wrong where
    the job runs, the job ends (failed, with the reason) and `run` returns. Subclasses keep
    their own workers (processes, remote actors) between jobs.
    """

    name = "thread"

    def capacity(self) -> int | None:
        """How many jobs can train at once where this executor runs them (None: no limit of its own)."""
        return None

    def prestart(self) -> None:
        """Gets a worker ready ahead of the first job, where that saves the first job's start-up."""
        return None

    @abc.abstractmethod
    def run(self, job: TrainingJob) -> None:
        """Trains `job` to its end (finished, stopped, cancelled or failed)."""

    def close(self) -> None:
        """Ends the workers (a busy one finishes its job first)."""
        return None


class ThreadExecutor(Executor):
    """Trains in the queue's worker thread, in this process (the command line's choice)."""

    name = "thread"

    def run(self, job: TrainingJob) -> None:
        job._update(executor=self.name, node=socket.gethostname())
        job.run()


class ProcessExecutor(Executor):
    """Trains in warm child processes of this machine, one job at a time each, reused between jobs."""

    name = "process"

    def __init__(self):
        self._lock = threading.Lock()
        self._idle_processes: list[TrainingProcess] = []
        self._processes: list[TrainingProcess] = []  # Every one started, idle or busy.

    def prestart(self) -> None:
        with self._lock:
            if self._idle_processes:
                return
        process = self._new_process()
        with self._lock:
            self._idle_processes.append(process)

    def run(self, job: TrainingJob) -> None:
        job._update(executor=self.name, node=socket.gethostname())
        process = self._take_process()
        job.run_in(process)
        if process.alive:
            with self._lock:
                self._idle_processes.append(process)
        else:
            with self._lock:
                if process in self._processes:
                    self._processes.remove(process)

    def close(self) -> None:
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


def configured_executor() -> Executor | None:
    """The executor `EXPLORER_RAY_ADDRESS` asks for: a `RayExecutor` when it is set, else None.

    Raises:
        ValueError: the address is set but Ray is not installed, or cannot be reached.
    """
    address = os.environ.get("EXPLORER_RAY_ADDRESS", "").strip()
    if not address:
        return None
    from core.shallow.ray_executor import RayExecutor

    return RayExecutor(address)


class QueueLimitError(ValueError):
    """A session asked for more than classroom mode allows (a second waiting job, the same job twice)."""


class JobQueue:
    """Queue of training jobs with at most `max_running` at once, in the order a scheduler picks.

    Args:
        max_running: jobs that train at the same time.
        store: the `RunStore` (default: created at first submit, at the default path).
        data_path: a Fashion-MNIST folder (default: the loader's search order).
        isolation: "thread" trains in a thread of this process; "process" in warm child
            processes (for servers, whose own threads would compete for the GIL).
        executor: where jobs train, instead of `isolation`'s choice (e.g. a `RayExecutor`).
            The queue closes it in `close`.
        finished_kept: finished jobs kept for `get` (newest first); older ones are dropped,
            since each holds its evaluation (about 400 KB) and a server runs for days. Their
            runs stay in the store.
        limits: classroom mode's `ClassLimits` (round-robin between owners, per-owner caps,
            the job-length cap); None for the single-user app (first come, first served).
    """

    def __init__(
        self,
        max_running: int = 1,
        store=None,
        data_path=None,
        isolation: str = "thread",
        finished_kept: int = FINISHED_JOBS_KEPT,
        limits: ClassLimits | None = None,
        executor: Executor | None = None,
    ):
        if max_running < 1:
            raise ValueError("max_running must be at least 1")
        if isolation not in ("thread", "process"):
            raise ValueError(f"isolation must be 'thread' or 'process', not {isolation!r}")
        self.max_running = max_running
        self.store = store
        self.data_path = data_path
        self.executor = executor or (ProcessExecutor() if isolation == "process" else ThreadExecutor())
        self.isolation = self.executor.name
        self.finished_kept = finished_kept
        self._lock = threading.RLock()
        self._waiting: deque[TrainingJob] = deque()
        self._running: set[TrainingJob] = set()
        self._jobs: dict[str, TrainingJob] = {}
        self._last_served: dict[str | None, int] = {}  # Owner -> the turn its last job started in.
        self._turns = itertools.count(1)
        self._plan: tuple[tuple, dict] | None = None  # (what it was computed from, job id -> place).
        # What finished jobs took beyond their training estimate (data, model, test set, saving).
        self._overheads: deque[float] = deque(maxlen=20)
        self.limits: ClassLimits | None = None
        self.scheduler = FifoScheduler()
        self.configure(limits)

    def configure(self, limits: ClassLimits | None) -> None:
        """Switches classroom mode on with `limits` (or off with None); waiting jobs keep their place."""
        with self._lock:
            self.limits = limits
            self.scheduler = FifoScheduler() if limits is None else FairScheduler(limits.running_per_session)
            self._changed()
            self._dispatch()

    def submit(
        self,
        config: TrainingConfig,
        owner: str | None = None,
        has_gpu: bool = False,
        *,
        nickname: str | None = None,
        exempt: bool = False,
    ) -> TrainingJob:
        """Queues a job after checking it is affordable (and, in classroom mode, allowed).

        Args:
            config: the settings.
            owner: who started it (a session's owner token), for "yours" and who may stop it.
            has_gpu: whether training will see a GPU, as the page's own estimate assumed, so
                that a Start the page enabled is not refused with a CPU-time message.
            nickname: the owner's name on the class board.
            exempt: the lecturer's own job, free of the per-session caps and the length cap.

        Raises:
            ValueError: the settings cannot fit in memory or would take too long (in classroom
                mode: longer than the lecturer's cap, with how to get under it).
            QueueLimitError: in classroom mode, the owner already has as many jobs waiting as
                allowed, or this very configuration waiting or running.
            RunStoreError: the saved-runs folder cannot be written.
        """
        cost = check_affordable(config, has_gpu)
        limits = self.limits
        if limits is not None and not exempt:
            seconds = check_job_minutes(config, limits.max_job_minutes, has_gpu)
        else:
            seconds = cost.seconds_per_epoch * config.epochs
        with self._lock:
            if limits is not None and not exempt:
                self._check_caps(config, owner, limits)
            job = TrainingJob(
                config,
                owner=owner,
                nickname=nickname,
                store=self.run_store(),
                data_path=self.data_path,
                estimated_seconds=seconds,
            )
            job.queue = self
            self._jobs[job.id] = job
            self._waiting.append(job)
            self._changed()
            self._dispatch()
            self._drop_old_jobs()
        return job

    def _check_caps(self, config: TrainingConfig, owner: str | None, limits: ClassLimits) -> None:
        mine = [job for job in [*self._running, *self._waiting] if job.owner == owner]
        same = next((job for job in mine if job.config == config), None)
        if same is not None:
            raise QueueLimitError(f"You already queued this very configuration ({same.id}); it is shown below.")
        waiting = [job for job in self._waiting if job.owner == owner]
        if len(waiting) >= limits.waiting_per_session:
            raise QueueLimitError(
                f"You already have {len(waiting)} job(s) waiting ({', '.join(job.id for job in waiting)}); "
                f"the lecturer allows {limits.waiting_per_session} per session. Cancel one, or wait until it starts."
            )

    def _drop_old_jobs(self) -> None:
        """Forgets the oldest finished jobs beyond `finished_kept` (waiting and running ones stay)."""
        with self._lock:
            finished = [job_id for job_id, job in self._jobs.items() if job.snapshot().done]
            for job_id in finished[: max(0, len(finished) - self.finished_kept)]:
                del self._jobs[job_id]

    def _dispatch(self) -> None:
        """Starts the jobs the scheduler picks while slots are free; `_work` decides where they run."""
        with self._lock:
            while self._waiting and len(self._running) < self.max_running:
                busy = Counter(job.owner for job in self._running)
                index = self.scheduler.pick(list(self._waiting), busy, self._last_served)
                if index is None:
                    break
                job = self._waiting[index]
                del self._waiting[index]
                self._running.add(job)
                self._last_served[job.owner] = next(self._turns)
                job.started_at = time.time()
                self._changed()
                job._update(queue_position=0, status="preparing", message="Starting")
                threading.Thread(target=self._work, args=(job,), name=f"train-{job.id}", daemon=True).start()

    def _changed(self) -> None:
        self._plan = None

    def run_store(self):
        """The saved-runs store jobs write to, created at the default path on first use."""
        with self._lock:
            if self.store is None:
                from core.shallow.runs import RunStore

                self.store = RunStore()
            return self.store

    def prestart(self) -> None:
        """Gets the executor's first worker ready (warm) ahead of the first job."""
        self.executor.prestart()

    def close(self) -> None:
        """Ends the executor's workers (a busy one finishes its job first)."""
        self.executor.close()

    def _work(self, job: TrainingJob) -> None:
        """Runs one job; whatever goes wrong (a failed spawn, a dead child), the job ends and the next starts."""
        try:
            self.executor.run(job)
        except Exception as error:
            job._fail(f"the training could not run: {type(error).__name__}: {error}")
        finally:
            with self._lock:
                self._running.discard(job)
                self._learn_overhead(job)
                self._changed()
                self._dispatch()
                self._drop_old_jobs()

    def _learn_overhead(self, job: TrainingJob) -> None:
        """Keeps how much longer than its training estimate a finished job took (never less than 0)."""
        if job.started_at is not None and job.estimated_seconds is not None and job.snapshot().status == "finished":
            self._overheads.append(max(0.0, time.time() - job.started_at - job.estimated_seconds))

    def _duration(self, job: TrainingJob) -> float:
        """A job's expected length for the plan: its estimate plus the median overhead finished jobs showed."""
        overhead = float(np.median(self._overheads)) if self._overheads else 0.0
        return (job.estimated_seconds or 0.0) + overhead

    # Places in line ------------------------------------------------------------------------------
    def _remaining(self, job: TrainingJob) -> float:
        """Seconds a running job still needs: its measured ETA once training, else its estimate."""
        with job._lock:
            progress = job._progress
        if progress.eta_seconds is not None:
            return progress.eta_seconds
        return max(0.0, self._duration(job) - progress.elapsed_seconds)

    def _places(self) -> dict[str, tuple[int, float]]:
        """Each waiting job's (place in line, estimated seconds until it starts), recomputed once a second."""
        with self._lock:
            key = (int(time.monotonic()),)
            if self._plan is not None and self._plan[0] == key:
                return self._plan[1]
            order = plan(
                self.scheduler,
                list(self._waiting),
                [(job.owner, self._remaining(job)) for job in self._running],
                self.max_running,
                self._last_served,
                self._duration,
            )
            places = {job.id: (place, start_in) for place, (job, start_in) in enumerate(order, 1)}
            self._plan = (key, places)
            return places

    def place(self, job: TrainingJob) -> tuple[int | None, float | None]:
        """(place in line, estimated seconds until it starts) for a waiting job; (0, 0) running; (None, None) done."""
        with self._lock:
            if job in self._running:
                return 0, 0.0
            if job not in self._waiting:
                return None, None
            return self._places().get(job.id, (None, None))

    def position(self, job: TrainingJob) -> int | None:
        """1 for the next job to run, 2 after it...; 0 while running; None once done."""
        return self.place(job)[0]

    def waiting(self) -> list[TrainingJob]:
        """The waiting jobs in the order they are expected to start."""
        with self._lock:
            places = self._places()
            return sorted(self._waiting, key=lambda job: places.get(job.id, (math.inf,))[0])

    # What sessions and the lecturer may change ---------------------------------------------------
    def cancel(self, job_id: str, actor: Actor = ANYONE) -> bool:
        """Cancels a waiting job, or asks a running one to stop. Returns whether it was found.

        Raises:
            NotYours: in classroom mode, `actor` is neither the job's owner nor the lecturer.
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return False
            actor.check(job.owner, f"Job {job_id}")
            if job in self._waiting:
                self._waiting.remove(job)
                self._changed()
                job._cancel()
                self._drop_old_jobs()
                return True
        if not job.snapshot().done:
            job.request_stop()
        return True

    def move_to_front(self, job_id: str, actor: Actor) -> None:
        """The lecturer's reorder: the waiting job starts next (before any other pinned job's successors).

        Raises:
            NotYours: `actor` is not the lecturer (in classroom mode).
            KeyError: the job is not waiting.
        """
        if actor.classroom and not actor.lecturer:
            raise NotYours("Only the lecturer reorders the queue.")
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job not in self._waiting:
                raise KeyError(f"Job {job_id} is not waiting any more.")
            self._waiting.remove(job)
            pinned = sum(1 for waiting in self._waiting if waiting.pinned)
            self._waiting.insert(pinned, job)  # After the jobs pinned before it, before all others.
            job.pinned = True
            self._changed()

    def clear_waiting(self, actor: Actor) -> int:
        """The lecturer's clear: cancels every waiting job (running ones go on). Returns how many.

        Raises:
            NotYours: `actor` is not the lecturer (in classroom mode).
        """
        if actor.classroom and not actor.lecturer:
            raise NotYours("Only the lecturer clears the queue.")
        with self._lock:
            cleared, self._waiting = list(self._waiting), deque()
            self._changed()
            for job in cleared:
                job._cancel()
            self._drop_old_jobs()
        return len(cleared)

    def set_nickname(self, owner: str, nickname: str | None) -> None:
        """Names the owner's jobs that have not started yet (runs already in the store: `RunStore.set_nickname`)."""
        with self._lock:
            for job in self._waiting:
                if job.owner == owner:
                    job.nickname = nickname

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

    Jobs train in child processes (`isolation="process"`), or on the Ray cluster that
    `EXPLORER_RAY_ADDRESS` names, as many at once as it has room for unless
    `EXPLORER_MAX_RUNNING_JOBS` says otherwise. Creating the queue starts a worker, which
    imports TensorFlow and loads the data while the user is still choosing settings.
    """
    global _default_queue
    with _default_lock:
        if _default_queue is None:
            executor = configured_executor()
            running = os.environ.get("EXPLORER_MAX_RUNNING_JOBS") or (executor and executor.capacity()) or 1
            _default_queue = JobQueue(max_running=int(running), isolation="process", executor=executor)
            _default_queue.prestart()
        return _default_queue


WARM_UP_NETWORKS = (
    {"hidden_units": (4,)},
    {"hidden_units": (4,), "activation": "relu"},
    {"hidden_units": (4,), "activation": "prelu"},
    {"hidden_units": (4,), "activation": "elu"},
    {"hidden_units": (4, 4)},
    {"hidden_units": (4, 4), "activation": "prelu"},
    {"hidden_units": (4, 4), "activation": "elu"},
    {"architecture": "mlp", "hidden_units": (4,)},
)
"""One tiny network per code path of the numpy engines (their compiled kernels by type)."""


def warm_up_engines() -> None:
    """One step and one prediction of each of WARM_UP_NETWORKS, so that the numpy engines'
    compiled kernels are compiled into numba's disk cache (about 4 s the first time on a
    machine; set-up does it, `python -m core.shallow.compiled`) or loaded from it."""
    from core.shallow import compiled
    from core.shallow.config import NUM_CLASSES, PIXELS, build_model

    if not compiled.warm_up():
        return
    rng = np.random.default_rng(0)
    images = (rng.integers(0, 256, (8, PIXELS)) / 255).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, 8)
    for settings in WARM_UP_NETWORKS:
        config = TrainingConfig(batch_size=8, dropout=0.5, train_limit=16, **settings)
        engine = numpy_engine(config, build_model(config).get_weights())
        try:
            engine.train_batch(images, labels)
            engine.predict(images)
        finally:
            engine.close()


def warm_up() -> None:
    """Imports Keras, finds the device and loads the data (seconds, once per process). The
    compiled kernels need nothing here: set-up compiled them into numba's disk cache
    (`python -m core.shallow.compiled`), from which a job loads each in milliseconds."""
    try:
        training_device()
        _dataset(None)
    except Exception:  # The job itself reports any real problem with a message.
        pass
