"""Test-set evaluation with the article's metrics, per-class scores and the confusion matrix.

Precision and recall are computed as Keras' `Precision()` / `Recall()` metrics compute them
on one-hot labels (the article's `metrics=['accuracy', 'Precision', 'Recall']`): every class
probability above 0.5 counts as a positive prediction. Per-class precision, recall and F1
use the predicted class (argmax), as a confusion matrix does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from core.data import CLASS_NAMES

THRESHOLD = 0.5
CLIP = 1e-7


@dataclass(frozen=True)
class Evaluation:
    """Everything the results panel shows about a trained model on the 10,000 test images."""

    loss: float
    accuracy: float
    precision: float
    recall: float
    per_class: list[dict]
    confusion: list[list[int]]
    cell_indices: dict[str, list[int]]
    confident_mistakes: list[dict]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Evaluation:
        return cls(**data)

    def images_in_cell(self, true_class: int, predicted_class: int) -> list[int]:
        """Indices of the test images of class `true_class` predicted as `predicted_class`."""
        return self.cell_indices.get(f"{true_class},{predicted_class}", [])


def evaluate_predictions(probabilities: np.ndarray, labels: np.ndarray, mistakes: int = 24) -> Evaluation:
    """Scores class probabilities against integer labels.

    Args:
        probabilities: (n, 10) softmax outputs.
        labels: (n,) integer classes.
        mistakes: how many of the most confident wrong predictions to keep.

    Returns:
        An `Evaluation`.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    count, classes = probabilities.shape
    picked = np.clip(probabilities[np.arange(count), labels], CLIP, 1 - CLIP)
    loss = float(-np.mean(np.log(picked)))
    predicted = probabilities.argmax(axis=1)
    accuracy = float(np.mean(predicted == labels))

    one_hot = np.eye(classes, dtype=bool)[labels]
    positive = probabilities > THRESHOLD
    true_positive = int(np.sum(positive & one_hot))
    precision = true_positive / max(int(positive.sum()), 1)
    recall = true_positive / count

    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = []
    for index in range(classes):
        hits = confusion[index, index]
        class_precision = hits / max(confusion[:, index].sum(), 1)
        class_recall = hits / max(confusion[index, :].sum(), 1)
        f1 = 2 * class_precision * class_recall / max(class_precision + class_recall, 1e-12)
        per_class.append(
            {
                "class": CLASS_NAMES[index] if classes == len(CLASS_NAMES) else str(index),
                "precision": float(class_precision),
                "recall": float(class_recall),
                "f1": float(f1),
                "support": int(confusion[index, :].sum()),
            }
        )

    cell_indices: dict[str, list[int]] = {}
    for true_class, predicted_class in zip(*np.nonzero(confusion), strict=True):
        members = np.flatnonzero((labels == true_class) & (predicted == predicted_class))
        cell_indices[f"{true_class},{predicted_class}"] = members.tolist()

    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    worst = wrong[np.argsort(-confidence, kind="stable")[:mistakes]]
    confident_mistakes = [
        {
            "index": int(index),
            "true": int(labels[index]),
            "predicted": int(predicted[index]),
            "confidence": float(probabilities[index, predicted[index]]),
        }
        for index in worst
    ]
    return Evaluation(
        loss=loss,
        accuracy=accuracy,
        precision=float(precision),
        recall=float(recall),
        per_class=per_class,
        confusion=confusion.tolist(),
        cell_indices=cell_indices,
        confident_mistakes=confident_mistakes,
    )
