"""Kernel lab: the photos and filter responses every session shares, cached by bytes."""

import numpy as np
import streamlit as st

from core import kernels
from core.cache import MIB, ByteBoundedCache, fingerprint
from core.images import load_image


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


def as_key(matrix: np.ndarray) -> tuple:
    return tuple(map(tuple, matrix.tolist()))
