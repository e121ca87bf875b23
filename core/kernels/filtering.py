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

Command line::

    python -m core.kernels list
    python -m core.kernels apply IN OUT.png --kernel NAME|MATRIX [--mode same|reflect|valid]
        [--stride 1] [--color gray|rgb] [--raw OUT.npy]
"""

from __future__ import annotations

import argparse
import io
import math
import os
import struct
import sys
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from core.images import ImageError, load_image

MODES = {
    "same": "zero padding, as a Keras layer with padding='same': the output keeps the input's size",
    "reflect": "the image mirrored at its border (d c b a | a b c d), so borders show no false edges",
    "valid": "no padding: only positions where the kernel fits, so the output shrinks by the kernel size - 1",
}
COLORS = {
    "gray": "one grayscale channel (Pillow's convert('L')), filtered once",
    "rgb": "the same kernel on the red, green and blue channels separately",
}
SCALINGS = {
    "signed": "zero is black, positive responses glow orange and negative ones blue "
    "(per colour channel: zero is mid-grey, brighter is positive)",
    "absolute": "the size of the response |r| from black (zero) to white (strongest), sign ignored",
    "clip": "the response as a picture: below 0 is black, above 255 is white "
    "(right for blurs, sharpen, emboss and identity)",
}
MAX_KERNEL_SIDE = 15
"""The largest kernel accepted (15x15); CNN kernels are 1x1 to 7x7."""

DISPLAY_MAX_SIDE = 720
"""The page computes on a copy whose longer side is at most this many pixels."""


def parse_number(text: str, where: str = "") -> float:
    """Reads one kernel entry: an integer, a decimal or a fraction such as 1/9.

    Args:
        text: the entry as typed.
        where: a place for the message, e.g. "Row 2, column 3".

    Returns:
        The value as a float.

    Raises:
        ValueError: the entry is empty, not a number, or not finite.
    """
    place = f"{where}: " if where else ""
    cleaned = text.strip().replace("\u2212", "-")  # A typographic minus, as pasted from the web.
    if not cleaned:
        raise ValueError(f"{place}the entry is empty; type a number such as 0, -1, 2.5 or 1/9.")
    try:
        value = float(Fraction(cleaned)) if "/" in cleaned else float(cleaned)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{place}'{text.strip()}' is not a number; write e.g. 2, -0.5 or 1/9.") from None
    if not math.isfinite(value):
        raise ValueError(f"{place}'{text.strip()}' is not a finite number.")
    return value


def check_kernel(kernel) -> np.ndarray:
    """Validates a kernel and returns it as a float64 matrix.

    Raises:
        ValueError: not a 2-D matrix of finite numbers with odd sides up to MAX_KERNEL_SIDE.
    """
    try:
        matrix = np.array(kernel, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("A kernel is a rectangular matrix of numbers; every row needs the same count.") from None
    if matrix.ndim != 2 or matrix.size == 0:
        raise ValueError(f"A kernel is a 2-D matrix of numbers, not an array of shape {matrix.shape}.")
    rows, cols = matrix.shape
    if rows % 2 == 0 or cols % 2 == 0:
        raise ValueError(
            f"This kernel is {rows}x{cols}; it needs an odd number of rows and columns "
            "(1, 3, 5, ...) so that it has a centre pixel."
        )
    if max(rows, cols) > MAX_KERNEL_SIDE:
        raise ValueError(f"Kernels up to {MAX_KERNEL_SIDE}x{MAX_KERNEL_SIDE} are supported, not {rows}x{cols}.")
    if not np.isfinite(matrix).all():
        raise ValueError("Every kernel entry must be a finite number (no nan or inf).")
    return matrix


def kernel_from_cells(cells) -> np.ndarray:
    """Builds a kernel from a grid of typed entries (the page's editable kernel).

    Args:
        cells: rows of strings, e.g. [["1", "0", "-1"], ...]; fractions like "1/9" are fine.

    Raises:
        ValueError: names the row and column of the first bad entry.
    """
    widths = {len(row) for row in cells}
    if len(widths) > 1:
        counts = ", ".join(str(len(row)) for row in cells)
        raise ValueError(f"Every row needs the same number of entries; these rows have {counts}.")
    values = [
        [parse_number(text, f"Row {r + 1}, column {c + 1}") for c, text in enumerate(row)]
        for r, row in enumerate(cells)
    ]
    return check_kernel(values)


def parse_kernel(text: str) -> np.ndarray:
    """Reads a kernel written as a nested list or drawn as rows of numbers.

    "[[1,0,-1],[2,0,-2],[1,0,-1]]", "1 0 -1; 2 0 -2; 1 0 -1" and three lines of "1 0 -1" are
    the same kernel; entries may be fractions such as 1/16.

    Raises:
        ValueError: with the row and column of the first entry that is not a number.
    """
    stripped = text.strip()
    if stripped.startswith("["):
        inner = stripped[1:-1].strip() if stripped.endswith("]") else None
        if inner is None or not inner.startswith("["):
            raise ValueError(f"'{stripped}' is not a matrix; write it like [[1,0,-1],[2,0,-2],[1,0,-1]].")
        rows = [row.strip(" ,[]") for row in inner.split("]")]
        rows = [row for row in rows if row]
    else:
        rows = [row for row in stripped.replace(";", "\n").splitlines() if row.strip()]
    if not rows:
        raise ValueError("The kernel is empty; write it like [[1,0,-1],[2,0,-2],[1,0,-1]].")
    return kernel_from_cells([row.replace(",", " ").split() for row in rows])


@dataclass(frozen=True)
class Kernel:
    """A named preset: its matrix drawn as text, and what it responds to in words.

    Args:
        name: the name on the command line (`--kernel sobel_x`).
        title: the name shown on the page.
        drawing: the matrix, one row per line (times `scale`).
        responds_to: which edges or features make its output large, and with which sign.
        scale: a factor for the whole matrix, e.g. 1/16 for a blur that keeps brightness.
        display: the natural way to show its output, a key of SCALINGS.
        partner: the other half of an x/y pair, for the gradient magnitude.
    """

    name: str
    title: str
    drawing: str
    responds_to: str
    scale: Fraction = Fraction(1)
    display: str = "signed"
    partner: str | None = None

    @property
    def matrix(self) -> np.ndarray:
        return parse_kernel(self.drawing) * float(self.scale)

    def formatted(self) -> str:
        """The matrix as aligned rows, with its scale factor in front when there is one."""
        rows = [row.split() for row in self.drawing.strip().splitlines()]
        width = max(len(entry) for row in rows for entry in row)
        lines = ["  ".join(entry.rjust(width) for entry in row) for row in rows]
        if self.scale != 1:
            prefix = f"{self.scale} x "
            lines = [
                (prefix if index == len(lines) // 2 else " " * len(prefix)) + line for index, line in enumerate(lines)
            ]
        return "\n".join(lines)


def _preset(*args, **kwargs) -> tuple[str, Kernel]:
    kernel = Kernel(*args, **kwargs)
    return kernel.name, kernel


PRESETS: dict[str, Kernel] = dict(
    [
        _preset(
            "v",
            "V (the article's vertical filter)",
            """
            -1 -2 -1
             0  0  0
             1  2  1
            """,
            "Changes going *vertically*: rows below minus rows above. It lights up edges that run "
            "left-right (a horizon, a table top): positive where the image gets brighter downwards, "
            "negative where it gets darker. Edges running up-down give zero.",
            partner="h",
        ),
        _preset(
            "h",
            "H (the article's horizontal filter)",
            """
            -1 0 1
            -2 0 2
            -1 0 1
            """,
            "Changes going *horizontally*: right column minus left column. It lights up edges that run "
            "up-down (a door frame, a tree trunk): positive where the image gets brighter "
            "to the right. It is V transposed.",
            partner="v",
        ),
        _preset(
            "sobel_x",
            "Sobel x",
            """
            -1 0 1
            -2 0 2
            -1 0 1
            """,
            "The x-derivative (right minus left), smoothed over three rows with the middle row counted "
            "twice: vertical edges, positive for dark-to-bright from left to right.",
            partner="sobel_y",
        ),
        _preset(
            "sobel_y",
            "Sobel y",
            """
            -1 -2 -1
             0  0  0
             1  2  1
            """,
            "The y-derivative (below minus above), smoothed over three columns: horizontal edges, "
            "positive for dark-to-bright from top to bottom.",
            partner="sobel_x",
        ),
        _preset(
            "prewitt_x",
            "Prewitt x",
            """
            -1 0 1
            -1 0 1
            -1 0 1
            """,
            "Right minus left with equal weight on all three rows: vertical edges, a little noisier than Sobel.",
            partner="prewitt_y",
        ),
        _preset(
            "prewitt_y",
            "Prewitt y",
            """
            -1 -1 -1
             0  0  0
             1  1  1
            """,
            "Below minus above with equal weights: horizontal edges.",
            partner="prewitt_x",
        ),
        _preset(
            "scharr_x",
            "Scharr x",
            """
             -3 0  3
            -10 0 10
             -3 0  3
            """,
            "Right minus left with weights tuned so that edges at every angle get a fair response: "
            "vertical edges, the most rotation-invariant of the three x kernels.",
            partner="scharr_y",
        ),
        _preset(
            "scharr_y",
            "Scharr y",
            """
            -3 -10 -3
             0   0  0
             3  10  3
            """,
            "Below minus above, Scharr's weights: horizontal edges.",
            partner="scharr_x",
        ),
        _preset(
            "laplacian_4",
            "Laplacian (4-neighbour)",
            """
            0  1 0
            1 -4 1
            0  1 0
            """,
            "The second derivative: the four neighbours minus four times the centre. Zero on flat areas "
            "and on smooth ramps; both sides of every edge and thin lines in any direction respond, "
            "with opposite signs.",
        ),
        _preset(
            "laplacian_8",
            "Laplacian (8-neighbour)",
            """
            1  1 1
            1 -8 1
            1  1 1
            """,
            "All eight neighbours minus eight times the centre: like the 4-neighbour Laplacian but "
            "also sensitive along the diagonals.",
        ),
        _preset(
            "box_blur",
            "Box blur",
            """
            1 1 1
            1 1 1
            1 1 1
            """,
            "No edges: it averages the 3x3 neighbourhood, so edges soften and noise fades. The weights "
            "sum to 1, so brightness stays.",
            scale=Fraction(1, 9),
            display="clip",
        ),
        _preset(
            "gaussian_blur",
            "Gaussian blur (5x5)",
            """
            1  4  6  4 1
            4 16 24 16 4
            6 24 36 24 6
            4 16 24 16 4
            1  4  6  4 1
            """,
            "No edges: a weighted average, heaviest in the centre (binomial weights, close to a "
            "Gaussian with sigma 1), a smoother blur than the box.",
            scale=Fraction(1, 256),
            display="clip",
        ),
        _preset(
            "sharpen",
            "Sharpen",
            """
             0 -1  0
            -1  5 -1
             0 -1  0
            """,
            "The image itself plus its edges (identity minus the 4-neighbour Laplacian): flat areas stay, "
            "edges get a brighter bright side and a darker dark side.",
            display="clip",
        ),
        _preset(
            "emboss",
            "Emboss",
            """
            -2 -1 0
            -1  1 1
             0  1 2
            """,
            "Bottom-right minus top-left, plus the pixel itself: diagonal edges look raised, lit from "
            "the bottom right.",
            display="clip",
        ),
        _preset(
            "identity",
            "Identity",
            """
            0 0 0
            0 1 0
            0 0 0
            """,
            "Nothing: the output is the input (with a stride it is the input subsampled).",
            display="clip",
        ),
    ]
)


def find_preset(name: str) -> Kernel:
    """The preset called `name` ("sobel_x", "Sobel-X" and "sobel x" all work).

    Raises:
        ValueError: listing the preset names.
    """
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in PRESETS:
        raise ValueError(f"There is no preset called '{name}'; choose one of {', '.join(PRESETS)}.")
    return PRESETS[key]


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


def _list_presets() -> str:
    blocks = []
    for kernel in PRESETS.values():
        body = "\n".join("    " + line for line in kernel.formatted().splitlines())
        blocks.append(f"{kernel.name}  ({kernel.title})\n{body}\n    {kernel.responds_to.replace('*', '')}")
    return "\n\n".join(blocks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.kernels", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="print the preset kernels with their matrices")
    apply = commands.add_parser("apply", help="filter an image with a kernel and save the result as PNG")
    apply.add_argument("input", help="the image to filter (PNG, JPEG, GIF, BMP, TIFF or WebP)")
    apply.add_argument("output", help="where to write the PNG")
    apply.add_argument(
        "--kernel",
        required=True,
        help="a preset name (see 'list') or a matrix like '[[1,0,-1],[2,0,-2],[1,0,-1]]'",
    )
    apply.add_argument("--mode", default="same", choices=list(MODES), help="border handling (default same)")
    apply.add_argument("--stride", default=1, type=int, help="step between output pixels (default 1)")
    apply.add_argument("--color", default="gray", choices=list(COLORS), help="gray or each RGB channel (default gray)")
    apply.add_argument("--raw", metavar="OUT.npy", help="also save the unscaled float32 response")
    apply.add_argument(
        "--display",
        choices=list(SCALINGS),
        help="how the PNG shows the response (default: the preset's own, else signed)",
    )
    args = parser.parse_args(argv)
    if args.command == "list":
        print(_list_presets())
        return 0
    try:
        matrix, preset = resolve_kernel(args.kernel)
        settings = FilterSettings(mode=args.mode, stride=args.stride, color=args.color)
        image = load_image(args.input, mode="L" if args.color == "gray" else "RGB")
        response = apply_kernel(image, matrix, settings)
        scaling = args.display or (preset.display if preset else "signed")
        picture, limit = to_display(response, scaling)
        Path(args.output).write_bytes(encode_png(picture))
        if args.raw:
            np.save(args.raw, response.astype(np.float32))
    except (ImageError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.output}: {summarize(response, scaling, limit)} (input {image.shape[1]}x{image.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
