"""Training jobs on a Ray cluster: the `Executor` that `EXPLORER_RAY_ADDRESS` selects.

Each job trains in a Ray actor (`TrainingWorker`, one job at a time, reused between jobs
like the local warm child) that asks for one GPU when the cluster has GPUs, else
`EXPLORER_RAY_CPUS_PER_JOB` CPUs (default 1). The actor runs the same `TrainingJob` code as
the local child, with a `WorkerStore` in place of the run store: every write the job makes
(the run's start, each epoch, the `.keras` model's bytes, the closing columns) is recorded
and sent back with the progress snapshots that the app polls, then replayed into the app's
own `RunStore`, so no disk is shared. Stop is passed to the actor; an actor that dies or
stops answering fails its job with a message naming the node, and its run is marked
"interrupted" with the epochs it completed.

`EXPLORER_RAY_ADDRESS=local` starts a Ray instance on this machine, on the loopback address
only (and with a token in memory, never written under the home folder); any other value
(`ray://head:10001`, `head:6379`, `auto`) joins that cluster, with its token when one is at
hand (`_use_the_clusters_token`), after checking that something answers at the address; the
`core` package is shipped with the job (the workers need this repository's requirements and
the data).

Ray is an optional dependency (requirements-cluster.txt): this module imports it only when
a `RayExecutor` is created, and says how to install it when it is missing.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from core.shallow.config import TrainingConfig
from core.shallow.jobs import FINAL_STATUSES, MIRRORED_FIELDS, Executor, TrainingJob, training_device, warm_up
from core.shallow.runs import RunStoreError, finish_columns

PROJECT_ROOT = Path(__file__).resolve().parents[2]
POLL_SECONDS = 0.1
PROBE_TIMEOUT_S = 5.0
"""Seconds a cluster address has to accept a connection before the app says that nothing answers there."""
CLIENT_ATTEMPTS = 2
CLIENT_RETRY_SECONDS = 2.0
"""A `ray://` connection whose client server failed to start is asked for once more, this long after."""
SILENCE_LIMIT_S = 60.0
"""A worker that answers no poll for this long (a frozen node, a cut network) is taken as lost."""


class WorkerStore:
    """Stands in for the `RunStore` inside a Ray worker: records the job's writes for the app to replay.

    Run ids are the worker's own (1, 2, ...); the app maps them onto the ids of its store.
    """

    path = None

    def __init__(self, folder: Path):
        self._lock = threading.Lock()
        self._events: list[tuple] = []
        self._last_id = 0
        self._folder = folder  # Where a model is written before its bytes are read back.

    def _record(self, kind: str, run_id: int, data) -> None:
        with self._lock:
            self._events.append((kind, run_id, data))

    def take(self) -> list[tuple]:
        """The writes recorded since the last call, oldest first."""
        with self._lock:
            events, self._events = self._events, []
        return events

    def start_run(self, **columns) -> int:
        with self._lock:
            self._last_id += 1
            run_id = self._last_id
            self._events.append(("start_run", run_id, columns))
        return run_id

    def add_epoch(self, run_id: int, row: dict) -> None:
        self._record("add_epoch", run_id, dict(row))

    def finish_run(self, run_id: int, **finish) -> None:
        self._record("finish_run", run_id, finish)

    def end_run(self, run_id: int, *, status: str, error: str) -> None:
        self._record("end_run", run_id, {"status": status, "error": error})

    def discard_run(self, run_id: int) -> None:
        self._record("discard_run", run_id, None)

    def defer_finish(self, run_id: int, columns: dict) -> None:
        self._record("defer_finish", run_id, dict(columns))

    def save_model(self, model, run_id: int) -> Path:
        """Saves the model as `.keras` and records the file's bytes (the file itself is deleted)."""
        path = self._folder / f"run-{run_id}.keras"
        try:
            model.save(path)
            data = path.read_bytes()
        finally:
            path.unlink(missing_ok=True)
        self._record("model", run_id, data)
        return path


class TrainingWorker:
    """The Ray actor: warms up once, then trains jobs one at a time and answers polls."""

    def __init__(self):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        warm_up()
        self._folder = Path(tempfile.mkdtemp(prefix="explorer-worker-"))
        self._job: TrainingJob | None = None
        self._thread: threading.Thread | None = None
        self._store: WorkerStore | None = None
        self._sent = None

    def where(self) -> dict:
        """The node (host name and address), process id and training device of this worker."""
        import ray

        return {
            "node": f"{socket.gethostname()} ({ray.util.get_node_ip_address()})",
            "pid": os.getpid(),
            "device": training_device(),
        }

    def start(self, config_data: dict, data_path: str | None) -> None:
        self._store = WorkerStore(self._folder)
        self._job = TrainingJob(TrainingConfig.from_dict(config_data), store=self._store, data_path=data_path)
        self._sent = None
        self._thread = threading.Thread(target=self._job.run, name=f"train-{self._job.id}", daemon=True)
        self._thread.start()

    def stop(self, reason: str) -> None:
        if self._job is not None:
            self._job.request_stop(reason)

    def poll(self) -> tuple[dict | None, list[tuple]]:
        """The job's snapshot (None when unchanged since the last poll) and the writes made since then.

        The snapshot is taken before the writes, so every run id it names has been sent; a
        final snapshot comes only once the job's thread has ended, with all of its writes.
        """
        snapshot = self._job.snapshot()
        if snapshot.done:
            self._thread.join()
            snapshot = self._job.snapshot()
        events = self._store.take()
        fields = None if snapshot is self._sent else dataclasses.asdict(snapshot)
        self._sent = snapshot
        return fields, events


class _Replay:
    """Replays a worker's recorded writes into the app's `RunStore`, mapping the worker's run ids."""

    def __init__(self, store):
        self.store = store
        self.run_ids: dict[int, int] = {}
        self.model_paths: dict[int, Path] = {}
        self.notes: list[str] = []
        self.unrecorded: dict | None = None

    def apply(self, events: list[tuple]) -> None:
        """Applies the writes in order.

        Raises:
            RunStoreError: the run's start, an epoch or its end could not be recorded.
        """
        for kind, worker_run_id, data in events:
            if kind == "start_run":
                self.run_ids[worker_run_id] = self.store.start_run(**data)
                continue
            run_id = self.run_ids[worker_run_id]
            if kind == "add_epoch":
                self.store.add_epoch(run_id, data)
            elif kind == "model":
                try:
                    self.model_paths[worker_run_id] = self.store.save_model_bytes(data, run_id)
                except RunStoreError as error:
                    self.notes.append(f"The model file was not saved: {error}")
            elif kind == "finish_run":
                self._finish(run_id, worker_run_id, dict(data))
            elif kind == "end_run":
                self.store.end_run(run_id, **data)
            elif kind == "discard_run":
                self.store.discard_run(run_id)
            elif kind == "defer_finish":
                self.store.defer_finish(run_id, data)

    def _finish(self, run_id: int, worker_run_id: int, finish: dict) -> None:
        if finish.get("model_path"):
            path = self.model_paths.get(worker_run_id)
            finish["model_path"] = str(path) if path else None
        if self.notes:
            finish["error"] = "\n".join(filter(None, [finish.get("error"), *self.notes]))
        try:
            self.store.finish_run(run_id, **finish)
        except RunStoreError as error:
            self.notes.append(
                f"The run's results could not be recorded ({error}); they are shown here and written "
                "as soon as the database accepts writes again."
            )
            self.unrecorded = finish_columns(**finish)
            self.store.defer_finish(run_id, self.unrecorded)

    def app_run_id(self, worker_run_id: int | None) -> int | None:
        return self.run_ids.get(worker_run_id) if worker_run_id is not None else None

    def latest_run_id(self) -> int | None:
        return next(reversed(self.run_ids.values()), None)

    def forget_models(self) -> None:
        """Deletes model files of a run that never closed (its worker was lost)."""
        for path in self.model_paths.values():
            path.unlink(missing_ok=True)


@dataclass
class _Worker:
    handle: object
    where_ref: object
    where: dict | None = None


def _short(error: BaseException) -> str:
    """The first line of an error, for a job's message (Ray's own errors run to many lines)."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


class RayExecutor(Executor):
    """Trains each dispatched job in a `TrainingWorker` actor on a Ray cluster.

    Args:
        address: "local" (start Ray on this machine, loopback only) or a cluster address.
        num_cpus: for "local", the CPUs the instance offers (default: all of them).
        cpus_per_job: CPUs each job asks for on a cluster without GPUs (default
            `EXPLORER_RAY_CPUS_PER_JOB`, else 1); fractions share a CPU between jobs.
        temp_dir: for "local", Ray's folder for its sockets, logs and session files (default
            a new folder in $TMPDIR, /tmp unless set; its paths must stay short for the sockets).
        silence_limit_s: seconds without an answer after which a worker is taken as lost.

    Raises:
        ValueError: Ray is not installed, or the cluster cannot be reached.
    """

    name = "ray"

    def __init__(
        self,
        address: str = "local",
        *,
        num_cpus: int | None = None,
        cpus_per_job: float | None = None,
        temp_dir: str | None = None,
        silence_limit_s: float = SILENCE_LIMIT_S,
    ):
        self.address = address
        self.silence_limit_s = silence_limit_s
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: dict[str, _Worker] = {}
        self._closed = False
        if address == "local":
            _keep_local_instance_private()
        try:
            import ray
        except ImportError as error:
            raise ValueError(
                "EXPLORER_RAY_ADDRESS is set but Ray is not installed: install requirements-cluster.txt "
                "(`make run RAY=1`), or unset EXPLORER_RAY_ADDRESS to train on this machine."
            ) from error
        if address == "local":
            import ray._private.ray_constants as ray_constants

            ray_constants.ENABLE_RAY_CLUSTER = False  # Read when Ray is imported, which may have been earlier.
        self._ray = ray
        self.started_ray = not ray.is_initialized()
        if self.started_ray:
            self._connect(address, num_cpus, temp_dir)
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        if cpus_per_job is None:
            cpus_per_job = float(os.environ.get("EXPLORER_RAY_CPUS_PER_JOB", "1"))
        if cpus_per_job <= 0:
            raise ValueError(f"cpus_per_job must be more than 0, not {cpus_per_job}")
        self.cpus_per_job = cpus_per_job
        self.cpus = resources.get("CPU", 0.0)
        resources_per_job = {"num_gpus": 1} if self.gpus else {"num_cpus": cpus_per_job}
        self._actor_class = ray.remote(max_restarts=0, max_task_retries=0, **resources_per_job)(TrainingWorker)

    def _connect(self, address: str, num_cpus: int | None, temp_dir: str | None) -> None:
        environment = {"TF_CPP_MIN_LOG_LEVEL": "2"}
        token = False
        if os.environ.get("KERAS_BACKEND"):
            environment["KERAS_BACKEND"] = os.environ["KERAS_BACKEND"]
        if address != "local":
            _check_that_it_answers(address)
        try:
            if address == "local":
                # The workers import `core` from this checkout, as the local child process does.
                environment["PYTHONPATH"] = str(PROJECT_ROOT)
                self._ray.init(
                    address="local",
                    num_cpus=num_cpus,
                    include_dashboard=False,
                    log_to_driver=False,
                    _temp_dir=temp_dir or tempfile.mkdtemp(prefix="ray-"),
                    runtime_env={"env_vars": environment},
                )
            else:
                token = _use_the_clusters_token()
                runtime_env = {
                    "env_vars": environment,
                    "py_modules": [str(PROJECT_ROOT / "core")],
                    "excludes": ["__pycache__", "*.pyc"],
                }
                for attempt in range(CLIENT_ATTEMPTS):
                    try:
                        self._ray.init(address=address, log_to_driver=False, runtime_env=runtime_env)
                        break
                    except ConnectionAbortedError:
                        # A ray:// head starts a client server per connection; on a busy head that
                        # start can fail once ("Initialization failure from server"): ask again.
                        if attempt == CLIENT_ATTEMPTS - 1:
                            raise
                        self._ray.shutdown()
                        time.sleep(CLIENT_RETRY_SECONDS)
        except Exception as error:
            message = f"Cannot reach the Ray cluster at {address!r} (EXPLORER_RAY_ADDRESS): {_short(error)}."
            if address != "local":
                message += " " + _connection_advice(token)
            raise ValueError(message) from error

    def capacity(self) -> int:
        """Jobs that fit at once: one per GPU, else the cluster's CPUs over the CPUs per job."""
        if self.gpus:
            return self.gpus
        return max(1, int(self.cpus // self.cpus_per_job))

    def placement(self, job_id: str) -> dict | None:
        """Where a job trains now (node, pid, device), once its worker has started; else None."""
        with self._lock:
            worker = self._busy.get(job_id)
        return dict(worker.where) if worker is not None and worker.where else None

    def _new_worker(self) -> _Worker:
        handle = self._actor_class.remote()
        return _Worker(handle=handle, where_ref=handle.where.remote())

    def prestart(self) -> None:
        with self._lock:
            if not self._idle:
                self._idle.append(self._new_worker())

    def _take_worker(self) -> _Worker:
        """An idle worker that still answers, or a new one."""
        while True:
            with self._lock:
                worker = self._idle.pop() if self._idle else None
            if worker is None:
                return self._new_worker()
            if worker.where is None:  # Still starting: its first answer is awaited with the job's Stop.
                return worker
            try:
                self._ray.get(worker.handle.where.remote(), timeout=10)
                return worker
            except Exception:
                self._kill(worker)

    def _kill(self, worker: _Worker) -> None:
        try:
            self._ray.kill(worker.handle)
        except Exception:
            pass  # Already gone.

    def run(self, job: TrainingJob) -> None:
        job._update(executor=self.name, message="Waiting for a Ray worker")
        worker = self._take_worker()
        with self._lock:
            self._busy[job.id] = worker
        try:
            if self._await_start(job, worker):
                self._train(job, worker)
        finally:
            with self._lock:
                self._busy.pop(job.id, None)
            job._finished.set()  # `wait` returns now, however the job ended.

    def _await_start(self, job: TrainingJob, worker: _Worker) -> bool:
        """Waits for the worker's first answer (its placement and warm-up); False if the job ended meanwhile."""
        ray = self._ray
        while worker.where is None:
            ready, _ = ray.wait([worker.where_ref], timeout=POLL_SECONDS)
            if ready:
                try:
                    worker.where = ray.get(worker.where_ref)
                except Exception as error:
                    self._kill(worker)
                    job._fail(f"the Ray worker could not start: {_short(error)}")
                    return False
            elif job.stop_requested:
                self._kill(worker)
                job._update(
                    status="cancelled",
                    message="Stopped while waiting for a Ray worker; nothing was saved",
                    queue_position=None,
                    eta_seconds=0.0,
                )
                return False
        job._update(node=worker.where["node"], message="Starting on the Ray worker")
        return True

    def _train(self, job: TrainingJob, worker: _Worker) -> None:
        """Starts the job on the worker and mirrors its progress and writes until it ends."""
        ray = self._ray
        replay = _Replay(job.store)
        worker.handle.start.remote(job.config.to_dict(), job.data_path)
        stop_sent = False
        last_answer = time.monotonic()
        pending = worker.handle.poll.remote()
        while True:
            if job.stop_requested and not stop_sent:
                worker.handle.stop.remote(job._stop_reason)
                stop_sent = True
            try:
                ready, _ = ray.wait([pending], timeout=POLL_SECONDS)
                if not ready:
                    silent = time.monotonic() - last_answer
                    if silent > self.silence_limit_s:
                        self._lost(job, worker, replay, f"no answer for {silent:.0f} s")
                        return
                    continue
                fields, events = ray.get(pending)
            except Exception as error:
                self._lost(job, worker, replay, _short(error))
                return
            last_answer = time.monotonic()
            try:
                replay.apply(events)
            except RunStoreError as error:
                self._kill(worker)
                job._update(run_id=replay.latest_run_id())
                job._fail(f"the run could not be recorded: {error}")
                return
            if fields is not None:
                changes = {name: fields[name] for name in MIRRORED_FIELDS if name != "unrecorded"}
                changes["run_id"] = replay.app_run_id(fields["run_id"])
                if fields["status"] in FINAL_STATUSES:
                    if replay.notes:
                        changes["error"] = " ".join(filter(None, [fields["error"], *replay.notes]))
                    changes["unrecorded"] = replay.unrecorded
                job._update(**changes)
                if fields["status"] in FINAL_STATUSES:
                    break
            time.sleep(POLL_SECONDS)
            pending = worker.handle.poll.remote()
        with self._lock:
            if not self._closed:
                self._idle.append(worker)
                return
        self._kill(worker)

    def _lost(self, job: TrainingJob, worker: _Worker, replay: _Replay, reason: str) -> None:
        """The worker died or went silent: it is ended for good, the job fails, its run is marked."""
        self._kill(worker)
        replay.forget_models()
        node = worker.where["node"] if worker.where else "an unknown node"
        job._update(run_id=replay.latest_run_id())
        job._fail(f"the Ray worker training it on {node} was lost ({reason})", run_status="interrupted")

    def close(self) -> None:
        """Ends the workers (a job still training fails as lost) and, for "local", the Ray instance."""
        with self._lock:
            self._closed = True
            workers = self._idle + list(self._busy.values())
            self._idle = []
        for worker in workers:
            self._kill(worker)
        if self.started_ray and self._ray.is_initialized():
            self._ray.shutdown()


def _keep_local_instance_private() -> None:
    """Settings for a Ray instance started here: loopback address only, and a token kept in memory.

    Ray binds its services to the machine's network address unless told that there is no
    cluster; and it writes a new instance's authentication token to ~/.ray unless a token
    is given. Both are read from the environment, by Ray and by the processes it starts.
    """
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    if not any(name in os.environ for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")):
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)


def _check_that_it_answers(address: str) -> None:
    """Fails at once when nothing listens at a cluster address's host and port.

    `ray.init` keeps retrying an address where nothing listens (a GCS address: still after
    two minutes here; `ray://`: 30 s), which would freeze the page that creates the queue.
    An address without a port (`auto`) is left to Ray.

    Raises:
        ValueError: the port refuses the connection, or does not answer within a few seconds.
    """
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    host = host.strip("[]")  # An IPv6 address, [::1]:6379.
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as error:
        raise ValueError(
            f"Cannot reach the Ray cluster at {address!r} (EXPLORER_RAY_ADDRESS): nothing answers at "
            f"{host}:{port} ({error}). Check the address (the head's `ray start` prints it; `ray://` is "
            "the Ray Client port, 10001 by default, the other form the head's --port, 6379 by default) "
            "and that the port is open from this machine."
        ) from error


def _use_the_clusters_token() -> bool:
    """Turns on Ray's token authentication for this process when a token is at hand; True if so.

    `ray start --head` turns token authentication on by itself whenever it finds a token
    (`RAY_AUTH_TOKEN`, the file `RAY_AUTH_TOKEN_PATH` names, or `~/.ray/auth_token`, which
    any plain `ray.init()` on that machine writes), but `ray.init(address=...)` never does:
    without `RAY_AUTH_MODE=token` it sends no token, the cluster refuses every call, and
    after some 20 s of retries Ray gives up with "Failed to connect to Ray cluster" and no
    word of the token. This applies `ray start`'s own rule before connecting, so the app
    joins a head started from the same account or environment. A token sent to a cluster
    without authentication is ignored; an explicit `RAY_AUTH_MODE` is left as it is.
    """
    from ray._private.authentication.authentication_token_setup import (
        maybe_enable_token_auth_if_token_available,
    )

    return maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _connection_advice(token: bool) -> str:
    """What to check when a cluster address does not answer, depending on whether a token was sent."""
    where = (
        "Check the address (the head's `ray start` prints it), that its port is open from here, and "
        "that this machine runs the same Ray and Python versions as the cluster."
    )
    if token:
        return f"{where} A token was sent: it must be the cluster's own (RAY_AUTH_TOKEN or ~/.ray/auth_token)."
    return (
        f"{where} If the cluster uses token authentication (`ray start --head` turns it on when it "
        "finds a token), give this machine the cluster's token: RAY_AUTH_TOKEN=... or the file ~/.ray/auth_token."
    )
