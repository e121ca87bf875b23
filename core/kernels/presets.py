"""Kernels as a CNN layer holds them: parsing, checks, and the named presets with what they respond to.

Every preset draws its matrix in its docstring-like `Kernel` record (name, title, weights, what it
responds to, how to display its response); `parse_kernel` reads a matrix typed by a user.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

MAX_KERNEL_SIDE = 15
"""The largest kernel accepted (15x15); CNN kernels are 1x1 to 7x7."""


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
