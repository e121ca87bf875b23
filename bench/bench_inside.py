"""Inside a trained network: the numpy forward pass read from a `.keras` file, against Keras' predict."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

TITLE = "Inside a trained network: numpy from the .keras file vs Keras predict"
DESCRIPTION = """
`core.shallow.network` (what the page uses, without TensorFlow) against `model.predict(batch_size=256)` on
the same saved model (random weights of the trained models' sizes), both on the same 2,000 Fashion-MNIST
test images in the same run: `read_weights` (h5py, the whole file), `Network.predict`, Keras' predict
(after one warm-up call), the largest probability difference, and `layer_outputs` of one image (what the
page computes per rerun). The CNNs are the issue-19 spec's (8 filters, 3 x 3), built by
`tests/shallow/cnn_spec.py` until `build_model` makes them. Medians of 3; the machine is shared with
other engineers' test runs, so times are noisy: compare rows within one run.
"""

RUNS = 3


def median_s(function, *args, **kwargs) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        function(*args, **kwargs)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def networks():
    from core.shallow.config import TrainingConfig
    from tests.shallow.cnn_spec import CnnSettings

    return {
        "per-pixel 392, linear": TrainingConfig(),
        "per-pixel 392, ReLU": TrainingConfig(activation="relu"),
        "MLP 392, ReLU": TrainingConfig(architecture="mlp", activation="relu"),
        "CNN 8 x 3x3, ReLU, 1 block": CnnSettings(filters=8, kernel_size=3, conv_blocks=1),
        "CNN 8 x 3x3, ReLU, 2 blocks": CnnSettings(filters=8, kernel_size=3, conv_blocks=2),
    }


def run(tiny: bool = False) -> list[dict]:
    from core.data import load_fashion_mnist
    from core.shallow.config import build_model
    from core.shallow.network import Network, read_weights
    from tests.shallow.cnn_spec import CnnSettings, build_cnn

    images = np.array(load_fashion_mnist()[1][0][: 200 if tiny else 2000])
    inputs = images[..., None].astype(np.float32) / 255
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, settings in networks().items():
            model = build_cnn(settings) if isinstance(settings, CnnSettings) else build_model(settings)
            rng = np.random.default_rng(0)
            model.set_weights([rng.normal(0, 0.05, w.shape).astype(np.float32) for w in model.get_weights()])
            path = Path(folder) / f"{len(rows)}.keras"
            model.save(path)
            read = median_s(read_weights, path)
            network = Network.from_file(settings, path)
            ours = median_s(network.predict, images)
            model.predict(inputs[:256], verbose=0)
            theirs = median_s(model.predict, inputs, batch_size=256, verbose=0)
            gap = float(np.abs(network.predict(images) - model.predict(inputs, verbose=0)).max())
            one = median_s(network.layer_outputs, images[:1])
            rows += [
                {"metric": f"{name}: read_weights", "value": read * 1000, "unit": "ms"},
                {"metric": f"{name}: numpy predict", "value": ours, "unit": "s", "note": f"{len(images):,} images"},
                {"metric": f"{name}: Keras predict", "value": theirs, "unit": "s", "note": f"{len(images):,} images"},
                {"metric": f"{name}: largest probability difference", "value": gap, "unit": ""},
                {"metric": f"{name}: layer_outputs of one image", "value": one * 1000, "unit": "ms"},
            ]
    return rows
