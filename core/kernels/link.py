"""A kernel in the kernel lab's address: the link format, its checks, and the link for a learned kernel.

A link carries the kernel's values row by row, separated by commas, and optionally where it came
from:

    kernels?kernel=-1,-2,-1,0,0,0,1,2,1
    kernels?kernel=0.1234,-0.5,...(25 values)&kernel_name=CNN+run+12,+filter+3

Nine values are a 3x3 kernel, 25 a 5x5 one (the sizes the lab's editable kernel has). Values
are rounded to `SIGNIFICANT_DIGITS` digits of the kernel's largest entry, so a learned float32
kernel makes a short link, and a rounded kernel makes exactly the same link again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

import numpy as np

from core.kernels.presets import check_kernel, parse_number
from core.labs import LABS

KERNEL_PARAM = "kernel"
LABEL_PARAM = "kernel_name"
LINK_SIZES = {9: 3, 25: 5}
"""How many values a link carries, and the side of the square kernel they make."""

SIGNIFICANT_DIGITS = 4
"""Digits kept of the largest entry; every entry is rounded to the same decimal place, so each
is within 0.05% of the largest entry's magnitude of its exact value."""

MAX_LINK_CHARS = 1000
"""The longest `kernel=` value read: 25 values of a dozen characters each fit easily."""

MAX_LABEL_CHARS = 80
LABEL_PUNCTUATION = set(" ,.:;#()-+/'")
"""What a kernel's name may hold besides letters and digits (no Markdown or HTML syntax)."""


@dataclass(frozen=True)
class LinkedKernel:
    """A kernel read from a link.

    Args:
        matrix: the kernel as a float64 matrix.
        cells: the entries as the link wrote them, row by row (the text the page's cells show).
        label: where the kernel came from ("CNN run 12, filter 3"), or "" when the link names none.
    """

    matrix: np.ndarray
    cells: tuple[tuple[str, ...], ...]
    label: str = ""

    @property
    def size(self) -> int:
        return self.matrix.shape[0]


def clean_label(label: str | None) -> str:
    """A kernel's name as the page may show it: letters, digits and plain punctuation, one line, 80 characters."""
    kept = "".join(char if char.isalnum() or char in LABEL_PUNCTUATION else " " for char in str(label or ""))
    return " ".join(kept.split())[:MAX_LABEL_CHARS].strip()


def _decimals(largest: float) -> int:
    """The decimal place that keeps SIGNIFICANT_DIGITS digits of `largest`, also once it is rounded."""
    exponent = math.floor(math.log10(largest))
    decimals = SIGNIFICANT_DIGITS - 1 - exponent
    if math.floor(math.log10(_round(largest, decimals))) > exponent:  # 9.99996 rounds up to 10.000.
        decimals -= 1
    return decimals


def _round(value: float, decimals: int) -> float:
    try:
        return round(value, decimals)
    except OverflowError:  # Within one rounding step of the largest float: keep it as it is.
        return value


def _format(value: float) -> str:
    text = repr(value)  # The shortest text that reads back as exactly this float.
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text == "-0" else text


def kernel_cells(matrix) -> list[list[str]]:
    """The kernel's entries rounded for a link, as text, row by row.

    Every entry is rounded to the decimal place that keeps SIGNIFICANT_DIGITS digits of the largest
    entry: -0.123456 beside 0.9 becomes "-0.1235", integers stay integers ("-2", not "-2.0").

    Raises:
        ValueError: the matrix is not a kernel (`check_kernel`).
    """
    values = check_kernel(matrix)
    largest = float(np.abs(values).max())
    if largest == 0.0:
        return [["0"] * values.shape[1] for _ in range(values.shape[0])]
    decimals = _decimals(largest)
    return [[_format(_round(float(value), decimals)) for value in row] for row in values]


def kernel_to_query(matrix, label: str | None = None) -> dict[str, str]:
    """The query parameters that carry a 3x3 or 5x5 kernel (and its name, when it has one).

    Raises:
        ValueError: the matrix is not a 3x3 or 5x5 kernel of finite numbers.
    """
    values = check_kernel(matrix)
    if values.size not in LINK_SIZES or values.shape[0] != values.shape[1]:
        raise ValueError(f"A kernel link carries a 3x3 or 5x5 kernel, not a {values.shape[0]}x{values.shape[1]} one.")
    query = {KERNEL_PARAM: ",".join(text for row in kernel_cells(values) for text in row)}
    name = clean_label(label)
    if name:
        query[LABEL_PARAM] = name
    return query


def kernel_from_query(params: Mapping[str, str]) -> LinkedKernel | None:
    """Reads the kernel a link carries.

    Args:
        params: the page's query parameters (`kernel`, optionally `kernel_name`).

    Returns:
        The kernel, or None when the link carries none.

    Raises:
        ValueError: a message that says what is wrong with the link's kernel and what it should be.
    """
    text = params.get(KERNEL_PARAM)
    if text is None:
        return None
    expected = "a kernel link carries 9 numbers (3x3) or 25 (5x5), row by row, separated by commas"
    if len(text) > MAX_LINK_CHARS:
        raise ValueError(f"the link's kernel is {len(text):,} characters long; {expected}.")
    entries = [entry.strip() for entry in text.replace(";", ",").split(",")]
    if entries == [""]:
        raise ValueError(f"the link's kernel is empty; {expected}.")
    if len(entries) not in LINK_SIZES:
        raise ValueError(f"the link's kernel has {len(entries)} values; {expected}.")
    side = LINK_SIZES[len(entries)]
    rows = [entries[start : start + side] for start in range(0, len(entries), side)]
    values = [
        [parse_number(entry, f"row {r + 1}, column {c + 1} of the link's kernel") for c, entry in enumerate(row)]
        for r, row in enumerate(rows)
    ]
    return LinkedKernel(check_kernel(values), tuple(map(tuple, rows)), clean_label(params.get(LABEL_PARAM)))


def kernel_lab_url_path() -> str:
    """The kernel lab's address (relative to the app), from the table of labs."""
    return next(lab.url_path for lab in LABS if lab.page_file == "pages/kernels/lab.py")


def kernel_lab_link(matrix, label: str | None = None) -> str:
    """A relative link that opens the kernel lab with this kernel loaded as "Your own kernel".

    Args:
        matrix: a 3x3 or 5x5 kernel, e.g. one filter of a trained CNN (`weights[:, :, 0, number]`).
        label: where it came from, shown above the kernel ("CNN run 12, filter 3").

    Returns:
        e.g. "kernels?kernel=-0.1235,0.9,...&kernel_name=CNN+run+12,+filter+3"

    Raises:
        ValueError: the matrix is not a 3x3 or 5x5 kernel of finite numbers.
    """
    query = urlencode(kernel_to_query(matrix, label), safe=",'")  # Commas stay readable in the address.
    return f"{kernel_lab_url_path()}?{query}"
