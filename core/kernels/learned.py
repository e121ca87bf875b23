"""Learned kernels: a network's first-layer filters as pictures and numbers, and the nearest preset."""

from __future__ import annotations

import math

import numpy as np

from core.kernels.correlation import correlate
from core.kernels.presets import PRESETS, Kernel, find_preset, parse_kernel


def filter_picture(weights: np.ndarray) -> np.ndarray:
    """One learned RGB filter (rows, cols, 3) as a small picture: grey is 0, colour shows sign.

    Each channel is scaled by the filter's largest absolute weight, so a filter that adds
    red and subtracts blue looks reddish on one side and yellowish on the other.
    """
    largest = float(np.abs(weights).max()) or 1.0
    return np.rint(127.5 + 127.5 * weights / largest).astype(np.uint8)


def correlate_channels(image: np.ndarray, kernel: np.ndarray, mode: str = "same", stride: int = 1) -> np.ndarray:
    """One filter of a Conv2D layer: each channel correlated with its own kernel slice, then summed.

    Args:
        image: (H, W, C) array.
        kernel: (rows, cols, C), e.g. one learned (3, 3, 3) filter.

    Returns:
        The (H', W') float32 response, before any bias or activation.
    """
    if image.ndim != 3 or kernel.ndim != 3 or image.shape[2] != kernel.shape[2]:
        raise ValueError(f"An (H, W, C) image needs a (rows, cols, C) kernel, not {kernel.shape} for {image.shape}.")
    total = None
    for channel in range(image.shape[2]):
        response = correlate(image[:, :, channel], kernel[:, :, channel], mode, stride)
        total = response if total is None else np.add(total, response, out=total)
    return total


def filter_sheet(weights: np.ndarray, cell: int = 36, gap: int = 6, columns: int = 8) -> np.ndarray:
    """All filters of a layer, (rows, cols, 3, N), as one picture of enlarged tiles on white."""
    count = weights.shape[3]
    grid_rows = math.ceil(count / columns)
    sheet = np.full((grid_rows * (cell + gap) + gap, columns * (cell + gap) + gap, 3), 255, np.uint8)
    for index in range(count):
        tile = enlarge(filter_picture(weights[:, :, :, index]), cell)
        top, left = gap + (index // columns) * (cell + gap), gap + (index % columns) * (cell + gap)
        sheet[top : top + tile.shape[0], left : left + tile.shape[1]] = tile
    return sheet


def enlarge(picture: np.ndarray, size: int) -> np.ndarray:
    """Scales a tiny picture up with square pixels so that its longer side is about `size`."""
    factor = max(1, size // max(picture.shape[:2]))
    return np.repeat(np.repeat(picture, factor, axis=0), factor, axis=1)


def nearest_preset(weights: np.ndarray, candidates=None) -> tuple[Kernel, float]:
    """The 3x3 preset most like a learned filter (summed over colour), by cosine similarity.

    Both are centred (their mean removed) so that brightness does not count, only the
    pattern; the sign counts too, so Sobel x and a left-minus-right filter differ.

    Returns:
        The preset and the similarity, from -1 to 1 (1 is the same pattern up to a factor).
    """
    pattern = weights.sum(axis=2) if weights.ndim == 3 else weights
    pattern = pattern - pattern.mean()
    best, best_score = None, -2.0
    for kernel in candidates or PRESETS.values():
        matrix = kernel.matrix
        if matrix.shape != pattern.shape or kernel.name in ("v", "h"):
            continue
        centred = matrix - matrix.mean()
        norms = np.linalg.norm(centred) * np.linalg.norm(pattern)
        score = float((centred * pattern).sum() / norms) if norms else 0.0
        if score > best_score:
            best, best_score = kernel, score
    return best, best_score


def resolve_kernel(text: str) -> tuple[np.ndarray, Kernel | None]:
    """A preset name or a matrix, as `--kernel` takes it.

    Raises:
        ValueError: neither a preset nor a readable matrix.
    """
    try:
        preset = find_preset(text)
        return preset.matrix, preset
    except ValueError:
        if text.strip().replace("_", "").replace("-", "").replace(" ", "").isalpha():
            raise
    return parse_kernel(text), None
