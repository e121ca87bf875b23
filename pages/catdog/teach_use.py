"""Teach your own, the end: using the taught head on new photos, and exporting or importing it."""

from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from core.catdog import teach
from core.catdog.classify import overlay
from core.images import ImageError

PHOTO_TYPES = ["jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "webp"]


def use_it(load_classifier) -> None:
    state = st.session_state
    st.subheader("Use it", anchor=False)
    imported = st.file_uploader("Import a model (.keras)", type=["keras"], key="teach_import")
    if imported is not None and state.get("teach_imported") != imported.file_id:
        try:
            state.teach_head = teach.import_model(imported.getvalue(), f"'{imported.name}'")
            state.teach_imported, state.teach_verdicts = imported.file_id, {}
        except teach.TeachError as error:
            st.error(str(error), icon=":material/error:")
    head = state.get("teach_head")
    if head is None:
        st.info("Train a head (or import one) to classify new photos with your classes.")
        return
    st.caption(f"Your classes: {', '.join(head.class_names)}.")
    if st.button("Prepare the .keras file", icon=":material/package_2:"):
        state.teach_export = teach.export_model(load_classifier(), head)
    if state.get("teach_export"):
        st.download_button("Download the model", state.teach_export, "taught_efficientnet_lite0.keras",
                           icon=":material/download:")  # fmt: skip
    uploads = st.file_uploader("Photos to classify", type=PHOTO_TYPES, accept_multiple_files=True, key="teach_try")
    photos = [(upload.name, upload.getvalue()) for upload in uploads or []]
    if st.toggle("Camera", key="teach_try_camera"):
        snapshot = st.camera_input("A photo to classify", key="teach_try_snap")
        photos += [("camera photo", snapshot.getvalue())] if snapshot else []
    verdicts = state.setdefault("teach_verdicts", {})
    for name, data in photos:
        key = teach.content_hash(data)
        upload = io.BytesIO(data)
        upload.name = name
        try:
            verdict = verdicts.get(key) or verdicts.setdefault(key, teach.judge(load_classifier(), head, upload))
        except ImageError as error:
            st.error(str(error), icon=":material/broken_image:")
            continue
        show_verdict(name, verdict, load_classifier)


def show_verdict(name: str, verdict, load_classifier) -> None:
    from core.catdog.classify import crop_for_display

    analysis = verdict.analysis
    with st.container(border=True):
        st.subheader(f"{name}: {verdict.label}", anchor=False)
        picture, numbers = st.columns(2)
        crop = crop_for_display(analysis.image, analysis.prepared.box)
        picture.image(overlay(crop, verdict.heatmap, 0.45), width="stretch")
        picture.caption(f"Grad-CAM for **{verdict.label}** (your head; exact, as for the ImageNet head).")
        table = pd.DataFrame(list(verdict.probabilities.items()), columns=["your class", "probability"])
        numbers.dataframe(table, hide_index=True, width="stretch", column_config={
            "probability": st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0)})  # fmt: skip
        imagenet = analysis.prediction
        top_name, top_probability = imagenet.top5[0]
        numbers.markdown(
            f"ImageNet's verdict: **{imagenet.label.upper()}** (P(cat) {imagenet.p_cat:.1%}, "
            f"P(dog) {imagenet.p_dog:.1%}; top class {top_name}, {top_probability:.0%})"
        )
