"""One network, one engine, in its own process (so its peak memory is its own).

    python -m bench.network_variants plain|ours CONFIG_JSON IMAGES EPOCHS

Trains EPOCHS epochs on the first IMAGES training images (batch 128) and prints one JSON
line: seconds of each epoch, test accuracy after them, peak RSS and the engine used.
"plain" is the article's code: `model.fit` on float32 (n, 28, 28, 1) arrays with one-hot
labels and the same optimizer; "ours" is the engine `resolve_engine` picks for a CPU,
driven as `core.shallow.jobs` drives it (`train_epoch`, then `predict` on the test set).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(variant: str, config_json: str, images: int, epochs: int) -> dict:
    import numpy as np

    from core.shallow.config import TrainingConfig, build_model, make_optimizer, resolve_engine
    from core.shallow.jobs import _dataset

    config = TrainingConfig.from_dict(json.loads(config_json))
    x_all, y_all, x_test, y_test = _dataset(None)
    x_train, y_train = x_all[:images], y_all[:images]
    times: list[float] = []
    import keras

    keras.utils.set_random_seed(config.seed)  # Both variants start from the same weights, as the app's jobs do.
    if variant == "plain":
        model = build_model(config)
        model.compile(optimizer=make_optimizer(config), loss="categorical_crossentropy", metrics=["accuracy"])
        train_images = x_train.reshape(-1, 28, 28, 1)
        one_hot = keras.utils.to_categorical(y_train, 10)

        class EpochTimer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self.start)

        model.fit(
            train_images, one_hot, batch_size=128, epochs=epochs, shuffle=True, verbose=0, callbacks=[EpochTimer()]
        )
        probabilities = model.predict(x_test.reshape(-1, 28, 28, 1), batch_size=256, verbose=0)
        engine_name = "keras"
    else:
        from core.shallow.jobs import make_engine

        engine_name = resolve_engine(config)
        engine = make_engine(config, build_model(config), engine_name)
        for _ in range(epochs):
            start = time.perf_counter()
            engine.train_epoch(x_train, y_train, lambda *args: True)
            times.append(time.perf_counter() - start)
        probabilities = engine.predict(x_test)
        engine_name = type(engine).__name__
        engine.close()
    accuracy = float(np.mean(np.asarray(probabilities).argmax(1) == y_test))
    return {"epoch_seconds": times, "test_accuracy": accuracy, "peak_rss_mib": peak_rss_mib(), "engine": engine_name}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
