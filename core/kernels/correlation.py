"""Image kernels applied the way a CNN layer applies them, and the arithmetic behind one pixel.

A kernel (filter) K of size kh x kw slides over an image A; each output pixel is the sum of
the element-wise products of K with the patch of A under it. That is a *cross-correlation*:
the kernel is used as written, not flipped. Textbook convolution flips it first (rotates it
by 180 degrees), which changes the sign of antisymmetric kernels such as Sobel; CNN layers
(Keras `Conv2D`, PyTorch `Conv2d`) correlate and still call it convolution.

    out[i, j] = sum over a, b of K[a, b] * A[i * stride + a - kh // 2, j * stride + b - kw // 2]

Border modes: "same" pads with zeros (a Keras `padding="same"` layer), "reflect" mirrors the
image at its border (scipy.ndimage's "reflect": d c b a | a b c d | d c b a), and "valid"
keeps only the positions where the kernel fits inside, so the output shrinks by kh - 1 rows
and kw - 1 columns. A stride s keeps every s-th of those outputs, starting at the first.

The work is done in float32 on bands of rows small enough to stay in the CPU cache,
separable kernels (Sobel, blurs) as two 1-D passes, and bands spread over threads, which
makes a 12-megapixel photo several times faster than one `scipy.ndimage.correlate` call.
The full-size download (`render_png`) goes further: it filters blocks of output rows
(`correlate_bands`) and writes the PNG block by block (`encode_png_bands`), so a
64-megapixel photo never has a whole float32 response in memory.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.kernels.presets import check_kernel

MODES = {
    "same": "zero padding, as a Keras layer with padding='same': the output keeps the input's size",
    "reflect": "the image mirrored at its border (d c b a | a b c d), so borders show no false edges",
    "valid": "no padding: only positions where the kernel fits, so the output shrinks by the kernel size - 1",
}
COLORS = {
    "gray": "one grayscale channel (Pillow's convert('L')), filtered once",
    "rgb": "the same kernel on the red, green and blue channels separately",
}


@dataclass(frozen=True)
class FilterSettings:
    """How a kernel slides over an image.

    Args:
        mode: border handling, a key of MODES ("same" pads with zeros like a CNN layer).
        stride: 1 visits every pixel; 2 and 3 every second or third row and column.
        color: "gray" (one channel, Pillow's convert("L")) or "rgb" (each channel on its own).
    """

    mode: str = "same"
    stride: int = 1
    color: str = "gray"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not '{self.mode}'.")
        if isinstance(self.stride, bool) or not isinstance(self.stride, (int, np.integer)) or self.stride < 1:
            raise ValueError(f"stride must be a whole number of at least 1, not {self.stride!r}.")
        if self.color not in COLORS:
            raise ValueError(f"color must be one of {', '.join(COLORS)}, not '{self.color}'.")


def output_shape(height: int, width: int, kernel_shape: tuple[int, int], mode: str, stride: int) -> tuple[int, int]:
    """The output's (rows, columns): ceil(n / stride) for same/reflect, fewer for valid."""
    kernel_rows, kernel_cols = kernel_shape
    pad_rows, pad_cols = (0, 0) if mode == "valid" else (kernel_rows // 2, kernel_cols // 2)
    return (
        max((height + 2 * pad_rows - kernel_rows) // stride + 1, 0),
        max((width + 2 * pad_cols - kernel_cols) // stride + 1, 0),
    )


def _reflect_index(index: np.ndarray, size: int) -> np.ndarray:
    """Maps indices outside 0..size-1 into the image the way scipy.ndimage's "reflect" does."""
    folded = np.mod(index, 2 * size)
    return np.where(folded >= size, 2 * size - 1 - folded, folded)


def _cost(weights: np.ndarray) -> int:
    """Array operations needed to apply these taps: 1 for a weight of +-1, 2 for others."""
    nonzero = weights[weights != 0]
    return int(np.sum(np.where(np.abs(nonzero) == 1, 1, 2)))


def _separate(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Splits a rank-1 kernel into a column and a row (K = column x row), or returns None.

    The column is scaled so that its smallest nonzero entry is +-1, which keeps the common
    kernels in small integers ([1, 2, 1] x [-1, 0, 1] for Sobel) and the float work exact.
    """
    if weights.shape[0] == 1 or weights.shape[1] == 1 or not weights.any():
        return None
    row_index, col_index = np.unravel_index(np.argmax(np.abs(weights)), weights.shape)
    column = weights[:, col_index] / weights[row_index, col_index]
    column = column / np.min(np.abs(column[column != 0]))
    row = weights[row_index, :] / column[row_index]
    if not np.allclose(np.outer(column, row), weights, rtol=1e-12, atol=1e-12 * np.abs(weights).max()):
        return None
    return column, row


def _accumulate(source, weights, out, scratch, row_step: int, col_step: int) -> None:
    """out[i, j] = sum of weights[a, b] * source[a + row_step * i, b + col_step * j], tap by tap."""
    started = False
    rows, cols = out.shape[:2]
    row_span, col_span = (rows - 1) * row_step + 1, (cols - 1) * col_step + 1
    for (a, b), weight in np.ndenumerate(weights):
        if weight == 0:
            continue
        window = source[a : a + row_span : row_step, b : b + col_span : col_step]
        weight = np.float32(weight)
        if not started:
            if weight == 1:
                np.copyto(out, window)
            elif weight == -1:
                np.negative(window, out=out)
            else:
                np.multiply(window, weight, out=out)
            started = True
        elif weight == 1:
            np.add(out, window, out=out)
        elif weight == -1:
            np.subtract(out, window, out=out)
        else:
            np.multiply(window, weight, out=scratch)
            np.add(out, scratch, out=out)
    if not started:
        out.fill(0)


class _Correlator:
    """One correlation: the plan (direct taps or two 1-D passes) and the banded loop."""

    BAND_BYTES = 1 << 20  # Each band's float32 buffer stays around 1 MiB, inside the L2 cache.

    def __init__(self, planes: np.ndarray, weights: np.ndarray, mode: str, stride: int):
        self.planes, self.weights, self.mode, self.stride = planes, weights, mode, stride
        self.height, self.width, self.channels = planes.shape
        kernel_rows, kernel_cols = weights.shape
        self.pad_rows, self.pad_cols = (0, 0) if mode == "valid" else (kernel_rows // 2, kernel_cols // 2)
        self.out_rows, self.out_cols = output_shape(self.height, self.width, weights.shape, mode, stride)
        self.padded_cols = self.width + 2 * self.pad_cols
        self.factors = _separate(weights)
        if self.factors is not None:
            column, row = self.factors
            separable = _cost(column) * self.padded_cols + _cost(row) * self.out_cols
            if separable >= _cost(weights) * self.out_cols:
                self.factors = None

    def rows(self, first: int, last: int, workers: int) -> np.ndarray:
        """Output rows first..last-1 as a (last - first, out_cols, channels) float32 array.

        Each band reads its input rows (and the border padding) from the whole image, so a
        block computed on its own equals the same rows of the whole output exactly.
        """
        out = np.empty((last - first, self.out_cols, self.channels), np.float32)
        row_bytes = self.padded_cols * self.channels * 4 * self.stride
        band = max(1, self.BAND_BYTES // row_bytes)
        starts = list(range(first, last, band))
        if workers <= 1 or len(starts) < 2:
            self._work(out, starts, band, first, last)
            return out
        chunks = [starts[index::workers] for index in range(workers)]
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda chunk: self._work(out, chunk, band, first, last), chunks))
        return out

    def _work(self, out: np.ndarray, starts: list[int], band: int, first_row: int, last_row: int) -> None:
        kernel_rows = self.weights.shape[0]
        source_rows = (band - 1) * self.stride + kernel_rows
        source = np.empty((source_rows, self.padded_cols, self.channels), np.float32)
        scratch = np.empty((band, self.out_cols, self.channels), np.float32)
        if self.factors is not None:
            middle = np.empty((band, self.padded_cols, self.channels), np.float32)
            middle_scratch = np.empty_like(middle)
        for start in starts:
            stop = min(start + band, last_row)
            rows = stop - start
            first = start * self.stride
            used = (rows - 1) * self.stride + kernel_rows
            self._fill(source[:used], first)
            target = out[start - first_row : stop - first_row]
            if self.factors is None:
                _accumulate(source[:used], self.weights, target, scratch[:rows], self.stride, self.stride)
            else:
                # Down the columns first (every stride-th row), then along the rows.
                column, row = self.factors
                vertical = middle[:rows]
                _accumulate(source[:used], column[:, None], vertical, middle_scratch[:rows], self.stride, 1)
                _accumulate(vertical, row[None, :], target, scratch[:rows], 1, self.stride)

    def _fill(self, band: np.ndarray, first_padded_row: int) -> None:
        """Copies padded rows first_padded_row.. of the image into band, padding included."""
        first = first_padded_row - self.pad_rows
        last = first + band.shape[0]
        inner = band[:, self.pad_cols : self.pad_cols + self.width]
        if self.mode == "reflect" and (first < 0 or last > self.height):
            inner[...] = self.planes[_reflect_index(np.arange(first, last), self.height)]
        else:
            low, high = max(first, 0), min(last, self.height)
            band[: max(low - first, 0)] = 0
            band[max(high - first, 0) :] = 0
            if high > low:
                inner[low - first : high - first] = self.planes[low:high]
        if self.pad_cols:
            if self.mode == "reflect":
                left = _reflect_index(np.arange(-self.pad_cols, 0), self.width) + self.pad_cols
                right = _reflect_index(np.arange(self.width, self.width + self.pad_cols), self.width) + self.pad_cols
                band[:, : self.pad_cols] = band[:, left]
                band[:, self.pad_cols + self.width :] = band[:, right]
            else:
                band[:, : self.pad_cols] = 0
                band[:, self.pad_cols + self.width :] = 0


def _default_workers(values: int) -> int:
    """Threads for one correlation: one for small images, else one per idle core (at most 8).

    numpy releases the GIL inside each array operation, so bands run in parallel; but on a
    machine already busy, extra threads only queue behind other work (measured: slower than
    one thread), so the cores the load average says are busy are left out.
    """
    if values < 2_000_000:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    busy = math.floor(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
    return max(1, min(cores - busy, 8))


def correlate(image, kernel, mode: str = "same", stride: int = 1, *, workers: int | None = None) -> np.ndarray:
    """Cross-correlates an image with a kernel, channel by channel, as a CNN layer does.

    The kernel is not flipped. For stride 1, "same" equals
    `scipy.ndimage.correlate(image, kernel, mode="constant")`, "reflect" equals mode="reflect",
    and "valid" equals `scipy.signal.correlate2d(image, kernel, mode="valid")`; a stride s keeps
    `[::s, ::s]` of those.

    Args:
        image: (H, W) or (H, W, C) array of any real dtype (uint8 photos, float responses).
        kernel: a 2-D matrix with odd sides.
        mode: "same" (zero padding), "reflect" or "valid".
        stride: the step between output positions, 1 or more.
        workers: threads to use; by default the idle cores for large images, one for small ones.

    Returns:
        A float32 array with the image's number of channels and `output_shape` rows and columns.

    Raises:
        ValueError: a bad kernel, mode, stride or image, or "valid" with an image smaller than the kernel.
    """
    correlator, flat, workers = _plan(image, kernel, mode, stride, workers)
    result = correlator.rows(0, correlator.out_rows, workers)
    return result[:, :, 0] if flat else result


def _plan(image, kernel, mode: str, stride: int, workers: int | None) -> tuple[_Correlator, bool, int]:
    """Checks correlate's arguments; returns the correlator, whether the image is 2-D, and the threads."""
    weights = check_kernel(kernel)
    FilterSettings(mode=mode, stride=stride)
    array = np.asarray(image)
    if array.ndim not in (2, 3) or array.size == 0:
        raise ValueError(f"An image is an (H, W) or (H, W, C) array, not shape {array.shape}.")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"Image values must be numbers, not {array.dtype}.")
    planes = array[:, :, None] if array.ndim == 2 else array
    rows, cols = output_shape(planes.shape[0], planes.shape[1], weights.shape, mode, stride)
    if rows == 0 or cols == 0:
        raise ValueError(
            f"The image ({planes.shape[0]}x{planes.shape[1]}) is smaller than the "
            f"{weights.shape[0]}x{weights.shape[1]} kernel, so 'valid' leaves no output pixels; "
            "use 'same' or 'reflect'."
        )
    if workers is None:
        workers = _default_workers(rows * cols * planes.shape[2])
    return _Correlator(planes, weights, mode, stride), array.ndim == 2, workers


def correlate_bands(
    image, kernel, mode: str = "same", stride: int = 1, *, band_rows: int = 256, workers: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """`correlate`, a block of output rows at a time, so a large photo's response is never whole.

    Output row i reads input rows i * stride - kh // 2 .. i * stride + kh // 2 ("valid": from
    i * stride), so each block reads its rows plus the kernel's radius above and below
    from the whole image, with the same border padding; the blocks put together equal
    `correlate(image, kernel, mode, stride)` exactly, in every mode and stride.

    Args:
        image, kernel, mode, stride, workers: as for `correlate`.
        band_rows: output rows per block.

    Returns:
        An iterator of (first output row, float32 block); the arguments are checked at once.

    Raises:
        ValueError: as `correlate` does, or band_rows below 1.
    """
    if isinstance(band_rows, bool) or not isinstance(band_rows, (int, np.integer)) or band_rows < 1:
        raise ValueError(f"band_rows must be a whole number of at least 1, not {band_rows!r}.")
    correlator, flat, workers = _plan(image, kernel, mode, stride, workers)

    def blocks():
        for first in range(0, correlator.out_rows, band_rows):
            block = correlator.rows(first, min(first + band_rows, correlator.out_rows), workers)
            yield first, block[:, :, 0] if flat else block

    return blocks()


def flip(kernel) -> np.ndarray:
    """The kernel rotated by 180 degrees: what convolution uses in place of the kernel."""
    return check_kernel(kernel)[::-1, ::-1].copy()


def convolve(image, kernel, mode: str = "same", stride: int = 1) -> np.ndarray:
    """True convolution (the kernel flipped first), as scipy.ndimage.convolve computes it."""
    return correlate(image, flip(kernel), mode, stride)


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """Grayscale exactly as Pillow's convert("L") makes it (ITU-R 601 luma, rounded)."""
    if rgb.ndim == 2:
        return rgb
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).convert("L"))


def _channels(image: np.ndarray, settings: FilterSettings) -> np.ndarray:
    """The uint8 planes the settings filter: gray (H, W) or (H, W, 3)."""
    source = to_gray(image) if settings.color == "gray" else image
    if settings.color == "rgb" and source.ndim == 2:
        source = np.repeat(source[:, :, None], 3, axis=2)
    return source


def apply_kernel(image: np.ndarray, kernel, settings: FilterSettings = FilterSettings()) -> np.ndarray:
    """Filters a uint8 photo as the settings say: gray (H, W) or per channel (H, W, 3), float32."""
    return correlate(_channels(image, settings), kernel, settings.mode, settings.stride)


def gradient_magnitude(x_response: np.ndarray, y_response: np.ndarray) -> np.ndarray:
    """sqrt(Gx^2 + Gy^2): the edge strength whatever the edge's direction."""
    return np.hypot(x_response, y_response, dtype=np.float32)


def filter_image(image: np.ndarray, kernel, settings: FilterSettings = FilterSettings(), partner=None) -> np.ndarray:
    """The kernel's response, or with `partner` (its x/y twin) the gradient magnitude of the pair."""
    response = apply_kernel(image, kernel, settings)
    return response if partner is None else gradient_magnitude(response, apply_kernel(image, partner, settings))


RENDER_BAND_BYTES = 8 * 2**20
"""A full-size download works on blocks of output rows holding about this much float32 each."""


def filter_bands(
    image: np.ndarray,
    kernel,
    settings: FilterSettings = FilterSettings(),
    partner=None,
    *,
    band_rows: int | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """`filter_image`, a block of output rows at a time (see `correlate_bands`).

    Args:
        band_rows: output rows per block; by default as many as fill RENDER_BAND_BYTES.

    Returns:
        An iterator of (first output row, float32 block); the arguments are checked at once.
    """
    source = _channels(image, settings)
    weights = check_kernel(kernel)
    if band_rows is None:
        _rows, cols = output_shape(source.shape[0], source.shape[1], weights.shape, settings.mode, settings.stride)
        row_bytes = max(cols, 1) * (3 if source.ndim == 3 else 1) * 4
        band_rows = max(1, RENDER_BAND_BYTES // row_bytes)
    arguments = (settings.mode, settings.stride)
    responses = correlate_bands(source, weights, *arguments, band_rows=band_rows)
    if partner is None:
        return responses
    partners = correlate_bands(source, partner, *arguments, band_rows=band_rows)
    return ((first, gradient_magnitude(x, y)) for (first, x), (_, y) in zip(responses, partners, strict=True))
