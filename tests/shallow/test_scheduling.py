"""Who trains next: FIFO, round-robin between sessions with caps, the planned start times, the length cap."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest

from core.shallow.config import TrainingConfig
from core.shallow.scheduling import FairScheduler, FifoScheduler, check_job_minutes, plan, run_seconds


@dataclass
class Job:
    name: str
    owner: str | None
    seconds: float = 60.0
    pinned: bool = False


def names(order) -> list[str]:
    return [job.name for job, _ in order]


def test_fifo_takes_the_oldest():
    """The single-user scheduler starts jobs in arrival order, whoever owns them."""
    waiting = [Job("a1", "a"), Job("a2", "a"), Job("b1", "b")]
    assert names(plan(FifoScheduler(), waiting, [], 1, {}, lambda job: job.seconds)) == ["a1", "a2", "b1"]


def test_fair_scheduler_goes_round_robin_between_owners():
    """A queued a, a, a, b, c runs a, b, c, a, a: each session gets a turn before anyone's second."""
    waiting = [Job("a1", "a"), Job("a2", "a"), Job("a3", "a"), Job("b1", "b"), Job("c1", "c")]
    order = plan(FairScheduler(running_per_owner=1), waiting, [], 1, {}, lambda job: job.seconds)
    assert names(order) == ["a1", "b1", "c1", "a2", "a3"]
    assert [start for _, start in order] == [0, 60, 120, 180, 240]


def test_the_owner_served_longest_ago_goes_first():
    """b was served before a, so b's job goes before a's; a never-served owner c goes before both."""
    waiting = [Job("a2", "a"), Job("b2", "b"), Job("c1", "c")]
    assert FairScheduler().pick(waiting, Counter(), {"b": 3, "a": 5}) == 2
    assert FairScheduler().pick(waiting[:2], Counter(), {"b": 3, "a": 5}) == 1


def test_a_session_at_its_running_cap_waits_even_with_a_free_slot():
    """With two slots and a's job running, a's next job waits for it while b's starts at once."""
    waiting = [Job("a2", "a"), Job("b1", "b")]
    order = plan(FairScheduler(running_per_owner=1), waiting, [("a", 100.0)], 2, {"a": 1}, lambda job: job.seconds)
    assert order == [(waiting[1], 0.0), (waiting[0], 100.0)]
    assert FairScheduler().pick([waiting[0]], Counter({"a": 1}), {"a": 1}) is None


def test_a_pinned_job_goes_before_the_round_robin():
    """The lecturer's 'run next' beats the rotation (and the owner's cap)."""
    waiting = [Job("b1", "b"), Job("a2", "a", pinned=True)]
    assert FairScheduler().pick(waiting, Counter({"a": 1}), {"a": 1}) == 1


def test_start_times_add_up_the_estimates_ahead():
    """One slot, 30 s left on the running job, then 60 s and 90 s jobs: starts at 30, 90 and 180 s."""
    waiting = [Job("b1", "b", 60), Job("c1", "c", 90), Job("d1", "d", 10)]
    order = plan(FairScheduler(), waiting, [("a", 30.0)], 1, {"a": 1}, lambda job: job.seconds)
    assert [(job.name, start) for job, start in order] == [("b1", 30), ("c1", 90), ("d1", 180)]


LONG = TrainingConfig(hidden_units=(392,), dropout=0.8, epochs=400)


def test_a_job_over_the_cap_is_refused_with_ways_under_it_that_fit():
    """The message gives the cap and the most epochs and images that fit; both suggestions really fit."""
    cap_minutes = run_seconds(LONG) / 60 / 8  # An eighth of the run: 50 epochs sit on the cap and must be offered.
    with pytest.raises(ValueError) as refused:
        check_job_minutes(LONG, cap_minutes)
    message = str(refused.value)
    assert "over the lecturer's cap" in message and "400 epochs" in message
    epochs = int(message.split("at most ")[1].split(" epochs")[0].replace(",", ""))
    images = int(message.split("subset of at most ")[1].split(" training")[0].replace(",", ""))
    assert run_seconds(LONG.replace(epochs=epochs)) <= cap_minutes * 60 < run_seconds(LONG.replace(epochs=epochs + 1))
    assert run_seconds(LONG.replace(train_limit=images)) <= cap_minutes * 60
    assert run_seconds(LONG.replace(train_limit=images + 200)) > cap_minutes * 60
    assert 40 <= epochs <= 60  # About an eighth of 400.


def test_a_job_under_the_cap_or_without_one_passes_with_its_estimate():
    """Under the cap, or with no cap, the estimated seconds come back."""
    seconds = run_seconds(LONG)
    assert check_job_minutes(LONG, None) == seconds
    assert check_job_minutes(LONG, seconds / 60 + 1) == seconds
