"""Cat or dog: one photo's verdict, with its probabilities, Grad-CAM heatmap and what the network sees."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from core.catdog.classify import THRESHOLD, crop_for_display, normalised, outline_crop, overlay
from pages._shared import asset_text, is_presentation
from pages.catdog.model import load_classifier

ICONS = {"cat": ":material/pets:", "dog": ":material/sound_detection_dog_barking:", "neither": ":material/block:"}
COLOURS = {"cat": "#d97706", "dog": "#2563eb"}
BAR_STEP = 34
AXIS_TITLE = f"probability (dashed: the {THRESHOLD:.0%} threshold)"


def probability_chart(p_cat: float, p_dog: float) -> alt.Chart:
    frame = pd.DataFrame({"class": ["cat", "dog"], "probability": [p_cat, p_dog]})
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", title=AXIS_TITLE, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            y=alt.Y("class:N", title=None, sort=["cat", "dog"]),
            color=alt.Color(
                "class:N", scale=alt.Scale(domain=list(COLOURS), range=list(COLOURS.values())), legend=None
            ),
            tooltip=["class", alt.Tooltip("probability:Q", format=".1%")],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"threshold": [THRESHOLD]}))
        .mark_rule(strokeDash=[4, 4])
        .encode(x=alt.X("threshold:Q", title=AXIS_TITLE))
    )
    # A step per bar (not a total height): Vega-Lite sizes a discrete axis by its bands.
    return (bars + rule).properties(height=alt.Step(BAR_STEP * (1.4 if is_presentation() else 1)))


def show_result(name: str, result, opacity: float) -> None:
    prediction = result.prediction
    with st.container(border=True):
        st.subheader(f"{name}: {prediction.label.upper()}", anchor=False)
        photo, numbers = st.columns([1, 1])
        with photo:
            crop = crop_for_display(result.image, result.prepared.box)
            explained = load_classifier().names[prediction.explained_class]
            st.image(overlay(crop, result.heatmap, opacity), width="stretch")
            st.caption(f"Grad-CAM for **{explained}**: where the network found evidence for it.")
        with numbers:
            if prediction.label == "neither":
                st.info(f"Neither a cat nor a dog: both stay under {THRESHOLD:.0%}.", icon=ICONS["neither"])
            else:
                share = prediction.p_cat if prediction.label == "cat" else prediction.p_dog
                st.success(f"**{prediction.label.capitalize()}**, {share:.1%} sure.", icon=ICONS[prediction.label])
            st.markdown(f"P(cat) **{prediction.p_cat:.1%}** &nbsp; P(dog) **{prediction.p_dog:.1%}**")
            st.altair_chart(probability_chart(prediction.p_cat, prediction.p_dog), width="stretch")
            top5 = pd.DataFrame(prediction.top5, columns=["ImageNet class", "probability"])
            st.dataframe(
                top5,
                hide_index=True,
                width="stretch",
                column_config={
                    "probability": st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0)
                },
            )
        with st.expander("What the network sees"):
            st.markdown(asset_text("cat_or_dog_preprocess.md"))
            full, seen = st.columns(2)
            width, height = result.prepared.decoded_size
            full.image(outline_crop(result.image, result.prepared.box), width="stretch")
            full.caption(f"Decoded at {width}x{height}; the yellow square is kept.")
            seen.image(result.prepared.pixels, width=224)
            values = normalised(result.prepared.pixels)
            seen.caption(
                f"The 224x224 input. After (p - 127) / 128 its values run from {values.min():.2f} "
                f"to {values.max():.2f} (mean {values.mean():+.2f})."
            )
