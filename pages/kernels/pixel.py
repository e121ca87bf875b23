"""Kernel lab: how one output pixel is computed, and why the lab correlates rather than convolves."""

import numpy as np
import pandas as pd
import streamlit as st

from core import kernels
from core.images import for_display
from pages._shared import asset_text
from pages.kernels.responses import as_key, respond


def grid(matrix: np.ndarray) -> pd.DataFrame:
    """A matrix labelled by offsets from the centre, as the per-pixel tables show it."""
    rows, cols = (range(-(size // 2), size // 2 + 1) for size in matrix.shape)
    return pd.DataFrame(np.round(matrix, 4), index=[f"{r:+d}" for r in rows], columns=[f"{c:+d}" for c in cols])


def one_pixel(photo, matrix, settings, response, scaling, limit, preset, partner, magnitude) -> None:
    """The patch, kernel and products behind one output pixel the user picks, then the flipped kernel."""
    mode, stride, color = settings.mode, settings.stride, settings.color
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
        + (
            "there."
            if not magnitude
            else f"there ({preset.title} alone; the magnitude combines it with {partner.title})."
        )
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
