"""The queue in classroom mode: round-robin turns, per-session caps, who may stop what, the lecturer's controls.

Most tests replace the training itself by a gate that each test opens, so that they pin the
queue's decisions in a fraction of a second; the last ones train for real (tiny runs).
"""

from __future__ import annotations

import threading
from collections import defaultdict

import pytest

from core.classroom import Actor, ClassLimits, NotYours
from core.shallow.config import TrainingConfig
from core.shallow.jobs import JobQueue, QueueLimitError, TrainingJob
from core.shallow.runs import RunStore
from core.shallow.scheduling import run_seconds

TINY = TrainingConfig(hidden_units=(8,), dropout=0.5, learning_rate=3e-3, train_limit=600, batch_size=50, epochs=3)
A, B, C = "a" * 22, "b" * 22, "c" * 22
LECTURER = Actor(owner="l" * 22, lecturer=True, classroom=True)


def student(owner: str) -> Actor:
    return Actor(owner=owner, classroom=True)


@pytest.fixture
def gates(monkeypatch):
    """Jobs that 'train' until their gate opens, then finish."""
    opened: defaultdict[str, threading.Event] = defaultdict(threading.Event)

    def gated_run(job: TrainingJob) -> None:
        job._update(status="running", message="Training")
        opened[job.id].wait(20)
        job._update(status="finished", message="done", queue_position=None)
        job._finished.set()

    monkeypatch.setattr(TrainingJob, "run", gated_run)
    return opened


def classroom_queue(tmp_path, **limits) -> JobQueue:
    return JobQueue(store=RunStore(tmp_path / "runs.sqlite"), limits=ClassLimits(**limits))


def finish(gates, job) -> None:
    gates[job.id].set()
    assert job.wait(60).status == "finished"


def test_turns_go_round_robin_between_sessions(tmp_path, gates):
    """a queues three jobs, then b and c one each: they start a, b, c, a, a, not in arrival order."""
    queue = classroom_queue(tmp_path, waiting_per_session=3)
    a1, a2, a3 = (queue.submit(TINY.replace(seed=seed), owner=A) for seed in (1, 2, 3))
    b1, c1 = queue.submit(TINY, owner=B), queue.submit(TINY, owner=C)
    assert [job.snapshot().queue_position for job in (a1, b1, c1, a2, a3)] == [0, 1, 2, 3, 4]
    assert queue.waiting() == [b1, c1, a2, a3]
    for job in (a1, b1, c1, a2, a3):
        finish(gates, job)
    started = sorted((a1, a2, a3, b1, c1), key=lambda job: job.started_at)
    assert started == [a1, b1, c1, a2, a3]


def test_one_waiting_job_per_session_and_a_flood_of_starts_queues_one(tmp_path, gates):
    """With the default caps a second waiting job is refused with the cap; 20 simultaneous Starts queue one job."""
    queue = classroom_queue(tmp_path)
    running = queue.submit(TINY, owner=A)
    queue.submit(TINY.replace(seed=2), owner=A)
    with pytest.raises(QueueLimitError, match="allows 1 per session"):
        queue.submit(TINY.replace(seed=3), owner=A)
    outcomes: list = []

    def click() -> None:
        try:
            outcomes.append(queue.submit(TINY.replace(seed=9), owner=B))
        except QueueLimitError as error:
            outcomes.append(error)

    clicks = [threading.Thread(target=click) for _ in range(20)]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join()
    assert sum(isinstance(outcome, TrainingJob) for outcome in outcomes) == 1
    assert len(queue.active(B)) == 1
    finish(gates, running)


def test_the_same_configuration_twice_is_refused_even_while_running(tmp_path, gates):
    """A session whose job is running cannot queue the very same settings again."""
    queue = classroom_queue(tmp_path)
    job = queue.submit(TINY, owner=A)
    with pytest.raises(QueueLimitError, match="this very configuration"):
        queue.submit(TINY, owner=A)
    finish(gates, job)


def test_only_the_owner_or_the_lecturer_stops_or_cancels_a_job(tmp_path, gates):
    """b cannot stop a's running job or cancel its waiting one; a cancels its own; the lecturer stops any."""
    queue = classroom_queue(tmp_path)
    running, waiting = queue.submit(TINY, owner=A), queue.submit(TINY.replace(seed=2), owner=A)
    with pytest.raises(NotYours, match="another session"):
        queue.cancel(running.id, student(B))
    with pytest.raises(NotYours):
        queue.cancel(waiting.id, student(B))
    assert not running.stop_requested and waiting.snapshot().status == "queued"
    assert queue.cancel(waiting.id, student(A)) and waiting.snapshot().status == "cancelled"
    assert queue.cancel(running.id, LECTURER) and running.stop_requested
    finish(gates, running)


def test_the_lecturer_reorders_and_clears_the_queue_and_students_cannot(tmp_path, gates):
    """'Run next' puts a waiting job first; clearing cancels every waiting job and leaves the running one."""
    queue = classroom_queue(tmp_path)
    running = queue.submit(TINY, owner=A)
    b1, c1 = queue.submit(TINY, owner=B), queue.submit(TINY, owner=C)
    with pytest.raises(NotYours):
        queue.move_to_front(c1.id, student(C))
    queue.move_to_front(c1.id, LECTURER)
    assert queue.waiting() == [c1, b1] and c1.snapshot().queue_position == 1
    with pytest.raises(NotYours):
        queue.clear_waiting(student(B))
    assert queue.clear_waiting(LECTURER) == 2
    assert {b1.snapshot().status, c1.snapshot().status} == {"cancelled"} and not running.snapshot().done
    finish(gates, running)


def test_each_waiting_job_knows_its_estimated_start(tmp_path, gates):
    """The wait of the second in line is the running job's estimate plus the first's (from config's estimates)."""
    queue = classroom_queue(tmp_path)
    configs = [TINY.replace(epochs=epochs) for epochs in (30, 60, 90)]
    running, first, second = (
        queue.submit(config, owner=owner) for config, owner in zip(configs, (A, B, C), strict=True)
    )
    assert first.snapshot().start_in_seconds == pytest.approx(run_seconds(configs[0]), rel=1e-6)
    assert second.snapshot().start_in_seconds == pytest.approx(
        run_seconds(configs[0]) + run_seconds(configs[1]), rel=1e-6
    )
    assert running.snapshot().start_in_seconds is None
    finish(gates, running)


def test_a_job_over_the_lecturers_cap_is_refused_but_the_lecturers_own_is_not(tmp_path, gates):
    """A run estimated over EXPLORER_MAX_JOB_MINUTES is refused with a way under it; exempt=True queues it."""
    long_run = TINY.replace(train_limit=None, epochs=400)
    queue = classroom_queue(tmp_path, max_job_minutes=run_seconds(long_run) / 60 / 4)
    with pytest.raises(ValueError, match="over the lecturer's cap .* at most (99|100) epochs"):
        queue.submit(long_run, owner=A)
    assert queue.jobs() == []
    job = queue.submit(long_run, owner="l" * 22, exempt=True)
    finish(gates, job)


def test_single_user_mode_keeps_first_come_first_served(tmp_path, gates):
    """Without limits the queue is FIFO, takes any number of jobs per owner and lets anyone cancel."""
    queue = JobQueue(store=RunStore(tmp_path / "runs.sqlite"))
    jobs = [queue.submit(TINY, owner=owner) for owner in (A, A, A, B)]
    assert [job.snapshot().queue_position for job in jobs] == [0, 1, 2, 3]
    assert queue.cancel(jobs[1].id)
    queue.configure(ClassLimits(waiting_per_session=5))  # Switching classroom mode on reorders what waits.
    assert queue.waiting() == [jobs[3], jobs[2]]
    for job in (jobs[0], jobs[3], jobs[2]):
        finish(gates, job)


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_a_real_run_records_its_session_and_nickname(tmp_path, isolation):
    """A trained run (in this process or a child) is saved under its owner and nickname, with nobody watching."""
    queue = JobQueue(store=RunStore(tmp_path / "runs.sqlite"), isolation=isolation, limits=ClassLimits())
    try:
        progress = queue.submit(TINY.replace(epochs=1), owner=A, nickname="Ada").wait(180)
        assert progress.status == "finished", progress.error
        run = queue.store.get_run(progress.run_id)
        assert (run.session_owner, run.nickname, run.status) == (A, "Ada", "finished")
    finally:
        queue.close()


def test_estimated_starts_learn_the_overhead_finished_jobs_showed(tmp_path, gates):
    """After a job took 0.5 s longer than its estimate, the next waits count that half second per job ahead."""
    queue = classroom_queue(tmp_path)
    first = queue.submit(TINY, owner=A)
    first.started_at -= 0.5 + first.estimated_seconds  # As if it had run half a second past its estimate.
    finish(gates, first)
    running, waiting = queue.submit(TINY, owner=B), queue.submit(TINY, owner=C)
    assert waiting.snapshot().start_in_seconds == pytest.approx(run_seconds(TINY) + 0.5, abs=0.05)
    finish(gates, running)
    finish(gates, waiting)
