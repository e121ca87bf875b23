"""What the shallow-net page shows, shaped without Streamlit: URL settings, tables, chart data.

The page keeps its settings in the address bar so that a lecturer's link opens it with a
configuration filled in: `config_to_query` writes the settings that differ from the page's
defaults, `config_from_query` reads them back and says what it could not use. The other
functions turn a job's progress, an evaluation or saved runs into the rows that the page's
tables and `core.shallow.charts` draw.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from core.data import CLASS_NAMES
from core.shallow.config import (
    PIXELS,
    TrainingConfig,
    article_results,
    cnn_presets,
    count_params,
    format_duration,
    matching_article_result,
)

PAGE_DEFAULT = TrainingConfig(hidden_units=(78,), dropout=0.8, train_limit=5000, epochs=20)
"""What the page opens with: the article's network with 10% of 784 neurons on a 5,000-image subset,
a demo of a few minutes on two CPU cores rather than the article's hours."""

QUICK_DEMO = {"train_limit": 5000, "epochs": 20}
"""The "make it a quick demo" button: a subset and a few epochs, the network unchanged."""

NEURON_PRESETS = (7, 78, 392, 784)
"""1%, 10%, 50% and 100% of the 784 pixels, the neuron counts the article tries."""

# TrainingConfig field -> query parameter. Values are written only when they differ from PAGE_DEFAULT.
QUERY_KEYS = {
    "architecture": "arch",
    "hidden_units": "units",
    "filters": "filters",
    "kernel_size": "kernel",
    "conv_blocks": "blocks",
    "activation": "activation",
    "dropout": "dropout",
    "optimizer": "optimizer",
    "learning_rate": "lr",
    "batch_size": "batch",
    "epochs": "epochs",
    "patience": "patience",
    "train_limit": "images",
    "validation_split": "val",
    "seed": "seed",
    "mixed_precision": "mixed",
    "engine": "engine",
}


IGNORED_BY_CNN = ("hidden_units",)
IGNORED_BY_DENSE = ("filters", "kernel_size", "conv_blocks")
"""The settings each kind of network does not read (`TrainingConfig` keeps them at their defaults)."""


def _format_value(field: str, value) -> str:
    if field == "hidden_units":
        return ",".join(str(units) for units in value)
    if field == "train_limit":
        return "all" if value is None else str(value)
    if field == "mixed_precision":
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _parse_value(field: str, text: str):
    text = text.strip()
    if field == "hidden_units":
        return tuple(int(part) for part in text.split(","))
    if field == "train_limit":
        return None if text.lower() == "all" else int(text)
    if field == "mixed_precision":
        if text.lower() not in ("0", "1", "true", "false"):
            raise ValueError(text)
        return text.lower() in ("1", "true")
    if field in ("dropout", "learning_rate", "validation_split"):
        return float(text)
    if field in ("batch_size", "epochs", "patience", "seed", "filters", "kernel_size", "conv_blocks"):
        return int(text)
    return text


def config_to_query(config: TrainingConfig, defaults: TrainingConfig = PAGE_DEFAULT) -> dict[str, str]:
    """The query parameters that describe `config`: only the settings that differ from `defaults`
    and that its architecture reads (a CNN's link carries no neurons, a dense net's no filters)."""
    ignored = IGNORED_BY_CNN if config.is_cnn else IGNORED_BY_DENSE
    return {
        key: _format_value(field, getattr(config, field))
        for field, key in QUERY_KEYS.items()
        if field not in ignored and getattr(config, field) != getattr(defaults, field)
    }


def config_from_query(
    params: Mapping[str, str], defaults: TrainingConfig = PAGE_DEFAULT
) -> tuple[TrainingConfig, list[str]]:
    """Reads settings from query parameters, keeping the defaults for anything unusable.

    When the values together make an invalid configuration, each is applied on its own, in the
    order of `QUERY_KEYS`, so one bad value does not throw away the rest of a shared link.

    Returns:
        The configuration, and one message per parameter that could not be used.
    """
    parsed, problems = {}, []
    for field, key in QUERY_KEYS.items():
        if key in params:
            try:
                parsed[field] = _parse_value(field, params[key])
            except ValueError:
                problems.append(f"Ignored `{key}={params[key]}` from the link: not a valid value.")
    config, clashes = apply_settings(parsed, defaults)
    problems += [
        f"Ignored `{QUERY_KEYS[field]}={params[QUERY_KEYS[field]]}` from the link: {error}" for field, error in clashes
    ]
    return config, problems


def config_from_saved(
    data: Mapping, run_id: int, defaults: TrainingConfig = PAGE_DEFAULT
) -> tuple[TrainingConfig, list[str]]:
    """A saved run's settings for the form, keeping the defaults for any the current limits refuse.

    An old run may hold a value the rules no longer accept (they were looser once); the rest of
    its settings still load, and each refused one gets a message, as a link's do.
    """
    known = {field: value for field, value in data.items() if field in QUERY_KEYS}
    if "hidden_units" in known:
        known["hidden_units"] = tuple(known["hidden_units"])
    config, clashes = apply_settings(known, defaults)
    return config, [
        f"Kept the page's {field} instead of run #{run_id}'s `{data[field]}`: {error}" for field, error in clashes
    ]


def apply_settings(values: Mapping, defaults: TrainingConfig) -> tuple[TrainingConfig, list[tuple[str, str]]]:
    """`defaults` with `values` applied: all together when they fit, else one by one, in QUERY_KEYS order.

    Returns:
        The configuration, and (field, reason) for each value that could not be applied.
    """
    try:
        return defaults.replace(**values), []
    except ValueError:
        pass
    # Some values clash or are out of range: keep every one that works on its own.
    config, refused = defaults, []
    for field, value in values.items():
        try:
            config = config.replace(**{field: value})
        except ValueError as error:
            refused.append((field, str(error)))
    return config, refused


def neuron_preset_label(units: int) -> str:
    return f"{units} ({units / PIXELS:.0%})"


# Live progress ---------------------------------------------------------------------------------
def curve_frame(history, live: tuple[float, float | None, float | None] | None = None) -> pd.DataFrame:
    """Long-form rows for the loss and accuracy curves: epoch, metric, split, value.

    Args:
        history: per-epoch dicts with loss, accuracy, val_loss, val_accuracy.
        live: (fractional epoch, running train loss, running train accuracy) of the epoch in
            progress, so the train curve moves between epochs.
    """
    rows = []
    for entry in history:
        for metric in ("loss", "accuracy"):
            rows.append({"epoch": float(entry["epoch"]), "metric": metric, "split": "train", "value": entry[metric]})
            rows.append(
                {
                    "epoch": float(entry["epoch"]),
                    "metric": metric,
                    "split": "validation",
                    "value": entry[f"val_{metric}"],
                }
            )
    if live is not None:
        epoch, loss, accuracy = live
        for metric, value in (("loss", loss), ("accuracy", accuracy)):
            if value is not None:
                rows.append({"epoch": float(epoch), "metric": metric, "split": "train", "value": value})
    frame = pd.DataFrame(rows, columns=["epoch", "metric", "split", "value"])
    return frame.dropna(subset=["value"]).sort_values(["metric", "split", "epoch"], ignore_index=True)


def live_point(progress) -> tuple[float, float | None, float | None] | None:
    """Where the epoch in progress is: past the last finished epoch, by the share of its batches done."""
    if progress.status not in ("running", "stopping") or not progress.batches_per_epoch or not progress.batch:
        return None
    if progress.epoch <= len(progress.history):
        return None
    fraction = progress.batch / progress.batches_per_epoch
    return progress.epoch - 1 + fraction, progress.train_loss, progress.train_accuracy


def status_line(progress) -> str:
    """One sentence about a job, e.g. "Epoch 3 of 20, batch 12 of 40" or "Waiting: 2nd in the queue"."""
    if progress.status == "queued":
        position, start_in = progress.queue_position, getattr(progress, "start_in_seconds", None)
        line = "Waiting in the queue" + (f": number {position} in line" if position else "")
        if start_in is not None:
            line += ", starts now" if start_in < 1 else f", starts in about {format_duration(start_in)}"
        return line
    if progress.status == "running":
        return f"Epoch {progress.epoch} of {progress.epochs}, batch {progress.batch} of {progress.batches_per_epoch}"
    return progress.message


def training_caption(progress) -> str:
    """Where and how a job trains, e.g. "Training on CPU: ... (Ray node vm (10.0.0.5)) with the numpy engine"."""
    where = f" (Ray node {progress.node})" if progress.executor == "ray" and progress.node else ""
    return (
        f"Training on {progress.device}{where} with the {progress.engine} engine; best epoch so far: "
        f"{progress.best_epoch or '–'}."
    )


# Results ---------------------------------------------------------------------------------------
def comparison_frame(evaluation: dict, config: TrainingConfig | dict) -> pd.DataFrame:
    """This run's test metrics beside the article's for the same network, with the differences.

    Returns:
        Rows metric / this run / the article / difference (this run minus the article); the
        article's column is empty where it reports nothing for this network.
    """
    config = TrainingConfig.from_dict(config) if isinstance(config, dict) else config
    match = matching_article_result(config)
    reported = match.reported if match else {}
    rows = []
    for metric, key in (("accuracy", "accuracy"), ("loss", "loss"), ("precision", "precision"), ("recall", "recall")):
        ours = evaluation.get(key)
        theirs = reported.get(f"test_{key}")
        rows.append(
            {
                "metric": metric,
                "this run": ours,
                "the article": theirs,
                "difference": None if theirs is None or ours is None else ours - theirs,
            }
        )
    return pd.DataFrame(rows)


def per_class_frame(evaluation: dict) -> pd.DataFrame:
    return pd.DataFrame(evaluation["per_class"], columns=["class", "precision", "recall", "f1", "support"])


def confusion_frame(confusion: list[list[int]]) -> pd.DataFrame:
    """The confusion matrix as rows: true and predicted class (name and index), count, share of the row."""
    matrix = np.asarray(confusion)
    totals = matrix.sum(axis=1)
    rows = []
    for true_index, predicted_index in np.ndindex(matrix.shape):
        count = int(matrix[true_index, predicted_index])
        rows.append(
            {
                "true": CLASS_NAMES[true_index],
                "predicted": CLASS_NAMES[predicted_index],
                "true_index": true_index,
                "predicted_index": predicted_index,
                "count": count,
                "share": count / totals[true_index] if totals[true_index] else 0.0,
            }
        )
    return pd.DataFrame(rows)


def confusion_cells(evaluation: dict) -> dict[str, str]:
    """The non-empty cells as "true,predicted" -> a label, mistakes first, the largest first."""
    cells = []
    for key, members in evaluation["cell_indices"].items():
        true_index, predicted_index = (int(part) for part in key.split(","))
        cells.append((true_index == predicted_index, -len(members), key, true_index, predicted_index))
    labels = {}
    for correct, negative_count, key, true_index, predicted_index in sorted(cells):
        verdict = " (correct)" if correct else ""
        labels[key] = (
            f"{CLASS_NAMES[true_index]} predicted as {CLASS_NAMES[predicted_index]}{verdict}: {-negative_count} images"
        )
    return labels


def cell_key(true_index: int, predicted_index: int) -> str:
    return f"{int(true_index)},{int(predicted_index)}"


def enlarge(image: np.ndarray, factor: int = 3) -> np.ndarray:
    """A small grayscale image scaled up by whole pixels, so it stays sharp on screen."""
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


# Saved runs ------------------------------------------------------------------------------------
def runs_frame(runs) -> pd.DataFrame:
    """The saved-runs table: one row per run, newest first."""
    rows = []
    for run in runs:
        limit = run.config.get("train_limit")
        rows.append(
            {
                "run": run.run_id,
                "status": run.status,
                "network": run.label,
                "parameters": run.params,
                "training images": limit if limit else "all 54,000",
                "epochs": run.epochs_run,
                "test accuracy": run.test_accuracy,
                "test loss": run.test_loss,
                "precision": run.test_precision,
                "recall": run.test_recall,
                "minutes": None if run.duration_s is None else run.duration_s / 60,
                "device": run.device,
            }
        )
    return pd.DataFrame(rows)


def run_title(run) -> str:
    accuracy = f", {run.test_accuracy:.2%}" if run.test_accuracy is not None else ""
    return f"#{run.run_id} {run.label} ({run.status}{accuracy})"


def compare_curves_frame(histories: Mapping[str, list[dict]]) -> pd.DataFrame:
    """Validation curves of several runs, long-form: run, epoch, metric, value."""
    rows = [
        {"run": name, "epoch": entry["epoch"], "metric": metric, "value": entry[f"val_{metric}"]}
        for name, history in histories.items()
        for entry in history
        for metric in ("loss", "accuracy")
    ]
    return pd.DataFrame(rows, columns=["run", "epoch", "metric", "value"]).dropna(subset=["value"])


def accuracy_params_frame(runs) -> pd.DataFrame:
    """Test accuracy against parameter count: the given runs, the article's results, and AlexNet."""
    results, alexnet = article_results()
    rows = [
        {
            "label": result.title,
            "source": "the article",
            "parameters": count_params(result.config),
            "test accuracy": result.reported["test_accuracy"],
        }
        for result in results
    ]
    rows.append(
        {"label": "AlexNet (Ma et al.)", "source": "AlexNet", "parameters": 61_000_000, "test accuracy": alexnet}
    )
    rows += [
        {"label": run_title(run), "source": "your runs", "parameters": run.params, "test accuracy": run.test_accuracy}
        for run in runs
        if run.test_accuracy is not None
    ]
    return pd.DataFrame(rows)


def article_presets_frame() -> pd.DataFrame:
    """The article's reported results, one row per configuration, as published ("–" where it is silent)."""
    results, _ = article_results()

    def shown(value, style: str) -> str:
        return "–" if value is None else format(value, style)

    return pd.DataFrame(
        [
            {
                "configuration": result.title,
                "parameters": f"{count_params(result.config):,}",
                "test accuracy": shown(result.reported.get("test_accuracy"), ".2%"),
                "test loss": shown(result.reported.get("test_loss"), "g"),
                "precision": shown(result.reported.get("test_precision"), ".2%"),
                "recall": shown(result.reported.get("test_recall"), ".2%"),
                "epochs": shown(result.reported.get("epochs"), "d"),
            }
            for result in results
        ]
    )


def cnn_presets_frame() -> pd.DataFrame:
    """The shallow CNN presets with what they scored here (the article reports none)."""
    return pd.DataFrame(
        [
            {
                "configuration": preset.title,
                "parameters": f"{count_params(preset.config):,}",
                "test accuracy (here)": f"{preset.measured['test_accuracy']:.2%}",
                "test loss (here)": f"{preset.measured['test_loss']:.4f}",
                "epochs": f"{preset.measured['epochs_run']:d}",
            }
            for preset in cnn_presets()
        ]
    )
