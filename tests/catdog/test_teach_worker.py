"""The Teach-your-own training process: same results as in-process, progress mirrored, errors and deaths reported."""

from __future__ import annotations

import numpy as np
import pytest

from core.catdog import teach, teach_worker


def separable_features(per_class: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(classes), per_class)
    features = rng.uniform(0.0, 0.3, (len(labels), len(teach.VIEWS), teach.FEATURES)).astype(np.float32)
    for photo, label in enumerate(labels):
        features[photo, :, 10 * label : 10 * label + 10] += 3.0
    return features, labels


@pytest.fixture(scope="module")
def worker():
    process = teach_worker.HeadWorker()
    yield process
    process.close()


def test_worker_trains_like_this_process(worker):
    """The child's training gives the in-process result (same seed) and its progress reaches the last epoch."""
    features, labels = separable_features(5, 2)
    config = teach.HeadConfig(epochs=30)
    progress = teach.Progress()
    remote = worker.run(
        "train", {"features": features, "labels": labels, "class_names": ["a", "b"], "config": config}, progress
    )
    local = teach.train(features, labels, ["a", "b"], config)
    assert remote.evaluation.accuracy == local.evaluation.accuracy == 1.0
    assert remote.evaluation.confusion.tolist() == local.evaluation.confusion.tolist()
    for theirs, mine in zip(remote.head.weights, local.head.weights, strict=True):
        np.testing.assert_allclose(theirs, mine, rtol=1e-4, atol=1e-5)
    assert progress.phase == "done" and progress.epoch == 30 and len(progress.loss) == 30
    np.testing.assert_allclose(progress.loss, local.loss, rtol=1e-4)


def test_worker_learning_curve(worker):
    """The learning curve runs in the child too, one row per size."""
    features, labels = separable_features(4, 2)
    rows = worker.run(
        "learning_curve",
        {"features": features, "labels": labels, "num_classes": 2, "config": teach.HeadConfig(epochs=20)},
    )
    assert [row["photos_per_class"] for row in rows] == [1, 2, 3]


def test_errors_come_back_with_their_message(worker):
    """A job that fails in the child raises TeachError in the parent with the child's message; the child lives on."""
    features, labels = separable_features(2, 2)
    arguments = {"features": features, "labels": labels, "class_names": ["only"], "config": teach.HeadConfig()}
    with pytest.raises(teach.TeachError, match="Teach 2 to 8 classes, not 1"):
        worker.run("train", arguments)
    assert worker.alive


def test_a_dead_process_is_reported_and_replaced():
    """If the child dies the job fails with a message saying so, and shared_worker starts a new child."""
    first = teach_worker.shared_worker()
    first.process.kill()
    first.process.join(timeout=10)
    features, labels = separable_features(2, 2)
    with pytest.raises(teach.TeachError, match="ended unexpectedly"):
        first.run("train", {"features": features, "labels": labels, "class_names": ["a", "b"],
                            "config": teach.HeadConfig(epochs=10)})  # fmt: skip
    second = teach_worker.shared_worker()
    assert second is not first and second.alive
    result = teach_worker.train_in_worker(features, labels, ["a", "b"], teach.HeadConfig(epochs=10))
    assert result.head.class_names == ("a", "b")
