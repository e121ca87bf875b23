"""The shallow-net lab's time estimate against the measured epoch, per article preset and engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from core.shallow.config import article_results
from core.shallow.runs import RunStore

TITLE = "Training: estimated vs measured seconds per epoch, each article preset on each engine"
IMAGES = int(os.environ.get("BENCH_ESTIMATE_IMAGES", "5400"))
EPOCHS = int(os.environ.get("BENCH_ESTIMATE_EPOCHS", "3"))
DESCRIPTION = f"""
Each of the article's configurations, on every engine that can train it (numpy and Keras for
every per-pixel network), through the training command line: `python -m core.shallow ... --json`
with {IMAGES:,} training images (a seeded subset; the estimate scales with the number of
batches) and 6,000 validation images, {EPOCHS} epochs, batch 128, one process per row. The
estimate (`estimated_seconds_per_epoch`) comes from timing a few real batches of that engine
in that process before training (`core.shallow.calibration`); measured is the run's median epoch
(`seconds_per_epoch`, validation pass included), each epoch's own seconds beside it.
Target: within +-30%. The load average
before and after each row says how much other work shared the cores: both numbers are wall
time, and on a shared machine the few seconds of timing and the epochs that follow can meet
very different loads.
"""


def cli_run(result, engine: str) -> dict:
    config = result.config
    command = [sys.executable, "-m", "core.shallow", "--json"]
    for units in config.hidden_units:
        command += ["--neurons", str(units)]
    command += ["--dropout", str(config.dropout), "--activation", config.activation, "--engine", engine]
    command += ["--epochs", str(EPOCHS), "--train-limit", str(IMAGES), "--patience", str(EPOCHS)]
    with tempfile.TemporaryDirectory() as runs:  # The runs are saved there, not in var/.
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "EXPLORER_DATA_DIR": runs}
        output = subprocess.run(command, capture_output=True, text=True, check=True, env=environment).stdout
        result = json.loads(output.strip().splitlines()[-1])
        history = RunStore(result["db"]).history(result["run_id"])
    result["epoch_seconds"] = [row["seconds"] for row in history]
    return result


def run() -> list[dict]:
    rows = []
    for result in article_results()[0]:
        # Every per-pixel network trains on a numpy engine too (two-product, piecewise or dense).
        engines = ["numpy", "keras"] if result.config.architecture == "article" else ["keras"]
        for engine in engines:
            load_before = os.getloadavg()[0]
            measured = cli_run(result, engine)
            load = f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
            epochs = ", ".join(f"{seconds:.1f}" for seconds in measured["epoch_seconds"])
            estimate, actual = measured["estimated_seconds_per_epoch"], measured["seconds_per_epoch"]
            error = estimate / actual - 1
            print(f"{result.title}, {engine}: estimated {estimate:.2f} s, measured {actual:.2f} s", file=sys.stderr)
            rows.append(
                {
                    "metric": f"{result.title}, {engine} engine: estimated / measured s per epoch",
                    "value": f"{estimate:.2f} / {actual:.2f}",
                    "unit": "s",
                    "note": f"{error:+.0%}"
                    + ("" if abs(error) <= 0.3 else " (outside +-30%)")
                    + f"; its epochs {epochs} s; {load}",
                }
            )
    return rows
