"""Streamlit pieces every page shares: presentation mode, the device badge, asset text."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.device import describe_device

ASSETS = Path(__file__).resolve().parent.parent / "assets"

PRESENTATION_CSS = """
<style>
html { font-size: 22px; }
[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"],
[data-testid="stStatusWidget"], footer { display: none !important; }
[data-testid="stMainBlockContainer"] { padding: 1rem 1.5rem 3rem; max-width: 100%; }
[data-testid="stMainBlockContainer"] h1 { font-size: 2.2rem; padding: 0 0 0.5rem; }
[data-testid="stMetricValue"] { font-size: 2.2rem; }
</style>
"""


def presentation_mode() -> bool:
    """Draws the presentation-mode switch (also `?present=1`) and applies it.

    Returns:
        Whether presentation mode is on, so pages can enlarge charts too.
    """
    if "present" not in st.session_state:
        st.session_state.present = st.query_params.get("present") == "1"
    st.toggle(
        "Presentation mode",
        key="present",
        help="Larger text and no chrome, for a lecture hall. Share it with ?present=1.",
    )
    if st.session_state.present:
        st.query_params["present"] = "1"
        st.html(PRESENTATION_CSS)
    elif "present" in st.query_params:
        del st.query_params["present"]
    return st.session_state.present


def is_presentation() -> bool:
    """Whether presentation mode is on (for pages sizing their charts)."""
    return bool(st.session_state.get("present", False))


def sidebar_device_badge() -> None:
    """Shows where training would run: Keras backend and GPU name, or "CPU only"."""
    device = describe_device()
    if device.gpus:
        st.success(f"Training runs on **{', '.join(device.gpus)}** (Keras backend: {device.backend})")
    else:
        bf16 = ", bf16" if device.cpu_bf16 else ""
        st.info(
            f"**CPU only**: {device.cpu_cores} cores{bf16}. Keras backend: {device.backend}.",
            icon=":material/memory:",
        )
        st.caption(device.cpu_model)


@st.cache_data
def asset_text(name: str) -> str:
    """The text of `assets/<name>` (long explanations live there, not in page code)."""
    return (ASSETS / name).read_text(encoding="utf-8")


def chart_spec(chart) -> dict:
    """The Vega-Lite spec `st.altair_chart` would send for an Altair chart, data already in Arrow.

    Drawn with `st.vega_lite_chart`, it looks the same (tests/shallow/test_live_specs.py checks
    the two messages are equal); made once, it can be drawn by many sessions without paying for
    Altair's schema-validated `to_dict` each time. Uses Streamlit's own converter (pinned
    version); without it, Altair's plain `to_dict`.
    """
    try:
        from streamlit.elements.vega_charts import _convert_altair_to_vega_lite_spec
    except ImportError:  # A Streamlit without it: the plain spec (data as JSON rows) draws the same.
        return chart.to_dict()
    return _convert_altair_to_vega_lite_spec(chart)


def draw_chart(container, chart) -> None:
    """Draws an Altair chart, or a spec made from one by `chart_spec`, in `container` (or `st`)."""
    if isinstance(chart, dict):
        container.vega_lite_chart(chart)
    else:
        container.altair_chart(chart)
