"""The Architectures lab's library: the articles' stored results, and the models rebuilt to check them.

Two halves that never mix:

* **Stored results** (`load_results`, `result_rows`, `filter_rows`): the numbers four articles report,
  read from `assets/architectures.json` and validated. Plain Python; no TensorFlow, so a page can show
  them at once.
* **Rebuilt models** (`SPECS`, `inspect_architecture`, `parameter_report`): each architecture as its
  article describes it, from `keras.applications` with `weights=None` (nothing is downloaded) plus the
  article's head. Keras is imported only inside these functions.

Command line: `python -m core.architectures params [--json] [KEY ...]` and
`python -m core.architectures summary KEY`.
"""

from __future__ import annotations

import argparse
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

ROOT = Path(__file__).resolve().parents[2]
RESULTS_PATH = ROOT / "assets" / "architectures.json"

# Display names of every metric the articles report, in table order.
METRICS = {
    "train_accuracy": "train accuracy",
    "test_accuracy": "test accuracy",
    "validation_accuracy": "validation accuracy",
    "train_loss": "train loss",
    "test_loss": "test loss",
    "validation_loss": "validation loss",
    "validation_mse": "validation MSE",
    "precision": "precision",
    "recall": "recall",
    "correlation": "correlation",
}
# The accuracy a result is plotted with: its test accuracy when the article gives one.
HEADLINE_ORDER = ("test_accuracy", "validation_accuracy", "train_accuracy")
REQUIRED_RESULT_KEYS = (
    "id",
    "source",
    "model",
    "architecture",
    "configuration",
    "dataset",
    "input_size",
    "epochs",
    "batch_size",
    "optimizer",
    "weights",
    "hardware",
    "metrics",
    "quote",
)
PROPORTION_METRICS = {"train_accuracy", "test_accuracy", "validation_accuracy", "precision", "recall"}


@dataclass(frozen=True)
class StoredResults:
    """The validated contents of the results file."""

    sources: dict[str, dict]
    results: tuple[dict, ...]
    parameter_claims: tuple[dict, ...]
    epoch_logs: tuple[dict, ...]
    findings: tuple[dict, ...]

    def metric_meaning(self, result: dict, metric: str) -> str:
        """What `metric` means for `result`: its own wording, else its source's."""
        own = result.get("metric_meanings", {})
        return own.get(metric) or self.sources[result["source"]]["metric_meanings"][metric]

    def claim_for(self, architecture: str | None) -> dict | None:
        """The article's parameter claim for an architecture key, if it makes one."""
        return next((claim for claim in self.parameter_claims if claim["architecture"] == architecture), None)


def load_results(path: Path = RESULTS_PATH) -> StoredResults:
    """Reads and validates the results file.

    Args:
        path: the JSON file (default `assets/architectures.json`).

    Returns:
        The stored results.

    Raises:
        ValueError: the file is not valid JSON or breaks the schema; the message names the record.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    validate_results(data)
    return StoredResults(
        sources=data["sources"],
        results=tuple(data["results"]),
        parameter_claims=tuple(data["parameter_claims"]),
        epoch_logs=tuple(data["epoch_logs"]),
        findings=tuple(data["findings"]),
    )


def validate_results(data: dict) -> None:
    """Checks the schema of the results file's contents.

    Raises:
        ValueError: with the offending record's id and what to fix.
    """
    for section in ("sources", "results", "parameter_claims", "epoch_logs", "findings"):
        if section not in data:
            raise ValueError(f"The results file has no '{section}' section.")
    sources = data["sources"]
    seen_ids = set()
    for result in data["results"]:
        name = result.get("id", "<record without id>")
        missing = [key for key in REQUIRED_RESULT_KEYS if key not in result]
        if missing:
            raise ValueError(f"Result {name} lacks {', '.join(missing)}.")
        if name in seen_ids:
            raise ValueError(f"Result id {name} appears twice; ids must be unique.")
        seen_ids.add(name)
        if result["source"] not in sources:
            raise ValueError(f"Result {name} cites unknown source {result['source']!r}.")
        if not result["metrics"]:
            raise ValueError(f"Result {name} reports no metric.")
        meanings = {**sources[result["source"]]["metric_meanings"], **result.get("metric_meanings", {})}
        for metric, value in result["metrics"].items():
            if metric not in METRICS:
                raise ValueError(f"Result {name} has unknown metric {metric!r}; known: {', '.join(METRICS)}.")
            if metric not in meanings:
                raise ValueError(f"Result {name}: say what {metric!r} means (metric_meanings).")
            if not isinstance(value, int | float) or (metric in PROPORTION_METRICS and not 0 <= value <= 1):
                raise ValueError(f"Result {name}: {metric} = {value!r} is not a number in range.")
        epochs = result["epochs"]
        if not (epochs is None or isinstance(epochs, int) or _is_range(epochs)):
            raise ValueError(f"Result {name}: epochs must be a number, [low, high] or null.")
        architecture = result["architecture"]
        if architecture is not None and architecture not in SPECS and architecture not in NOT_BUILT:
            raise ValueError(f"Result {name} names unknown architecture {architecture!r}.")
    for claim in data["parameter_claims"]:
        if claim["architecture"] not in SPECS and claim["architecture"] not in NOT_BUILT:
            raise ValueError(f"Parameter claim for unknown architecture {claim['architecture']!r}.")
        if claim["source"] not in sources:
            raise ValueError(f"Parameter claim {claim['architecture']} cites unknown source.")


def _is_range(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(item, int) for item in value)


def format_epochs(epochs) -> str:
    """`15`, `3-5` or `not stated`."""
    if epochs is None:
        return "not stated"
    if isinstance(epochs, list):
        return f"{epochs[0]}-{epochs[1]}"
    return str(epochs)


def result_rows(stored: StoredResults) -> list[dict]:
    """One flat row per stored result, for tables and charts.

    Each row has the configuration fields, one column per metric (None where not reported), the
    headline accuracy (test, else validation, else train) with its kind, the train-minus-test gap,
    and the article's parameter count where it gives one.
    """
    rows = []
    for result in stored.results:
        metrics = result["metrics"]
        headline = next((metric for metric in HEADLINE_ORDER if metric in metrics), None)
        claim = stored.claim_for(result["architecture"])
        train, test = metrics.get("train_accuracy"), metrics.get("test_accuracy")
        rows.append(
            {
                "id": result["id"],
                "model": result["model"],
                "configuration": result["configuration"],
                "label": f"{result['model']} · {result['configuration']}",
                "dataset": result["dataset"],
                "optimizer": result["optimizer"],
                "weights": result["weights"],
                "epochs": format_epochs(result["epochs"]),
                "batch_size": result["batch_size"],
                "input_size": result["input_size"],
                "hardware": result["hardware"],
                "architecture": result["architecture"],
                **{metric: metrics.get(metric) for metric in METRICS},
                "headline_accuracy": metrics.get(headline) if headline else None,
                "headline_metric": METRICS[headline] if headline else None,
                "train_minus_test": None if train is None or test is None else round(train - test, 6),
                "article_parameters": claim.get("total") if claim else None,
                "article_parameters_approximate": bool(claim and claim.get("approximate")),
                "source": stored.sources[result["source"]]["title"],
            }
        )
    return rows


@dataclass(frozen=True)
class ResultFilter:
    """Which stored results to show; an empty tuple means "all".

    Args:
        models: e.g. `("VGG16", "ResNet50")`.
        optimizers: e.g. `("SGD",)`.
        weights: `"random"`, `"ImageNet"` or `"not stated"`.
    """

    models: tuple[str, ...] = ()
    optimizers: tuple[str, ...] = ()
    weights: tuple[str, ...] = ()

    def check_against(self, rows: list[dict]) -> None:
        """Raises ValueError naming any choice that no stored result has."""
        for column, chosen in (
            ("model", self.models),
            ("optimizer", self.optimizers),
            ("weights", self.weights),
        ):
            known = {row[column] for row in rows}
            unknown = sorted(set(chosen) - known)
            if unknown:
                raise ValueError(f"No stored result has {column} {', '.join(unknown)}; choose from {sorted(known)}.")


def filter_rows(rows: list[dict], result_filter: ResultFilter) -> list[dict]:
    """The rows that match every non-empty choice of `result_filter`."""
    result_filter.check_against(rows)
    chosen = {
        "model": set(result_filter.models),
        "optimizer": set(result_filter.optimizers),
        "weights": set(result_filter.weights),
    }
    return [row for row in rows if all(not values or row[column] in values for column, values in chosen.items())]


def choices(rows: list[dict], column: str) -> list[str]:
    """The distinct values of `column`, in file order (for filter widgets)."""
    return list(dict.fromkeys(row[column] for row in rows))


def metric_meaning_rows(stored: StoredResults, result_ids: Iterable[str]) -> list[dict]:
    """What each reported number means, one row per distinct (article, metric, meaning).

    Args:
        stored: the stored results.
        result_ids: the results being shown.

    Returns:
        Rows with `article`, `metric`, `meaning` and `results` (how many shown results it covers).
    """
    wanted = set(result_ids)
    meanings: dict[tuple[str, str, str], int] = {}
    for result in stored.results:
        if result["id"] not in wanted:
            continue
        for metric in result["metrics"]:
            key = (stored.sources[result["source"]]["title"], METRICS[metric], stored.metric_meaning(result, metric))
            meanings[key] = meanings.get(key, 0) + 1
    return [
        {"article": article, "metric": metric, "meaning": meaning, "results": count}
        for (article, metric, meaning), count in meanings.items()
    ]


def datasets_caption(rows: Iterable[dict]) -> str:
    """Which dataset each model's numbers are on, e.g. `MNIST: VGG16, ResNet50 · CIFAR-10: DenseNet121`."""
    by_dataset: dict[str, list[str]] = {}
    for row in rows:
        models = by_dataset.setdefault(row["dataset"], [])
        if row["model"] not in models:
            models.append(row["model"])
    return " · ".join(f"{dataset}: {', '.join(models)}" for dataset, models in by_dataset.items())


# ---------------------------------------------------------------------------------------------
# Rebuilt models. Keras is imported inside the builders only.


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


def _format_count(value) -> str:
    return "-" if value is None else f"{value:,}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.architectures", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    params = commands.add_parser("params", help="build the architectures and compare parameter counts")
    params.add_argument("keys", nargs="*", help=f"architectures (default: all): {', '.join(SPECS)}")
    params.add_argument("--json", action="store_true", help="print JSON instead of a table")
    summary = commands.add_parser("summary", help="the layer summary of one architecture")
    summary.add_argument("key", choices=list(SPECS))
    args = parser.parse_args(argv)

    if args.command == "summary":
        report = inspect_architecture(args.key)
        for row in report["layers"]:
            print(f"{row['name']:<28} {row['type']:<18} {row['output_shape']:<24} {row['parameters']:>12,}")
        print(f"depth {report['depth']}, {report['keras_layers']} Keras layers")
        print(f"convolution kernels: {report['kernel_sizes']}")
        return 0

    unknown = [key for key in args.keys if key not in SPECS]
    if unknown:
        parser.error(f"unknown architecture {', '.join(unknown)}; choose from {', '.join(SPECS)}")
    reports = parameter_report(args.keys or None)
    if args.json:
        fields = (
            "key",
            "title",
            "dataset",
            "ours",
            "article",
            "verdict",
            "depth",
            "keras_layers",
            "build_seconds",
        )
        print(json.dumps([{name: report[name] for name in fields} for report in reports], indent=2))
        return 0
    header = ("architecture", "ours total", "trainable", "non-train.", "article")
    print(f"{header[0]:<22} {header[1]:>13} {header[2]:>13} {header[3]:>11} {header[4]:>13}  verdict")
    for report in reports:
        ours, claim = report["ours"], report["article"] or {}
        print(
            f"{report['key']:<22} {ours['total']:>13,} {ours['trainable']:>13,} {ours['non_trainable']:>11,} "
            f"{_format_count(claim.get('total')):>13}  {report['verdict']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
