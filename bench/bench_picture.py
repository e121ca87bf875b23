"""Try it on your own picture: preparing a photo like Fashion-MNIST, and one prediction in numpy."""

from __future__ import annotations

import io
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from core.shallow.picture import prepare_picture

TITLE = "Your own picture: Fashion-MNIST preparation and one numpy prediction"
DESCRIPTION = """
`core.shallow.picture.prepare_picture` on the bundled cat photo enlarged to a 640x480 and a 4000x3000
(12 MP) photo, as JPEG (decoded at a reduced DCT scale, `draft_size`) and as PNG (decoded in full, then
scaled to the 1024-pixel working copy): load, trim, resize, sharpen, centre, negate, grayscale, with
every step's picture kept. Then `core.shallow.network.Network.predict` of one prepared picture with the
article's network (392 neurons, no activation; random weights of the right shapes, the time does not
depend on their values). Median of 5 runs each, in the page's process (no TensorFlow). Measured while
other engineers ran test suites on the same 2 cores (load average about 6): noisy, an upper bound.
"""

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5


def median_ms(function, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def photo_bytes(width: int, height: int, file_format: str) -> bytes:
    cat = Image.open(ROOT / "assets" / "samples" / "chelsea.jpg").convert("RGB")
    buffer = io.BytesIO()
    cat.resize((width, height), Image.Resampling.BICUBIC).save(buffer, format=file_format, quality=90)
    return buffer.getvalue()


def run() -> list[dict]:
    rows = []
    for width, height in ((640, 480), (4000, 3000)):
        for file_format in ("JPEG", "PNG"):
            data = photo_bytes(width, height, file_format)
            rows.append(
                {
                    "metric": f"prepare_picture, {width}x{height} {file_format} ({len(data) / 1e6:.1f} MB)",
                    "value": median_ms(lambda data=data: prepare_picture(data)),
                    "unit": "ms",
                }
            )

    from core.shallow.network import Network

    rng = np.random.default_rng(0)
    weights = {
        "hidden_1": [rng.normal(0, 0.1, (1, 392)), rng.normal(0, 0.1, 392)],
        "classes": [rng.normal(0, 0.01, (28 * 28 * 392, 10)), np.zeros(10)],
    }
    network = Network.from_weights({"architecture": "article", "hidden_units": (392,), "activation": "none"}, weights)
    image = prepare_picture(photo_bytes(640, 480, "JPEG")).image
    rows.append(
        {
            "metric": "Network.predict, one picture, article network (392 neurons)",
            "value": median_ms(lambda: network.predict(image)),
            "unit": "ms",
        }
    )
    return rows
