"""The GPU check (`python -m bench gpu`) runs end to end in its tiny form on the CPU."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_check_runs_tiny_on_a_cpu_and_writes_its_run(tmp_path):
    """Both engines are timed, the full-run stand-in trains, and its history and metrics land in $OUT."""
    environment = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "OUT": str(tmp_path)}
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "gpu", "--tiny"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "JAX engine speed-up over Keras fit on JAX" in completed.stdout
    summary = json.loads((tmp_path / "gpu-run.json").read_text())
    assert summary["engine"] == "jax" and summary["tiny"] is True and "(jax)" in summary["device"]
    assert set(summary["timing_seconds_per_epoch"]) == {"keras", "jax"}
    with open(tmp_path / "gpu-history.csv") as handle:
        history = list(csv.DictReader(handle))
    assert len(history) == summary["epochs_run"] >= 2
    assert float(history[-1]["loss"]) < float(history[0]["loss"])
    assert 0.3 < summary["test_accuracy"] <= 1.0
    # --tiny never overwrites the stored benchmark results.
    assert not (ROOT / "bench" / "results" / "gpu.json").exists()


def test_bench_without_names_leaves_the_gpu_check_out():
    """`python -m bench` runs every benchmark but the GPU check, which takes hours on a CPU."""
    from bench.run import available, runs_by_default

    assert "gpu" in available() and not runs_by_default("gpu")
    assert runs_by_default("training")
