"""Kernel lab: slide kernels over a photo and see how each output pixel is computed."""

import numpy as np
import streamlit as st

from core import kernels
from core.images import ImageError, for_display, load_image
from pages._shared import ASSETS, asset_text
from pages.kernels.learned import learned_filters
from pages.kernels.link import beside_v_and_h, cell_key, load_linked_kernel, sync_link
from pages.kernels.pixel import one_pixel
from pages.kernels.responses import as_key, prepare, respond

SAMPLES = {"Chelsea the cat": "chelsea.jpg", "Coffee cup": "coffee.jpg", "Astronaut": "astronaut.jpg"}
CUSTOM = "Your own kernel"
SCALINGS = {"auto": "Auto (suits the kernel)", "signed": "Signed colours", "absolute": "Absolute value"}
SCALINGS["clip"] = "Clip to 0-255"
STARTING_GRIDS = {3: kernels.PRESETS["v"].matrix, 5: np.pad([[1.0]], 2)}


def describe(table: dict[str, str]) -> str:
    return "\n\n".join(f"**{name}**: {text}" for name, text in table.items())


st.title("Kernel lab")
st.markdown(asset_text("kernels.md"))

source = st.segmented_control(
    "Photo", ["Sample photo", "Upload", "Camera"], default="Sample photo", required=True, key="source"
)
if source == "Upload":
    upload = st.file_uploader("Upload a photo (PNG, JPEG, GIF, BMP, TIFF or WebP)", key="upload")
    data = upload.getvalue() if upload else None
elif source == "Camera":
    shot = st.camera_input("Take a photo", key="camera")
    data = shot.getvalue() if shot else None
else:
    data = (ASSETS / "samples" / SAMPLES[st.selectbox("Sample photo", list(SAMPLES), key="sample")]).read_bytes()
if data is None:
    st.info("Choose a photo to filter, or switch back to a sample photo.")
    st.stop()
try:
    photo, full_shape = prepare(data)
except ImageError as error:
    st.error(str(error))
    st.stop()

load_linked_kernel(CUSTOM)
left, right = st.columns([2, 3])
choice = left.selectbox("Kernel", [*(kernel.title for kernel in kernels.PRESETS.values()), CUSTOM], key="kernel")
preset = next((kernel for kernel in kernels.PRESETS.values() if kernel.title == choice), None)
if preset:
    matrix = preset.matrix
    left.code(preset.formatted(), language=None)
    right.markdown(preset.responds_to)
    if preset.name in ("v", "h"):
        right.markdown(asset_text("kernels_naming.md"))
else:
    st.session_state.setdefault("size", 3)  # Set here, or by a link's kernel, never both.
    size = left.segmented_control("Size", [3, 5], format_func=lambda n: f"{n}x{n}", required=True, key="size")
    right.caption("Type integers, decimals or fractions such as 1/9.")
    cells = []
    for r in range(size):
        for c in range(size):
            st.session_state.setdefault(cell_key(size, r, c), f"{STARTING_GRIDS[size][r, c]:g}")
        cells.append(
            [
                cell.text_input(f"Row {r + 1}, column {c + 1}", key=cell_key(size, r, c))
                for c, cell in enumerate(right.columns(size))
            ]
        )
    try:
        matrix = kernels.kernel_from_cells(cells)
    except ValueError as error:
        st.error(f"Your kernel cannot be used yet. {error}")
        st.stop()
label = sync_link(None if preset else matrix)
if label:
    left.markdown(f"From the link: **{label}**")

options = st.columns(4)
mode = options[0].radio("Border", list(kernels.MODES), help=describe(kernels.MODES), key="mode")
stride = options[1].radio("Stride", [1, 2, 3], horizontal=True, key="stride")
color = options[2].radio(
    "Channels", list(kernels.COLORS), format_func={"gray": "Grayscale", "rgb": "RGB"}.get, key="color"
)
scaling = options[3].radio(
    "Display", list(SCALINGS), format_func=SCALINGS.get, help=describe(kernels.SCALINGS), key="scaling"
)
partner = kernels.PRESETS[preset.partner] if preset and preset.partner else None
magnitude = bool(partner) and st.toggle(f"Gradient magnitude sqrt(Gx² + Gy²) with {partner.title}", key="magnitude")
if scaling == "auto":
    scaling = "absolute" if magnitude else preset.display if preset else "signed"
settings = kernels.FilterSettings(mode=mode, stride=stride, color=color)
partner_key = as_key(partner.matrix) if magnitude else None
try:
    response = respond(photo, as_key(matrix), settings, partner_key)
except ValueError as error:
    st.error(str(error))
    st.stop()
picture, limit = kernels.to_display(response, scaling)

before, after = st.columns(2)
before.image(
    for_display(kernels.to_gray(photo) if color == "gray" else photo),
    caption=f"Input: {photo.shape[1]}x{photo.shape[0]} on screen, photo {full_shape[1]}x{full_shape[0]}",
    width="stretch",
)
after.image(for_display(picture), caption=f"Output: {kernels.summarize(response, scaling, limit)}", width="stretch")
after.download_button(
    "Download the result (PNG, full resolution)",
    data=lambda: kernels.render_png(
        load_image(data, "L" if color == "gray" else "RGB"), matrix, settings, partner_key, scaling
    ),
    file_name=f"{preset.name if preset else 'custom'}-{mode}-stride{stride}-{color}.png",
    mime="image/png",
    on_click="ignore",
    icon=":material/download:",
)
st.caption(
    f"The page filters a copy at most {kernels.DISPLAY_MAX_SIDE} pixels wide or tall so that it stays "
    "fast; the download filters the full photo."
)

if not preset:
    beside_v_and_h(photo, matrix, response, settings, scaling, label)
one_pixel(photo, matrix, settings, response, scaling, limit, preset, partner, magnitude)
learned_filters(photo)
