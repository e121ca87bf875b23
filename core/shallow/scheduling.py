"""Who trains next: the queue's scheduling, kept apart from where a job runs.

`JobQueue` asks a scheduler which waiting job starts when a slot frees; where it then runs
(a thread, a warm child process, later another executor) is the queue's other half and
knows nothing of this. A scheduler only reads each waiting job's `owner` and `pinned`.

    FifoScheduler  the single-user app: first come, first served.
    FairScheduler  classroom mode: turns go round-robin between sessions (the session served
                   longest ago, or never, goes first), at most `running_per_owner` jobs of a
                   session train at once, and a job the lecturer pinned goes before all.

`plan` replays a scheduler over time with each job's estimated length, which gives every
waiting job its place in line and an estimated start; `check_job_minutes` refuses a job
longer than the lecturer's cap and says how to get under it.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from core.shallow.config import TrainingConfig, estimate, format_duration, smaller_network


class FifoScheduler:
    """First come, first served."""

    def pick(self, waiting: Sequence, running_owners: Counter, last_served: Mapping) -> int | None:
        """The index in `waiting` of the job to start now, or None to start nothing."""
        return 0 if waiting else None


class FairScheduler:
    """Round-robin between owners, with at most `running_per_owner` jobs of one owner training at once."""

    def __init__(self, running_per_owner: int = 1):
        self.running_per_owner = running_per_owner

    def pick(self, waiting: Sequence, running_owners: Counter, last_served: Mapping) -> int | None:
        """The pinned job first; else the oldest job of the owner served longest ago that is under its cap.

        Args:
            waiting: jobs in arrival order (each with `.owner` and `.pinned`).
            running_owners: how many jobs each owner has training now.
            last_served: a number for each owner that grows with every start (absent: never served).
        """
        for index, job in enumerate(waiting):
            if job.pinned:
                return index
        candidates = [
            (last_served.get(job.owner, -1), index)
            for index, job in enumerate(waiting)
            if job.owner is None or running_owners[job.owner] < self.running_per_owner
        ]
        return min(candidates)[1] if candidates else None


def plan(
    scheduler,
    waiting: Sequence,
    running: Sequence[tuple[str | None, float]],
    slots: int,
    last_served: Mapping,
    duration: Callable[[object], float],
) -> list[tuple[object, float]]:
    """The order the waiting jobs would start in, and when, if every job took its estimate.

    Args:
        scheduler: a `FifoScheduler` or `FairScheduler`.
        waiting: the waiting jobs, in arrival order.
        running: (owner, seconds left) of each job training now.
        slots: how many jobs train at once.
        last_served: as for `FairScheduler.pick`.
        duration: a job's estimated length in seconds.

    Returns:
        (job, seconds from now until it starts), in the order they would start.
    """
    finishes = [(max(0.0, left), serial, owner) for serial, (owner, left) in enumerate(running)]
    heapq.heapify(finishes)
    serials = itertools.count(len(finishes))
    busy = Counter(owner for owner, _ in running)
    served = dict(last_served)
    turn = itertools.count(max(served.values(), default=0) + 1)
    free, now, pending, order = slots - len(running), 0.0, list(waiting), []
    while pending:
        index = scheduler.pick(pending, busy, served) if free > 0 else None
        if index is not None:
            job = pending.pop(index)
            order.append((job, now))
            served[job.owner] = next(turn)
            busy[job.owner] += 1
            free -= 1
            heapq.heappush(finishes, (now + max(0.0, duration(job)), next(serials), job.owner))
            continue
        if not finishes:  # Nothing will ever free a slot (no slots at all): the rest never start.
            break
        finish, _, owner = heapq.heappop(finishes)
        now = max(now, finish)
        free += 1
        busy[owner] -= 1
    return order


def run_seconds(config: TrainingConfig, has_gpu: bool = False) -> float:
    """The estimated length of a whole run (every epoch, no early stop), as the page shows it."""
    return estimate(config, has_gpu).seconds_per_epoch * config.epochs


def check_job_minutes(config: TrainingConfig, max_minutes: float | None, has_gpu: bool = False) -> float:
    """Returns the run's estimated seconds, or refuses a run longer than the lecturer's cap.

    Raises:
        ValueError: the run would take longer than `max_minutes`; the message says the cap and
            the largest number of epochs, or of training images, that would fit under it.
    """
    seconds = run_seconds(config, has_gpu)
    if max_minutes is None or seconds <= max_minutes * 60:
        return seconds
    cap = max_minutes * 60
    per_epoch = seconds / config.epochs
    ways = []
    epochs = math.floor(cap / per_epoch) + 1  # Checked against the estimate itself, so rounding cannot cost an epoch.
    while epochs >= 1 and run_seconds(config.replace(epochs=epochs), has_gpu) > cap:
        epochs -= 1
    if epochs >= 1:
        ways.append(f"at most {epochs:,} epochs")
    if (images := _largest_subset(config, cap, has_gpu)) is not None:
        ways.append(f"a subset of at most {images:,} training images (with {config.epochs:,} epochs)")
    advice = " or ".join(ways) if ways else f"{smaller_network(config)}, fewer epochs and a subset together"
    raise ValueError(
        f"This run could take up to {format_duration(seconds)} here ({config.epochs:,} epochs of about "
        f"{format_duration(per_epoch)}), over the lecturer's cap of {format_duration(cap)} per job. "
        f"To get under it, use {advice}."
    )


def _largest_subset(config: TrainingConfig, cap_seconds: float, has_gpu: bool) -> int | None:
    """The most training images whose estimated run fits in `cap_seconds` (bisection on the estimate)."""

    def fits(images: int) -> bool:
        return run_seconds(config.replace(train_limit=images), has_gpu) <= cap_seconds

    low, high = max(10, config.batch_size), config.train_size
    if low > high or not fits(low):
        return None
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    # A round number a student can type, still under the cap.
    rounded = low // 100 * 100 if low >= 1000 else low
    return max(rounded, max(10, config.batch_size))
