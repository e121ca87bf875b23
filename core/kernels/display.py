"""One output pixel explained, and responses turned into pictures: colour scales, PNG (whole or banded).

`explain_pixel` lists the products that make one output pixel; `to_display` maps a response to
colours (signed, absolute or clipped); `render_png` writes a full-size download band by band.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.kernels.correlation import FilterSettings, _channels, _reflect_index, filter_bands, output_shape
from core.kernels.learned import enlarge
from core.kernels.presets import check_kernel

SCALINGS = {
    "signed": "zero is black, positive responses glow orange and negative ones blue "
    "(per colour channel: zero is mid-grey, brighter is positive)",
    "absolute": "the size of the response |r| from black (zero) to white (strongest), sign ignored",
    "clip": "the response as a picture: below 0 is black, above 255 is white "
    "(right for blurs, sharpen, emboss and identity)",
}
DISPLAY_MAX_SIDE = 720
"""The page computes on a copy whose longer side is at most this many pixels."""


@dataclass(frozen=True)
class PixelExplanation:
    """The arithmetic of one output pixel, as the article describes it.

    Attributes:
        row, col: the output pixel.
        centre_row, centre_col: the input pixel under the kernel's centre.
        patch: the input values under the kernel (padding values included).
        outside: True where the patch lies outside the image (zero or mirrored values).
        kernel: the kernel, unflipped.
        products: patch * kernel, element by element.
        total: the sum of the products, which is the output pixel.
    """

    row: int
    col: int
    centre_row: int
    centre_col: int
    patch: np.ndarray
    outside: np.ndarray
    kernel: np.ndarray
    products: np.ndarray
    total: float

    def equation(self) -> str:
        """The sum written out, one (input x weight) term per nonzero weight."""
        terms = [
            f"({value:.4g} × {weight:.4g})"
            for value, weight in zip(self.patch.ravel(), self.kernel.ravel(), strict=True)
            if weight != 0
        ]
        return f"{' + '.join(terms) or '0'} = {self.total:.6g}"


def explain_pixel(
    channel: np.ndarray, kernel, row: int, col: int, mode: str = "same", stride: int = 1
) -> PixelExplanation:
    """Shows how output pixel (row, col) of `correlate(channel, kernel, mode, stride)` is computed.

    Raises:
        ValueError: the channel is not 2-D, or (row, col) is outside the output.
    """
    weights = check_kernel(kernel)
    FilterSettings(mode=mode, stride=stride)
    if channel.ndim != 2:
        raise ValueError("Explain one channel at a time: pass an (H, W) array.")
    height, width = channel.shape
    out_rows, out_cols = output_shape(height, width, weights.shape, mode, stride)
    if not (0 <= row < out_rows and 0 <= col < out_cols):
        raise ValueError(
            f"The output has rows 0-{out_rows - 1} and columns 0-{out_cols - 1}; ({row}, {col}) is outside."
        )
    kernel_rows, kernel_cols = weights.shape
    pad_rows, pad_cols = (0, 0) if mode == "valid" else (kernel_rows // 2, kernel_cols // 2)
    image_rows = np.arange(kernel_rows) + row * stride - pad_rows
    image_cols = np.arange(kernel_cols) + col * stride - pad_cols
    outside = ((image_rows < 0) | (image_rows >= height))[:, None] | ((image_cols < 0) | (image_cols >= width))[None, :]
    if mode == "reflect":
        patch = channel[np.ix_(_reflect_index(image_rows, height), _reflect_index(image_cols, width))]
    else:
        patch = channel[np.ix_(np.clip(image_rows, 0, height - 1), np.clip(image_cols, 0, width - 1))]
        patch = np.where(outside, 0, patch)
    patch = patch.astype(np.float64)
    products = patch * weights
    return PixelExplanation(
        row,
        col,
        int(image_rows[kernel_rows // 2]),
        int(image_cols[kernel_cols // 2]),
        patch,
        outside,
        weights,
        products,
        float(products.sum()),
    )


def locate(picture: np.ndarray, step: PixelExplanation, radius: int = 8, size: int = 170) -> np.ndarray:
    """A close-up of the input around one output pixel, the kernel's footprint outlined in red.

    Args:
        picture: the (H, W) or (H, W, 3) uint8 input.
        step: the pixel, from `explain_pixel`.
        radius: pixels shown on each side of the kernel's centre; outside the photo is grey.
        size: roughly the close-up's side in screen pixels.
    """
    rgb = np.repeat(picture[:, :, None], 3, axis=2) if picture.ndim == 2 else picture
    rows, cols = step.kernel.shape
    reach = radius + max(rows, cols)
    padded = np.pad(rgb, ((reach, reach), (reach, reach), (0, 0)), constant_values=128)
    top, left = step.centre_row + reach - radius, step.centre_col + reach - radius
    factor = max(1, size // (2 * radius + 1))
    close_up = enlarge(padded[top : top + 2 * radius + 1, left : left + 2 * radius + 1], factor * (2 * radius + 1))
    box_top, box_left = (radius - rows // 2) * factor, (radius - cols // 2) * factor
    box_bottom, box_right = box_top + rows * factor - 1, box_left + cols * factor - 1
    red = np.array([230, 30, 30], np.uint8)
    for edge in (0, 1):
        close_up[[box_top + edge, box_bottom - edge], box_left : box_right + 1] = red
        close_up[box_top : box_bottom + 1, [box_left + edge, box_right - edge]] = red
    return close_up


def fit_within(image: np.ndarray, max_side: int = DISPLAY_MAX_SIDE) -> np.ndarray:
    """A copy scaled down (never up) so that its longer side is at most max_side pixels."""
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image
    factor = max_side / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    resized = Image.fromarray(image).resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    return np.asarray(resized)


def response_limit(response: np.ndarray) -> float:
    """The response size shown at full colour: the 99th percentile of |response|.

    A percentile rather than the maximum, so that one extreme pixel does not make every
    other edge faint; large responses are subsampled, which changes the value very little.
    """
    flat = np.abs(response.reshape(-1))
    return _limit_of(flat[:: _sample_step(flat.size)])


LIMIT_SAMPLES = 1_000_000
"""response_limit looks at every value of a response up to this size, else every n-th one."""


def _sample_step(size: int) -> int:
    return size // LIMIT_SAMPLES if size > LIMIT_SAMPLES else 1


def _limit_of(samples: np.ndarray) -> float:
    """The 99th percentile of the sampled |response|, or their maximum if that is zero."""
    limit = float(np.percentile(samples, 99))
    return limit if limit > 0 else max(float(samples.max()), 1e-6)


def banded_limit(blocks: Iterable[tuple[int, np.ndarray]], size: int) -> float:
    """`response_limit` of a response given as blocks of rows, without putting it together.

    Takes exactly the values response_limit would take from the whole response (every
    n-th of its flattened values), so the two agree to the last bit.

    Args:
        blocks: (first row, block) in order, as `correlate_bands` or `filter_bands` gives them.
        size: the number of values in the whole response.
    """
    step = _sample_step(size)
    samples, position = [], 0
    for _first, block in blocks:
        flat = block.reshape(-1)
        samples.append(np.abs(flat[(-position) % step :: step]))
        position += flat.size
    if position != size:
        raise ValueError(f"The blocks hold {position} values, not the {size} the response has.")
    return _limit_of(np.concatenate(samples))


POSITIVE_COLOR = np.array([255, 163, 26], np.float32)  # Orange.
NEGATIVE_COLOR = np.array([56, 152, 255], np.float32)  # Blue.


def to_display(response: np.ndarray, scaling: str = "signed", limit: float | None = None) -> tuple[np.ndarray, float]:
    """Turns a float response into a uint8 picture in which negative values stay visible.

    Args:
        response: (H, W) or (H, W, 3) float output of a kernel.
        scaling: a key of SCALINGS.
        limit: the response size shown at full colour; by default `response_limit(response)`.
            Ignored by "clip", which shows 0..255 as they are.

    Returns:
        The picture ((H, W, 3) for signed grayscale, else the response's shape) and the limit used.
    """
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {', '.join(SCALINGS)}, not '{scaling}'.")
    if scaling == "clip":
        return np.clip(np.rint(response), 0, 255).astype(np.uint8), 255.0
    limit = limit if limit and limit > 0 else response_limit(response)
    if scaling == "absolute":
        return np.clip(np.abs(response) * (255.0 / limit), 0, 255).astype(np.uint8), limit
    unit = np.clip(response / np.float32(limit), -1, 1)
    if response.ndim == 3:
        return np.rint(127.5 + 127.5 * unit).astype(np.uint8), limit
    picture = np.where(unit[..., None] >= 0, unit[..., None] * POSITIVE_COLOR, -unit[..., None] * NEGATIVE_COLOR)
    return np.rint(picture).astype(np.uint8), limit


def encode_png(picture: np.ndarray) -> bytes:
    """PNG bytes of a uint8 (H, W) or (H, W, 3) array."""
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def summarize(response: np.ndarray, scaling: str, limit: float) -> str:
    """One line on a response: its size, its range and how the picture shows it."""
    shown = "clipped to 0-255" if scaling == "clip" else f"{scaling}, full colour at |r| = {limit:.4g}"
    return f"{response.shape[1]}x{response.shape[0]}, from {response.min():.4g} to {response.max():.4g}; {shown}"


def render_png(
    image: np.ndarray, kernel, settings: FilterSettings, partner=None, scaling: str = "signed", *, band_rows=None
) -> bytes:
    """The filtered photo as PNG bytes, shown with `scaling` (what the page's download holds).

    Works on blocks of output rows (`filter_bands`), so a 64-megapixel photo never has a
    whole float32 response: "signed" and "absolute" filter twice, first for the display
    limit (`banded_limit`, the same number `to_display` would pick), then to write the PNG
    block by block (`encode_png_bands`); "clip" needs no limit and filters once. The
    pixels equal `encode_png(to_display(filter_image(...), scaling)[0])`'s exactly.

    Args:
        band_rows: output rows per block; by default as many as fill RENDER_BAND_BYTES.
    """
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {', '.join(SCALINGS)}, not '{scaling}'.")
    source = _channels(image, settings)
    rows, cols = output_shape(
        source.shape[0], source.shape[1], check_kernel(kernel).shape, settings.mode, settings.stride
    )
    size = rows * cols * (3 if source.ndim == 3 else 1)

    def blocks():
        return filter_bands(source, kernel, settings, partner, band_rows=band_rows)

    limit = None if scaling == "clip" else banded_limit(blocks(), size)
    return encode_png_bands((to_display(block, scaling, limit)[0] for _first, block in blocks()), rows)


PNG_FILTERS = ("none", "sub", "up", "average", "paeth")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _filter_rows(rows: np.ndarray, previous: np.ndarray, pixel_bytes: int, allowed=range(5)) -> np.ndarray:
    """PNG-filtered scanlines: each row prefixed by the filter (of `allowed`) that libpng's
    heuristic picks, the one whose bytes, read as signed, sum to the least in size.

    Args:
        rows: (n, row bytes) uint8; previous: the row above the first (zeros for the first row).
    """
    current = rows.astype(np.int16)
    above = np.concatenate([previous[None, :], rows[:-1]]).astype(np.int16)
    left = np.zeros_like(current)
    left[:, pixel_bytes:] = current[:, :-pixel_bytes]
    above_left = np.zeros_like(current)
    above_left[:, pixel_bytes:] = above[:, :-pixel_bytes]
    estimate = left + above - above_left
    distance_left, distance_above = np.abs(estimate - left), np.abs(estimate - above)
    distance_corner = np.abs(estimate - above_left)
    paeth = np.where(
        (distance_left <= distance_above) & (distance_left <= distance_corner),
        left,
        np.where(distance_above <= distance_corner, above, above_left),
    )
    predictions = (None, left, above, (left + above) >> 1, paeth)
    best_rows, best_scores = None, None
    for kind in allowed:
        prediction = predictions[kind]
        filtered = (current if prediction is None else current - prediction).astype(np.uint8)
        score = np.abs(filtered.view(np.int8).astype(np.int16)).sum(axis=1, dtype=np.int64)
        if best_rows is None:
            best_rows, best_scores = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8), score
            best_rows[:, 0], best_rows[:, 1:] = kind, filtered
        else:
            better = score < best_scores
            best_rows[better, 0], best_rows[better, 1:] = kind, filtered[better]
            best_scores = np.minimum(score, best_scores)
    return best_rows


def encode_png_bands(bands: Iterable[np.ndarray], height: int, compress_level: int = 3, *, filters=range(5)) -> bytes:
    """PNG bytes of a uint8 picture given as bands of rows, holding one band at a time.

    Each scanline gets the PNG filter libpng's heuristic would choose (see `_filter_rows`)
    and is compressed as it comes, so a 64-megapixel picture never exists as one array;
    Pillow reads the result back to the same pixels as `encode_png` of the whole picture.

    Args:
        bands: (rows, W) or (rows, W, 3) uint8 arrays, top to bottom, the same width and channels.
        height: the picture's total rows (the PNG header comes first).
        filters: the PNG filter types (0-4, see PNG_FILTERS) to choose from.

    Raises:
        ValueError: the bands are not uint8, change shape, or do not add up to height rows.
    """
    output = io.BytesIO()
    compressor = zlib.compressobj(compress_level)
    pending = bytearray()
    width = channels = previous = None
    written = 0
    for band in bands:
        if band.dtype != np.uint8 or band.ndim not in (2, 3) or (band.ndim == 3 and band.shape[2] != 3):
            raise ValueError(f"PNG bands are (rows, W) or (rows, W, 3) uint8, not {band.shape} {band.dtype}.")
        band_channels = 1 if band.ndim == 2 else 3
        if width is None:
            width, channels = band.shape[1], band_channels
            output.write(b"\x89PNG\r\n\x1a\n")
            header = struct.pack(">IIBBBBB", width, height, 8, 0 if channels == 1 else 2, 0, 0, 0)
            output.write(_png_chunk(b"IHDR", header))
            previous = np.zeros(width * channels, np.uint8)
        elif (band.shape[1], band_channels) != (width, channels):
            raise ValueError(f"A band of {band.shape} does not continue a {width}-wide, {channels}-channel picture.")
        rows = np.ascontiguousarray(band).reshape(band.shape[0], width * channels)
        for start in range(0, rows.shape[0], 64):  # Bounds the filter's int16 work arrays.
            chunk = rows[start : start + 64]
            pending += compressor.compress(_filter_rows(chunk, previous, channels, filters).tobytes())
            previous = chunk[-1]
            if len(pending) >= 1 << 20:
                output.write(_png_chunk(b"IDAT", bytes(pending)))
                pending.clear()
        written += band.shape[0]
    if width is None or written != height:
        raise ValueError(f"The bands hold {written} rows, not the picture's {height}.")
    pending += compressor.flush()
    output.write(_png_chunk(b"IDAT", bytes(pending)))
    output.write(_png_chunk(b"IEND", b""))
    return output.getvalue()
