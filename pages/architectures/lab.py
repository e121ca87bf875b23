"""Architectures: the articles' VGG16, ResNet50 and DenseNet121 results beside the shallow nets.

Stored numbers come from `assets/architectures.json` at once; TensorFlow is imported only when the
visitor asks for the parameter check, whose result is cached for every session.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.architectures import charts
from core.architectures.results import (
    METRICS,
    ResultFilter,
    choices,
    datasets_caption,
    filter_rows,
    load_results,
    metric_meaning_rows,
    result_rows,
)
from pages._shared import asset_text, is_presentation
from pages.architectures.parameters import built_reports, parameter_check

TABLE_COLUMNS = ["model", "configuration", "dataset", *METRICS, "train_minus_test", "epochs", "batch_size"]
TABLE_COLUMNS += ["optimizer", "weights", "input_size", "hardware", "source"]
PERCENT = {"format": "percent"}


@st.cache_data(show_spinner=False)
def stored_results():
    stored = load_results()
    return stored, result_rows(stored)


def user_runs() -> tuple[list[dict], str]:
    """The user's saved shallow-net runs, and a caption saying where they come from."""
    try:
        from core.shallow.runs import list_finished_runs
    except ImportError:
        return (
            [],
            "Your own shallow-net runs will appear here as crosses once the Shallow-net lab saves them.",
        )
    runs = list_finished_runs()
    if not runs:
        return (
            [],
            "No saved shallow-net runs yet: finish one in the Shallow-net lab and it appears here as a cross.",
        )
    cnns = sum(charts.is_cnn_run(run) for run in runs)
    shapes = f"Crosses and diamonds: your {len(runs)} saved shallow-net run(s), {cnns} of them shallow CNNs (diamonds)"
    if not cnns:
        shapes = f"Crosses: your {len(runs)} saved shallow-net run(s)"
    return runs, f"{shapes}, test accuracy on Fashion-MNIST."


large = is_presentation()
stored, all_rows = stored_results()
st.title("Architectures")
st.markdown(asset_text("architectures.md"))
with st.expander("What VGG, ResNet and DenseNet are, and what transfer learning froze"):
    st.markdown(asset_text("architectures-explained.md"))

model_column, optimizer_column, weights_column = st.columns(3)
models = model_column.multiselect("Model", choices(all_rows, "model"), placeholder="All models", key="arch_models")
optimizers = optimizer_column.multiselect(
    "Optimizer", choices(all_rows, "optimizer"), placeholder="All optimizers", key="arch_optimizers"
)
weights = weights_column.multiselect(
    "Starting weights", choices(all_rows, "weights"), placeholder="All weights", key="arch_weights"
)
rows = filter_rows(all_rows, ResultFilter(tuple(models), tuple(optimizers), tuple(weights)))

st.subheader("Stored results")
if not rows:
    st.info("No stored result matches these filters. Clear one of them to see results again.")
    st.stop()
st.caption(f"{len(rows)} of {len(all_rows)} results. Datasets: {datasets_caption(rows)}. Click a header to sort.")
st.dataframe(
    pd.DataFrame(rows)[TABLE_COLUMNS],
    hide_index=True,
    column_config={
        **{name: st.column_config.NumberColumn(label, **PERCENT) for name, label in METRICS.items()},
        **{
            name: st.column_config.NumberColumn(label, format="%.4f")
            for name, label in METRICS.items()
            if "loss" in label or "MSE" in label
        },
        "correlation": st.column_config.NumberColumn("correlation", format="%.3f"),
        "train_minus_test": st.column_config.NumberColumn("train − test accuracy", **PERCENT),
        "batch_size": st.column_config.NumberColumn("batch"),
    },
)
with st.expander("What each number means"):
    st.dataframe(pd.DataFrame(metric_meaning_rows(stored, [row["id"] for row in rows])), hide_index=True)

accuracy_tab, fit_tab, parameters_tab, time_tab = st.tabs(
    ["Accuracy per configuration", "Train vs test", "Accuracy vs parameters", "Epoch times"]
)
with accuracy_tab:
    st.altair_chart(charts.accuracy_per_configuration(rows, large), width="stretch")
with fit_tab:
    measure = st.radio("Compare", ["accuracy", "loss"], horizontal=True, key="arch_fit_measure")
    if any(row[f"train_{measure}"] is not None and row[f"test_{measure}"] is not None for row in rows):
        st.altair_chart(charts.train_versus_test(rows, measure, large), width="stretch")
        st.caption(
            "Below the line: better on training data than on test data (over-fitting). Above it: the "
            "training figure was measured with dropout on and weights still changing (see note 4)."
        )
    else:
        st.info("Only the VGG16 and ResNet50 tables report both train and test figures; include them in the filters.")
with parameters_tab:
    reports = built_reports() if st.session_state.get("arch_checked") else []
    our_counts = {report["key"]: report["ours"]["total"] for report in reports}
    runs, runs_caption = user_runs()
    st.altair_chart(charts.accuracy_versus_parameters(rows, our_counts, runs, large), width="stretch")
    counted = "our builds where we have them" if reports else "the articles' own figures"
    st.caption(f"Parameter counts: {counted}. {runs_caption} The cats-vs-dogs CNNs give no parameter count.")
with time_tab:
    st.altair_chart(charts.epoch_times(list(stored.epoch_logs), large), width="stretch")
    st.dataframe(pd.DataFrame(stored.epoch_logs).drop(columns=["source", "hardware"]), hide_index=True)

parameter_check(large)

st.subheader("Where the articles contradict themselves")
st.markdown(asset_text("architectures-notes.md"))
with st.expander("Other findings the articles report (DenseNet121 augmentation, fine-tuning, ...)"):
    findings = [
        {
            **finding,
            "source": stored.sources[finding["source"]]["title"],
            "values": ", ".join(f"{name} = {value}" for name, value in finding["values"].items()),
        }
        for finding in stored.findings
    ]
    st.dataframe(pd.DataFrame(findings)[["source", "topic", "quote", "values"]], hide_index=True)
