"""Calibration: an engine's own batches timed on real images, turned into seconds per epoch."""

from __future__ import annotations

import numpy as np
import pytest

from core.shallow import calibration, jobs
from core.shallow.calibration import Calibration, calibrate, calibrate_in_subprocess, speed_key
from core.shallow.config import TrainingConfig

SMALL = TrainingConfig(hidden_units=(8,), dropout=0.5, batch_size=64, train_limit=2000)


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class ScriptedEngine:
    """An engine calibration knows nothing about: each step 'takes' the seconds in `steps` on a fake clock."""

    name = "scripted"

    def __init__(self, clock: FakeClock, steps, seconds_per_image: float):
        self.clock, self.steps, self.seconds_per_image = clock, steps, seconds_per_image
        self.seen: list[np.ndarray] = []
        self.closed = False

    def train_epoch(self, images, labels, on_batch):
        self.seen.append(images)
        for index in range(-(-len(labels) // 64)):
            self.clock.now += self.steps(index)
            if on_batch(index, 1.0, 0.1) is False:
                break
        return 1.0, 0.1

    def evaluate(self, images, labels):
        self.clock.now += len(labels) * self.seconds_per_image
        return 1.0, 0.1

    def close(self):
        self.closed = True


def scripted(monkeypatch, steps, seconds_per_image=1e-4) -> tuple[ScriptedEngine, list[str]]:
    clock = FakeClock()
    engine = ScriptedEngine(clock, steps, seconds_per_image)
    asked = []

    def make_engine(config, model, engine_name):
        asked.append(engine_name)
        return engine

    monkeypatch.setattr(calibration, "clock", clock)
    monkeypatch.setattr(jobs, "make_engine", make_engine)
    return engine, asked


def test_any_engine_is_timed_through_its_own_train_epoch(monkeypatch):
    """Slow warm-up batches are left out, the steady step and the validation pass are what counts,
    and the engine is trained on real Fashion-MNIST images, then closed."""
    engine, asked = scripted(monkeypatch, lambda index: 2.0 if index < 2 else 0.05)
    result = calibrate(SMALL, engine_name="scripted")
    assert asked == ["scripted"] and engine.closed
    assert result.seconds_per_batch == pytest.approx(0.05)
    assert result.seconds_per_validation_image == pytest.approx(1e-4)
    images = engine.seen[0]
    assert images.shape[1] == 784 and images.min() >= 0.0 and images.max() <= 1.0 and images.std() > 0.1
    # 0.05 s steps reach 3 s of timing only after 60: it stops at the most, 2 + 60 batches.
    assert len(images) == (calibration.WARM_UP_BATCHES + calibration.TIMED_BATCHES[1]) * 64


def test_one_interrupted_batch_does_not_move_the_median(monkeypatch):
    """A step stalled by another process (5 s among 0.5 s steps) leaves the median step at 0.5 s."""
    scripted(monkeypatch, lambda index: 5.0 if index == 3 else 0.5)
    assert calibrate(SMALL, engine_name="scripted").seconds_per_batch == pytest.approx(0.5)


def test_seconds_per_epoch_counts_every_batch_and_the_validation_pass():
    """54,000 images in batches of 128 are 422 steps; plus 6,000 validation images."""
    timing = Calibration("numpy", seconds_per_batch=0.07, seconds_per_validation_image=2e-5, measured_in_seconds=1)
    assert timing.seconds_per_epoch(TrainingConfig()) == pytest.approx(422 * 0.07 + 6000 * 2e-5)
    subset = TrainingConfig(train_limit=5000)  # 40 batches
    assert timing.seconds_per_epoch(subset) == pytest.approx(40 * 0.07 + 6000 * 2e-5)


def test_speed_key_keeps_only_what_changes_the_speed_of_a_step():
    """Epochs, patience, seed, subset and validation share give one key; batch size and neurons do not."""
    base = speed_key(TrainingConfig())
    assert speed_key(TrainingConfig(epochs=3, patience=2, seed=9, train_limit=500, validation_split=0.2)) == base
    assert speed_key(TrainingConfig(batch_size=64)) != base
    assert speed_key(TrainingConfig(hidden_units=(78,))) != base


@pytest.mark.parametrize("engine_name", ["numpy", "keras"])
def test_both_engines_calibrate_on_a_small_model(engine_name):
    """The real engines report a positive step time and validation time for a small model."""
    result = calibrate(SMALL, engine_name=engine_name)
    assert result.engine == engine_name
    assert result.seconds_per_batch > 0 and result.seconds_per_validation_image > 0
    assert result.seconds_per_epoch(SMALL) > result.seconds_per_batch * SMALL.batches_per_epoch


def test_calibrating_in_a_subprocess_returns_the_same_kind_of_answer():
    """The page's path (a fresh process, answer as JSON) gives a Calibration for the chosen engine."""
    result = calibrate_in_subprocess(SMALL)
    assert isinstance(result, Calibration) and result.engine == "numpy" and result.seconds_per_batch > 0


def test_the_background_timer_times_one_setting_at_a_time_newest_first(monkeypatch):
    """Many sessions asking at once start one timing at a time; the newest request goes first; old ones drop."""
    import threading
    import time

    from core.shallow import calibration

    gate, running, order = threading.Event(), [], []
    lock = threading.Lock()
    at_once = []

    def timed(config, timeout=300):
        with lock:
            running.append(config)
            at_once.append(len(running))
        gate.wait(10)
        with lock:
            running.remove(config)
            order.append(config.hidden_units[0])
        return calibration.Calibration("numpy", 0.01 * config.hidden_units[0], 1e-4, 0.1)

    monkeypatch.setattr(calibration, "calibrate_in_subprocess", timed)
    timer = calibration.BackgroundTimer(max_waiting=3)
    assert timer.result(SMALL.replace(hidden_units=(1,))) is None
    time.sleep(0.2)  # The first one is being timed; five more arrive meanwhile.
    for units in (2, 3, 4, 5, 6):
        assert timer.result(SMALL.replace(hidden_units=(units,), epochs=7)) is None
    gate.set()
    deadline = time.monotonic() + 10
    while timer.timed < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    assert max(at_once) == 1
    assert order == [1, 6, 5, 4]  # Then the newest three of the five; 2 and 3 were dropped.
    assert timer.result(SMALL.replace(hidden_units=(6,))).seconds_per_batch == 0.06  # Any epochs: one speed key.
    assert timer.result(SMALL.replace(hidden_units=(2,))) is None  # Dropped, so asked again.
    while timer.timed < 5 and time.monotonic() < deadline:  # Done before the next test patches the timing.
        time.sleep(0.05)
    assert order[-1] == 2


def test_a_failed_timing_is_kept_a_while_then_tried_again(monkeypatch):
    import time

    from core.shallow import calibration

    calls = []

    def fails(config, timeout=300):
        calls.append(config)
        raise RuntimeError("Timing a few batches took longer than 300 s.")

    monkeypatch.setattr(calibration, "calibrate_in_subprocess", fails)
    timer = calibration.BackgroundTimer(retry_after=0.5)
    assert timer.result(SMALL) is None
    deadline = time.monotonic() + 10
    while timer.timed < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert isinstance(timer.result(SMALL), RuntimeError) and len(calls) == 1
    time.sleep(0.6)
    assert timer.result(SMALL) is None  # Stale: queued again.
    while timer.timed < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(calls) == 2
