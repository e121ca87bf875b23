"""Training jobs on Ray against the local warm child process: start-up overhead and jobs per minute."""

from __future__ import annotations

import os
import shutil
import tempfile
import time

TITLE = "Training jobs on a local Ray instance against the local child process"
DESCRIPTION = """
A small job (8 neurons, 600 training images, batch 50, 3 epochs, numpy engine) is submitted
to the app's `JobQueue`, once with the local `ProcessExecutor` and once with the
`RayExecutor` on a Ray instance started on this machine (`local`, 2 CPUs, 1 CPU per job).
"Cold" is the first job of a fresh executor (a process or an actor to start, Keras to
import, the data to load); "warm" the next job on the same worker. Start to first progress:
from `submit` to the first snapshot with a trained batch; total: from `submit` to the job's
end (evaluation and the saved run included; on Ray, the model's bytes sent back and stored).
Jobs per minute: 6 such jobs queued at once, with 1 and then 2 jobs at a time (warm
workers), from the first submit to the last end. The machine's 2 cores are shared with
other work, so the numbers are noisy; compare rows of one run.
"""

SMALL_JOB = {"hidden_units": (8,), "dropout": 0.5, "learning_rate": 3e-3, "train_limit": 600, "batch_size": 50}


def _config():
    from core.shallow.config import TrainingConfig

    return TrainingConfig(**SMALL_JOB, epochs=3)


def _timed_job(queue) -> tuple[float, float]:
    """Seconds from submit to the first trained batch, and to the job's end."""
    started = time.perf_counter()
    job = queue.submit(_config())
    first = None
    while not job.snapshot().done:
        snapshot = job.snapshot()
        if first is None and snapshot.status == "running" and snapshot.batch > 0:
            first = time.perf_counter() - started
        time.sleep(0.01)
    total = time.perf_counter() - started
    progress = job.snapshot()
    if progress.status != "finished":
        raise RuntimeError(f"the benchmark job ended {progress.status}: {progress.error}")
    return (first if first is not None else total), total


def _jobs_per_minute(queue, jobs: int) -> float:
    started = time.perf_counter()
    submitted = [queue.submit(_config()) for _ in range(jobs)]
    for job in submitted:
        progress = job.wait(600)
        if progress.status != "finished":
            raise RuntimeError(f"a benchmark job ended {progress.status}: {progress.error}")
    return jobs / ((time.perf_counter() - started) / 60)


def _measure(make_executor, folder: str, label: str) -> list[dict]:
    from core.shallow.jobs import JobQueue
    from core.shallow.runs import RunStore

    started = time.perf_counter()
    executor = make_executor()
    rows = [{"metric": f"{label}: executor created", "value": time.perf_counter() - started, "unit": "s"}]
    try:
        queue = JobQueue(max_running=1, store=RunStore(f"{folder}/{label}.sqlite"), executor=executor)
        for state in ("cold", "warm"):
            first, total = _timed_job(queue)
            rows.append({"metric": f"{label}, {state}: start to first progress", "value": first, "unit": "s"})
            rows.append({"metric": f"{label}, {state}: total", "value": total, "unit": "s"})
        rows.append({"metric": f"{label}, 1 job at a time", "value": _jobs_per_minute(queue, 6), "unit": "jobs/min"})
        queue.max_running = 2
        _jobs_per_minute(queue, 2)  # Warms the second worker.
        rows.append({"metric": f"{label}, 2 jobs at a time", "value": _jobs_per_minute(queue, 6), "unit": "jobs/min"})
    finally:
        executor.close()
    return rows


def run() -> list[dict]:
    from core.shallow.jobs import ProcessExecutor
    from core.shallow.ray_executor import RayExecutor

    load_before = os.getloadavg()[0]
    folder = tempfile.mkdtemp(prefix="bench-ray-")
    try:
        local = _measure(ProcessExecutor, folder, "local child process")
        ray_folder = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
        ray_rows = _measure(
            lambda: RayExecutor("local", num_cpus=2, cpus_per_job=1, temp_dir=ray_folder), folder, "Ray actor"
        )
        shutil.rmtree(ray_folder, ignore_errors=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    by_metric = {row["metric"]: row["value"] for row in local + ray_rows}
    overhead = [
        {
            "metric": f"Ray over local, warm: {what}",
            "value": by_metric[f"Ray actor, warm: {what}"] - by_metric[f"local child process, warm: {what}"],
            "unit": "s",
        }
        for what in ("start to first progress", "total")
    ]
    # The other work on the machine, which these timings share its cores with.
    load = {
        "metric": "machine load (1-minute load average) at start / end",
        "value": f"{load_before:.1f} / {os.getloadavg()[0]:.1f}",
        "unit": "",
        "note": f"{os.cpu_count()} cores",
    }
    return local + ray_rows + overhead + [load]
