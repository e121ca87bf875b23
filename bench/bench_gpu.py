"""The GPU check: Keras `fit` on JAX against the compiled JAX engine, then the article's full run.

    KERAS_BACKEND=jax python -m bench gpu            # on a GPU machine, under 8 minutes
    KERAS_BACKEND=jax python -m bench gpu --tiny     # the same script on a CPU, in seconds

Both engines train the article's model (392 per-pixel neurons, no activation, dropout 0.8,
Adam, batch 128, 54,000 images) for 3 epochs through the app's own job code, each epoch with
its validation pass; the per-epoch time is the median of the three (the first one includes
compilation). Then the article's full configuration (up to 377 epochs, early stopping with
patience 50) trains with the JAX engine, and its epoch-by-epoch history and test metrics are
written to `$OUT` (or `bench/results/gpu/`): `gpu-history.csv`, `gpu-run.json`, and
`gpu-replay.json`, which the lab replays once copied into `assets/replays/` (full runs only). `--tiny` runs
a 16-neuron model on 512 images with a few epochs, so the tests can run the whole script.

On a lent GPU machine (it has JAX but no TensorFlow or Keras): run `../shared/tools/device-kit`
at the project root, carry `.device`, and there run

    pip install --no-deps -q .device/wheels/*.whl
    export KERAS_BACKEND=jax FASHION_MNIST_DIR=$PWD/.device/fashion-mnist
    python3 -m bench gpu

Targets on a GPU: at most 0.2 s per epoch, at least 4x Keras `fit` on JAX, the full run in at
most 90 s, and at least 86.0% test accuracy (the article: 86.36%).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import time
from pathlib import Path

TITLE = "GPU: Keras fit on JAX vs the compiled JAX engine, and the article's full run"
DESCRIPTION = __doc__.split("\n\n", 2)[2].split("\n\nTargets")[0]
DEFAULT = False  # Only on request (`python -m bench gpu`): on a CPU the full run takes hours.

TARGET_SECONDS_PER_EPOCH = 0.2
TARGET_SPEEDUP = 4.0
TARGET_FULL_RUN_SECONDS = 90.0
TARGET_TEST_ACCURACY = 0.860


def output_dir() -> Path:
    folder = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path(__file__).resolve().parent / "results" / "gpu"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def train(config, store):
    """Trains one config through the app's queue (in this process); returns the progress and the run."""
    from core.shallow.jobs import JobQueue

    queue = JobQueue(store=store)
    try:
        progress = queue.submit(config, has_gpu=True).wait()
    finally:
        queue.close()
    if progress.status == "failed":
        raise RuntimeError(f"{config.engine} run failed: {progress.error}")
    return progress, store.get_run(progress.run_id)


def verdict(met: bool) -> str:
    return "target met" if met else "target NOT met"


def run(tiny: bool = False) -> list[dict]:
    from core.shallow.config import TrainingConfig
    from core.shallow.jax_engine import jax_device_name
    from core.shallow.replay import replay_record
    from core.shallow.runs import RunStore

    folder = output_dir()
    store = RunStore(folder / "gpu-runs.sqlite")
    if tiny:
        timing = TrainingConfig(hidden_units=(16,), train_limit=512, epochs=3, learning_rate=3e-3)
        full = timing.replace(epochs=6, patience=2)
    else:
        timing = TrainingConfig(epochs=3)
        full = TrainingConfig()  # The article's: 377 epochs, patience 50.
    rows = [{"metric": "device (JAX)", "value": jax_device_name(), "unit": "", "note": "tiny" if tiny else ""}]
    seconds = {}
    for engine in ("keras", "jax"):
        progress, record = train(timing.replace(engine=engine), store)
        seconds[engine] = record.seconds_per_epoch
        history = store.history(record.run_id)
        name = "Keras fit" if engine == "keras" else "JAX engine"
        rows.append(
            {
                "metric": f"{name} ({record.device}), {timing.label}, {timing.train_size:,} images: "
                "seconds per epoch (median of 3)",
                "value": record.seconds_per_epoch,
                "unit": "s",
                "note": f"first epoch {history[0]['seconds']:.2f} s (compiling); test accuracy "
                f"{record.test_accuracy:.2%} after {record.epochs_run} epochs",
            }
        )
    speedup = seconds["keras"] / seconds["jax"]
    rows[-1]["note"] += (
        f"; {verdict(seconds['jax'] <= TARGET_SECONDS_PER_EPOCH)} (at most {TARGET_SECONDS_PER_EPOCH} s)"
    )
    rows.append(
        {
            "metric": "JAX engine speed-up over Keras fit on JAX",
            "value": speedup,
            "unit": "x",
            "note": f"{verdict(speedup >= TARGET_SPEEDUP)} (at least {TARGET_SPEEDUP:g}x)",
        }
    )

    started = time.perf_counter()
    progress, record = train(full.replace(engine="jax"), store)
    wall = time.perf_counter() - started
    history = store.history(record.run_id)
    with open(folder / "gpu-history.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    summary = {
        "config": full.to_dict(),
        "device": record.device,
        "engine": record.engine,
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "tiny": tiny,
        "wall_seconds": wall,
        "epochs_run": record.epochs_run,
        "best_epoch": record.best_epoch,
        "seconds_per_epoch": record.seconds_per_epoch,
        "test_accuracy": record.test_accuracy,
        "test_loss": record.test_loss,
        "test_precision": record.test_precision,
        "test_recall": record.test_recall,
        "timing_seconds_per_epoch": seconds,
    }
    (folder / "gpu-run.json").write_text(json.dumps(summary, indent=2) + "\n")
    if record.status == "finished":
        replay = replay_record(full, record, history, "python -m bench gpu", summary["date"])
        (folder / "gpu-replay.json").write_text(json.dumps(replay, indent=1) + "\n")
    rows += [
        {
            "metric": f"full run ({full.epochs} epochs at most, patience {full.patience}), JAX engine: wall time",
            "value": wall,
            "unit": "s",
            "note": f"{record.epochs_run} epochs (best {record.best_epoch}); "
            f"{verdict(wall <= TARGET_FULL_RUN_SECONDS)} (at most {TARGET_FULL_RUN_SECONDS:g} s)",
        },
        {
            "metric": "full run: test accuracy",
            "value": record.test_accuracy,
            "unit": "",
            "note": f"{verdict(record.test_accuracy >= TARGET_TEST_ACCURACY)} (at least "
            f"{TARGET_TEST_ACCURACY:.1%}; the article 86.36%); loss {record.test_loss:.4f}",
        },
    ]
    return rows
