"""Cat or dog: the network every session shares, and the analyses of photos, cached by their bytes."""

from __future__ import annotations

import io

import streamlit as st

from core.cache import MIB, ByteBoundedCache, fingerprint
from core.catdog.classify import Classifier

ANALYSIS_CACHE_BYTES = 128 * MIB  # About 70 photos at display size (1.5 MB each plus 0.25 MB of features).


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
