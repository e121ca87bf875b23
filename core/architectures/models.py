"""The architectures rebuilt in Keras, to check the articles' parameter counts and depths.

Each architecture as its article describes it (`SPECS`, `inspect_architecture`, `parameter_report`),
from `keras.applications` with `weights=None` (nothing is downloaded) plus the article's head.
Keras is imported only inside these functions, so importing this module stays cheap.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from core.architectures.results import StoredResults, load_results

if TYPE_CHECKING:
    import keras


def _classifier_on(base: keras.Model, name: str, classes: int = 10, dropout_rate: float = 0.5) -> keras.Model:
    """The Hasan (2020) head: the base model, one Dropout, one softmax Dense.

    The article's summaries show the base's output as a vector ((None, 2048) for ResNet50), so the
    base ends in global pooling; its dropout rate is not given, and a rate has no parameters.
    """
    import keras

    inputs = keras.Input(shape=base.input_shape[1:], name="image")
    features = base(inputs)
    features = keras.layers.Dropout(dropout_rate, name="dropout")(features)
    outputs = keras.layers.Dense(classes, activation="softmax", name="dense")(features)
    return keras.Model(inputs, outputs, name=name)


def build_vgg16_mnist() -> keras.Model:
    """VGG16 without its three dense layers, on 32x32x3 MNIST, plus Dropout and Dense(10)."""
    import keras

    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg")
    return _classifier_on(base, "vgg16_mnist")


def build_resnet50_mnist() -> keras.Model:
    """ResNet50 without its classifier, on 32x32x3 MNIST, plus Dropout and Dense(10)."""
    import keras

    base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg")
    return _classifier_on(base, "resnet50_mnist")


def build_densenet121_cifar10(dropout_rate: float = 0.5) -> keras.Model:
    """George's transfer model: 32->224 resize, frozen DenseNet121, Dense 512 / 128 with dropout, Dense(10).

    The article does not say how the base's 7x7x1024 output becomes a vector; global average pooling
    (`pooling="avg"`) is Keras' usual choice. Freezing makes the base's weights non-trainable.
    """
    import keras

    inputs = keras.Input(shape=(32, 32, 3), name="image")
    # The article resizes in a layer before the base: 32 x 7 = 224, DenseNet's native size.
    resized = keras.layers.UpSampling2D(size=7, name="resize_32_to_224")(inputs)
    base = keras.applications.DenseNet121(include_top=False, weights=None, input_shape=(224, 224, 3), pooling="avg")
    base.trainable = False
    features = base(resized, training=False)
    features = keras.layers.Dense(512, activation="relu", name="dense_512")(features)
    features = keras.layers.Dropout(dropout_rate, name="dropout_1")(features)
    features = keras.layers.Dense(128, activation="relu", name="dense_128")(features)
    features = keras.layers.Dropout(dropout_rate, name="dropout_2")(features)
    outputs = keras.layers.Dense(10, activation="softmax", name="dense_10")(features)
    return keras.Model(inputs, outputs, name="densenet121_cifar10")


def build_densenet121_imagenet() -> keras.Model:
    """DenseNet121 with its own 1000-class ImageNet classifier (to check "roughly 8 million")."""
    import keras

    return keras.applications.DenseNet121(include_top=True, weights=None)


def build_vgg16_imagenet() -> keras.Model:
    """VGG16 with its three dense layers and 1000 classes (to check "138M parameters")."""
    import keras

    return keras.applications.VGG16(include_top=True, weights=None)


def build_shallow(hidden_units: int, hidden_layers: int = 1, dropout_rate: float = 0.5) -> keras.Model:
    """Uddin's shallow net: Dense(hidden_units) + Dropout, `hidden_layers` times, Flatten, Dense(10).

    The Dense layers act on the last axis of the (28, 28, 1) image, i.e. on each pixel separately,
    exactly as in the article's code and summary (output shape (None, 28, 28, 784)).
    """
    import keras

    inputs = keras.Input(shape=(28, 28, 1), name="image")
    features = inputs
    for index in range(1, hidden_layers + 1):
        features = keras.layers.Dense(hidden_units, name=f"hidden_{index}")(features)
        features = keras.layers.Dropout(dropout_rate, name=f"dropout_{index}")(features)
    features = keras.layers.Flatten(name="flatten")(features)
    outputs = keras.layers.Dense(10, activation="softmax", name="dense")(features)
    return keras.Model(inputs, outputs, name=f"shallow_{hidden_layers}x{hidden_units}")


@dataclass(frozen=True)
class ArchitectureSpec:
    """One architecture we rebuild: what it is, for which article, and how to build it."""

    key: str
    title: str
    dataset: str
    head: str
    build: Callable[[], keras.Model] = field(repr=False)


def _shallow_spec(hidden_layers: int, hidden_units: int) -> ArchitectureSpec:
    layers_text = "1 hidden layer" if hidden_layers == 1 else f"{hidden_layers} hidden layers"
    return ArchitectureSpec(
        f"shallow_{hidden_layers}x{hidden_units}",
        f"Shallow dense, {layers_text} of {hidden_units}",
        "Fashion-MNIST",
        "Dense per pixel + Dropout, Flatten, Dense(10)",
        partial(build_shallow, hidden_units, hidden_layers),
    )


SPECS: dict[str, ArchitectureSpec] = {
    spec.key: spec
    for spec in (
        ArchitectureSpec(
            "vgg16_mnist",
            "VGG16 (Hasan, MNIST 32x32)",
            "MNIST",
            "base with global pooling, Dropout, Dense(10)",
            build_vgg16_mnist,
        ),
        ArchitectureSpec(
            "resnet50_mnist",
            "ResNet50 (Hasan, MNIST 32x32)",
            "MNIST",
            "base with global pooling, Dropout, Dense(10)",
            build_resnet50_mnist,
        ),
        ArchitectureSpec(
            "densenet121_cifar10",
            "DenseNet121 transfer (George, CIFAR-10 resized to 224)",
            "CIFAR-10",
            "frozen base, Dense(512)+Dropout, Dense(128)+Dropout, Dense(10)",
            build_densenet121_cifar10,
        ),
        ArchitectureSpec(
            "densenet121_imagenet",
            "DenseNet121 with its ImageNet classifier",
            "ImageNet",
            "Keras' own 1000-class top",
            build_densenet121_imagenet,
        ),
        ArchitectureSpec(
            "vgg16_imagenet",
            "VGG16 with its ImageNet classifier",
            "ImageNet",
            "Keras' own three dense layers, 1000 classes",
            build_vgg16_imagenet,
        ),
        *(_shallow_spec(1, units) for units in (7, 78, 392, 784)),
        *(_shallow_spec(2, units) for units in (78, 392)),
    )
}
# Architectures an article gives numbers for that keras.applications does not provide.
NOT_BUILT = {"alexnet_imagenet": "AlexNet is not part of keras.applications, so we do not rebuild it."}

_BUILD_LOCK = threading.Lock()
WEIGHTED_LAYERS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense")


@dataclass(frozen=True)
class ParameterCount:
    """A model's parameters, split as Keras' summary splits them."""

    total: int
    trainable: int
    non_trainable: int


def count_parameters(model: keras.Model) -> ParameterCount:
    """Counts the scalars in a model's trainable and non-trainable weights."""
    trainable = sum(math.prod(weight.shape) for weight in model.trainable_weights)
    non_trainable = sum(math.prod(weight.shape) for weight in model.non_trainable_weights)
    return ParameterCount(trainable + non_trainable, trainable, non_trainable)


def layer_rows(model: keras.Model) -> list[dict]:
    """The model's layers as Keras' summary lists them: name, type, output shape, parameters."""
    rows = []
    for layer in model.layers:
        output = layer.output
        shape = output.shape if hasattr(output, "shape") else [tensor.shape for tensor in output]
        rows.append(
            {
                "name": layer.name,
                "type": type(layer).__name__,
                "output_shape": str(tuple(shape)) if not isinstance(shape, list) else str(shape),
                "parameters": int(layer.count_params()),
                "trainable": bool(layer.trainable),
            }
        )
    return rows


def weighted_depth(model: keras.Model) -> int:
    """The most weighted layers (convolutions and dense) on any path from input to output.

    This is how the names count: VGG16 has 13 convolutions + 3 dense on its one path; ResNet50 has
    49 convolutions + 1 dense on its longest path (the 1x1 projection shortcuts run beside it);
    DenseNet121 has 120 convolutions + 1 dense. A nested model counts as its own longest path.
    """
    depth_after: dict[int, int] = {}
    for layer in model.layers:
        parents = [node.operation for inbound in layer._inbound_nodes for node in inbound.parent_nodes]
        before = max((depth_after.get(id(parent), 0) for parent in parents), default=0)
        if hasattr(layer, "layers") and layer.layers:
            own = weighted_depth(layer)
        else:
            own = int(type(layer).__name__ in WEIGHTED_LAYERS)
        depth_after[id(layer)] = before + own
    return max(depth_after.values(), default=0)


def all_layers(model: keras.Model) -> list:
    """Every layer, with nested models replaced by their own layers."""
    flat = []
    for layer in model.layers:
        flat.extend(all_layers(layer) if hasattr(layer, "layers") and layer.layers else [layer])
    return flat


def kernel_size_counts(model: keras.Model) -> dict[str, int]:
    """How many convolutions of each kernel size the model has, e.g. `{"3x3": 13}`."""
    sizes = Counter(
        "x".join(map(str, layer.kernel_size)) for layer in all_layers(model) if type(layer).__name__ == "Conv2D"
    )
    return dict(sorted(sizes.items()))


def inspect_architecture(key: str) -> dict:
    """Builds one architecture and describes it.

    Args:
        key: a key of `SPECS`.

    Returns:
        A JSON-ready dict: key, title, dataset, head, ours (total / trainable / non_trainable), depth,
        keras_layers, kernel_sizes, build_seconds, layers (top level) and nested (the base's layers).

    Raises:
        ValueError: for an unknown key.
    """
    if key not in SPECS:
        raise ValueError(f"Unknown architecture {key!r}; choose from {', '.join(SPECS)}.")
    spec = SPECS[key]
    # Model building touches Keras' global name counters; one build at a time per process.
    with _BUILD_LOCK:
        started = time.perf_counter()
        model = spec.build()
        build_seconds = time.perf_counter() - started
        count = count_parameters(model)
        nested = [layer for layer in model.layers if hasattr(layer, "layers") and layer.layers]
        report = {
            "key": key,
            "title": spec.title,
            "dataset": spec.dataset,
            "head": spec.head,
            "ours": {
                "total": count.total,
                "trainable": count.trainable,
                "non_trainable": count.non_trainable,
            },
            "depth": weighted_depth(model),
            "keras_layers": len(all_layers(model)),
            "kernel_sizes": kernel_size_counts(model),
            "build_seconds": round(build_seconds, 3),
            "layers": layer_rows(model),
            "nested": {layer.name: layer_rows(layer) for layer in nested},
        }
        del model
    return report


def compare_with_claim(ours: dict, claim: dict | None) -> str:
    """A one-line verdict on our count against the article's.

    Exact figures must match exactly; rounded ones ("around 3M") within 5%.
    """
    if claim is None:
        return "the article gives no count"
    verdicts = []
    for part in ("total", "trainable", "non_trainable"):
        if claim.get(part) is None:
            continue
        article, our = claim[part], ours[part]
        if article == our:
            verdicts.append(f"{part} matches")
        elif not claim.get("approximate") or not article:
            verdicts.append(f"{part} differs by {our - article:+,}")
        elif abs(our - article) / article <= 0.05:
            verdicts.append(f"{part} within {abs(our - article) / article:.1%} of the rounded figure")
        else:
            verdicts.append(f"{part} is {our / article:,.1f}x the article's" if article else f"{part} differs")
    if claim.get("trainable_text"):
        verdicts.append(f"article says trainable: '{claim['trainable_text']}', ours {ours['trainable']:,}")
    return "; ".join(verdicts)


def parameter_report(keys: Iterable[str] | None = None, stored: StoredResults | None = None) -> list[dict]:
    """Builds each architecture and puts our parameter counts beside the article's.

    Args:
        keys: which `SPECS` to build (default: all).
        stored: the stored results (default: `load_results()`).

    Returns:
        One dict per architecture: `inspect_architecture`'s fields plus `article` (the claim or
        None) and `verdict`.
    """
    stored = stored or load_results()
    reports = []
    for key in keys or SPECS:
        report = inspect_architecture(key)
        claim = stored.claim_for(key)
        report["article"] = claim
        report["verdict"] = compare_with_claim(report["ours"], claim)
        reports.append(report)
    return reports
