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
(forward, the two backward products) over 422 batches at the measured product rate; for
Keras the traffic of the (128, 28, 28, N) tensors it keeps (about 6 written and read per
layer per step) at the measured copy rate, for our engine that of the one it keeps per layer
(written once, read once; until 2026-12-02 it recomputed them instead, a fourth product). The MLP (784 -> 392 -> 10) has no per-pixel
tensors: its floor is its two large products per step (the forward 128x784 @ 784x392 and
the kernel's gradient, 784x128 @ 128x392; the input needs no gradient), timed at that shape.
The CPU is shared with other engineers, so the rates are what was left to this process at
the time.
**The headline network** (392, none, dropout 0.8) on the two-product engine: each part of one
training step is timed alone at the engine's own shapes (a 2 MB slice of pixels, one thread,
fastest of 5, scaled to all 784 pixels), then halved for the 2 cores as if the two threads
never met in memory: drawing 39 million keep decisions (the engine's own draw: a random byte
each, compared, and the second draw for the bytes on the threshold), their
expansion to float32 for the two products (forward and backward), the forward product
(batch x 392 @ 392 x 20 per pixel), the backward one (392 x batch @ batch x 20) and Adam over
the 3.1 million output weights. Their sum is the floor of this formulation's step; beside it,
plain `fit` and our engine measured in the same run (`bench.network_variants`, 2,560 images,
3 epochs, fastest epoch), and the best speed-up the floor allows.
"""

BATCHES = 422
BATCH = 128
PIXELS = 784


def fastest(work, repeats: int = 10) -> float:
    """Seconds of one call of `work`, the fastest mean of 5 rounds of `repeats` calls."""
    work()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            work()
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


def matmul_gflops(rows: int = 3136, inner: int = 392, columns: int = 392, repeats: int = 10) -> float:
    rng = np.random.default_rng(0)
    left = rng.standard_normal((rows, inner), dtype=np.float32)
    right = rng.standard_normal((inner, columns), dtype=np.float32)
    return 2 * rows * inner * columns / fastest(lambda: left @ right, repeats) / 1e9


def copy_gbytes() -> float:
    source = np.ones((BATCH, PIXELS, 392), np.float32)
    target = np.empty_like(source)
    return 2 * source.nbytes / fastest(lambda: np.copyto(target, source), repeats=1) / 1e9  # Read and written.


def headline_step_parts(units: int = 392, classes: int = 10) -> dict[str, float]:
    """Seconds per training step (all 784 pixels, one thread) of each part of the two-product step."""
    from threadpoolctl import threadpool_limits

    from core.shallow.config import TrainingConfig
    from core.shallow.engines import NumpyOptimizer, draw_keep

    chunk = max(1, (2 << 20) // (BATCH * units * 4))  # The engine's slice: 2 MB of float32 mask.
    slices = PIXELS / chunk
    rng = np.random.default_rng(0)
    generator = np.random.Generator(np.random.SFC64(1)).bit_generator
    kept = np.empty((chunk, BATCH, units), bool)
    expanded = np.empty((chunk, BATCH, units), np.float32)
    weights_uv = rng.standard_normal((chunk, units, 2 * classes), dtype=np.float32)
    stacked = rng.standard_normal((chunk, BATCH, 2 * classes), dtype=np.float32)
    products = np.empty((chunk, BATCH, 2 * classes), np.float32)
    sums = np.empty((chunk, units, 2 * classes), np.float32)

    def draw() -> None:
        draw_keep(generator, kept, 51, 0.2)  # The engine's own draw: keep = (51 + 0.2) / 256.

    optimizer = NumpyOptimizer(TrainingConfig(), [(PIXELS, units, classes)])
    out_kernel = rng.standard_normal((PIXELS, units, classes), dtype=np.float32)
    grad = rng.standard_normal((chunk, units, classes), dtype=np.float32)
    scratch = np.empty_like(grad)

    def adam() -> None:
        optimizer.start_step()
        optimizer.update(0, out_kernel[:chunk], grad, slice(0, chunk), scratch)

    with threadpool_limits(limits=1, user_api="blas"):
        return {
            "drawing the keep decisions": fastest(draw) * slices,
            "expanding them to float32, twice": 2 * fastest(lambda: np.copyto(expanded, kept)) * slices,
            "forward product": fastest(lambda: np.matmul(expanded, weights_uv, out=products)) * slices,
            "backward product": fastest(lambda: np.matmul(expanded.transpose(0, 2, 1), stacked, out=sums)) * slices,
            "Adam over the output kernel": fastest(adam) * slices,
        }


def headline_rows() -> list[dict]:
    from bench.bench_networks import run_variant

    parts = headline_step_parts()
    rows = [
        {"metric": f"headline step, {name} (one core)", "value": round(1000 * seconds, 1), "unit": "ms"}
        for name, seconds in parts.items()
    ]
    floor = sum(parts.values()) / 2
    config, images = {"hidden_units": [392], "activation": "none", "dropout": 0.8}, 2560
    batches = -(-images // BATCH)
    plain = min(run_variant("plain", config, images)["epoch_seconds"][1:]) / batches
    ours = min(run_variant("ours", config, images)["epoch_seconds"]) / batches
    rows += [
        {
            "metric": "headline step: floor on 2 cores (the parts' sum, halved)",
            "value": round(1000 * floor, 1),
            "unit": "ms",
            "note": f"{floor * BATCHES:.1f} s per epoch of 54,000 images",
        },
        {"metric": "headline step: plain fit, measured in this run", "value": round(1000 * plain, 1), "unit": "ms"},
        {"metric": "headline step: ours, measured in this run", "value": round(1000 * ours, 1), "unit": "ms"},
        {
            "metric": "headline: speed-up measured / the most the floor allows",
            "value": f"{plain / ours:.2f} / {plain / floor:.2f}",
            "unit": "x",
            "note": "target 5x",
        },
    ]
    return rows


def run() -> list[dict]:
    gflops, gbytes = matmul_gflops(), copy_gbytes()
    rows = [
        {"metric": "float32 matrix product, 3136x392 @ 392x392", "value": round(gflops, 1), "unit": "GFLOP/s"},
        {"metric": "memory copy of 157 MB (read + write)", "value": round(gbytes, 1), "unit": "GB/s"},
    ]
    for units in ((392, 392), (78, 78)):
        forward = 2 * BATCH * PIXELS * units[0] * units[1]
        products_seconds = 3 * forward * BATCHES / (gflops * 1e9)
        kept_seconds = BATCH * PIXELS * sum(units) * 4 * 2 * BATCHES / (gbytes * 1e9)
        keras_flops_seconds = products_seconds
        tensor_bytes = BATCH * PIXELS * sum(units) * 4 * 6
        keras_traffic_seconds = tensor_bytes * BATCHES / (gbytes * 1e9)
        name = " + ".join(map(str, units))
        rows += [
            {
                "metric": f"{name}: floor of an epoch, ours (3 products + the kept values' traffic)",
                "value": round(products_seconds + kept_seconds, 1),
                "unit": "s",
                "note": f"{products_seconds:.0f} s products + {kept_seconds:.0f} s traffic",
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
    return rows + headline_rows()
