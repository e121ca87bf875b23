"""The article's 392-neuron, 80%-dropout model: plain `model.fit` against our training path."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

TITLE = "Training: the article's model (392 neurons, 80% dropout) per epoch, plain fit vs ours"
DESCRIPTION = """
Same model, data (54,000 training images, 6,000 validation), batch 128, Adam (lr 1e-4,
epsilon 1e-4), float32, 5 epochs each, run one after the other in separate processes on an
otherwise idle machine. "Plain" is the article's own code (`model.fit` on float32 arrays
with one-hot labels). "Ours" is the app's path: a `TrainingJob` in a worker thread with the
numpy engine (the per-pixel layer and dropout as two batched products over pixels, the mask
drawn and used in cache-sized slices by two threads), which evaluates on the validation set
every epoch and on the test set at the end. Seconds per epoch: median of epochs 2-4.
Time to first progress: from `submit()` to the first snapshot with a batch done, with
Keras already imported (as it is once the lab page has loaded).
"""

EPOCHS = int(os.environ.get("BENCH_TRAINING_EPOCHS", "5"))


def run_variant(variant: str) -> dict:
    output = subprocess.run(
        [sys.executable, "-m", "bench.training_variants", variant, str(EPOCHS)],
        capture_output=True,
        text=True,
        check=True,
    )
    sys.stderr.write("".join(line + "\n" for line in output.stderr.splitlines() if " epoch " in line))
    return json.loads(output.stdout.strip().splitlines()[-1])


def median_middle(seconds: list[float]) -> float:
    middle = seconds[1:4] if len(seconds) >= 4 else seconds[1:] or seconds
    return statistics.median(middle)


def run() -> list[dict]:
    ours = run_variant("ours")
    plain = run_variant("plain")
    plain_epoch, ours_epoch = median_middle(plain["epoch_seconds"]), median_middle(ours["epoch_seconds"])
    return [
        {"metric": "plain model.fit: seconds per epoch", "value": plain_epoch, "unit": "s"},
        {"metric": "ours (numpy engine): seconds per epoch", "value": ours_epoch, "unit": "s"},
        {"metric": "speed-up per epoch", "value": plain_epoch / ours_epoch, "unit": "x", "note": "target >= 3x"},
        {
            "metric": f"plain: test accuracy after {EPOCHS} epochs",
            "value": round(100 * plain["test_accuracy"], 2),
            "unit": "%",
        },
        {
            "metric": f"ours: test accuracy after {EPOCHS} epochs",
            "value": round(100 * ours["test_accuracy"], 2),
            "unit": "%",
            "note": "target: within 0.5 points of plain",
        },
        {"metric": "plain: peak RSS", "value": plain["peak_rss_mib"], "unit": "MiB"},
        {"metric": "ours: peak RSS", "value": ours["peak_rss_mib"], "unit": "MiB"},
        {
            "metric": "ours: submit to first progress snapshot",
            "value": ours["first_snapshot_seconds"],
            "unit": "s",
            "note": "target < 3 s; Keras already imported",
        },
        {
            "metric": "importing Keras + TensorFlow (once per process)",
            "value": ours["keras_import_seconds"],
            "unit": "s",
        },
        {"metric": "plain: epoch 1 (with tracing)", "value": plain["epoch_seconds"][0], "unit": "s"},
        {"metric": "ours: epoch 1", "value": ours["epoch_seconds"][0], "unit": "s"},
    ]
