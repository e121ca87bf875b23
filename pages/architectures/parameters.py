"""Architectures lab: the parameter check, each architecture rebuilt in Keras and counted.

TensorFlow is imported only when the visitor asks for the check; its result is cached for every
session. `models.parameter_report` is looked up at call time, so tests can swap it for a small one.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.architectures import charts, models


@st.cache_data(show_spinner=False)
def built_reports() -> list[dict]:
    """Builds every architecture once per server process (about 10 s on a CPU)."""
    return models.parameter_report()


def parameter_check(large: bool) -> None:
    """The button that builds every architecture, and the table, chart and layer summaries it gives."""
    st.subheader("Check the articles' parameter counts")
    st.caption(
        "Builds each architecture as its article describes it with keras.applications (weights=None, "
        "nothing downloaded) plus the article's head, and counts the parameters. About 10 s the first time."
    )
    # A callback, so the charts above already use our counts in the run the click starts.
    st.button(
        "Build the models and count parameters",
        icon=":material/calculate:",
        on_click=lambda: st.session_state.update(arch_checked=True),
    )
    if st.session_state.get("arch_checked"):
        with st.spinner("Building VGG16, ResNet50, DenseNet121 and the shallow nets..."):
            reports = built_reports()
        table = [
            {
                "model": report["title"],
                "dataset": report["dataset"],
                "ours: total": report["ours"]["total"],
                "ours: trainable": report["ours"]["trainable"],
                "ours: non-trainable": report["ours"]["non_trainable"],
                "article: total": (report["article"] or {}).get("total"),
                "article: trainable": (report["article"] or {}).get("trainable"),
                "article: non-trainable": (report["article"] or {}).get("non_trainable"),
                "verdict": report["verdict"],
                "depth": report["depth"],
                "Keras layers": report["keras_layers"],
                "build s": report["build_seconds"],
            }
            for report in reports
        ]
        st.dataframe(
            pd.DataFrame(table),
            hide_index=True,
            column_config={"build s": st.column_config.NumberColumn(format="%.2f")},
        )
        st.altair_chart(charts.depth_versus_parameters(reports, large), width="stretch")
        by_title = {report["title"]: report for report in reports}
        chosen = by_title[st.selectbox("Layer summary of", list(by_title), key="arch_summary_model")]
        st.caption(f"Head: {chosen['head']}. Convolution kernels: {chosen['kernel_sizes'] or 'none'}.")
        st.dataframe(pd.DataFrame(chosen["layers"]), hide_index=True)
        for name, nested_rows in chosen["nested"].items():
            with st.expander(f"Inside {name}: {len(nested_rows)} layers"):
                st.dataframe(pd.DataFrame(nested_rows), hide_index=True)
