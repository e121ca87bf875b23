"""The one safe image loader for every page and command that takes pictures from users.

Bytes, a path or a file-like object go in; a uint8 numpy array comes out, (H, W, 3) for
RGB or (H, W) for grayscale. On the way: limits on bytes and pixels (decompression bombs
are refused before any pixel is decoded), EXIF rotation, the first frame of an animation,
transparency composited onto white, CMYK/palette/16-bit/float modes normalised. Anything
wrong raises `ImageError`, a `ValueError` whose message a user can act on.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 50 * 1024 * 1024
"""Largest file accepted, in bytes (the Streamlit upload limit is the same 50 MB)."""

MAX_PIXELS = 64_000_000
"""Largest image accepted, in pixels: a 12-megapixel photo passes, a bomb does not."""

MODES = ("RGB", "L")
SUPPORTED = "PNG, JPEG, GIF, BMP, TIFF or WebP"

ImageSource = bytes | bytearray | memoryview | str | os.PathLike | BinaryIO


class ImageError(ValueError):
    """The input is not an image we can safely use; the message says why and what to do."""


def _read_bytes(source: ImageSource, max_bytes: int) -> tuple[bytes, str]:
    """Returns the raw bytes and a name for messages, reading at most max_bytes + 1."""
    too_big = f"is larger than the {max_bytes / 1e6:.0f} MB limit; save it at a smaller size or as JPEG and try again"
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "The image"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = f"'{path.name}'"
        if not path.is_file():
            raise ImageError(f"{name} does not exist or is not a file.")
        if path.stat().st_size > max_bytes:
            raise ImageError(f"{name} {too_big}.")
        try:
            data = path.read_bytes()
        except OSError as error:
            raise ImageError(f"{name} could not be read: {error.strerror or error}.") from error
    elif hasattr(source, "read"):
        name = f"'{Path(source.name).name}'" if isinstance(getattr(source, "name", None), str) else "The image"
        if hasattr(source, "seek"):
            try:
                source.seek(0)
            except (OSError, ValueError):
                pass
        data = source.read(max_bytes + 1)
        if not isinstance(data, bytes):
            raise ImageError(f"{name} was opened as text; open it in binary mode ('rb').")
    else:
        raise ImageError(f"Cannot read an image from a {type(source).__name__}.")
    if len(data) > max_bytes:
        raise ImageError(f"{name} {too_big}.")
    if not data:
        raise ImageError(f"{name} is empty (0 bytes); choose the file again or pick another one.")
    return data, name


def _to_eight_bit(image: Image.Image) -> Image.Image:
    """Maps 16-bit, 32-bit integer and float grayscale onto 0-255 ("L")."""
    array = np.asarray(image)
    if image.mode == "F":
        finite = np.nan_to_num(array.astype(np.float64))
        low, high = float(finite.min()), float(finite.max())
        if low >= 0.0 and high <= 1.0:
            scaled = finite * 255.0
        else:
            scaled = (finite - low) * (255.0 / (high - low)) if high > low else finite * 0
    else:
        # 16-bit data (the I;16 modes, and "I" as Pillow opens 16-bit PNGs): keep the top byte.
        scaled = np.clip(array.astype(np.int64), 0, 65535) / 257.0
    return Image.fromarray(np.round(scaled).astype(np.uint8), mode="L")


def _normalise(image: Image.Image, mode: str) -> Image.Image:
    """Turns any Pillow mode into 8-bit RGB or L; transparency goes onto white."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        image = _to_eight_bit(image)
    if image.mode in ("P", "PA", "LA", "La", "RGBa") or image.mode == "RGBA":
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    if mode == "L":
        return image if image.mode == "L" else image.convert("RGB").convert("L")
    return image if image.mode == "RGB" else image.convert("RGB")


def load_image(
    source: ImageSource,
    mode: str = "RGB",
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Decodes an untrusted image safely into a uint8 array.

    Args:
        source: the image as bytes, a path, or a binary file-like object (an upload).
        mode: "RGB" for (H, W, 3) or "L" for (H, W) grayscale (Pillow's `convert("L")`).
        max_bytes: the largest file accepted.
        max_pixels: the largest width x height accepted, checked before decoding.
        draft_size: for JPEGs, decode at the smallest 1/2, 1/4 or 1/8 scale that is still at
            least this (width, height) (JPEG's DCT scaling: a 12-megapixel photo decodes
            about 4x faster). None decodes at full size.

    Returns:
        A C-contiguous uint8 array, upright as the camera meant it (EXIF orientation).

    Raises:
        ImageError: empty, too large, not an image, truncated or corrupt input.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    data, name = _read_bytes(source, max_bytes)
    with warnings.catch_warnings():
        # Our own pixel limit decides; Pillow's bomb warning would only be noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as error:
            raise ImageError(
                f"{name} has far more pixels than the {max_pixels / 1e6:.0f}-megapixel limit "
                f"(a decompression bomb or a huge scan); resize it and try again."
            ) from error
        except UnidentifiedImageError as error:
            raise ImageError(f"{name} is not an image file we can read. Use a {SUPPORTED} file.") from error
        except Exception as error:  # Pillow plugins raise many types on hostile headers.
            raise ImageError(f"{name} is damaged and could not be opened ({error}).") from error

        width, height = image.size
        if width <= 0 or height <= 0:
            raise ImageError(f"{name} has no pixels ({width}x{height}).")
        if width * height > max_pixels:
            raise ImageError(
                f"{name} is {width}x{height} = {width * height / 1e6:.0f} megapixels, over the "
                f"{max_pixels / 1e6:.0f}-megapixel limit; resize it and try again."
            )
        if draft_size is not None and image.format == "JPEG":
            image.draft(None, draft_size)
        try:
            image.seek(0)  # The first frame of an animated GIF, PNG or WebP.
            image.load()
        except Exception as error:  # Truncated data raises OSError, odd codecs others.
            raise ImageError(f"{name} is truncated or corrupt ({error}); re-save or re-download it.") from error
        try:
            image = ImageOps.exif_transpose(image) or image
        except Exception:  # A broken EXIF block must not cost the picture itself.
            pass
        try:
            image = _normalise(image, mode)
        except Exception as error:
            raise ImageError(f"{name} uses a colour format we cannot convert ({image.mode}).") from error
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


DISPLAY_MAX_SIDE = 1460
"""Longest side of a picture handed to `st.image`: Streamlit's own widest image (2 x 730 px).
A wider picture is resized by Streamlit itself, which rounds a very flat one to zero rows."""

DISPLAY_MAX_ASPECT = 8
"""A picture flatter or taller than 8:1 gets grey bands, so that a 8000x2 strip still shows."""

DISPLAY_FILL = 128


def fit_for_display(image: np.ndarray, max_side: int = DISPLAY_MAX_SIDE) -> tuple[np.ndarray, float]:
    """Scales a uint8 picture down (never up) so that neither side exceeds max_side.

    Each side keeps at least one pixel, however flat the picture.

    Returns:
        The picture (the input itself when it already fits) and the scale factor applied.
    """
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image, 1.0
    factor = max_side / max(height, width)
    size = (max(1, min(max_side, round(width * factor))), max(1, min(max_side, round(height * factor))))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)), factor


def pad_to_aspect(image: np.ndarray, max_aspect: float = DISPLAY_MAX_ASPECT, fill: int = DISPLAY_FILL) -> np.ndarray:
    """Centres a very flat or very tall picture on grey bands, so its short side is at least long / max_aspect."""
    height, width = image.shape[:2]
    short = -(-max(height, width) // max_aspect)  # Ceiling division.
    extra_rows, extra_cols = max(0, int(short) - height), max(0, int(short) - width)
    if not extra_rows and not extra_cols:
        return image
    padding = [(extra_rows // 2, extra_rows - extra_rows // 2), (extra_cols // 2, extra_cols - extra_cols // 2)]
    padding += [(0, 0)] * (image.ndim - 2)
    return np.pad(image, padding, constant_values=fill)


def for_display(image: np.ndarray, max_side: int = DISPLAY_MAX_SIDE) -> np.ndarray:
    """A picture any `st.image` shows as it is, whatever the upload's size: see the two steps above."""
    return pad_to_aspect(fit_for_display(image, max_side)[0])
