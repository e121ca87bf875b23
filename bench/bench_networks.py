"""Every kind of network the shallow-net lab offers: plain `model.fit` against our engine."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

TITLE = "Training: every network of the lab, plain fit vs ours (short runs)"
DESCRIPTION = """
One row pair per network: batch 128, Adam (lr 1e-4, epsilon 1e-4), float32, on the first
IMAGES training images (a subset, so the slow Keras runs fit in a few minutes), EPOCHS
epochs, each variant in its own process, plain then ours, ROUNDS rounds. "Plain" is the
article's code (`model.fit`, one-hot labels); "ours" is the engine `auto` picks on a CPU
(the two-product engine for the linear one-layer net, its piecewise extension for one
layer with ReLU/LeakyReLU/PReLU/ELU, `NumpyDenseEngine` otherwise, the MLP included; until
2026-12-02 `auto` kept the MLP on Keras, after a run under load had Keras ahead).
Seconds per batch: the fastest epoch over all rounds (plain's first epoch, which traces
the graph, excluded), divided by its batches; "per epoch" scales that to 54,000 images
(422 batches). The CPU is shared with other engineers running tests while this runs, so
the fastest of the repeats is the best estimate and ratios (same minutes, side by side)
are more reliable than absolute times. Test accuracy after so few images is a sanity
check, not the 0.5-point comparison after full training. Peak RSS is the process's,
data included. Networks can be re-measured alone (BENCH_NETWORKS=0,3); each speed-up row
says when its pair ran and the load average then. Before the piecewise engine (measured
2026-12-01 19:22-19:44 here, 1-2 rounds, every activation on `NumpyDenseEngine`) the
speed-ups were: linear 1.99x, ReLU 0.5 2.73x, ReLU 0.8 2.8x, LeakyReLU 1.25x, PReLU 3.36x,
78 + 78 2.41x, 392 + 392 0.94x, MLP 0.62x. Before the compiled passes (numba: the optimizer
updates, each layer's bias/activation/dropout pass and its way back, the per-pixel slices'
weights and gradients; and the deeper per-pixel nets keeping their forward values instead of
recomputing them), measured 2026-12-01 23:24 to 2026-12-02 03:16 here: linear 2.97x, ReLU 0.5
3.18x, ReLU 0.8 2.8x, LeakyReLU 3.18x, PReLU 3.15x, ELU 2.18x, 78 + 78 1.21x, 392 + 392 1.23x,
MLP 1.65x.
"""

RESULTS = Path(__file__).resolve().parent / "results" / "networks.json"
ROUNDS = int(os.environ.get("BENCH_NETWORK_ROUNDS", "2"))
EPOCHS = 3
FULL_EPOCH_BATCHES = 422

# (config changes, training images): the images keep each plain epoch around 10-30 s here.
NETWORKS = [
    ({"hidden_units": [392], "activation": "none", "dropout": 0.8}, 2560),
    ({"hidden_units": [392], "activation": "relu", "dropout": 0.5}, 2560),
    ({"hidden_units": [392], "activation": "relu", "dropout": 0.8}, 2560),
    ({"hidden_units": [392], "activation": "leaky_relu", "dropout": 0.5}, 2560),
    ({"hidden_units": [392], "activation": "prelu", "dropout": 0.5}, 2560),
    ({"hidden_units": [392], "activation": "elu", "dropout": 0.5}, 2560),
    ({"hidden_units": [78, 78], "activation": "none", "dropout": 0.5}, 2560),
    ({"hidden_units": [392, 392], "activation": "none", "dropout": 0.5}, 640),
    ({"architecture": "mlp", "hidden_units": [392], "activation": "none", "dropout": 0.5}, 12800),
]


def run_variant(variant: str, config: dict, images: int, epochs: int = EPOCHS) -> dict:
    output = subprocess.run(
        [sys.executable, "-m", "bench.network_variants", variant, json.dumps(config), str(images), str(epochs)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def label(config: dict) -> str:
    from core.shallow.config import TrainingConfig

    return TrainingConfig.from_dict(config).label


def earlier_rows(name: str, results: Path = RESULTS) -> list[dict]:
    """This network's rows from the last saved results (kept when BENCH_NETWORKS skips it)."""
    if not results.exists():
        return []
    rows = json.loads(results.read_text())["rows"]
    return [row for row in rows if row["metric"].startswith(f"{name}: ")]


def run() -> list[dict]:
    """Every network in NETWORKS, or those BENCH_NETWORKS (indices, "0,2") names; the
    others keep their rows from the last saved results, each speed-up row saying when and
    under what load it was measured."""
    selected = os.environ.get("BENCH_NETWORKS")
    rows = []
    for index, (config, images) in enumerate(NETWORKS):
        if selected and str(index) not in selected.split(","):
            rows += earlier_rows(label(config))
            continue
        batches = -(-images // 128)
        best = {"plain": float("inf"), "ours": float("inf")}
        results = {}
        for _ in range(ROUNDS):
            for variant in ("plain", "ours"):
                result = run_variant(variant, config, images)
                epochs = result["epoch_seconds"][1:] if variant == "plain" else result["epoch_seconds"]
                best[variant] = min(best[variant], min(epochs) / batches)
                results[variant] = result
                print(label(config), variant, result, file=sys.stderr, flush=True)
        name = label(config)
        speed_up = best["plain"] / best["ours"]
        rows += [
            {
                "metric": f"{name}: plain fit, ms per batch (per epoch)",
                "value": round(1000 * best["plain"], 1),
                "unit": "ms",
                "note": f"{best['plain'] * FULL_EPOCH_BATCHES:.0f} s per 54,000 images",
            },
            {
                "metric": f"{name}: ours ({results['ours']['engine']}), ms per batch",
                "value": round(1000 * best["ours"], 1),
                "unit": "ms",
                "note": f"{best['ours'] * FULL_EPOCH_BATCHES:.0f} s per 54,000 images",
            },
            {
                "metric": f"{name}: speed-up",
                "value": round(speed_up, 2),
                "unit": "x",
                "note": f"measured {dt.datetime.now():%Y-%m-%d %H:%M}, {ROUNDS} round(s), load average "
                f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
            },
            {
                "metric": f"{name}: test accuracy after {EPOCHS} epochs of {images:,} images, plain / ours",
                "value": f"{100 * results['plain']['test_accuracy']:.1f} / {100 * results['ours']['test_accuracy']:.1f}",
                "unit": "%",
            },
            {
                "metric": f"{name}: peak RSS, plain / ours",
                "value": f"{results['plain']['peak_rss_mib']:.0f} / {results['ours']['peak_rss_mib']:.0f}",
                "unit": "MiB",
            },
        ]
    return rows
