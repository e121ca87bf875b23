"""Your own picture prepared the way Fashion-MNIST was made, so that a trained run can classify it.

Xiao, Rasul and Vollgraf (2017) made each 28 x 28 image from a product photo (white background)
in these steps; `prepare_picture` does them in the same order and keeps every step's picture:

    1. trim the edges that are close to the colour of the corner pixels (within 5% of the
       largest possible distance in RGB space)
    2. resize the longest edge to 28
    3. sharpen with a Gaussian of radius and standard deviation 1
    4. extend the shorter edge to 28, the picture in the centre
    5. negate the intensities (the garment light on a dark background)
    6. convert to 8-bit grayscale

Two decisions are ours. The paper's photos were all dark-ish garments on white, so it always
negates; a user's photo may already be a light garment on a dark background, so step 5 negates
only when the background (the photo's border) is lighter than the garment. And the paper resized
by subsampling (skipping rows and columns), which keeps a phone photo's noise and fabric texture
as speckles at 28 pixels; we average each block of pixels instead (Pillow's box filter).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter

from core.data import CLASS_NAMES
from core.images import ImageSource, load_image

SIDE = 28
TRIM_TOLERANCE = 0.05 * 255 * np.sqrt(3)
"""How close to the corners' colour an edge pixel is trimmed: 5% of the RGB cube's diagonal."""

WORKING_SIDE = 1024
"""A photo is first scaled down to at most this side (never up): the steps need no more detail."""

SHARPEN = ImageFilter.UnsharpMask(radius=1.0, percent=100, threshold=0)
"""The photo plus (photo - its Gaussian blur of standard deviation 1): edges get crisper."""


@dataclass(frozen=True)
class Step:
    """One step of the preparation: what it did, and the picture after it (uint8, RGB or grayscale)."""

    title: str
    image: np.ndarray


@dataclass(frozen=True)
class PreparedPicture:
    """A photo prepared like Fashion-MNIST.

    Args:
        image: the 28 x 28 uint8 grayscale picture a network takes (garment light on dark).
        steps: every step's picture, from the photo to `image`, for the page to show.
        negated: whether the intensities were negated (the background was lighter than the garment).
        background: the background's RGB colour, as read from the photo's corners.
    """

    image: np.ndarray
    steps: tuple[Step, ...]
    negated: bool
    background: tuple[int, int, int]


def _working_copy(photo: np.ndarray) -> np.ndarray:
    height, width = photo.shape[:2]
    if max(height, width) <= WORKING_SIDE:
        return photo
    factor = WORKING_SIDE / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.BOX))


def corner_colour(photo: np.ndarray) -> np.ndarray:
    """The background's colour: the median of the four corner pixels, channel by channel."""
    corners = photo[[0, 0, -1, -1], [0, -1, 0, -1]].astype(np.float64)
    return np.median(corners, axis=0)


def trim(photo: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The photo without its edges close to the background colour (the whole photo when all of it is)."""
    distance = np.sqrt(((photo.astype(np.float64) - background) ** 2).sum(axis=2))
    rows = np.flatnonzero((distance > TRIM_TOLERANCE).any(axis=1))
    cols = np.flatnonzero((distance > TRIM_TOLERANCE).any(axis=0))
    if rows.size == 0:
        return photo
    return photo[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def fit_longest_edge(photo: np.ndarray, side: int = SIDE) -> np.ndarray:
    """The photo scaled so that its longest edge is `side` pixels, keeping its aspect (each side at least 1)."""
    height, width = photo.shape[:2]
    factor = side / max(height, width)
    size = (max(1, min(side, round(width * factor))), max(1, min(side, round(height * factor))))
    return np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.BOX))


def sharpen(photo: np.ndarray) -> np.ndarray:
    """The photo sharpened with a Gaussian of standard deviation 1 (unsharp masking, 100%)."""
    return np.asarray(Image.fromarray(photo).filter(SHARPEN))


def centre(photo: np.ndarray, fill: np.ndarray, side: int = SIDE) -> np.ndarray:
    """The photo in the middle of a side x side canvas of colour `fill` (the odd pixel goes below/right)."""
    height, width = photo.shape[:2]
    canvas = np.empty((side, side, 3), np.uint8)
    canvas[:] = np.round(fill).astype(np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    canvas[top : top + height, left : left + width] = photo
    return canvas


def gray(photo: np.ndarray) -> np.ndarray:
    """8-bit grayscale as Pillow (and `load_image(mode="L")`) makes it: ITU-R 601 luma."""
    return np.asarray(Image.fromarray(photo).convert("L"))


def background_is_lighter(photo: np.ndarray, background: np.ndarray) -> bool:
    """Whether the background is lighter than the garment: then the picture needs negating.

    The garment is every pixel farther than TRIM_TOLERANCE from the background colour; a photo that
    is all background counts as a garment-free light or dark field (lighter than mid-grey: negate).
    """
    distance = np.sqrt(((photo.astype(np.float64) - background) ** 2).sum(axis=2))
    luma = gray(photo).astype(np.float64)
    background_luma = float(gray(np.round(background).astype(np.uint8).reshape(1, 1, 3))[0, 0])
    garment = luma[distance > TRIM_TOLERANCE]
    if garment.size == 0:
        return background_luma > 127.5
    return background_luma > float(np.median(garment))


def prepare_picture(source: ImageSource) -> PreparedPicture:
    """Prepares a photo (bytes, a path or an upload) the way Fashion-MNIST's images were made.

    Returns:
        The 28 x 28 picture, every step's picture, and whether it was negated.

    Raises:
        ImageError: the shared loader's message for an empty, huge, damaged or unreadable file.
    """
    photo = _working_copy(load_image(source, "RGB", draft_size=(WORKING_SIDE, WORKING_SIDE)))
    background = corner_colour(photo)
    steps = [Step("Your photo", photo)]
    trimmed = trim(photo, background)
    steps.append(Step("Edges of the corners' colour trimmed", trimmed))
    resized = fit_longest_edge(trimmed)
    steps.append(Step(f"Longest edge {SIDE} pixels", resized))
    sharpened = sharpen(resized)
    steps.append(Step("Sharpened", sharpened))
    centred = centre(sharpened, background)
    steps.append(Step(f"Centred on {SIDE} x {SIDE}", centred))
    negated = background_is_lighter(trimmed, background)
    if negated:
        centred = 255 - centred
    steps.append(Step("Negated" if negated else "Not negated (already light on dark)", centred))
    image = gray(centred)
    steps.append(Step("Grayscale", image))
    colour = tuple(int(value) for value in np.round(background))
    return PreparedPicture(image=image, steps=tuple(steps), negated=negated, background=colour)


def class_probabilities(probabilities) -> pd.DataFrame:
    """A network's ten probabilities for one picture, with Fashion-MNIST's class names, in class order.

    Raises:
        ValueError: not ten probabilities.
    """
    values = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if values.size != len(CLASS_NAMES):
        raise ValueError(f"Expected {len(CLASS_NAMES)} class probabilities, not {values.size}.")
    return pd.DataFrame({"class": list(CLASS_NAMES), "probability": values})
