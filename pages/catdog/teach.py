"""Teach your own (a part of the cat-or-dog page): classes, their photos, and the Train button.

Photos live only in this session's state (pages/catdog/teach_photos.py): {class id: {content hash: (name, bytes)}}, with
their thumbnails and features cached by the same hash. The training runs in a thread
(core.catdog.teach.Background); pages/catdog/teach_results.py follows it and shows the rest.
"""

from __future__ import annotations

import streamlit as st

from core.catdog import teach, teach_worker
from pages._shared import ASSETS, asset_text
from pages.catdog import teach_results
from pages.catdog.teach_photos import (
    _add_class,
    _remove_class,
    _remove_photo,
    _state,
    _take_input,
    add_photos,
    class_names,
)

EXAMPLES = ASSETS / "cat_or_dog"
PHOTO_TYPES = ["jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "webp"]
GRID = 8


def class_card(item: dict, name: str) -> None:
    """One class: its name, ways to add photos, and its thumbnails, each with a remove button."""
    state, class_id = _state(), item["id"]
    photos = state.teach_photos.get(class_id, {})
    with st.container(border=True):
        title, count, drop = st.columns([4, 2, 1], vertical_alignment="bottom")
        title.text_input("Class name", value=item["name"], key=f"teach_name_{class_id}", max_chars=30)
        count.markdown(f"**{len(photos)} photo{'s' if len(photos) != 1 else ''}**")
        if len(state.teach_classes) > teach.MIN_CLASSES:
            drop.button("Remove class", key=f"teach_drop_{class_id}", on_click=_remove_class, args=(class_id,))
        round_ = state.teach_round.get(class_id, 0)
        upload_key = f"teach_upload_{class_id}_{round_}"
        st.file_uploader(
            f"Photos of {name}", type=PHOTO_TYPES, accept_multiple_files=True, key=upload_key,
            on_change=_take_input, args=(class_id, upload_key, False),
        )  # fmt: skip
        camera, examples = st.columns(2)
        if camera.toggle("Camera", key=f"teach_camera_{class_id}"):
            snap_key = f"teach_snap_{class_id}_{round_}"
            st.camera_input(f"A photo of {name}", key=snap_key, on_change=_take_input, args=(class_id, snap_key, True))
        shipped = sorted(EXAMPLES.glob(f"{name.strip().lower()}_*.jpg"))
        if shipped and examples.button(f"Add the example photos of {name}", key=f"teach_examples_{class_id}"):
            add_photos(class_id, [(path.name, path.read_bytes()) for path in shipped])
            st.rerun()
        keys = list(state.teach_photos.get(class_id, {}))
        for start in range(0, len(keys), GRID):
            for column, key in zip(st.columns(GRID), keys[start : start + GRID], strict=False):
                column.image(state.teach_thumbs[key], caption=photos[key][0][:18], width="stretch")
                column.button(
                    "Remove", key=f"teach_remove_{class_id}_{key[:16]}", on_click=_remove_photo, args=(class_id, key)
                )


def settings() -> teach.HeadConfig:
    with st.expander("The head"):
        left, middle, right = st.columns(3)
        hidden = left.selectbox(
            "Hidden layer", [0, 64, 256], format_func=lambda units: f"{units} ReLU units" if units else "none (linear)",
            key="teach_hidden", help="None keeps Grad-CAM as simple as the ImageNet head's; it is exact either way.",
        )  # fmt: skip
        dropout = middle.slider("Dropout", 0.0, 0.8, teach.HeadConfig.dropout_rate, 0.1, key="teach_dropout")
        epochs = right.slider("Epochs (full-batch steps)", 20, 300, teach.HeadConfig.epochs, 10, key="teach_epochs")
    return teach.HeadConfig(hidden_units=hidden, dropout_rate=dropout, epochs=epochs)


def render(load_classifier) -> None:
    """Draws the whole "Teach your own" part; `load_classifier` gives the shared EfficientNet-Lite0."""
    state = _state()
    st.markdown(asset_text("teach_your_own.md"))
    names = class_names()
    for item, name in zip(state.teach_classes, names, strict=True):
        class_card(item, name)
    for message in state.teach_errors:
        st.error(message, icon=":material/broken_image:")
    state.teach_errors = []
    if len(state.teach_classes) < teach.MAX_CLASSES:
        st.button("Add a class", icon=":material/add:", on_click=_add_class)
    sizes = [len(state.teach_photos.get(item["id"], {})) for item in state.teach_classes]
    few = teach.few_photo_classes(dict(zip(names, sizes, strict=True)))
    if few:
        st.warning(
            f"Fewer than {teach.FEW_PHOTOS} photos in {', '.join(few)}: the accuracy below will say little.",
            icon=":material/warning:",
        )
    config = settings()
    if any(sizes):
        teach_worker.shared_worker()  # Starts the training process (Keras import) while photos are added.
    job = state.get("teach_job")
    busy = job is not None and not job.done
    if st.button("Train", type="primary", icon=":material/school:", disabled=busy or min(sizes) == 0):
        try:
            checked = teach.check_class_names(names)
        except teach.TeachError as error:
            st.error(str(error))
        else:
            photos = [list(state.teach_photos.get(item["id"], {}).values()) for item in state.teach_classes]
            state.teach_job = teach.Background(
                teach.embed_and_train, load_classifier(), photos, checked, config, state.teach_cache,
                trainer=teach_worker.train_in_worker,
            )  # fmt: skip
            state.teach_job_kind = "training"
    teach_results.render(load_classifier)
