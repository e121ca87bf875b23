"""Trains Teach-your-own heads in one warm child process, away from the web server.

Streamlit calls `keras.backend.clear_session()` (which runs a full garbage collection and
clears TensorFlow's kernel cache) after every script run, fragment runs included. A head
training in a thread of the server therefore crawled while its page polled it: in one
browser run on the shared 2 cores, fold 1 of 5 was at epoch 32 after a minute, where the
whole training takes about 2 s outside the server. The child process has its own Keras, so
the server's reruns cannot touch it.

Features and labels go to the child as numpy arrays; progress comes back as plain snapshots
(`teach.Progress.snapshot`), the result as the picklable `teach.Training` (or the curve rows).
One job runs at a time; the child is started on first use and restarted if it died.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import threading
import time
import types

from core.catdog.teach import Progress, TeachError

SNAPSHOT_SECONDS = 0.1
"""The child sends at most this many snapshots a second (and always the last one)."""

_start_lock = threading.Lock()  # Held while __main__ is swapped for a spawn.
_shared_lock = threading.Lock()  # Guards _shared.
_shared: HeadWorker | None = None


class HeadWorker:
    """A spawned child that imports Keras once, then runs `teach.train` / `teach.learning_curve` jobs."""

    def __init__(self):
        context = multiprocessing.get_context("spawn")  # Forking a process with TensorFlow in it is unsafe.
        self.requests = context.Queue()
        self.replies = context.Queue()
        # A request can be larger than the pipe's buffer; if the child dies before reading it,
        # the queue's feeder thread must not hold this process open at exit.
        self.requests.cancel_join_thread()
        self.process = context.Process(
            target=_child_main, args=(self.requests, self.replies), name="teach-head", daemon=True
        )
        self._job_lock = threading.Lock()
        # A spawned child re-runs the parent's __main__ file, which under Streamlit (and AppTest)
        # is a page script; it needs only core.catdog.teach, so it is shown a bare __main__.
        with _start_lock:
            real_main = sys.modules["__main__"]
            sys.modules["__main__"] = types.ModuleType("__main__")
            try:
                self.process.start()
            finally:
                sys.modules["__main__"] = real_main

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def run(self, kind: str, arguments: dict, progress: Progress | None = None):
        """Runs one job in the child, mirroring its progress into `progress`; returns its result.

        Raises:
            TeachError: the job failed (its message) or the child died.
        """
        with self._job_lock:
            self.requests.put((kind, arguments))
            while True:
                try:
                    tag, payload = self.replies.get(timeout=0.2)
                except queue.Empty:
                    if not self.alive:
                        raise TeachError(
                            f"The training process ended unexpectedly (exit code {self.process.exitcode}); "
                            "press Train again to start a new one."
                        ) from None
                    continue
                if tag == "progress" and progress is not None:
                    progress.update(payload)
                elif tag == "done":
                    return payload
                elif tag == "error":
                    raise TeachError(payload)

    def close(self) -> None:
        if self.alive:
            self.requests.put(None)
            self.process.join(timeout=10)


def shared_worker() -> HeadWorker:
    """The process-wide worker, started on first use (or again if it died)."""
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.alive:
            _shared = HeadWorker()
        return _shared


def train_in_worker(features, labels, class_names, config, progress: Progress | None = None):
    """`teach.train` in the shared child process (same arguments, same result)."""
    arguments = {"features": features, "labels": labels, "class_names": list(class_names), "config": config}
    return shared_worker().run("train", arguments, progress)


def learning_curve_in_worker(features, labels, num_classes, config, repeats: int = 3, progress=None):
    """`teach.learning_curve` in the shared child process."""
    arguments = {"features": features, "labels": labels, "num_classes": num_classes, "config": config,
                 "repeats": repeats}  # fmt: skip
    return shared_worker().run("learning_curve", arguments, progress)


def _child_main(requests, replies) -> None:
    """The child: import Keras, then run each job and stream its snapshots."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: F401 (imported once, before the first job)

    from core.catdog import teach

    functions = {"train": teach.train, "learning_curve": teach.learning_curve}
    while True:
        request = requests.get()
        if request is None:
            return
        kind, arguments = request
        last_sent = [0.0]

        def forward(progress, last_sent=last_sent):
            now = time.monotonic()
            if now - last_sent[0] >= SNAPSHOT_SECONDS:
                last_sent[0] = now
                replies.put(("progress", progress.snapshot()))

        progress = teach.Progress(listener=forward)
        try:
            result = functions[kind](**arguments, progress=progress)
        except Exception as error:  # Sent back as text; the parent raises it as a TeachError.
            replies.put(("error", str(error)))
            continue
        replies.put(("progress", progress.snapshot()))
        replies.put(("done", result))
