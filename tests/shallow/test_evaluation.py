"""Test-set metrics against Keras' own metrics and hand-counted confusion cells."""

from __future__ import annotations

import numpy as np
import pytest

from core.shallow.evaluation import evaluate_predictions


@pytest.fixture(scope="module")
def predictions():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 500)
    logits = rng.standard_normal((500, 10)) * 2
    logits[np.arange(500), labels] += 2.5  # Mostly right, sometimes wrong, sometimes unsure.
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return probabilities.astype(np.float32), labels


def test_metrics_match_keras(predictions):
    """Loss, accuracy, precision and recall equal Keras' metrics on one-hot labels (the article's)."""
    import keras

    probabilities, labels = predictions
    one_hot = np.eye(10)[labels]
    result = evaluate_predictions(probabilities, labels)
    precision, recall = keras.metrics.Precision(), keras.metrics.Recall()
    precision.update_state(one_hot, probabilities)
    recall.update_state(one_hot, probabilities)
    loss = keras.losses.CategoricalCrossentropy()(one_hot, probabilities)
    accuracy = keras.metrics.CategoricalAccuracy()
    accuracy.update_state(one_hot, probabilities)
    assert result.precision == pytest.approx(float(precision.result()), abs=1e-6)
    assert result.recall == pytest.approx(float(recall.result()), abs=1e-6)
    assert result.loss == pytest.approx(float(loss), rel=1e-5)
    assert result.accuracy == pytest.approx(float(accuracy.result()), abs=1e-6)


def test_confusion_cells_and_per_class_scores():
    """A hand-made case: the confusion matrix, the images in each cell, and per-class P/R/F1."""
    labels = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 2, 2])
    probabilities = np.full((6, 10), 0.01)
    probabilities[np.arange(6), predicted] = 0.91
    probabilities[4, 2] = 0.95  # The most confident mistake.
    result = evaluate_predictions(probabilities, labels)
    assert result.confusion[0][:3] == [2, 1, 0] and result.confusion[1][:3] == [0, 1, 1]
    assert result.images_in_cell(0, 1) == [2] and result.images_in_cell(1, 2) == [4]
    assert result.images_in_cell(0, 0) == [0, 1] and result.images_in_cell(5, 5) == []
    first = result.per_class[0]
    assert first["class"] == "T-shirt/top" and first["precision"] == 1.0
    assert first["recall"] == pytest.approx(2 / 3) and first["f1"] == pytest.approx(0.8)
    assert [m["index"] for m in result.confident_mistakes] == [4, 2]
    assert result.confident_mistakes[0] == {"index": 4, "true": 1, "predicted": 2, "confidence": 0.95}
    assert sum(map(sum, result.confusion)) == 6
