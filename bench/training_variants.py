"""One training variant per process, so each one's peak memory is its own.

    python -m bench.training_variants plain|ours|ours-keras EPOCHS

Prints one JSON line: seconds per epoch (each epoch), test accuracy after the epochs, peak
RSS, and for ours the time from submitting the job to its first progress snapshot.
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


def plain(epochs: int) -> dict:
    """The article's own code: float32 arrays, one-hot labels, plain `model.fit`."""
    import keras
    import numpy as np

    from core.data import load_fashion_mnist
    from core.shallow.config import TrainingConfig, build_model

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    train_images = np.expand_dims(x_train / 255, axis=3).astype("float32")
    test_images = np.expand_dims(x_test / 255, axis=3).astype("float32")
    train_labels = keras.utils.to_categorical(y_train, 10)
    test_labels = keras.utils.to_categorical(y_test, 10)
    keras.utils.set_random_seed(0)
    model = build_model(TrainingConfig(hidden_units=(392,), activation="none", dropout=0.8))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-4, epsilon=1e-4),
        loss="categorical_crossentropy",
        metrics=["accuracy", "Precision", "Recall"],
    )
    times: list[float] = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)
            print(f"plain epoch {epoch + 1}: {times[-1]:.1f} s {logs}", file=sys.stderr, flush=True)

    model.fit(
        train_images,
        train_labels,
        shuffle=True,
        batch_size=128,
        epochs=epochs,
        validation_split=0.1,
        callbacks=[EpochTimer()],
        verbose=0,
    )
    loss, accuracy, precision, recall = model.evaluate(test_images, test_labels, verbose=0)
    return {"epoch_seconds": times, "test_accuracy": accuracy, "test_loss": loss, "peak_rss_mib": peak_rss_mib()}


def ours(epochs: int, engine: str = "auto") -> dict:
    """The app's path: a TrainingJob in a worker thread, numpy engine for this model."""
    import tempfile

    started = time.perf_counter()
    import keras  # noqa: F401  (imported as the page does before a job starts)

    from core.shallow.config import TrainingConfig
    from core.shallow.jobs import JobQueue
    from core.shallow.runs import RunStore

    import_seconds = time.perf_counter() - started
    config = TrainingConfig(hidden_units=(392,), activation="none", dropout=0.8, epochs=epochs, engine=engine)
    with tempfile.TemporaryDirectory() as folder:
        queue = JobQueue(store=RunStore(os.path.join(folder, "runs.sqlite")))
        submitted = time.perf_counter()
        job = queue.submit(config)
        first_snapshot = None
        reported = 0
        while not job.snapshot().done:
            snapshot = job.snapshot()
            if first_snapshot is None and snapshot.batch > 0:
                first_snapshot = time.perf_counter() - submitted
            for row in snapshot.history[reported:]:
                print(f"ours epoch {row['epoch']}: {row['seconds']:.1f} s {row}", file=sys.stderr, flush=True)
                reported += 1
            time.sleep(0.01)
        progress = job.snapshot()
    if progress.status != "finished":
        raise RuntimeError(progress.error or progress.status)
    return {
        "epoch_seconds": [row["seconds"] for row in progress.history],
        "test_accuracy": progress.evaluation["accuracy"],
        "test_loss": progress.evaluation["loss"],
        "peak_rss_mib": peak_rss_mib(),
        "first_snapshot_seconds": first_snapshot,
        "keras_import_seconds": import_seconds,
        "engine": progress.engine,
        "device": progress.device,
    }


if __name__ == "__main__":
    variant, epochs = sys.argv[1], int(sys.argv[2])
    if variant == "plain":
        result = plain(epochs)
    elif variant == "ours-keras":
        result = ours(epochs, engine="keras")
    else:
        result = ours(epochs)
    print(json.dumps(result))
