"""A kernel in the kernel lab's address: the link's round trip, its rounding and its checks."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
from scipy import ndimage

from core import kernels
from core.kernels import PRESETS, kernel_cells, kernel_from_query, kernel_lab_link, kernel_to_query
from core.labs import LABS


def read_link(link: str) -> dict[str, str]:
    """The query parameters of a relative link, parsed as a browser's address bar hands them to the page."""
    return dict(parse_qsl(urlsplit(link).query, keep_blank_values=True))


@pytest.mark.parametrize("side", [3, 5])
@pytest.mark.parametrize("scale", [1e-3, 0.3, 7.0, 250.0])
def test_learned_float32_kernels_survive_the_trip(side, scale):
    """A random float32 kernel comes back within 0.05% of its largest entry, and makes the same link again."""
    rng = np.random.default_rng(side * 1000 + int(scale * 1000))
    kernel = rng.normal(0.0, scale, (side, side)).astype(np.float32)
    link = kernel_lab_link(kernel, "CNN run 12, filter 3")
    linked = kernel_from_query(read_link(link))
    assert linked.matrix.shape == (side, side)
    largest = np.abs(kernel).max()
    np.testing.assert_allclose(linked.matrix, kernel.astype(np.float64), rtol=0, atol=5e-4 * largest)
    assert kernel_lab_link(linked.matrix, linked.label) == link  # Rounding a rounded kernel changes nothing.
    assert linked.label == "CNN run 12, filter 3"
    # Each entry keeps four significant digits of the largest, and no more.
    assert max(len(Decimal(text).normalize().as_tuple().digits) for row in linked.cells for text in row) <= 4


def test_the_response_of_a_linked_kernel_matches_the_original_kernel():
    """Filtering a photo with the linked kernel gives scipy's response to the exact kernel, to the rounding."""
    rng = np.random.default_rng(3)
    kernel = rng.normal(0.0, 0.2, (5, 5)).astype(np.float32)
    image = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    linked = kernel_from_query(read_link(kernel_lab_link(kernel)))
    ours = kernels.correlate(image, linked.matrix, "same", 1)
    expected = ndimage.correlate(image.astype(np.float64), kernel.astype(np.float64), mode="constant")
    # Each of 25 entries is off by at most 0.05% of the largest, on pixels of at most 255.
    bound = 25 * 5e-4 * np.abs(kernel).max() * 255
    assert np.abs(ours - expected).max() <= bound + 1e-3


def test_the_articles_kernels_make_short_exact_readable_links():
    """V is `kernels?kernel=-1,-2,-1,0,0,0,1,2,1`: integers stay integers, commas stay commas."""
    assert kernel_lab_link(PRESETS["v"].matrix) == "kernels?kernel=-1,-2,-1,0,0,0,1,2,1"
    link = kernel_lab_link(PRESETS["h"].matrix, "H, the article's")
    assert link == "kernels?kernel=-1,0,1,-2,0,2,-1,0,1&kernel_name=H,+the+article's"
    for name in ("v", "h", "laplacian_8", "sharpen", "gaussian_blur", "identity"):
        linked = kernel_from_query(read_link(kernel_lab_link(PRESETS[name].matrix)))
        matrix = PRESETS[name].matrix
        np.testing.assert_allclose(linked.matrix, matrix, rtol=0, atol=5e-4 * np.abs(matrix).max(), err_msg=name)
    # 1/9 keeps four digits: 0.1111.
    assert kernel_cells(PRESETS["box_blur"].matrix)[1] == ["0.1111", "0.1111", "0.1111"]


def test_the_link_goes_to_the_kernel_labs_address():
    """The link is relative to the app and uses the kernel lab's url path from the table of labs."""
    kernel_lab = next(lab for lab in LABS if lab.page_file == "pages/kernels/lab.py")
    assert kernel_lab_link(np.eye(3)).startswith(f"{kernel_lab.url_path}?kernel=")


def test_rounding_keeps_the_largest_entry_exact_when_it_rounds_up_to_a_new_digit():
    """9.99996 rounds to 10 and every other entry is then rounded to the same place (0.001 -> 0)."""
    cells = kernel_cells([[9.99996, 0.001, -0.00004], [0, 0, 0], [1, 1, 1]])
    assert cells == [["10", "0", "0"], ["0", "0", "0"], ["1", "1", "1"]]
    assert kernel_cells(np.zeros((3, 3))) == [["0"] * 3] * 3
    tiny = kernel_from_query({"kernel": ",".join(sum(kernel_cells(np.full((3, 3), 1.23456e-7)), []))})
    np.testing.assert_allclose(tiny.matrix, 1.235e-7)


def test_names_lose_markup_and_length_but_keep_plain_words():
    """A link's name keeps letters, digits and plain punctuation; Markdown, HTML and newlines are dropped."""
    linked = kernel_from_query({"kernel": "1,0,0,0,1,0,0,0,1", "kernel_name": "**Run** <b>7</b>\n[x](y) _f_ 2"})
    assert linked.label == "Run b 7 /b x (y) f 2"
    assert kernel_from_query({"kernel": "0,0,0,0,1,0,0,0,0"}).label == ""
    assert len(kernel_from_query({"kernel": "0,0,0,0,1,0,0,0,0", "kernel_name": "a" * 500}).label) == 80
    assert kernel_from_query({"kernel": "0,0,0,0,1,0,0,0,0", "kernel_name": "卷积 3"}).label == "卷积 3"


def test_entries_may_have_spaces_fractions_and_typographic_minus():
    """' 1/9, -0.5 ,\u22122' style entries read as typed in a cell; the cells keep the link's text."""
    linked = kernel_from_query({"kernel": " 1/9, -0.5 ,\u22122,0,0,0,1,2,1"})
    assert linked.size == 3
    np.testing.assert_allclose(linked.matrix[0], [1 / 9, -0.5, -2])
    assert linked.cells[0] == ("1/9", "-0.5", "\u22122")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "the link's kernel is empty; a kernel link carries 9 numbers (3x3) or 25 (5x5)"),
        ("1,2,3,4,5,6,7", "the link's kernel has 7 values; a kernel link carries 9 numbers (3x3) or 25 (5x5)"),
        (",".join(["1"] * 16), "the link's kernel has 16 values"),
        ("1,0,-1,2,abc,-2,1,0,-1", "row 2, column 2 of the link's kernel: 'abc' is not a number"),
        ("1,0,-1,2,,-2,1,0,-1", "row 2, column 2 of the link's kernel: the entry is empty"),
        ("1,0,-1,2,0,-2,1,0,nan", "row 3, column 3 of the link's kernel: 'nan' is not a finite number"),
        ("1,0,inf,2,0,-2,1,0,1", "row 1, column 3 of the link's kernel: 'inf' is not a finite number"),
        ("1/0,0,0,0,0,0,0,0,0", "row 1, column 1 of the link's kernel: '1/0' is not a number"),
        ("1" * 1001, "the link's kernel is 1,001 characters long"),
    ],
)
def test_a_bad_link_gets_a_message_that_says_what_a_link_holds(value, message):
    """Each bad `kernel=` value raises a ValueError naming the problem (and the entry, where there is one)."""
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        kernel_from_query({"kernel": value})


def test_a_link_without_a_kernel_carries_none():
    """No `kernel=` means no linked kernel, whatever else the address holds."""
    assert kernel_from_query({"present": "1", "kernel_name": "x"}) is None


@pytest.mark.parametrize("matrix", [np.eye(7), np.ones((3, 5)), np.ones((1, 1)), [[1, 2, np.nan]] * 3])
def test_only_finite_3x3_and_5x5_kernels_make_links(matrix):
    """The lab's editable kernel is 3x3 or 5x5: other shapes (and nan) are refused with a message."""
    with pytest.raises(ValueError, match="kernel"):
        kernel_to_query(matrix)


def test_extreme_magnitudes_make_links_that_read_back():
    """Entries near the largest float, or tiny beside it, still make a link (no overflow) that reads back."""
    for matrix in (np.full((3, 3), 1e308), [[1.7976931348623157e308, 1, 0], [0, 0, 0], [0, 0, -1e-300]]):
        linked = kernel_from_query(read_link(kernel_lab_link(matrix)))
        np.testing.assert_allclose(linked.matrix, matrix, rtol=0, atol=5e-4 * np.abs(matrix).max())
