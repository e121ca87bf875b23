"""Shallow-net lab: try a trained run on your own picture, prepared the way Fashion-MNIST was made."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.images import ImageError, for_display
from core.shallow import view
from core.shallow.network import Network, NetworkFileError
from core.shallow.picture import SIDE, class_probabilities, prepare_picture
from pages.shallow.inside import show_inside

STEP_WIDTH = 96
"""Pixels each step's picture takes on the page: the steps are shown small, side by side."""


@st.cache_data(max_entries=32, show_spinner=False)
def prepared(data: bytes):
    return prepare_picture(data)


@st.cache_resource(max_entries=8, show_spinner="Reading the trained network...")
def network(model_path: str, modified: float, config: dict) -> Network:
    """The run's network in numpy, read once per model file (and again if the file changes)."""
    return Network.from_file(config, model_path)


def _step_picture(image):
    """A step's picture at about STEP_WIDTH pixels, whole pixels for the 28-pixel ones so they stay sharp."""
    if max(image.shape[:2]) <= SIDE:
        return view.enlarge(image, STEP_WIDTH // SIDE)
    return for_display(image, max_side=2 * STEP_WIDTH)


def trained_network(config: dict, model_path: str | Path | None, prefix: str, evaluation: dict | None = None) -> None:
    """What a trained run offers under its results: a look inside, then your own picture to classify."""
    show_inside(config, model_path, prefix, evaluation)
    if model_path and Path(model_path).is_file():  # Written whole, then renamed: there means complete.
        try_your_picture(config, model_path, prefix=prefix)


def try_your_picture(config: dict, model_path: str | Path, prefix: str) -> None:
    """Upload or photograph a garment, see each preparation step, then the run's class probabilities.

    Args:
        config: the run's `TrainingConfig` as a dict.
        model_path: the run's saved `.keras` file.
        prefix: widget-key prefix, so that two of these sections can share a page.
    """
    st.subheader("Try it on your own picture")
    source = st.segmented_control(
        "Your picture", ["Upload", "Camera"], default="Upload", required=True, key=f"{prefix}_picture_source"
    )
    if source == "Camera":
        shot = st.camera_input("Take a photo of a garment", key=f"{prefix}_picture_camera")
        data = shot.getvalue() if shot else None
    else:
        upload = st.file_uploader(
            "A photo of one garment, shoe or bag (PNG, JPEG, GIF, BMP, TIFF or WebP)", key=f"{prefix}_picture_upload"
        )
        data = upload.getvalue() if upload else None
    if data is None:
        st.caption(
            "Best on a plain background, one item filling most of the photo, as in Fashion-MNIST's product shots."
        )
        return
    try:
        picture = prepared(data)
    except ImageError as error:
        st.error(str(error))
        return
    st.image(
        [_step_picture(step.image) for step in picture.steps],
        caption=[f"{number}. {step.title}" for number, step in enumerate(picture.steps, start=1)],
        width=STEP_WIDTH,
    )
    st.caption(
        f"The background read from the photo's corners is RGB {picture.background}; "
        + (
            "it is lighter than the garment, so the picture was negated, as Fashion-MNIST's were."
            if picture.negated
            else "it is darker than the garment, so the picture was already light on dark and was not negated."
        )
    )
    path = Path(model_path)
    try:
        probabilities = network(str(path), path.stat().st_mtime, config).predict(picture.image)[0]
    except (OSError, NetworkFileError) as error:
        st.error(f"This run's network cannot be read: {error}")
        return
    frame = class_probabilities(probabilities)
    best = frame.loc[frame.probability.idxmax()]
    st.markdown(f"The network says **{best['class']}** ({best.probability:.1%}).")
    st.bar_chart(frame, x="class", y="probability", horizontal=True, sort=False, height=300)
