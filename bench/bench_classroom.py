"""A lecture hall on one server: 30 sessions queue jobs fairly, 30 watch a run, one changes settings."""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

TITLE = "Lecture hall: 30 sessions queue small jobs, 30 sessions watch a run"
DESCRIPTION = """
Loopback only, bounded in count and time; everything goes through the app's own code.
**Queue**: a classroom-mode `JobQueue` training in a warm child process (as the app's does)
takes a 4-epoch job from session 0, then, while it trains, a small job (8 neurons, 300
images, 1 epoch) from each of sessions 1-29, and a second one from sessions 1-5 (they may
have two waiting); sessions 27-29 then cancel theirs. Round-robin means every session's
first job starts before anyone's second; first come first served would have run each of
sessions 1-5's pair back to back. The estimate of the last job's start, made when it was
queued, is compared with when it really started.
**Watchers**: a real server (`streamlit run app.py` on 127.0.0.1, classroom mode) trains the
article's 392-neuron model (numpy engine, 600 images a short epoch) that one tab started;
30 more tabs open its `?job=` link and then do what a browser does while it shows the page:
rerun each fragment the server puts on a timer (someone else's live panel every 3 s, the job
list every 5 s in classroom mode), with Streamlit's own websocket messages (`bench/streamlit_client.py`), not
browsers, whose drawing belongs on the students' laptops. Windows with nobody watching and
with the 30 tabs polling alternate, so the machine's other load hits both alike; training
speed is the run's own epochs that ended in each window (images / epoch seconds). One more
tab changes the neurons once a second throughout and its page reruns are timed. The server's
CPU use is its process's user and system time (the training child not included); memory its
resident set. The two cores also run the tabs and this bench, so the cost is, if anything,
overstated.
**How the 15% is met**: the charts are built once per epoch and shared, watchers poll every
3 s, polling reruns run at nice 10, and the app turns off Streamlit's full garbage collection
after every script run (`runner.postScriptGC = false` in `.streamlit/config.toml`; 70-90 ms of
CPU per fragment rerun). The same watcher windows run with Streamlit's default collection just
before this run (2026-12-02 01:55, same machine): 32.7% of the speed lost (463 vs 312
images/s), the server at 75% of a core with 30 watching, a settings change 142 ms (median) and
3.8 s (95th percentile), the server's memory the same 205 MiB.
"""

SESSIONS = 30
WATCHERS = 30


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _owner(index: int) -> str:
    return f"session{index:02d}".ljust(22, "x")


def fair_queue(sessions: int, deadline_s: float) -> list[dict]:
    from core.classroom import ClassLimits
    from core.shallow.config import TrainingConfig
    from core.shallow.jobs import JobQueue
    from core.shallow.runs import RunStore

    small = TrainingConfig(hidden_units=(8,), dropout=0.5, learning_rate=3e-3, train_limit=300, batch_size=50, epochs=1)
    doubles = min(5, sessions - 1)
    cancelling = list(range(max(doubles + 1, sessions - 3), sessions))
    with tempfile.TemporaryDirectory() as folder:
        queue = JobQueue(
            store=RunStore(f"{folder}/runs.sqlite"), isolation="process", limits=ClassLimits(waiting_per_session=2)
        )
        queue.prestart()
        time.sleep(8)  # The child imports Keras and loads the data, as it does while the class reads the page.
        started = time.monotonic()
        first = queue.submit(small.replace(train_limit=2000, epochs=4), owner=_owner(0))
        jobs = {0: [first]}
        for index in range(1, sessions):
            jobs[index] = [queue.submit(small.replace(seed=index), owner=_owner(index))]
        for index in range(1, doubles + 1):
            jobs[index].append(queue.submit(small.replace(seed=100 + index), owner=_owner(index)))
        for index in cancelling:
            queue.cancel(jobs[index][0].id)
        last = queue.waiting()[-1]
        estimated_wait = last.snapshot().start_in_seconds
        queued_at = time.time()
        everything = [job for session in jobs.values() for job in session]
        while not all(job.snapshot().done for job in everything) and time.monotonic() - started < deadline_s:
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        statuses = [job.snapshot().status for job in everything]
        expected = [first] + [jobs[index][0] for index in range(1, sessions) if index not in cancelling]
        expected += [jobs[index][1] for index in range(1, doubles + 1)]
        order = sorted((job for job in everything if job.started_at), key=lambda job: job.started_at)
        child_rss = max((rss_mib(p.process.pid) for p in queue.executor._processes if p.alive), default=float("nan"))
        queue.close()
    return [
        {"metric": "jobs queued by the sessions", "value": len(everything), "unit": "jobs"},
        {"metric": "jobs finished", "value": statuses.count("finished"), "unit": "jobs"},
        {"metric": "jobs cancelled (by their sessions)", "value": statuses.count("cancelled"), "unit": "jobs"},
        {
            "metric": "jobs in any other state at the end",
            "value": len(statuses) - statuses.count("finished") - statuses.count("cancelled"),
            "unit": "jobs",
            "note": f"deadline {deadline_s:.0f} s",
        },
        {
            "metric": "start order was round-robin",
            "value": "yes" if order == expected else "no",
            "note": "every session's first job before anyone's second",
        },
        {"metric": "whole queue drained in", "value": elapsed, "unit": "s"},
        {
            "metric": "last job's wait: estimated when queued",
            "value": estimated_wait,
            "unit": "s",
            "note": "from the estimates of the jobs ahead",
        },
        {
            "metric": "last job's wait: actual",
            "value": (last.started_at or float("nan")) - queued_at,
            "unit": "s",
            "note": "the queue adds the overhead it saw beyond each estimate (data, test set, saving) once jobs have finished; none had when this one was queued",
        },
        {"metric": "training child's memory", "value": child_rss, "unit": "MiB"},
    ]


def _images_per_second(job, seconds: float) -> float:
    """Training speed over a window, from the job's progress (whole batches) and its batch size."""

    def done(progress) -> int:
        return len(progress.history) * progress.batches_per_epoch + (
            progress.batch if progress.status == "running" else 0
        )

    before, start = done(job.snapshot()), time.perf_counter()
    time.sleep(seconds)
    after, end = done(job.snapshot()), time.perf_counter()
    return (after - before) * job.config.batch_size / (end - start)


WATCHED = "units=392&dropout=0.8&images=600&batch=16&val=0.01&epochs=5000&patience=5000"
"""The watched run: the article's model on 600 images (epochs of a few seconds), for as long as the bench lasts."""


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of one process (all its threads, none of its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _epochs(db: str) -> dict[int, float]:
    """Epoch number -> its seconds, of the one run in the store."""
    import sqlite3

    with sqlite3.connect(db) as connection:
        return dict(connection.execute("SELECT epoch, seconds FROM history").fetchall())


async def _watch(server, db: str, count: int, window_s: float, rounds: int) -> list[dict]:
    from bench.streamlit_client import Tab

    page = "shallow_nets"
    starter = Tab(server.url, page, WATCHED)
    opened = await starter.open()
    await starter.rerun(click=opened.buttons["Start training"])
    if "job=" not in starter.query:
        raise RuntimeError(f"the page did not start the job (its address: {starter.query})")
    deadline = time.monotonic() + 300
    while len(_epochs(db)) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    tabs = [Tab(server.url, page, starter.query) for _ in range(count)]
    for tab in tabs:
        await tab.open()
    intervals = sorted({interval for tab in tabs for interval in tab.auto_reruns.values()})
    changer = Tab(server.url, page, WATCHED.replace("&epochs=5000", "&epochs=20"))
    units_widget = (await changer.open()).widgets["sn_units_1"]
    for units in (100, 101):  # The first estimate of each times a few batches; later ones are cached.
        await changer.rerun(numbers={units_widget: units})
    train_images = 600
    measured = {
        label: {"rates": [], "latencies": [], "served": [], "server_cpu": []} for label in ("alone", "watching")
    }
    # Alternating windows, so that a change in the machine's other load hits both cases alike.
    for _ in range(rounds):
        for label in ("alone", "watching"):
            stop, served = asyncio.Event(), []
            pollers = [asyncio.create_task(tab.poll(stop, served)) for tab in tabs] if label == "watching" else []
            await asyncio.sleep(3)  # The epoch in progress ends under the new conditions.
            before, cpu_before, start = _epochs(db), _cpu_seconds(server.process.pid), time.perf_counter()
            units, numbers = 100, measured[label]
            while time.perf_counter() - start < window_s:
                units = 201 - units
                result = await changer.rerun(numbers={units_widget: units})
                numbers["latencies"].append(result.seconds)
                await asyncio.sleep(max(0.0, 1.0 - result.seconds))
            elapsed = time.perf_counter() - start
            after = _epochs(db)
            inside = [seconds for epoch, seconds in after.items() if epoch not in before]  # Ended in the window.
            numbers["rates"].append(train_images * len(inside) / sum(inside) if inside else float("nan"))
            numbers["served"].append(sum(1 for moment in served if moment >= start) / elapsed)
            numbers["server_cpu"].append((_cpu_seconds(server.process.pid) - cpu_before) / elapsed)
            stop.set()
            await asyncio.gather(*pollers)
    memory = rss_mib(server.process.pid)
    for tab in [starter, changer, *tabs]:
        await tab.close()
    rows = _watch_rows(measured, count, window_s, rounds, intervals)
    rows.append(
        {
            "metric": "fragment reruns asked for that never finished",
            "value": sum(tab.missed for tab in tabs),
            "unit": "reruns",
        }
    )
    return [*rows, {"metric": f"server process memory with {count + 2} sessions", "value": memory, "unit": "MiB"}]


def _watch_rows(measured: dict, count: int, window_s: float, rounds: int, intervals: list[float]) -> list[dict]:
    def median(label: str, name: str) -> float:
        return statistics.median(measured[label][name])

    def p95(label: str) -> float:
        latencies = sorted(measured[label]["latencies"])
        return latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]

    alone, watched = median("alone", "rates"), median("watching", "rates")
    windows = {label: ", ".join(f"{rate:.0f}" for rate in measured[label]["rates"]) for label in measured}
    every = " and ".join(f"{interval:g} s" for interval in intervals) or "no timer"
    return [
        {
            "metric": "training speed, nobody watching",
            "value": alone,
            "unit": "images/s",
            "note": f"median of {rounds} windows of {window_s:.0f} s: {windows['alone']}",
        },
        {
            "metric": f"training speed, {count} tabs watching",
            "value": watched,
            "unit": "images/s",
            "note": f"windows: {windows['watching']}",
        },
        {
            "metric": f"speed lost to the {count} watchers",
            "value": 100 * (1 - watched / alone),
            "unit": "%",
            "note": "target: at most 15%",
        },
        {
            "metric": "fragment reruns served to the watchers",
            "value": median("watching", "served"),
            "unit": "per s",
            "note": f"{count} tabs, each fragment rerun on the server's timer ({every})",
        },
        {
            "metric": "server's CPU use, nobody watching",
            "value": 100 * median("alone", "server_cpu"),
            "unit": "% of a core",
            "note": "one settings change a second included",
        },
        {
            "metric": f"server's CPU use, {count} watching",
            "value": 100 * median("watching", "server_cpu"),
            "unit": "% of a core",
        },
        {
            "metric": "settings change, median page rerun (nobody watching)",
            "value": 1000 * median("alone", "latencies"),
            "unit": "ms",
        },
        {
            "metric": f"settings change, median page rerun ({count} watching)",
            "value": 1000 * median("watching", "latencies"),
            "unit": "ms",
        },
        {
            "metric": f"settings change, 95th percentile ({count} watching)",
            "value": 1000 * p95("watching"),
            "unit": "ms",
            "note": f"{len(measured['watching']['latencies'])} changes",
        },
    ]


def watchers(count: int, window_s: float, rounds: int) -> list[dict]:
    """A real server (`streamlit run`, classroom mode) trains a run that `count` tabs watch, alternately none."""
    from core.devserver import AppServer

    with tempfile.TemporaryDirectory() as folder:
        env = {"EXPLORER_DATA_DIR": folder, "EXPLORER_LECTURER_KEY": "bench-lecturer-key"}
        with AppServer(env=env, log_path=Path(folder) / "server.log") as server:
            return asyncio.run(_watch(server, f"{folder}/runs.sqlite", count, window_s, rounds))


def run(tiny: bool = False) -> list[dict]:
    if tiny:
        return fair_queue(4, deadline_s=240) + watchers(3, window_s=8, rounds=1)
    return fair_queue(SESSIONS, deadline_s=900) + watchers(WATCHERS, window_s=20, rounds=3)
