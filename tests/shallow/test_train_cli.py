"""The training command line: JSON results, bad arguments, listing, and a kill mid-run."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.shallow.__main__ import build_parser
from core.shallow.config import LIMITS, TrainingConfig
from core.shallow.runs import RunStore

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, db, check=True, timeout=300):
    result = subprocess.run(
        [sys.executable, "-m", "core.shallow", *args, "--db", str(db)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_training_prints_the_promised_json(tmp_path):
    """A tiny run prints one JSON object with the agreed keys, and the run is saved."""
    result = cli(
        "--neurons",
        "7",
        "--dropout",
        "0.5",
        "--epochs",
        "2",
        "--train-limit",
        "500",
        "--learning-rate",
        "3e-3",
        "--json",
        db=tmp_path / "runs.sqlite",
    )
    output = json.loads(result.stdout.strip().splitlines()[-1])
    for key in (
        "params",
        "epochs_run",
        "test_accuracy",
        "test_loss",
        "test_precision",
        "test_recall",
        "seconds_per_epoch",
        "estimated_seconds_per_epoch",
        "device",
        "run_id",
    ):
        assert key in output
    assert output["params"] == 54_904 and output["epochs_run"] == 2 and output["test_accuracy"] > 0.4
    assert output["estimated_seconds_per_epoch"] > 0
    assert "per epoch (numpy engine, timed here)" in result.stderr
    assert output["executor"] == "thread" and output["node"] == socket.gethostname()
    assert "epoch 2:" in result.stderr
    listing = cli("--list", db=tmp_path / "runs.sqlite").stdout
    assert "7 neurons, none, dropout 0.5" in listing and "finished" in listing
    csv_text = cli("--history", str(output["run_id"]), db=tmp_path / "runs.sqlite").stdout
    assert csv_text.splitlines()[0] == "epoch,loss,accuracy,val_loss,val_accuracy,seconds"


@pytest.mark.parametrize(
    "args, reason",
    [
        (["--neurons", "0"], "neurons"),
        (["--dropout", "1.5"], "Dropout"),
        (["--activation", "tanh"], "invalid choice"),
        (["--epochs", "ten"], "invalid int"),
        (["--neurons", "4096", "--neurons", "4096", "--neurons", "4096", "--engine", "keras"], "GiB"),
        (["--history", "42"], "no saved run 42"),
        (["--architecture", "cnn", "--kernel-size", "7"], "invalid choice: 7 (choose from 3, 5)"),
        (["--architecture", "cnn", "--engine", "jax"], "The jax engine trains dense layers only"),
    ],
)
def test_bad_arguments_exit_with_one_line(tmp_path, args, reason):
    """Bad arguments exit non-zero with a one-line reason and no traceback."""
    result = cli(*args, db=tmp_path / "runs.sqlite", check=False)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and reason in lines[0] and "Traceback" not in result.stderr


def test_kill_mid_run_leaves_an_interrupted_run_with_its_epochs(tmp_path):
    """SIGKILL during training: the next open marks the run interrupted, completed epochs kept."""
    db = tmp_path / "runs.sqlite"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core.shallow",
            "--neurons",
            "8",
            "--epochs",
            "500",
            "--train-limit",
            "1000",
            "--learning-rate",
            "3e-3",
            "--db",
            str(db),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    try:
        deadline = time.monotonic() + 120
        epochs = 0
        while time.monotonic() < deadline and epochs < 2:
            time.sleep(0.2)
            if db.exists():
                with sqlite3.connect(db) as connection:
                    epochs = connection.execute("SELECT COUNT(*) FROM history").fetchone()[0]
        assert epochs >= 2, "training did not reach two epochs"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    store = RunStore(db)
    run = store.list_runs()[0]
    assert run.status == "interrupted"
    assert len(store.history(run.run_id)) >= 2


def test_ctrl_c_before_the_first_batch_says_nothing_was_saved(tmp_path, monkeypatch, capsys):
    """Ctrl-C while the data loads ends with a one-line reason and exit status 1, not a traceback."""
    import core.shallow.jobs
    from core.shallow import __main__ as train

    real_split = core.shallow.jobs.split_data
    before = signal.getsignal(signal.SIGINT)  # The CLI's own handler replaces this one while it trains.

    def interrupted_split(config, data_path=None):
        # The CLI first times a few batches in its own thread (which loads the data too), then
        # starts the job's worker thread and installs its Ctrl-C handler: only the job's data
        # loading is interrupted, once the handler is there.
        if threading.current_thread() is not threading.main_thread():
            deadline = time.monotonic() + 10
            while signal.getsignal(signal.SIGINT) is before and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
        return real_split(config, data_path)

    monkeypatch.setattr(core.shallow.jobs, "split_data", interrupted_split)
    code = train.main(["--neurons", "7", "--epochs", "1", "--train-limit", "300", "--db", str(tmp_path / "r.sqlite")])
    assert code == 1 and "nothing was saved" in capsys.readouterr().err
    assert RunStore(tmp_path / "r.sqlite").list_runs() == []


def test_a_finished_run_gives_the_caller_its_ctrl_c_back(tmp_path, capsys):
    """In process (a notebook, a test), Ctrl-C belongs to the CLI only while it trains."""
    from core.shallow import __main__ as train

    before = signal.getsignal(signal.SIGINT)
    code = train.main(["--neurons", "7", "--epochs", "1", "--train-limit", "300", "--db", str(tmp_path / "r.sqlite")])
    assert code == 0 and "test accuracy" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGINT) is before


OPTIONS = {
    "hidden_units": "--neurons",
    "filters": "--filters",
    "dropout": "--dropout",
    "learning_rate": "--learning-rate",
    "batch_size": "--batch-size",
    "epochs": "--epochs",
    "patience": "--patience",
    "train_limit": "--train-limit",
    "validation_split": "--validation-split",
    "seed": "--seed",
}


@pytest.mark.parametrize("name", list(OPTIONS))
def test_each_numeric_option_is_checked_against_the_configs_limit_while_parsing(name, capsys):
    """Every numeric option accepts its limit's two ends and refuses just outside them, at parsing,
    with the same rule (and words) that TrainingConfig uses."""
    limit = LIMITS[name]
    nudge = 1 if isinstance(limit.low, int) else limit.low / 10 or 0.001
    for value in (limit.low, limit.high):
        args = build_parser().parse_args([OPTIONS[name], str(value)])
        assert getattr(args, "neurons" if name == "hidden_units" else name) in (value, [value])
    for value in (limit.low - nudge, limit.high + nudge):
        with pytest.raises(SystemExit) as stopped:
            build_parser().parse_args([OPTIONS[name], str(value)])
        assert stopped.value.code == 2
        message = capsys.readouterr().err
        assert f"argument {OPTIONS[name]}: {limit.what} must be" in message
        with pytest.raises(ValueError, match=limit.what.split(" (")[0].replace("(", r"\(")):
            TrainingConfig(**{name: (value,) if name == "hidden_units" else value})


def test_negative_seed_fails_at_parsing_in_one_line(tmp_path):
    """`--seed -1` exits with status 2 and the seed's range before anything is loaded or trained."""
    result = cli("--seed", "-1", db=tmp_path / "runs.sqlite", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: argument --seed: The seed must be 0 to 2,147,483,647, not -1 (see --help)"
    assert not (tmp_path / "runs.sqlite").exists()
