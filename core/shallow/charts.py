"""Altair charts for the shallow-net lab, drawn from `core.shallow.view` frames (no Streamlit here).

Every chart takes `large=True` for presentation mode: bigger fonts, thicker lines, taller plots,
readable from the back of a lecture hall.
"""

from __future__ import annotations

import math

import altair as alt
import numpy as np
import pandas as pd

SPLIT_COLOURS = {"train": "#4c78a8", "validation": "#f58518"}
SOURCE_SHAPES = {"your runs": "circle", "the article": "diamond", "AlexNet": "square"}
SOURCE_COLOURS = {"your runs": "#4c78a8", "the article": "#f58518", "AlexNet": "#54a24b"}
CONFUSION_SELECTION = "cell"
"""Name of the confusion matrix's click selection; the page reads the chosen cell under it."""


def percent_format(*values) -> str:
    """A d3 percent format with enough decimals that an axis over `values` repeats no label.

    An axis of accuracies from 85.6% to 86.9% with ".0%" reads "86%, 86%, 86%, 87%"; Vega puts
    about five ticks on an axis, so the decimals follow the span divided by five.
    """
    finite = [float(v) for part in values for v in np.ravel(np.asarray(part, dtype=float)) if np.isfinite(v)]
    span = max(finite) - min(finite) if len(finite) > 1 else 0.0
    if span <= 0:
        return ".1%"
    step = span / 5 * 100  # In percentage points.
    return f".{min(3, max(0, -math.floor(math.log10(step))))}%"


def _sized(chart, large: bool, height: int = 300):
    chart = chart.properties(height=int(height * 1.5) if large else height)
    if not large:
        return chart
    return (
        chart.configure_axis(labelFontSize=20, titleFontSize=22)
        .configure_legend(labelFontSize=20, titleFontSize=20, symbolSize=300)
        .configure_title(fontSize=26)
        .configure_text(fontSize=18)
    )


def training_curve(frame: pd.DataFrame, metric: str, references=(), large: bool = False):
    """Train and validation `metric` by epoch, with optional horizontal reference lines.

    Args:
        frame: rows from `curve_frame` (epoch, metric, split, value).
        metric: "loss" or "accuracy".
        references: (label, value) pairs drawn as dashed lines, e.g. AlexNet's 86.43%.
    """
    data = frame[frame["metric"] == metric]
    is_accuracy = metric == "accuracy"
    value_format = ".1%" if is_accuracy else ".3f"
    lines = (
        alt.Chart(data, title=f"{metric.capitalize()} by epoch")
        .mark_line(point=True, strokeWidth=4 if large else 2)
        .encode(
            x=alt.X("epoch:Q", title="epoch", scale=alt.Scale(zero=False), axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y(
                "value:Q",
                title=metric,
                scale=alt.Scale(zero=False),
                axis=alt.Axis(
                    format=percent_format(data["value"], [value for _, value in references]) if is_accuracy else ".2f"
                ),
            ),
            color=alt.Color(
                "split:N",
                title=None,
                scale=alt.Scale(domain=list(SPLIT_COLOURS), range=list(SPLIT_COLOURS.values())),
                legend=alt.Legend(orient="bottom"),
            ),
            tooltip=[alt.Tooltip("epoch:Q", format=".2f"), "split:N", alt.Tooltip("value:Q", format=value_format)],
        )
    )
    layers = [lines]
    if references:
        rules = pd.DataFrame([{"label": label, "value": value} for label, value in references])
        base = alt.Chart(rules).encode(y="value:Q")
        layers.append(base.mark_rule(strokeDash=[6, 4], color="grey"))
        # Alternate labels above and below their lines: AlexNet's 86.43% and the article's
        # 86.36% would otherwise print on top of each other.
        for index, (label, value) in enumerate(references):
            row = alt.Chart(pd.DataFrame([{"label": label, "value": value}])).encode(y="value:Q")
            layers.append(
                row.mark_text(
                    align="left", dx=4, dy=-7 if index % 2 == 0 else 9, color="grey", fontSize=18 if large else 11
                ).encode(text="label:N", x=alt.value(0))
            )
    return _sized(alt.layer(*layers), large)


def confusion_heatmap(frame: pd.DataFrame, large: bool = False):
    """The 10 x 10 confusion matrix; clicking a cell selects it (selection named `CONFUSION_SELECTION`).

    Colour is the share of the true class, so a class's mistakes are comparable across rows;
    the number in each cell is the count of test images.
    """
    selection = alt.selection_point(name=CONFUSION_SELECTION, fields=["true_index", "predicted_index"])
    order = list(dict.fromkeys(frame.sort_values("true_index")["true"]))
    base = alt.Chart(frame, title="Confusion matrix (10,000 test images)").encode(
        x=alt.X("predicted:N", title="predicted class", sort=order, axis=alt.Axis(labelAngle=-45, labelOverlap=False)),
        y=alt.Y("true:N", title="true class", sort=order),
    )
    cells = (
        base.mark_rect(stroke="white")
        .encode(
            color=alt.Color("share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]), legend=None),
            opacity=alt.condition(selection, alt.value(1.0), alt.value(0.45)),
            tooltip=["true:N", "predicted:N", "count:Q", alt.Tooltip("share:Q", format=".1%")],
        )
        .add_params(selection)
    )
    counts = base.mark_text(fontSize=18 if large else 11).encode(
        text="count:Q",
        color=alt.condition("datum.share > 0.5", alt.value("white"), alt.value("black")),
    )
    return _sized(alt.layer(cells, counts), large, height=420)


def compare_curves(frame: pd.DataFrame, metric: str, large: bool = False):
    """Validation `metric` by epoch for several saved runs, one colour per run."""
    data = frame[frame["metric"] == metric]
    chart = (
        alt.Chart(data, title=f"Validation {metric} by epoch")
        .mark_line(point=True, strokeWidth=4 if large else 2)
        .encode(
            x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y(
                "value:Q",
                title=f"validation {metric}",
                scale=alt.Scale(zero=False),
                axis=alt.Axis(format=percent_format(data["value"]) if metric == "accuracy" else ".2f"),
            ),
            color=alt.Color("run:N", title=None, legend=alt.Legend(orient="bottom", columns=1, labelLimit=600)),
            tooltip=["run:N", "epoch:Q", alt.Tooltip("value:Q", format=".4f")],
        )
    )
    return _sized(chart, large)


def accuracy_versus_parameters(
    frame: pd.DataFrame,
    alexnet: float,
    large: bool = False,
    runs_label: str = "your runs",
    article: float | None = None,
):
    """Test accuracy against parameter count (log scale): your runs, the article's results, AlexNet's line.

    Args:
        runs_label: the name of the runs' points in the legend ("the class" on the class board).
        article: the article's best test accuracy, drawn as a second line when given.
    """
    colours = {runs_label if name == "your runs" else name: colour for name, colour in SOURCE_COLOURS.items()}
    shapes = {runs_label if name == "your runs" else name: shape for name, shape in SOURCE_SHAPES.items()}
    points = (
        alt.Chart(frame, title="Test accuracy against parameters")
        .mark_point(size=260 if large else 120, filled=True)
        .encode(
            x=alt.X("parameters:Q", title="parameters (log scale)", scale=alt.Scale(type="log")),
            y=alt.Y(
                "test accuracy:Q",
                title="test accuracy",
                scale=alt.Scale(zero=False),
                axis=alt.Axis(format=percent_format(frame["test accuracy"], alexnet, article or alexnet)),
            ),
            color=alt.Color(
                "source:N",
                title=None,
                scale=alt.Scale(domain=list(colours), range=list(colours.values())),
                legend=alt.Legend(orient="bottom"),
            ),
            shape=alt.Shape("source:N", scale=alt.Scale(domain=list(shapes), range=list(shapes.values()))),
            tooltip=[
                "label:N",
                "source:N",
                alt.Tooltip("parameters:Q", format=","),
                alt.Tooltip("test accuracy:Q", format=".2%"),
            ],
        )
    )
    layers = [points]
    lines = [("AlexNet", alexnet, f"AlexNet {alexnet:.2%}")]
    if article is not None:
        lines.append(("the article", article, f"the article {article:.2%}"))
    # The higher line's label above it, the lower one's below, so that close values do not overprint.
    top = max(value for _, value, _ in lines)
    for source, value, label in lines:
        offset = -7 if value == top else 9
        line = pd.DataFrame([{"value": value, "label": label}])
        layers.append(alt.Chart(line).mark_rule(strokeDash=[6, 4], color=SOURCE_COLOURS[source]).encode(y="value:Q"))
        layers.append(
            alt.Chart(line)
            .mark_text(align="left", dx=4, dy=offset, color=SOURCE_COLOURS[source], fontSize=18 if large else 11)
            .encode(y="value:Q", x=alt.value(0), text="label:N")
        )
    return _sized(alt.layer(*layers), large, height=360)
