"""Shallow-net lab: a trained network's test results beside the article's, and the images behind them."""

from __future__ import annotations

import streamlit as st

from core.data import CLASS_NAMES, load_fashion_mnist
from core.shallow import charts, view
from core.shallow.config import TrainingConfig, article_results, matching_article_result
from pages._shared import asset_text, is_presentation

GALLERY_SIZE = 30
PERCENT = st.column_config.NumberColumn(format="percent")


@st.cache_resource(show_spinner="Loading the test images...")
def test_images():
    return load_fashion_mnist()[1][0]


def gallery(indices: list[int], captions: list[str]) -> None:
    images = test_images()
    st.image([view.enlarge(images[index], 4) for index in indices], caption=captions, width=112)


def _metric(column, row: dict) -> None:
    """One test metric, with its difference from the article's number when the article reports one."""
    is_loss = row["metric"] == "loss"
    value = f"{row['this run']:.3f}" if is_loss else f"{row['this run']:.2%}"
    difference, delta = row["difference"], None
    if difference is not None and difference == difference:  # NaN where the article is silent.
        delta = f"{difference:+.3f} vs article" if is_loss else f"{difference * 100:+.2f} points vs article"
    column.metric(f"Test {row['metric']}", value, delta, delta_color="inverse" if is_loss else "normal")


def _pick_cell(chart_key: str, cell_key: str, cells: dict) -> None:
    """Copies a click on the confusion matrix into the cell chooser below it."""
    selection = st.session_state[chart_key]["selection"].get(charts.CONFUSION_SELECTION) or []
    if selection:
        chosen = view.cell_key(selection[0]["true_index"], selection[0]["predicted_index"])
        if chosen in cells:
            st.session_state[cell_key] = chosen


def show_results(evaluation: dict, config: dict, prefix: str) -> None:
    """Metrics beside the article's, per-class scores, the confusion matrix and its images, the worst mistakes.

    Args:
        evaluation: `core.shallow.evaluation` output as a dict.
        config: the run's `TrainingConfig` as a dict.
        prefix: widget-key prefix, so two result panels can share a page.
    """
    large = is_presentation()
    match = matching_article_result(TrainingConfig.from_dict(config))
    comparison = view.comparison_frame(evaluation, config)
    for column, row in zip(st.columns(4), comparison.to_dict("records"), strict=True):
        _metric(column, row)
    st.caption(
        "Precision and recall are computed as the article's Keras metrics do (each class probability above 0.5 "
        "counts as a positive), so they differ from the per-class scores below, which use the top class; "
        "see *How precision and recall are computed* below."
    )
    with st.expander("How precision and recall are computed"):
        st.markdown(asset_text("shallow_precision_recall.md"))
    alexnet = article_results()[1]
    behind = (evaluation["accuracy"] - alexnet) * 100
    article = (
        f"The differences are against the article's **{match.title}**."
        if match
        else "The article reports no result for this exact network (its configurations are the presets above)."
    )
    st.markdown(
        f"{article} AlexNet reaches {alexnet:.2%}: this run is "
        f"**{abs(behind):.2f} points {'above' if behind >= 0 else 'below'}** it."
    )
    if match:
        st.dataframe(comparison, hide_index=True, column_config={"metric": st.column_config.TextColumn()})

    table, matrix = st.columns([2, 3])
    table.markdown("**Per class**")
    table.dataframe(
        view.per_class_frame(evaluation),
        hide_index=True,
        column_config={"precision": PERCENT, "recall": PERCENT, "f1": PERCENT},
        height=400,
    )
    cells = view.confusion_cells(evaluation)
    chart_key, cell_key = f"{prefix}_confusion", f"{prefix}_cell"
    # Clicks on a cell's number must reach the cell beneath it, which holds the selection.
    st.html(f"<style>.st-key-{chart_key} g.mark-text {{ pointer-events: none; }}</style>")
    matrix.altair_chart(
        charts.confusion_heatmap(view.confusion_frame(evaluation["confusion"]), large=large),
        on_select=lambda: _pick_cell(chart_key, cell_key, cells),
        selection_mode=charts.CONFUSION_SELECTION,
        key=chart_key,
    )
    chosen = st.selectbox(
        "Test images in a cell of the matrix (or click a cell)", list(cells), format_func=cells.get, key=cell_key
    )
    members = evaluation["cell_indices"][chosen]
    true_index, predicted_index = (int(part) for part in chosen.split(","))
    st.caption(
        f"True class **{CLASS_NAMES[true_index]}**, predicted **{CLASS_NAMES[predicted_index]}**: showing "
        f"{min(len(members), GALLERY_SIZE)} of {len(members)} test images (numbers are their test-set indices)."
    )
    gallery(members[:GALLERY_SIZE], [f"#{index}" for index in members[:GALLERY_SIZE]])

    st.markdown("**The most confident mistakes** (true class → predicted class, with the network's confidence)")
    mistakes = evaluation["confident_mistakes"]
    gallery(
        [mistake["index"] for mistake in mistakes],
        [f"{CLASS_NAMES[m['true']]} → {CLASS_NAMES[m['predicted']]} {m['confidence']:.0%}" for m in mistakes],
    )
