"""The smallest shallow CNN that beats AlexNet's 86.43%: one-block CNNs with growing F, trained fully."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

TITLE = "Shallow CNN: the fewest filters that beat AlexNet's 86.43% (one block, 3 x 3, ReLU, dropout 0.2)"
SWEEP = (1, 2, 3, 4, 6, 8, 12, 16)
FILTERS = tuple(int(part) for part in os.environ.get("BENCH_CNN_FILTERS", ",".join(map(str, SWEEP))).split(","))
SETTINGS = {
    "activation": "relu",
    "dropout": 0.2,
    "learning_rate": 1e-3,
    "batch_size": 128,
    "epochs": 200,
    "patience": 5,
}
DESCRIPTION = f"""
One-block CNNs (`Conv2D(F, 3 x 3, padding="same")`, ReLU, `MaxPooling2D(2)`, dropout 0.2,
`Flatten`, `Dense(10, softmax)`) with F = {", ".join(map(str, SWEEP))} in turn, each trained
through the training command line (`python -m core.shallow --architecture cnn --filters F ...
--json`, so the app's own path: Keras `fit`, early stopping, the best epoch's weights
evaluated on the 10,000 test images): all 54,000 training images, 6,000 validation images,
Adam with learning rate 1e-3 (epsilon 1e-4), batch 128, at most 200 epochs, early stopping
on the validation loss with patience 5, seed 0, one process per row, under `nice`. The sweep
stops after the first F whose test accuracy beats AlexNet's 86.43% and the one after it:
parameters grow with F (1,970 F + 10), so no later F can be smaller. That first F is the
"smallest CNN that beats AlexNet" preset (`assets/cnn_presets.json`). One seed per F: the
test accuracy of a rerun moves by a few tenths of a point. `BENCH_CNN_FILTERS=2` reruns only
the F named and keeps the other rows from the last saved results. The first sweep capped runs
at 60 epochs; F = 1, 3 and 4 stopped early well before it (so the cap did not bind) and were
kept; F = 2 reached it still improving (85.75% at epoch 60 of 60) and was rerun with the cap
of 200. Wall times are of a 2-core machine shared with other engineers running tests; the
load average is given per row.
"""

ALEXNET = 0.8643
RESULTS = Path(__file__).resolve().parent / "results" / "cnn.json"


def train(filters: int) -> dict:
    """One full training run of the one-block CNN with `filters` filters, through the CLI."""
    command = ["nice", "-n", "10", sys.executable, "-m", "core.shallow", "--json", "--architecture", "cnn"]
    command += ["--filters", str(filters), "--kernel-size", "3", "--conv-blocks", "1"]
    for name, value in SETTINGS.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    with tempfile.TemporaryDirectory() as runs:  # The runs are saved there, not in var/.
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "EXPLORER_DATA_DIR": runs}
        output = subprocess.run(command, capture_output=True, text=True, check=True, env=environment).stdout
    return json.loads(output.strip().splitlines()[-1])


def saved_rows() -> list[dict]:
    """The rows of the last saved results (bench/results/cnn.json), or none."""
    return json.loads(RESULTS.read_text())["rows"] if RESULTS.exists() else []


def swept_filters(row: dict) -> int:
    return int(row["metric"].split(":")[0].removeprefix("F="))


def run() -> list[dict]:
    """The sweep (or the rerun of the F in BENCH_CNN_FILTERS); writes the presets from its rows."""
    rows = rerun(FILTERS) if "BENCH_CNN_FILTERS" in os.environ else sweep()
    write_presets(rows)
    return rows


def sweep() -> list[dict]:
    rows, beaten = [], 0
    for filters in FILTERS:
        result = train(filters)
        rows += result_rows(filters, result, os.getloadavg()[0])
        beats = result["test_accuracy"] > ALEXNET
        beaten += beats
        if beaten == 2 or (beaten and not beats):
            break
    return rows


def rerun(chosen: tuple[int, ...]) -> list[dict]:
    """Trains only the chosen F; every other F keeps its rows from the last saved results."""
    earlier = saved_rows()
    rows = []
    for filters in sorted({swept_filters(row) for row in earlier} | set(chosen)):
        if filters in chosen:
            rows += result_rows(filters, train(filters), os.getloadavg()[0])
        else:
            rows += [row for row in earlier if swept_filters(row) == filters]
    return rows


def result_rows(filters: int, result: dict, load: float) -> list[dict]:
    """The two rows of one trained F: test accuracy (with params, epochs, loss) and seconds per epoch."""
    accuracy = result["test_accuracy"]
    print(f"  F={filters}: {accuracy:.2%}, {result['params']:,} params, {result['epochs_run']} epochs", flush=True)
    return [
        {
            "metric": f"F={filters}: test accuracy",
            "value": round(100 * accuracy, 2),
            "unit": "%",
            "note": (
                f"{accuracy:.2%}; {result['params']:,} params; best epoch {result['best_epoch']} of "
                f"{result['epochs_run']}; "
                f"test loss {result['test_loss']:.4f}; {'beats' if accuracy > ALEXNET else 'below'} AlexNet"
            ),
        },
        {
            "metric": f"F={filters}: seconds per epoch",
            "value": result["seconds_per_epoch"],
            "unit": "s",
            "note": f"estimated {result['estimated_seconds_per_epoch']:.1f} s (timed batches); load {load:.1f}",
        },
    ]


PRESETS = Path(__file__).resolve().parents[1] / "assets" / "cnn_presets.json"
NOTE = re.compile(r"best epoch (?P<best>\d+) of (?P<run>\d+); test loss (?P<loss>[\d.]+)")


def write_presets(rows: list[dict], date: str | None = None) -> dict:
    """`assets/cnn_presets.json` from the sweep's rows: the smallest CNN above AlexNet, and the F just below it.

    Returns:
        The presets file's content, as written.
    """
    from bench.run import machine
    from core.shallow.config import TrainingConfig

    host = machine()
    date = date or dt.date.today().isoformat()
    measured = {}
    for row in rows:
        if row["metric"].endswith(": test accuracy"):
            note = NOTE.search(row["note"])
            measured[swept_filters(row)] = {
                "test_accuracy": round(row["value"] / 100, 4),
                "test_loss": float(note["loss"]),
                "epochs_run": int(note["run"]),
                "best_epoch": int(note["best"]),
            }
    winner = min(filters for filters, result in measured.items() if result["test_accuracy"] > ALEXNET)
    below = [filters for filters in measured if filters < winner]
    chosen = [(winner, "the fewest filters measured here that beat AlexNet's 86.43%")]
    chosen += [(max(below), "the most filters measured here below AlexNet")] if below else []
    presets = []
    for filters, why in chosen:
        config = TrainingConfig(architecture="cnn", filters=filters, **SETTINGS)
        presets.append(
            {
                "id": f"cnn-{filters}x3x3",
                "title": f"CNN, {filters} filter{'s' if filters > 1 else ''} 3 x 3: {why}",
                "config": {name: value for name, value in config.to_dict().items() if name != "hidden_units"},
                "measured": measured[filters],
            }
        )
    content = {
        "source": (
            f"Measured by `python -m bench cnn` ({date}, {host['cpu']}, {host['cores']} cores, shared), not "
            "reported by the article: the article "
            "trains no CNN. One training run each (seed 0), all 54,000 training images, the best epoch's "
            "weights on the 10,000 test images; see BENCHMARKS.md."
        ),
        "presets": presets,
    }
    PRESETS.write_text(json.dumps(content, indent=2) + "\n")
    return content
