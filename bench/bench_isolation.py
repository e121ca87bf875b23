"""Training beside a busy web server: a worker thread against a worker process."""

from __future__ import annotations

import tempfile
import threading
import time

TITLE = "Training beside a busy server thread: thread vs child-process isolation"
DESCRIPTION = """
The app's server runs Python threads of its own (page reruns, charts). A training thread in
the same process needs the GIL between its numpy calls, so a busy Python thread slows it
down many times over; the app's queue therefore trains in a warm child process. Here the
article's model (392 neurons, 80% dropout, numpy engine) trains 1 epoch on 1,000 images
while another thread of this process spins in pure Python, once with `isolation="thread"`
and once with `isolation="process"`; training samples per second from the job's snapshots.
"""


def samples_per_second(isolation: str) -> float:
    from core.shallow.config import TrainingConfig
    from core.shallow.jobs import JobQueue
    from core.shallow.runs import RunStore

    config = TrainingConfig(hidden_units=(392,), dropout=0.8, train_limit=1000, epochs=1)
    with tempfile.TemporaryDirectory() as folder:
        queue = JobQueue(store=RunStore(f"{folder}/runs.sqlite"), isolation=isolation)
        queue.prestart()
        if isolation == "process":
            time.sleep(8)  # Let the child import Keras and load the data, as it does while a user reads the page.
        busy = threading.Event()

        def spin() -> None:
            count = 0
            while not busy.is_set():
                count += 1

        spinner = threading.Thread(target=spin, daemon=True)
        spinner.start()
        job = queue.submit(config)
        rates = []
        while not job.snapshot().done:
            snapshot = job.snapshot()
            if snapshot.status == "running" and snapshot.samples_per_second:
                rates.append(snapshot.samples_per_second)
            time.sleep(0.2)
        busy.set()
        queue.close()
    return rates[-1] if rates else float("nan")


def run() -> list[dict]:
    threaded, isolated = samples_per_second("thread"), samples_per_second("process")
    return [
        {"metric": "worker thread, busy server thread beside it", "value": threaded, "unit": "images/s"},
        {"metric": "child process (the app's queue), same busy thread", "value": isolated, "unit": "images/s"},
        {"metric": "child process over thread", "value": isolated / threaded, "unit": "x"},
    ]
