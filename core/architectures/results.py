"""The articles' stored results: the numbers four articles report, validated, as table rows.

`load_results`, `result_rows`, `filter_rows` read `assets/architectures.json` and check it. Plain
Python, no TensorFlow, so a page can show them at once; the models rebuilt to check the
articles' parameter counts are in `core.architectures.models`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

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
    # The rebuilt models name the architectures a result may refer to (a plain dict, no Keras).
    from core.architectures.models import NOT_BUILT, SPECS

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
