"""How long one epoch takes on this machine, measured by timing a few real batches.

An estimate a lecturer plans a demo with must hold on the machine it runs on, whatever its
CPU, GPU or engine. So instead of fixed constants, `calibrate` builds the configuration's
model, makes the engine that would train it (`core.shallow.jobs.make_engine`, the same one a job
uses), and times that engine's own `train_epoch` over a few batches of real Fashion-MNIST
images, then its `evaluate` on validation images. Nothing here knows how an engine works
inside, so a new engine is timed as soon as `make_engine` can build it.

    python -m core.shallow.calibration --neurons 392 --dropout 0.8 --json

The command line is how the web page calibrates: in a short-lived process, so the server
itself never imports TensorFlow, started by `BackgroundTimer` off the page script, one at a
time for the whole server; the page shows a first guess until the timing is in.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from functools import cache

from core.shallow.config import TrainingConfig, resolve_engine

WARM_UP_BATCHES = 2
"""Untimed first batches: buffers are allocated, threads start, Keras traces its step."""

TIMED_BATCHES = (4, 60)
"""At least 4 batches are timed, and more (up to 60) until TIMING_SECONDS have passed; the
median step counts, so one interruption by another process does not."""

TIMING_SECONDS = 3.0

VALIDATION_IMAGES = 2000

clock = time.perf_counter
"""The timer (a module attribute, so that tests can give it a scripted clock)."""


@dataclass(frozen=True)
class Calibration:
    """One configuration's measured speed on this machine.

    Attributes:
        engine: the engine timed ("numpy", "keras", ...).
        seconds_per_batch: median time of one training step at the config's batch size.
        seconds_per_validation_image: the per-epoch validation pass, per image.
        measured_in_seconds: how long calibrating took (model building included).
    """

    engine: str
    seconds_per_batch: float
    seconds_per_validation_image: float
    measured_in_seconds: float

    def seconds_per_epoch(self, config: TrainingConfig) -> float:
        """One epoch of `config` as a job runs it: every training batch, then the validation pass."""
        return (
            config.batches_per_epoch * self.seconds_per_batch
            + config.validation_count * self.seconds_per_validation_image
        )


def speed_key(config: TrainingConfig) -> TrainingConfig:
    """The settings that decide the speed of a step; epochs, subset size, seed and patience do not."""
    return config.replace(epochs=1, patience=1, seed=0, train_limit=None, validation_split=0.1)


def calibrate(config: TrainingConfig, engine_name: str | None = None, data_path: str | None = None) -> Calibration:
    """Times the engine that would train `config` on a few real batches and validation images.

    Args:
        config: the settings; only `speed_key(config)` matters.
        engine_name: the engine to time; by default the one a job would choose here.
        data_path: the Fashion-MNIST folder (default: wherever `core.data` finds it).
    """
    import keras

    from core.shallow.config import build_model
    from core.shallow.jobs import has_gpu, make_engine, split_data

    started = clock()
    config = speed_key(config)
    engine_name = engine_name or resolve_engine(config, has_gpu())
    (x_train, y_train), (x_val, y_val), _ = split_data(config, data_path)
    keras.utils.set_random_seed(0)
    engine = make_engine(config, build_model(config), engine_name)
    try:
        fewest, most = TIMED_BATCHES
        count = (WARM_UP_BATCHES + most) * config.batch_size
        batch_ends: list[float] = []

        def on_batch(*progress) -> bool:
            batch_ends.append(clock())
            timed = batch_ends[WARM_UP_BATCHES - 1 :]
            return len(timed) <= fewest or timed[-1] - timed[0] < TIMING_SECONDS

        engine.train_epoch(x_train[:count], y_train[:count], on_batch)
        timed = batch_ends[WARM_UP_BATCHES - 1 :]
        per_batch = statistics.median(later - earlier for earlier, later in zip(timed, timed[1:], strict=False))
        engine.evaluate(x_val[:256], y_val[:256])  # Warm-up: Keras traces its predict function once.
        images = min(VALIDATION_IMAGES, len(y_val))
        start = clock()
        engine.evaluate(x_val[:images], y_val[:images])
        per_image = (clock() - start) / images
    finally:
        engine.close()
    return Calibration(engine_name, per_batch, per_image, clock() - started)


@cache
def calibrated(config: TrainingConfig, engine_name: str | None = None) -> Calibration:
    """`calibrate`, once per process for each speed key (a job's process, the command line)."""
    return calibrate(speed_key(config), engine_name)


def calibrate_in_subprocess(config: TrainingConfig, timeout: float = 300) -> Calibration:
    """`calibrate` in a fresh Python process, so that the caller never imports TensorFlow.

    Raises:
        RuntimeError: the process failed or took longer than `timeout` seconds.
    """
    import subprocess

    command = [sys.executable, "-m", "core.shallow.calibration", "--config", json.dumps(speed_key(config).to_dict())]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"Timing a few batches took longer than {timeout:.0f} s.") from error
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise RuntimeError(f"Timing a few batches failed: {lines[-1] if lines else result.returncode}")
    return Calibration(**json.loads(result.stdout.strip().splitlines()[-1]))


class BackgroundTimer:
    """Times settings off the page: one short-lived process at a time, the newest request first.

    A page asks `result(config)` and gets the `Calibration` once timed, the `RuntimeError` when
    timing failed, or None while it waits (the page shows the first guess meanwhile and asks
    again). However many sessions change their settings at once, one timing process runs at a
    time (each imports TensorFlow: thirty at once would take seconds of every core and gigabytes
    of memory), and only the newest `max_waiting` requests wait: a student who moves the neuron
    slider through ten values gets the one they stopped at first. A failure is kept for
    `retry_after` seconds (a busy machine's timeout need not be final); results for
    `max_entries` speed keys.
    """

    def __init__(self, max_waiting: int = 8, max_entries: int = 256, retry_after: float = 60.0):
        self.max_waiting, self.max_entries, self.retry_after = max_waiting, max_entries, retry_after
        self._results: OrderedDict[TrainingConfig, tuple[Calibration | RuntimeError, float]] = OrderedDict()
        self._waiting: list[TrainingConfig] = []
        self._condition = threading.Condition()
        self._worker: threading.Thread | None = None
        self.timed = 0  # Timing processes run so far.

    def result(self, config: TrainingConfig) -> Calibration | RuntimeError | None:
        """The timing of `config`'s speed key, or None while it waits its turn (it is then queued)."""
        key = speed_key(config)
        with self._condition:
            kept = self._results.get(key)
            if kept is not None and (isinstance(kept[0], Calibration) or time.monotonic() - kept[1] < self.retry_after):
                self._results.move_to_end(key)
                return kept[0]
            if key in self._waiting:
                self._waiting.remove(key)
            self._waiting.append(key)
            del self._waiting[: -self.max_waiting]
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="estimate timer", daemon=True)
                self._worker.start()
            self._condition.notify()
        return None

    def _work(self) -> None:
        while True:
            with self._condition:
                if not self._waiting:
                    self._condition.wait(timeout=30)
                if not self._waiting:  # Idle for a while: the thread ends; the next request starts one.
                    self._worker = None
                    return
                key = self._waiting.pop()
            try:
                value = calibrate_in_subprocess(key)
            except RuntimeError as error:
                value = error
            except Exception as error:  # Whatever else went wrong, the page gets a reason, and the worker lives.
                value = RuntimeError(f"Timing a few batches failed: {error}")
            with self._condition:
                self.timed += 1
                self._results[key] = (value, time.monotonic())
                while len(self._results) > self.max_entries:
                    self._results.popitem(last=False)


def main(argv: list[str] | None = None) -> int:
    from core.shallow.__main__ import build_parser, config_from_args

    parser = build_parser()  # The training command's settings, so any run can be timed first.
    parser.prog, parser.description = "python -m core.shallow.calibration", __doc__.split("\n")[0]
    parser.add_argument("--config", help="the TrainingConfig as JSON, instead of the settings above")
    args = parser.parse_args(argv)
    try:
        config = TrainingConfig.from_dict(json.loads(args.config)) if args.config else config_from_args(args)
    except ValueError as error:
        parser.error(str(error))
    result = calibrate(config, None if args.engine == "auto" else args.engine)
    if args.config or args.json:
        print(json.dumps(asdict(result)))
    else:
        print(
            f"{config.label}, {result.engine} engine: {result.seconds_per_batch * 1000:.1f} ms per batch of "
            f"{config.batch_size}, so about {result.seconds_per_epoch(config):.1f} s per epoch of "
            f"{config.train_size:,} images (timing took {result.measured_in_seconds:.1f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
