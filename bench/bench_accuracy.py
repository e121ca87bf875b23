"""Every network of the lab: test accuracy of plain `model.fit` against ours, over several seeds."""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
from pathlib import Path

from bench.bench_networks import NETWORKS, earlier_rows, label, run_variant

TITLE = "Training: test accuracy of every network, plain fit vs ours, paired over seeds"
DESCRIPTION = """
The issue's accuracy target: after the same epochs, ours within 0.5 points of plain `fit`.
For each network of the speed table: SEEDS seeds, each trained once with plain `model.fit`
(the article's code) and once with the engine `auto` picks, both started from the same
initial weights (`keras.utils.set_random_seed(seed)` before the model is built, as the app's
jobs do), so a pair differs only in its dropout masks and batch order. Then the test accuracy
on all 10,000 test images. Batch 128, Adam (lr 1e-4, epsilon 1e-4), float32, EPOCHS epochs
on the first IMAGES training images (the same for both): a subset, so that the slow Keras
runs fit in an hour on 2 cores; the deeper 392 + 392 net gets fewer images, the MLP (fast
everywhere) all 54,000. "Ours minus plain" is the mean of the paired differences, with the
standard error of that mean (their spread over the seeds divided by the square root of the
number of seeds): a difference well inside two standard errors is what seed-to-seed noise
alone gives. Rerun one network with BENCH_ACCURACY_NETWORKS=0,3 (indices as in the speed
table); the others keep their rows.
"""

RESULTS = Path(__file__).resolve().parent / "results" / "accuracy.json"
SEEDS = [int(seed) for seed in os.environ.get("BENCH_ACCURACY_SEEDS", "1,2,3").split(",")]
EPOCHS = 3
IMAGES = {"392 + 392": 3200, "MLP": 54000}
DEFAULT_IMAGES = 12800


def images_for(name: str) -> int:
    return next((count for prefix, count in IMAGES.items() if name.startswith(prefix)), DEFAULT_IMAGES)


def summary(values: list[float]) -> str:
    return ", ".join(f"{100 * value:.2f}" for value in values)


def rows_for(name: str, images: int, plain: list[float], ours: list[float], engine: str) -> list[dict]:
    differences = [b - a for a, b in zip(plain, ours, strict=True)]
    mean = statistics.fmean(differences)
    error = statistics.stdev(differences) / len(differences) ** 0.5 if len(differences) > 1 else float("nan")
    within = abs(100 * mean) <= 0.5
    where = f"{EPOCHS} epochs of {images:,} images, {len(plain)} seeds"
    return [
        {
            "metric": f"{name}: plain fit, test accuracy ({where})",
            "value": round(100 * statistics.fmean(plain), 2),
            "unit": "%",
            "note": f"each seed: {summary(plain)}",
        },
        {
            "metric": f"{name}: ours ({engine}), test accuracy ({where})",
            "value": round(100 * statistics.fmean(ours), 2),
            "unit": "%",
            "note": f"each seed: {summary(ours)}",
        },
        {
            "metric": f"{name}: ours minus plain, paired",
            "value": round(100 * mean, 2),
            "unit": "points",
            "note": f"standard error {100 * error:.2f}; target: within 0.5 points, "
            f"{'met' if within else 'not met'}; measured {dt.datetime.now():%Y-%m-%d %H:%M}",
        },
    ]


def run() -> list[dict]:
    selected = os.environ.get("BENCH_ACCURACY_NETWORKS")
    rows = []
    for index, (config, _) in enumerate(NETWORKS):
        name = label(config)
        if selected and str(index) not in selected.split(","):
            rows += earlier_rows(name, RESULTS)
            continue
        images = images_for(name)
        accuracy = {"plain": [], "ours": []}
        engine = ""
        for seed in SEEDS:
            for variant in ("plain", "ours"):
                result = run_variant(variant, {**config, "seed": seed}, images, EPOCHS)
                accuracy[variant].append(result["test_accuracy"])
                engine = result["engine"] if variant == "ours" else engine
                print(name, seed, variant, result, file=sys.stderr, flush=True)
        rows += rows_for(name, images, accuracy["plain"], accuracy["ours"], engine)
    return rows
