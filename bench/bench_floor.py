"""What the 2 cores sustain, and the floor that puts under one epoch of each network."""

from __future__ import annotations

import time

import numpy as np

TITLE = "Training: the physical floor of an epoch on this machine (FLOPs and memory traffic)"
DESCRIPTION = """
The machine's rates, measured here with numpy (fastest of 5): float32 matrix product
(3136 x 392 @ 392 x 392, the shape of the second per-pixel layer on a slice of 8 images'
pixels, all BLAS threads) and a 157 MB copy (the size of one (128, 28, 28, 392) float32
tensor, so it runs from memory, not cache). The floors: multiply-adds of a training step
(forward, the two backward products; our engine adds one forward product as it recomputes
the slices instead of keeping them) over 422 batches at the measured product rate, and for
Keras the traffic of the (128, 28, 28, N) tensors it keeps (about 6 written and read per
layer per step) at the measured copy rate. The MLP (784 -> 392 -> 10) has no per-pixel
tensors: its floor is its two large products per step (the forward 128x784 @ 784x392 and
the kernel's gradient, 784x128 @ 128x392; the input needs no gradient), timed at that shape.
The CPU is shared with other engineers, so the rates are what was left to this process at
the time.
"""

BATCHES = 422
BATCH = 128
PIXELS = 784


def matmul_gflops(rows: int = 3136, inner: int = 392, columns: int = 392, repeats: int = 10) -> float:
    rng = np.random.default_rng(0)
    left = rng.standard_normal((rows, inner), dtype=np.float32)
    right = rng.standard_normal((inner, columns), dtype=np.float32)
    left @ right
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            left @ right
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * rows * inner * columns / best / 1e9


def copy_gbytes() -> float:
    source = np.ones((BATCH, PIXELS, 392), np.float32)
    target = np.empty_like(source)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    return 2 * source.nbytes / best / 1e9  # Read and written.


def run() -> list[dict]:
    gflops, gbytes = matmul_gflops(), copy_gbytes()
    rows = [
        {"metric": "float32 matrix product, 3136x392 @ 392x392", "value": round(gflops, 1), "unit": "GFLOP/s"},
        {"metric": "memory copy of 157 MB (read + write)", "value": round(gbytes, 1), "unit": "GB/s"},
    ]
    for units in ((392, 392), (78, 78)):
        forward = 2 * BATCH * PIXELS * units[0] * units[1]
        ours_seconds = 4 * forward * BATCHES / (gflops * 1e9)
        keras_flops_seconds = 3 * forward * BATCHES / (gflops * 1e9)
        tensor_bytes = BATCH * PIXELS * sum(units) * 4 * 6
        keras_traffic_seconds = tensor_bytes * BATCHES / (gbytes * 1e9)
        name = " + ".join(map(str, units))
        rows += [
            {
                "metric": f"{name}: floor of an epoch from the layer-2 products, ours (4 products)",
                "value": round(ours_seconds, 1),
                "unit": "s",
            },
            {
                "metric": f"{name}: floor of an epoch, Keras (3 products + tensor traffic)",
                "value": round(keras_flops_seconds + keras_traffic_seconds, 1),
                "unit": "s",
                "note": f"{keras_flops_seconds:.0f} s products + {keras_traffic_seconds:.0f} s traffic",
            },
        ]
    mlp_gflops = matmul_gflops(BATCH, PIXELS, 392, repeats=200)
    mlp_seconds = 2 * (2 * BATCH * PIXELS * 392) * BATCHES / (mlp_gflops * 1e9)
    rows += [
        {
            "metric": "float32 matrix product, 128x784 @ 784x392 (the MLP's)",
            "value": round(mlp_gflops, 1),
            "unit": "GFLOP/s",
        },
        {
            "metric": "MLP 392: floor of an epoch from its two large products",
            "value": round(mlp_seconds, 2),
            "unit": "s",
            "note": f"{1000 * mlp_seconds / BATCHES:.2f} ms per batch",
        },
    ]
    return rows
