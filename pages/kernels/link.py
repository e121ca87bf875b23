"""Kernel lab: a kernel carried by the address (loaded into "Your own kernel", the address kept in step), the
kernel beside the article's V and H, and the "Open in the kernel lab" button other labs show beside a kernel."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core import kernels
from core.images import for_display
from pages.kernels.responses import as_key, respond

LINK_KEYS = (kernels.KERNEL_PARAM, kernels.LABEL_PARAM)


def cell_key(size: int, row: int, column: int) -> str:
    return f"cell{size}_{row}_{column}"


def load_linked_kernel(custom_title: str) -> None:
    """Fills the kernel widgets from the address when it carries a kernel this session has not loaded yet.

    A bad kernel in the link gets a message and changes nothing; the rest of the address stays.
    """
    query = st.query_params.get(kernels.KERNEL_PARAM)
    if query is None or query == st.session_state.get("kernel_query"):
        return
    st.session_state.kernel_query = query
    try:
        linked = kernels.kernel_from_query(st.query_params.to_dict())
    except ValueError as error:
        st.warning(f"Ignored the kernel in the link: {error}", icon=":material/link_off:")
        return
    st.session_state.kernel = custom_title
    st.session_state.size = linked.size
    for row, texts in enumerate(linked.cells):
        for column, text in enumerate(texts):
            st.session_state[cell_key(linked.size, row, column)] = text
    st.session_state.kernel_linked = {"matrix": linked.matrix.tolist(), "label": linked.label}


def sync_link(matrix: np.ndarray | None) -> str:
    """Writes the page's own kernel into the address, so that it can be shared (None: a preset, no kernel there).

    Returns:
        The name the link gave the kernel, while the cells still hold that kernel; else "".
    """
    if matrix is None:
        for key in LINK_KEYS:
            st.query_params.pop(key, None)
        return ""
    linked = st.session_state.get("kernel_linked")
    label = linked["label"] if linked and np.array_equal(linked["matrix"], matrix) else ""
    wanted = kernels.kernel_to_query(matrix, label)
    for key in LINK_KEYS:
        if key not in wanted:
            st.query_params.pop(key, None)
        elif st.query_params.get(key) != wanted[key]:
            st.query_params[key] = wanted[key]
    st.session_state.kernel_query = wanted[kernels.KERNEL_PARAM]
    return label


def aligned(matrix: np.ndarray) -> str:
    """The kernel's rounded entries in aligned columns."""
    rows = kernels.kernel_cells(matrix)
    width = max(len(text) for row in rows for text in row)
    return "\n".join(" ".join(text.rjust(width) for text in row) for row in rows)


def beside_v_and_h(photo, matrix, response, settings, scaling: str, label: str) -> None:
    """The page's own kernel and the article's V and H side by side: their numbers and their responses."""
    st.subheader("Your kernel beside the article's V and H")
    st.caption("The same photo, border, stride, channels and display for all three.")
    entries = [(label or "Your own kernel", aligned(matrix), response)]
    for preset in (kernels.PRESETS["v"], kernels.PRESETS["h"]):
        entries.append((preset.title, preset.formatted(), respond(photo, as_key(preset.matrix), settings, None)))
    widths = [4, 3, 3] if matrix.shape[0] > 3 else [1, 1, 1]  # Room for five columns of numbers.
    for column, (title, numbers, result) in zip(st.columns(widths), entries, strict=True):
        column.markdown(f"**{title}**")
        column.code(numbers, language=None)
        picture, limit = kernels.to_display(result, scaling)
        column.image(for_display(picture), caption=kernels.summarize(result, scaling, limit), width="stretch")


def open_in_kernel_lab(matrix, label: str, where=None, key: str | None = None) -> None:
    """An "Open in the kernel lab" button for one 3x3 or 5x5 kernel, e.g. a trained CNN's filter.

    It opens the kernel lab in a new tab with the kernel loaded as "Your own kernel", through a link
    that can be shared.

    Args:
        matrix: the kernel, e.g. `weights[:, :, 0, number]` of a Conv2D layer with one input channel.
        label: where it came from, shown above the kernel ("CNN run 12, filter 3").
        where: a container or column to draw in (the page itself by default).
        key: a widget key, for a page that shows the same kernel twice.
    """
    (where or st).link_button(
        "Open in the kernel lab",
        kernels.kernel_lab_link(np.asarray(matrix, dtype=np.float64), label),
        icon=":material/blur_on:",
        help=f"{label}, as your own kernel in the kernel lab, beside the article's V and H",
        key=key,
    )
