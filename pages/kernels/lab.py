"""Kernel lab: slide kernels over a photo and see how each output pixel is computed."""

import numpy as np
import pandas as pd
import streamlit as st

from core import kernels
from core.cache import MIB, ByteBoundedCache, fingerprint
from core.images import ImageError, for_display, load_image
from pages._shared import ASSETS, asset_text

SAMPLES = {"Chelsea the cat": "chelsea.jpg", "Coffee cup": "coffee.jpg", "Astronaut": "astronaut.jpg"}
CUSTOM = "Your own kernel"
SCALINGS = {"auto": "Auto (suits the kernel)", "signed": "Signed colours", "absolute": "Absolute value"}
SCALINGS["clip"] = "Clip to 0-255"
STARTING_GRIDS = {3: kernels.PRESETS["v"].matrix, 5: np.pad([[1.0]], 2)}


@st.cache_resource(show_spinner=False)
def shared_caches() -> tuple[ByteBoundedCache, ByteBoundedCache]:
    """The display photos and the responses every session shares, each bounded by bytes."""
    return ByteBoundedCache(32 * MIB, "kernel lab photos"), ByteBoundedCache(128 * MIB, "kernel lab responses")


def prepare(data: bytes) -> tuple[np.ndarray, tuple[int, ...]]:
    """The photo at display resolution (at most 1.5 MB, whatever the upload), and the full photo's shape."""

    def compute():
        image = load_image(data)
        return kernels.fit_within(image), image.shape

    return shared_caches()[0].get_or_compute(fingerprint(data), compute)


respond = shared_caches()[1].wrap(kernels.filter_image)


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


def grid(matrix: np.ndarray) -> pd.DataFrame:
    """A matrix labelled by offsets from the centre, as the per-pixel tables show it."""
    rows, cols = (range(-(size // 2), size // 2 + 1) for size in matrix.shape)
    return pd.DataFrame(np.round(matrix, 4), index=[f"{r:+d}" for r in rows], columns=[f"{c:+d}" for c in cols])


def as_key(matrix: np.ndarray) -> tuple:
    return tuple(map(tuple, matrix.tolist()))


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
    size = left.segmented_control(
        "Size", [3, 5], default=3, format_func=lambda n: f"{n}x{n}", required=True, key="size"
    )
    right.caption("Type integers, decimals or fractions such as 1/9.")
    cells = [
        [
            cell.text_input(
                f"Row {r + 1}, column {c + 1}", f"{STARTING_GRIDS[size][r, c]:g}", key=f"cell{size}_{r}_{c}"
            )
            for c, cell in enumerate(right.columns(size))
        ]
        for r in range(size)
    ]
    try:
        matrix = kernels.kernel_from_cells(cells)
    except ValueError as error:
        st.error(f"Your kernel cannot be used yet. {error}")
        st.stop()

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

st.subheader("How one output pixel is computed")
planes = kernels.to_gray(photo)[:, :, None] if color == "gray" else photo
single = respond(photo, as_key(matrix), settings).reshape(*response.shape[:2], -1)
pick = st.columns(3)
out_row = pick[0].number_input("Output row", 0, single.shape[0] - 1, single.shape[0] // 2)
out_col = pick[1].number_input("Output column", 0, single.shape[1] - 1, single.shape[1] // 2)
channel = pick[2].selectbox(
    "Channel", range(planes.shape[2]), format_func=lambda c: ("gray", "RGB"[c])[color == "rgb"], key="channel"
)
step = kernels.explain_pixel(planes[:, :, channel], matrix, out_row, out_col, mode, stride)
padding = " Cells outside the photo hold " + ("zeros." if mode == "same" else "its mirror image.")
st.markdown(
    f"The kernel's centre sits on input pixel (row {step.centre_row}, column {step.centre_col})."
    + (padding if step.outside.any() else "")
)
where, *table_columns = st.columns([2, 3, 3, 3])
where.image(kernels.locate(planes[:, :, channel], step), caption="Where: the kernel's footprint in red")
tables = {"Patch of the input": step.patch, "Kernel (not flipped)": step.kernel, "Products": step.products}
for column, (title, values) in zip(table_columns, tables.items(), strict=True):
    column.markdown(f"**{title}**")
    column.dataframe(grid(values))
st.markdown(
    f"Sum of the products: {step.equation()}; the filtered image holds **{single[out_row, out_col, channel]:.6g}** "
    + ("there." if not magnitude else f"there ({preset.title} alone; the magnitude combines it with {partner.title}).")
)

with st.expander("Cross-correlation, not convolution"):
    st.markdown(asset_text("kernels_correlation.md"))
    flipped = kernels.flip(matrix)
    if np.array_equal(flipped, matrix):
        st.info("This kernel is its own flip, so correlation and convolution give the same output.")
    else:
        flip_left, flip_right = st.columns([1, 2])
        flip_left.markdown("**The flipped kernel that convolution uses**")
        flip_left.dataframe(grid(flipped))
        convolved = respond(photo, as_key(flipped), settings)
        flip_right.image(
            for_display(kernels.to_display(convolved, scaling, limit)[0]), caption="Convolution (kernel flipped)"
        )

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
filter_left.image(kernels.enlarge(kernels.filter_picture(learned[:, :, :, number]), 150), caption=f"Filter {number}")
stem = kernels.correlate_channels(photo, learned[:, :, :, number], "same", 2)
filter_right.image(
    for_display(kernels.to_display(stem, "signed")[0]), caption="On the photo, stride 2, as the network's first layer"
)
