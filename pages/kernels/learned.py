"""Kernel lab: the first-layer filters a CNN learned (the cat-or-dog network's), beside the hand-made ones."""

import numpy as np
import streamlit as st

from core import kernels
from core.images import for_display
from pages._shared import asset_text


@st.cache_data(show_spinner=False)
def stem_filters() -> np.ndarray | None:
    """The cat-or-dog network's first-layer filters, or None until that lab's model is installed."""
    try:
        from core.catdog.classify import stem_filters as read_stem_filters
    except ImportError:
        return None
    try:
        return read_stem_filters()
    except FileNotFoundError:
        return None


def learned_filters(photo: np.ndarray) -> None:
    """The 32 learned filters, the preset each resembles most, and one of them applied to the photo."""
    st.subheader("From hand-made to learned")
    learned = stem_filters()
    if learned is None:
        st.info("The first-layer filters of a trained CNN appear here once the cat-or-dog lab's model is installed.")
        st.stop()
    st.markdown(asset_text("kernels_learned.md"))
    st.image(
        kernels.filter_sheet(learned, cell=54, gap=8), caption="The 32 learned 3x3x3 filters, numbered 0-31 row by row"
    )
    number = st.slider("Filter", 0, learned.shape[3] - 1, 0, key="learned")
    like, similarity = kernels.nearest_preset(learned[:, :, :, number])
    st.markdown(
        f"Filter {number}, summed over colour, looks most like **{like.title}** (cosine similarity {similarity:.2f})."
    )
    filter_left, filter_right = st.columns([1, 2])
    filter_left.image(
        kernels.enlarge(kernels.filter_picture(learned[:, :, :, number]), 150), caption=f"Filter {number}"
    )
    stem = kernels.correlate_channels(photo, learned[:, :, :, number], "same", 2)
    filter_right.image(
        for_display(kernels.to_display(stem, "signed")[0]),
        caption="On the photo, stride 2, as the network's first layer",
    )
