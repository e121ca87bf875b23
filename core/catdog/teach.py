"""Teach your own classes: a small head trained on EfficientNet-Lite0's frozen features.

Transfer learning as the DenseNet121 article does it (and Teachable Machine on a webcam):
the pretrained network is frozen, each photo is embedded once as the 1280 pooled features
of its last feature map (the centre crop the cat-or-dog verdict uses, its mirror image and
two off-centre crops), and only a softmax head is trained on them, optionally with one
hidden layer and dropout.

Training is full-batch: every step sees all the training features, so a step is an epoch.
All the heads of one training (the final head, each cross-validation fold, each point of
the learning curve) share one compiled Keras model with the same input shape; a fold only
changes which photos weigh in the loss (sample weights 0 or 1), so nothing is traced twice.

Evaluation is by photo, never by view: a photo's mirror image and crops are never split
between the training and the held-out side, and held-out photos are judged on their centre
view alone, as a new photo would be.

Grad-CAM is exact for these heads too. The head sees p = mean over the 7x7 positions of the
feature map A, so d y_c / d A[i, j, k] = (d y_c / d p_k) / 49 at every position: W[:, c]
for a linear head, and W1 @ (W2[:, c] * [W1^T p + b1 > 0]) with a ReLU hidden layer.

Command line:
    python -m core.catdog.teach train --class NAME=FOLDER [--class ...] --out FILE.keras [--json]
    python -m core.catdog.teach predict --model FILE.keras PATH [PATH ...] [--json]
`train --json` prints one line with the cross-validated accuracy; `predict --json` prints
one line per file, {"path", "label", "probabilities"} or {"path", "error"}. The exit code
is 1 if any file failed (or training could not run), else 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from core.catdog.classify import (
    Classifier,
    ModelMissingError,
    Prepared,
    grad_cam,
    image_paths,
    load_for_network,
    softmax,
)
from core.catdog.efficientnet import FEATURE_LAYER, IMAGE_SIZE
from core.images import ImageError

FEATURES = 1280
"""Length of the pooled feature vector (the channels of EfficientNet-Lite0's last map)."""

MIN_CLASSES, MAX_CLASSES = 2, 8
FEW_PHOTOS = 5
"""Below this many photos a class gets a warning: its held-out accuracy says little."""

MAX_FOLDS = 5
VIEWS = ("centre", "mirror", "crop top-left", "crop bottom-right")
CROP_SHARE = 0.8
"""An off-centre crop keeps this share of the centre square's side, from one of its corners."""

NAME_PATTERN = re.compile(r"^[\w][\w .'-]{0,29}$")
MODEL_MARKER = "class_names"
"""The name of the layer that carries the class names in an exported model."""


class TeachError(ValueError):
    """Training or import cannot go on; the message says what to change."""


@dataclass(frozen=True)
class HeadConfig:
    """How the head is built and trained.

    Attributes:
        hidden_units: 0 for a linear softmax head (Grad-CAM as the ImageNet head), else the
            width of one ReLU hidden layer.
        dropout_rate: dropout on the features (and on the hidden layer), 0 to 0.9.
        epochs: full-batch training steps, 10 to 1000.
        learning_rate: Adam's step size, 1e-5 to 1.
        seed: for the initial weights, dropout and the folds.
    """

    hidden_units: int = 0
    dropout_rate: float = 0.2
    epochs: int = 80
    learning_rate: float = 0.003
    seed: int = 0

    def __post_init__(self):
        if not 0 <= self.hidden_units <= 1024:
            raise ValueError(f"hidden_units must be 0 (no hidden layer) to 1024, not {self.hidden_units}.")
        if not 0.0 <= self.dropout_rate <= 0.9:
            raise ValueError(f"dropout_rate must be between 0 and 0.9, not {self.dropout_rate}.")
        if not 10 <= self.epochs <= 1000:
            raise ValueError(f"epochs must be 10 to 1000, not {self.epochs}.")
        if not 1e-5 <= self.learning_rate <= 1.0:
            raise ValueError(f"learning_rate must be between 0.00001 and 1, not {self.learning_rate}.")


def check_class_names(names: list[str]) -> list[str]:
    """Strips and checks class names: 2 to 8, distinct, short, made of letters, digits and ' .-_.

    Raises:
        TeachError: with the first problem found.
    """
    names = [name.strip() for name in names]
    if not MIN_CLASSES <= len(names) <= MAX_CLASSES:
        raise TeachError(f"Teach {MIN_CLASSES} to {MAX_CLASSES} classes, not {len(names)}.")
    for name in names:
        if not NAME_PATTERN.match(name):
            raise TeachError(
                f"Class name {name!r} must be 1 to 30 letters, digits, spaces or . ' - _, starting with a "
                "letter or digit."
            )
    lowered = [name.lower() for name in names]
    duplicates = sorted({name for name in names if lowered.count(name.lower()) > 1})
    if duplicates:
        raise TeachError(f"Each class needs its own name; {', '.join(duplicates)} is used twice.")
    return names


def content_hash(data: bytes) -> str:
    """The key a photo's features are cached under: SHA-256 of its bytes."""
    return hashlib.sha256(data).hexdigest()


def view_boxes(prepared: Prepared) -> list[tuple[float, float, float, float]]:
    """The crop boxes of VIEWS after the centre one: two corners of the centre square."""
    left, top, right, bottom = prepared.box
    side = (right - left) * CROP_SHARE
    return [(left, top, left + side, top + side), (right - side, bottom - side, right, bottom)]


def views(image: np.ndarray, prepared: Prepared) -> np.ndarray:
    """The network inputs of one photo, one per VIEWS entry: (len(VIEWS), 224, 224, 3) uint8."""
    crops = [
        np.asarray(
            Image.fromarray(image).resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC, box=box, reducing_gap=3.0)
        )
        for box in view_boxes(prepared)
    ]
    return np.stack([prepared.pixels, prepared.pixels[:, ::-1], *crops])


def pooled_features(classifier: Classifier, pixels: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """The 1280 pooled features of (N, 224, 224, 3) pixels: the mean of the classifier's last feature map."""
    chunks = [
        classifier.run(pixels[start : start + batch_size])[0].mean(axis=(1, 2))
        for start in range(0, len(pixels), batch_size)
    ]
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, FEATURES), np.float32)


@dataclass(frozen=True)
class Embedded:
    """One photo as the head sees it.

    Attributes:
        features: (len(VIEWS), 1280) pooled features, the centre view first.
        thumbnail: a small RGB picture of the centre crop, for the page.
    """

    features: np.ndarray
    thumbnail: np.ndarray


def _small(prepared: Prepared) -> np.ndarray:
    return np.asarray(Image.fromarray(prepared.pixels).resize((96, 96), Image.Resampling.BILINEAR))


def thumbnail(name: str, data: bytes) -> np.ndarray:
    """A 96x96 picture of what the network sees of a photo (checks the photo on the way).

    Raises:
        ImageError: the photo cannot be used; the message names it.
    """
    return _small(load_for_network(_named_bytes(name, data))[1])


def _decode(source) -> tuple[np.ndarray, np.ndarray]:
    image, prepared = load_for_network(source)
    return views(image, prepared), _small(prepared)


def embed_photos(classifier: Classifier, photos: list[tuple[str, bytes]], cache: dict | None = None) -> list:
    """Embeds photos (name, bytes), each once: cached ones by content hash, the rest in batches.

    Decoding runs in a thread pool (Pillow releases the GIL), the network in batches of 32.

    Args:
        classifier: the shared EfficientNet-Lite0.
        photos: (name for messages, file bytes).
        cache: content hash -> Embedded; updated in place (the page keeps one per session).

    Returns:
        For each photo, in order, its Embedded or the ImageError that names what is wrong.
    """
    cache = {} if cache is None else cache
    keys = [content_hash(data) for _, data in photos]
    missing = {key: (name, data) for key, (name, data) in zip(keys, photos, strict=True) if key not in cache}
    errors: dict[str, ImageError] = {}

    def decode(item):
        key, (name, data) = item
        upload = _named_bytes(name, data)
        try:
            return key, _decode(upload)
        except ImageError as error:
            return key, error

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        decoded = list(pool.map(decode, missing.items()))
    good = [(key, result) for key, result in decoded if not isinstance(result, ImageError)]
    errors = {key: result for key, result in decoded if isinstance(result, ImageError)}
    if good:
        features = pooled_features(classifier, np.concatenate([pixels for _, (pixels, _) in good]))
        per_photo = features.reshape(len(good), len(VIEWS), FEATURES)
        for (key, (_, thumbnail)), photo_features in zip(good, per_photo, strict=True):
            cache[key] = Embedded(photo_features, thumbnail)
    return [cache.get(key, errors.get(key)) for key in keys]


def _named_bytes(name: str, data: bytes):
    import io

    upload = io.BytesIO(data)
    upload.name = name  # The loader names the file in its error messages.
    return upload


def stratified_folds(labels: np.ndarray, folds: int, seed: int = 0) -> list[np.ndarray]:
    """Splits photo indices into folds with each class spread as evenly as possible.

    Each class's photos are shuffled (by `seed`) and dealt out in turn, the first to the
    fold after where the previous class stopped, so fold sizes differ by at most one.

    Returns:
        `folds` sorted index arrays that together hold every index once.

    Raises:
        TeachError: some class has fewer photos than folds.
    """
    labels = np.asarray(labels)
    counts = np.bincount(labels)
    if folds < 2 or counts.min() < folds:
        raise TeachError(f"Cross-validation in {folds} folds needs at least {max(folds, 2)} photos in every class.")
    rng = np.random.default_rng(seed)
    members: list[list[int]] = [[] for _ in range(folds)]
    position = 0
    for label in range(len(counts)):
        for index in rng.permutation(np.flatnonzero(labels == label)):
            members[position % folds].append(int(index))
            position += 1
    return [np.array(sorted(fold), dtype=int) for fold in members]


def fold_count(labels: np.ndarray) -> int:
    """The folds cross-validation uses: five, or fewer when a class has fewer photos (0: impossible)."""
    smallest = int(np.bincount(labels).min()) if len(labels) else 0
    return min(MAX_FOLDS, smallest) if smallest >= 2 else 0


@dataclass(frozen=True)
class Head:
    """A trained head, as plain numpy: runs without Keras, pickles, exports.

    Attributes:
        class_names: the classes, in output order.
        weights: [W, b] for a linear head, [W1, b1, W2, b2] with a hidden layer.
        config: how it was trained.
    """

    class_names: tuple[str, ...]
    weights: tuple[np.ndarray, ...]
    config: HeadConfig

    def logits(self, pooled: np.ndarray) -> np.ndarray:
        """The class scores (before softmax) of (N, 1280) pooled features."""
        tensor = np.asarray(pooled, np.float32)
        if len(self.weights) == 4:
            tensor = np.maximum(tensor @ self.weights[0] + self.weights[1], 0.0)
        return tensor @ self.weights[-2] + self.weights[-1]

    def probabilities(self, pooled: np.ndarray) -> np.ndarray:
        return softmax(self.logits(pooled))

    def class_gradient(self, pooled: np.ndarray, class_index: int) -> np.ndarray:
        """d logit_c / d pooled for one (1280,) feature vector (exact; see the module docstring)."""
        if len(self.weights) == 2:
            return self.weights[0][:, class_index]
        hidden_w, hidden_b, output_w, _ = self.weights
        active = (pooled @ hidden_w + hidden_b) > 0
        return hidden_w @ (output_w[:, class_index] * active)

    def grad_cam(self, feature_map: np.ndarray, class_index: int) -> np.ndarray:
        """Grad-CAM (7x7, in [0, 1]) of a class for the classifier's last feature map of one photo."""
        return grad_cam(feature_map, self.class_gradient(feature_map.mean(axis=(0, 1)), class_index))


@dataclass
class Progress:
    """What a training has done so far, as plain numbers (read by the page while it runs).

    Attributes:
        phase: "final head", "fold 2 of 5", "curve: 3 photos per class", ..., then "done".
        epoch, epochs: of the current fit.
        loss, accuracy: the final head's training curve, one value per epoch.
    """

    phase: str = "starting"
    epoch: int = 0
    epochs: int = 0
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    listener: object = field(default=None, repr=False, compare=False)
    """Called with this Progress after each epoch (the training process forwards it)."""

    def notify(self) -> None:
        if self.listener is not None:
            self.listener(self)

    def snapshot(self) -> dict:
        return {"phase": self.phase, "epoch": self.epoch, "epochs": self.epochs,
                "loss": list(self.loss), "accuracy": list(self.accuracy)}  # fmt: skip

    def update(self, snapshot: dict) -> None:
        for name, value in snapshot.items():
            setattr(self, name, value)


class HeadTrainer:
    """One compiled Keras head for a set of photos; each `fit` starts from the same initial weights.

    Args:
        features: (photos, len(VIEWS), 1280).
        labels: (photos,) class indices.
        num_classes: the number of classes (a class may have no photo in some fit).
        config: the head and its training.
    """

    def __init__(self, features: np.ndarray, labels: np.ndarray, num_classes: int, config: HeadConfig):
        import keras

        self.config = config
        self.labels = np.asarray(labels, dtype=int)
        photos, view_count, _ = features.shape
        self.inputs = features.reshape(photos * view_count, FEATURES).astype(np.float32)
        self.targets = np.repeat(self.labels, view_count)
        self.view_count = view_count
        self.centre = features[:, 0, :].astype(np.float32)
        keras.utils.set_random_seed(config.seed)
        self.model = build_head(num_classes, config)
        self.model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            loss="sparse_categorical_crossentropy",
            weighted_metrics=["accuracy"],
        )
        self.model.optimizer.build(self.model.trainable_variables)
        self._initial = [variable.numpy() for variable in self._variables()]

    def _variables(self):
        return [*self.model.variables, *self.model.optimizer.variables]

    def fit(self, train_photos: np.ndarray, on_epoch=None) -> tuple[np.ndarray, ...]:
        """Trains on the given photos (all their views), from the initial weights.

        Args:
            train_photos: photo indices to learn from; the others weigh nothing.
            on_epoch: called as on_epoch(epoch, loss, accuracy) after each epoch.

        Returns:
            The head's weights as numpy arrays.
        """
        for variable, value in zip(self._variables(), self._initial, strict=True):
            variable.assign(value)
        photo_weight = np.zeros(len(self.labels), np.float32)
        photo_weight[train_photos] = 1.0
        sample_weight = np.repeat(photo_weight, self.view_count)
        for epoch in range(1, self.config.epochs + 1):
            loss, accuracy = self.model.train_on_batch(
                self.inputs, self.targets, sample_weight=sample_weight, return_dict=False
            )
            if on_epoch is not None:
                on_epoch(epoch, float(loss), float(accuracy))
        return tuple(np.asarray(weights) for weights in self.model.get_weights())

    def predict_centre(self) -> np.ndarray:
        """Probabilities for every photo's centre view from the current weights."""
        return np.asarray(self.model.predict_on_batch(self.centre))


def build_head(num_classes: int, config: HeadConfig):
    """The head as a Keras model: 1280 features -> [dropout, ReLU hidden layer] -> dropout -> softmax."""
    import keras
    from keras import layers

    inputs = keras.Input((FEATURES,), name="pooled_features")
    tensor = layers.Dropout(config.dropout_rate, name="head_dropout")(inputs)
    if config.hidden_units:
        tensor = layers.Dense(config.hidden_units, activation="relu", name="head_hidden")(tensor)
        tensor = layers.Dropout(config.dropout_rate, name="head_hidden_dropout")(tensor)
    outputs = layers.Dense(num_classes, activation="softmax", name="head_output")(tensor)
    return keras.Model(inputs, outputs, name="teach_head")


@dataclass(frozen=True)
class Evaluation:
    """Cross-validated results, photo by photo.

    Attributes:
        folds: how many folds (0 when some class has fewer than two photos).
        predicted: (photos,) out-of-fold predicted class of each photo (-1 without folds).
        probabilities: (photos, classes) out-of-fold probabilities.
        confusion: (classes, classes) counts, rows the true class, columns the predicted one.
    """

    folds: int
    predicted: np.ndarray
    probabilities: np.ndarray
    confusion: np.ndarray

    @property
    def accuracy(self) -> float | None:
        total = int(self.confusion.sum())
        return float(np.trace(self.confusion) / total) if total else None


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=int)
    np.add.at(matrix, (np.asarray(true), np.asarray(predicted)), 1)
    return matrix


@dataclass(frozen=True)
class Training:
    """A finished training: the head on all photos, its curves and its cross-validation."""

    head: Head
    evaluation: Evaluation
    loss: list[float]
    accuracy: list[float]
    seconds: float


def check_photos(labels: np.ndarray, class_names: list[str]) -> None:
    """Raises TeachError unless every class has at least one photo."""
    counts = np.bincount(labels, minlength=len(class_names))
    empty = [name for name, count in zip(class_names, counts, strict=True) if count == 0]
    if empty:
        raise TeachError(f"Add at least one photo to {', '.join(empty)} before training.")


def few_photo_classes(counts: dict[str, int]) -> list[str]:
    """The classes with fewer than FEW_PHOTOS photos (their accuracy says little)."""
    return [name for name, count in counts.items() if count < FEW_PHOTOS]


def train(
    features: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    config: HeadConfig = HeadConfig(),
    progress: Progress | None = None,
) -> Training:
    """Trains the head on every photo, then cross-validates the same recipe.

    Args:
        features: (photos, len(VIEWS), 1280), from `embed_photos`.
        labels: (photos,) class indices into class_names.
        class_names: the classes (checked by check_class_names).
        config: the head.
        progress: updated in place as it goes (for a page polling it from another thread).
    """
    class_names = check_class_names(class_names)
    labels = np.asarray(labels, dtype=int)
    check_photos(labels, class_names)
    progress = progress or Progress()
    started = time.perf_counter()
    trainer = HeadTrainer(np.asarray(features), labels, len(class_names), config)
    progress.phase, progress.epochs = "final head", config.epochs

    def record(epoch, loss, accuracy):
        progress.epoch = epoch
        progress.loss.append(loss)
        progress.accuracy.append(accuracy)
        progress.notify()

    weights = trainer.fit(np.arange(len(labels)), on_epoch=record)
    head = Head(tuple(class_names), weights, config)
    folds = fold_count(labels)
    probabilities = np.zeros((len(labels), len(class_names)), np.float32)
    if folds:
        splits = stratified_folds(labels, folds, config.seed)
        for number, held_out in enumerate(splits, start=1):
            progress.phase = f"fold {number} of {folds}"
            trainer.fit(np.setdiff1d(np.arange(len(labels)), held_out), on_epoch=_epoch_counter(progress))
            probabilities[held_out] = trainer.predict_centre()[held_out]
        predicted = probabilities.argmax(axis=1)
        confusion = confusion_matrix(labels, predicted, len(class_names))
    else:
        predicted = np.full(len(labels), -1)
        confusion = np.zeros((len(class_names),) * 2, dtype=int)
    progress.phase = "done"
    return Training(
        head,
        Evaluation(folds, predicted, probabilities, confusion),
        list(progress.loss),
        list(progress.accuracy),
        time.perf_counter() - started,
    )


def _epoch_counter(progress: Progress):
    def count(epoch, _loss, _accuracy):
        progress.epoch = epoch
        progress.notify()

    return count


def embed_and_train(
    classifier: Classifier,
    photos: list[list[tuple[str, bytes]]],
    class_names: list[str],
    config: HeadConfig = HeadConfig(),
    cache: dict | None = None,
    progress: Progress | None = None,
    trainer=None,
) -> tuple[Training, np.ndarray, np.ndarray]:
    """Embeds each class's photos (cached ones are not embedded again), then trains.

    Args:
        photos: one list of (name, bytes) per class, in class order.
        trainer: the function that trains (default `train`, in this process; the page passes
            `core.catdog.teach_worker.train_in_worker`).

    Returns:
        The Training, and the photos' content hashes and labels in training order (to show
        the misclassified ones).

    Raises:
        TeachError: a class has no usable photo, or a photo cannot be used (named in the message).
    """
    progress = progress or Progress()
    progress.phase = "embedding photos"
    flat = [(label, photo) for label, class_photos in enumerate(photos) for photo in class_photos]
    embedded = embed_photos(classifier, [photo for _, photo in flat], cache)
    problems = [str(result) for result in embedded if isinstance(result, ImageError)]
    if problems:
        raise TeachError(" ".join(problems))
    labels = np.array([label for label, _ in flat], dtype=int)
    features = np.stack([item.features for item in embedded]) if embedded else np.zeros((0, len(VIEWS), FEATURES))
    check_photos(labels, check_class_names(class_names))
    keys = np.array([content_hash(data) for _, (_, data) in flat])
    return (trainer or train)(features, labels, class_names, config, progress=progress), keys, labels


def curve_sizes(smallest: int) -> list[int]:
    """Photos per class for the learning curve: 1, 2, 3, 4, 7, 10, 17, ... (steps of about 1.6x,
    so a large class costs few fits), and always the largest possible, smallest - 1."""
    sizes = {size for size in (round(1.6**power) for power in range(12)) if size < smallest}
    return sorted(sizes | ({smallest - 1} if smallest > 1 else set()))


def learning_curve(
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    config: HeadConfig = HeadConfig(),
    repeats: int = 3,
    progress: Progress | None = None,
) -> list[dict]:
    """Held-out accuracy against photos per class: how many photos the head needs.

    For each n of curve_sizes (1 to the smallest class minus one), `repeats` times: n random photos of each class
    train the head, every other photo is held out and judged on its centre view.

    Returns:
        One row per n: {"photos_per_class", "accuracy" (mean), "low", "high" (over repeats),
        "held_out" (photos judged per repeat)}. Empty when a class has a single photo.
    """
    labels = np.asarray(labels, dtype=int)
    sizes = curve_sizes(int(np.bincount(labels, minlength=num_classes).min()))
    if not sizes:
        return []
    progress = progress or Progress()
    trainer = HeadTrainer(np.asarray(features), labels, num_classes, config)
    rng = np.random.default_rng(config.seed)
    rows = []
    for size in sizes:
        progress.phase = f"curve: {size} photo{'s' if size > 1 else ''} per class"
        scores = []
        for _ in range(repeats):
            chosen = np.concatenate(
                [rng.choice(np.flatnonzero(labels == label), size, replace=False) for label in range(num_classes)]
            )
            held_out = np.setdiff1d(np.arange(len(labels)), chosen)
            trainer.fit(chosen, on_epoch=_epoch_counter(progress))
            predicted = trainer.predict_centre()[held_out].argmax(axis=1)
            scores.append(float(np.mean(predicted == labels[held_out])))
        rows.append(
            {
                "photos_per_class": size,
                "accuracy": float(np.mean(scores)),
                "low": min(scores),
                "high": max(scores),
                "held_out": int(len(labels) - size * num_classes),
            }
        )
    progress.phase = "done"
    return rows


class Background:
    """Runs one function in a daemon thread; the page polls `done`, then reads `result` or `error`.

    The function receives a Progress to update; the thread makes no Streamlit calls.
    """

    def __init__(self, function, *args, **kwargs):
        self.progress = Progress()
        self.result = None
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, args=(function, args, kwargs), daemon=True)
        self._thread.start()

    def _run(self, function, args, kwargs):
        try:
            self.result = function(*args, **kwargs, progress=self.progress)
        except Exception as error:  # Shown on the page; the thread must not die silently.
            self.error = error

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


@dataclass(frozen=True)
class Verdict:
    """A new photo judged by the taught head, beside the ImageNet verdict.

    Attributes:
        label: the most likely taught class.
        probabilities: {class name: probability}.
        heatmap: Grad-CAM of `label` (7x7, [0, 1]).
        analysis: the cat-or-dog Analysis (decoded image, crop, ImageNet prediction, its heatmap).
    """

    label: str
    probabilities: dict[str, float]
    heatmap: np.ndarray
    analysis: object


def judge(classifier: Classifier, head: Head, source) -> Verdict:
    """Classifies one photo with the taught head (one network pass also gives the ImageNet verdict).

    Raises:
        ImageError: the photo cannot be used.
    """
    analysis = classifier.analyse(source)
    feature_map = analysis.prediction.features
    probabilities = head.probabilities(feature_map.mean(axis=(0, 1))[None])[0]
    best = int(np.argmax(probabilities))
    return Verdict(
        head.class_names[best],
        {name: float(value) for name, value in zip(head.class_names, probabilities, strict=True)},
        head.grad_cam(feature_map, best),
        analysis,
    )


def _class_names_layer():
    """The identity layer that carries the class names in an exported model (defined lazily:
    importing Keras at module import would slow pages that never train)."""
    import keras

    class ClassNames(keras.layers.Layer):
        """Passes probabilities through; its config holds the class names, in output order."""

        def __init__(self, names, **kwargs):
            super().__init__(**kwargs)
            self.names = list(names)

        def call(self, inputs):
            return inputs

        def get_config(self):
            return {**super().get_config(), "names": self.names}

    return ClassNames


def export_model(classifier: Classifier, head: Head) -> bytes:
    """The whole model as `.keras` bytes: 224x224 RGB pixels (0-255) -> class probabilities.

    The frozen EfficientNet-Lite0 up to its pooled features, the head, and a layer named
    MODEL_MARKER holding the class names. The file is written to a private temporary
    folder only long enough to read it back.
    """
    import keras

    backbone = classifier.model
    pooled = backbone.get_layer("avg_pool")(backbone.get_layer(FEATURE_LAYER).output)
    head_model = build_head(len(head.class_names), replace(head.config, dropout_rate=0.0))
    head_model.set_weights(list(head.weights))
    outputs = _class_names_layer()(list(head.class_names), name=MODEL_MARKER)(head_model(pooled))
    model = keras.Model(backbone.inputs, outputs, name="taught_efficientnet_lite0")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return path.read_bytes()


def import_model(data: bytes, name: str = "the model") -> Head:
    """Reads back the head of a model written by export_model.

    Raises:
        TeachError: not a `.keras` file, or not one this lab exported (the message says which).
    """
    import zipfile

    import keras

    if not data.startswith(b"PK"):
        raise TeachError(f"{name} is not a .keras file (a .keras file is a zip archive).")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        path.write_bytes(data)
        try:
            model = keras.saving.load_model(path, compile=False, custom_objects={"ClassNames": _class_names_layer()})
        except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile) as error:
            raise TeachError(f"{name} could not be loaded as a Keras model ({error}).") from error
    layer_names = {layer.name for layer in model.layers}
    if MODEL_MARKER not in layer_names or "teach_head" not in layer_names:
        raise TeachError(f"{name} is a Keras model but not one exported by Teach your own (no class names in it).")
    head_model = model.get_layer("teach_head")
    class_names = tuple(model.get_layer(MODEL_MARKER).names)
    hidden = [layer for layer in head_model.layers if layer.name == "head_hidden"]
    hidden_units = hidden[0].units if hidden else 0
    weights = tuple(np.asarray(array) for array in head_model.get_weights())
    if weights[0].shape[0] != FEATURES or weights[-1].shape[0] != len(class_names):
        raise TeachError(f"{name} has a head of the wrong shape for EfficientNet-Lite0's {FEATURES} features.")
    return Head(class_names, weights, HeadConfig(hidden_units=hidden_units))


# --- command line ---------------------------------------------------------------------------------


def _class_argument(text: str) -> tuple[str, Path]:
    name, separator, folder = text.partition("=")
    if not separator or not name.strip() or not folder:
        raise argparse.ArgumentTypeError(f"expected NAME=FOLDER, not {text!r}")
    return name.strip(), Path(folder)


def _load_folder_photos(folder: Path) -> list[tuple[str, bytes]]:
    if not folder.is_dir():
        raise TeachError(f"{folder} is not a folder.")
    return [(str(path), path.read_bytes()) for path in image_paths([str(folder)])]


def command_train(args) -> int:
    names = [name for name, _ in args.classes]
    check_class_names(names)
    classifier = Classifier()
    features, labels, failed = [], [], 0
    for label, (_, folder) in enumerate(args.classes):
        photos = _load_folder_photos(folder)
        for (path, _), result in zip(photos, embed_photos(classifier, photos), strict=True):
            if isinstance(result, ImageError):
                failed += 1
                print(json.dumps({"path": path, "error": str(result)}) if args.json else f"{path}: error: {result}")
                continue
            features.append(result.features)
            labels.append(label)
    if not features:
        raise TeachError("No usable photos in the given folders.")
    config = HeadConfig(hidden_units=args.hidden_units, dropout_rate=args.dropout, epochs=args.epochs, seed=args.seed)
    training = train(np.stack(features), np.array(labels), names, config)
    args.out.write_bytes(export_model(classifier, training.head))
    counts = dict(zip(names, np.bincount(labels, minlength=len(names)).tolist(), strict=True))
    summary = {
        "out": str(args.out),
        "classes": names,
        "photos": counts,
        "folds": training.evaluation.folds,
        "cv_accuracy": training.evaluation.accuracy,
        "confusion": training.evaluation.confusion.tolist(),
        "failed": failed,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        accuracy = training.evaluation.accuracy
        shown = f"{accuracy:.1%} in {training.evaluation.folds} folds" if accuracy is not None else "not measurable"
        print(f"Trained on {counts}; cross-validated accuracy {shown}. Wrote {args.out}.")
        for name in few_photo_classes(counts):
            print(f"warning: {name} has fewer than {FEW_PHOTOS} photos.")
    return 1 if failed else 0


def command_predict(args) -> int:
    head = import_model(args.model.read_bytes(), str(args.model)) if args.model.is_file() else None
    if head is None:
        raise TeachError(f"{args.model} does not exist.")
    classifier = Classifier()
    paths = image_paths(args.paths)
    failed = 0
    for path in paths:
        try:
            result = judge(classifier, head, path)
        except ImageError as error:
            failed += 1
            line = {"path": str(path), "error": str(error)}
            print(json.dumps(line) if args.json else f"{path}: error: {error}", flush=True)
            continue
        if args.json:
            rounded = {name: round(value, 6) for name, value in result.probabilities.items()}
            print(json.dumps({"path": str(path), "label": result.label, "probabilities": rounded}), flush=True)
        else:
            print(f"{path}: {result.label} ({result.probabilities[result.label]:.1%})", flush=True)
    if not paths:
        print("No image files found.", file=sys.stderr)
        return 1
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m core.catdog.teach", description="Teach EfficientNet-Lite0 your own classes."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    trainer = commands.add_parser("train", help="train a head on folders of photos, one per class")
    trainer.add_argument(
        "--class",
        dest="classes",
        action="append",
        type=_class_argument,
        required=True,
        metavar="NAME=FOLDER",
        help="a class and its folder of photos (2 to 8 of them)",
    )
    trainer.add_argument("--out", type=Path, required=True, metavar="FILE.keras", help="where to write the model")
    trainer.add_argument("--hidden-units", type=int, default=HeadConfig.hidden_units)
    trainer.add_argument("--dropout", type=float, default=HeadConfig.dropout_rate)
    trainer.add_argument("--epochs", type=int, default=HeadConfig.epochs)
    trainer.add_argument("--seed", type=int, default=HeadConfig.seed)
    trainer.add_argument("--json", action="store_true", help="print the result as one JSON line")
    predictor = commands.add_parser("predict", help="classify photos with a model written by train")
    predictor.add_argument("--model", type=Path, required=True, metavar="FILE.keras")
    predictor.add_argument("paths", nargs="+", metavar="PATH", help="image files, or folders of images")
    predictor.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return command_train(args) if args.command == "train" else command_predict(args)
    except (TeachError, ModelMissingError, ValueError) as error:
        if getattr(args, "json", False):
            print(json.dumps({"error": str(error)}))
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
