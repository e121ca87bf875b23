"""Altair charts for the Architectures lab, built from `core.architectures.results` rows (no Streamlit here).

Every chart's title names the dataset(s) its numbers are on, so nobody compares MNIST with
Fashion-MNIST unawares.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from core.architectures.results import datasets_caption

# One colour per dataset, the same in every chart.
DATASET_COLOURS = {
    "MNIST": "#4c78a8",
    "Fashion-MNIST": "#f58518",
    "CIFAR-10": "#54a24b",
    "Kaggle cats vs dogs": "#b279a2",
    "ImageNet": "#9d755d",
}
HEADLINE_OPACITY = {"test accuracy": 1.0, "validation accuracy": 0.55, "train accuracy": 0.3}


def _colour(field: str = "dataset") -> alt.Color:
    return alt.Color(
        f"{field}:N",
        title="dataset",
        scale=alt.Scale(domain=list(DATASET_COLOURS), range=list(DATASET_COLOURS.values())),
        legend=alt.Legend(orient="right", labelLimit=200),
    )


def _sized(chart: alt.TopLevelMixin, large: bool) -> alt.TopLevelMixin:
    """Larger fonts for presentation mode."""
    if not large:
        return chart
    return (
        chart.configure_axis(labelFontSize=18, titleFontSize=20)
        .configure_legend(labelFontSize=18, titleFontSize=18)
        .configure_title(fontSize=24, subtitleFontSize=18)
    )


def accuracy_per_configuration(rows: list[dict], large: bool = False) -> alt.TopLevelMixin:
    """Horizontal bars: each configuration's headline accuracy, coloured by dataset.

    Solid bars are test accuracy; paler ones are validation (DenseNet121, cats vs dogs) or train
    accuracy (the ResNet50 50-epoch run), as the legend says.
    """
    data = pd.DataFrame([row for row in rows if row["headline_accuracy"] is not None])
    chart = (
        alt.Chart(data, title=alt.Title("Reported accuracy per configuration", subtitle=datasets_caption(rows)))
        .mark_bar()
        .encode(
            x=alt.X("headline_accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0.5, 1.0], clamp=True)),
            y=alt.Y("label:N", title=None, sort="-x", axis=alt.Axis(labelLimit=460)),
            color=_colour(),
            opacity=alt.Opacity(
                "headline_metric:N",
                title="bar shows",
                scale=alt.Scale(domain=list(HEADLINE_OPACITY), range=list(HEADLINE_OPACITY.values())),
                legend=alt.Legend(orient="right"),
            ),
            tooltip=[
                "label:N",
                "dataset:N",
                "headline_metric:N",
                alt.Tooltip("headline_accuracy:Q", format=".2%"),
                "epochs:N",
                "source:N",
            ],
        )
        .properties(height=alt.Step(30))
    )
    return _sized(chart, large)


def train_versus_test(rows: list[dict], measure: str = "accuracy", large: bool = False) -> alt.TopLevelMixin:
    """Train against test for each configuration that reports both, with the line train = test.

    For accuracy, points below the line did better on training data than on test data
    (over-fitting); points above it did better on the test set, which happens when the training
    figure is measured with dropout active.
    """
    train, test = f"train_{measure}", f"test_{measure}"
    both = [row for row in rows if row[train] is not None and row[test] is not None]
    data = pd.DataFrame(both)
    low = min(min(data[train]), min(data[test]))
    high = max(max(data[train]), max(data[test]))
    margin = (high - low) * 0.08
    domain = [low - margin, high + margin]
    line = pd.DataFrame({"x": domain, "y": domain})
    title = alt.Title(f"Train vs test {measure}", subtitle=f"{datasets_caption(both)}; grey line: train = test")
    diagonal = alt.Chart(line).mark_line(color="grey", strokeDash=[4, 4]).encode(x="x:Q", y="y:Q")
    points = (
        alt.Chart(data)
        .mark_point(size=140, filled=True)
        .encode(
            x=alt.X(f"{train}:Q", title=f"train {measure}", scale=alt.Scale(domain=domain)),
            y=alt.Y(f"{test}:Q", title=f"test {measure}", scale=alt.Scale(domain=domain)),
            color=alt.Color("model:N", title="model"),
            shape=alt.Shape("weights:N", title="weights"),
            tooltip=["label:N", "dataset:N", f"{train}:Q", f"{test}:Q", "epochs:N"],
        )
    )
    chart = alt.layer(diagonal, points, title=title).properties(height=380)
    return _sized(chart, large)


def is_cnn_run(run: dict) -> bool:
    """Whether a saved shallow-net run (a `list_finished_runs` dict) is a shallow CNN."""
    return (run.get("config") or {}).get("architecture") == "cnn"


def accuracy_versus_parameters(
    rows: list[dict],
    our_counts: dict[str, int] | None = None,
    user_runs: list[dict] | None = None,
    large: bool = False,
) -> alt.TopLevelMixin:
    """Headline accuracy against parameter count (log scale) across all models, with the user's runs.

    Args:
        rows: result rows; those with a parameter count are plotted.
        our_counts: total parameters of our rebuilt models by architecture key; used instead of the
            article's figure where present (the parameter check fills it).
        user_runs: the user's saved shallow-net runs, dicts with label, params, test_accuracy, dataset
            and config; shallow CNNs (config architecture "cnn") are drawn as diamonds, the dense
            nets as crosses.
    """
    our_counts = our_counts or {}
    points = []
    for row in rows:
        ours = our_counts.get(row["architecture"])
        count = ours if ours is not None else row["article_parameters"]
        if count is None or row["headline_accuracy"] is None:
            continue
        counted_by = "our build" if ours is not None else "the article"
        points.append(
            {
                "label": row["label"],
                "model": row["model"],
                "dataset": row["dataset"],
                "parameters": count,
                "accuracy": row["headline_accuracy"],
                "measure": row["headline_metric"],
                "who": "article",
                "parameters from": counted_by,
            }
        )
    for run in user_runs or []:
        cnn = is_cnn_run(run)
        points.append(
            {
                "label": f"your run #{run['run_id']}: {run['label']}",
                "model": "your shallow CNNs" if cnn else "your shallow nets",
                "dataset": run["dataset"],
                "parameters": run["params"],
                "accuracy": run["test_accuracy"],
                "measure": "test accuracy",
                "who": "your CNN run" if cnn else "your run",
                "parameters from": "your run",
            }
        )
    data = pd.DataFrame(points)
    title = alt.Title(
        "Accuracy against parameter count (log scale)",
        subtitle=datasets_caption(points) + " · the datasets differ, so compare within a colour",
    )
    chart = (
        alt.Chart(data, title=title)
        .mark_point(size=160, filled=True)
        .encode(
            x=alt.X("parameters:Q", title="parameters (log scale)", scale=alt.Scale(type="log")),
            y=alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(zero=False)),
            color=_colour(),
            shape=alt.Shape(
                "who:N",
                title="from",
                scale=alt.Scale(domain=["article", "your run", "your CNN run"], range=["circle", "cross", "diamond"]),
                legend=alt.Legend(orient="right"),
            ),
            tooltip=[
                "label:N",
                "dataset:N",
                "measure:N",
                alt.Tooltip("accuracy:Q", format=".2%"),
                alt.Tooltip("parameters:Q", format=","),
                "parameters from:N",
            ],
        )
        .properties(height=420)
    )
    return _sized(chart, large)


def depth_versus_parameters(reports: list[dict], large: bool = False) -> alt.TopLevelMixin:
    """Our rebuilt models: weighted depth against total parameters (log scale)."""
    data = pd.DataFrame(
        [
            {
                "model": report["title"],
                "dataset": report["dataset"],
                "depth": report["depth"],
                **report["ours"],
            }
            for report in reports
        ]
    )
    chart = (
        alt.Chart(
            data,
            title=alt.Title(
                "Depth against parameters, our builds",
                subtitle="depth: most convolution + dense layers on one path from input to output",
            ),
        )
        .mark_point(size=160, filled=True)
        .encode(
            x=alt.X("total:Q", title="parameters (log scale)", scale=alt.Scale(type="log")),
            y=alt.Y("depth:Q", title="weighted layers on the longest path"),
            color=_colour(),
            tooltip=[
                "model:N",
                "depth:Q",
                alt.Tooltip("total:Q", format=","),
                alt.Tooltip("trainable:Q", format=","),
            ],
        )
        .properties(height=360)
    )
    return _sized(chart, large)


def epoch_times(logs: list[dict], large: bool = False) -> alt.TopLevelMixin:
    """Seconds per epoch in the article's printed logs (V100), per run."""
    data = pd.DataFrame([log for log in logs if log["seconds"] is not None])
    chart = (
        alt.Chart(
            data,
            title=alt.Title(
                "Seconds per epoch in Hasan's logs (MNIST, 1 x Tesla V100)",
                subtitle="1,562 steps of 32 images per epoch",
            ),
        )
        .mark_bar()
        .encode(
            x=alt.X("epoch:O", title="epoch"),
            y=alt.Y("seconds:Q", title="seconds"),
            color=alt.Color("run:N", title=None, legend=alt.Legend(orient="top", labelLimit=400)),
            xOffset="run:N",
            tooltip=["run:N", "epoch:O", "seconds:Q", "ms_per_step:Q", "accuracy:Q", "val_accuracy:Q"],
        )
        .properties(height=300)
    )
    return _sized(chart, large)
