"""The kernel lab opened with a kernel in its address (AppTest): loaded, shown beside V and H, kept in step."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from streamlit.testing.v1 import AppTest

from core import kernels
from core.images import load_image
from core.labs import ROOT

PAGE = str(ROOT / "pages" / "kernels" / "lab.py")
CUSTOM = "Your own kernel"
LEARNED = np.random.default_rng(12).normal(0.0, 0.25, (5, 5)).astype(np.float32)


def open_with(params: dict[str, str]) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params.update(params)
    return at.run()


def linked_params(matrix, label: str | None = None) -> dict[str, str]:
    return kernels.kernel_to_query(matrix, label)


def cell_values(at: AppTest, size: int) -> list[list[str]]:
    return [[at.text_input(key=f"cell{size}_{r}_{c}").value for c in range(size)] for r in range(size)]


def range_in(caption: str) -> tuple[float, float]:
    """The 'from A to B' of a response's caption."""
    low, high = caption.split("from ", 1)[1].split(";", 1)[0].split(" to ")
    return float(low), float(high)


def test_a_linked_5x5_kernel_is_loaded_as_your_own_kernel_with_its_cells_filled():
    """`?kernel=<25 values>&kernel_name=...` selects Your own kernel, 5x5, each cell holding the link's value."""
    params = linked_params(LEARNED, "CNN run 12, filter 3")
    at = open_with(params)
    assert not at.exception
    assert at.selectbox(key="kernel").value == CUSTOM
    assert at.segmented_control(key="size").value == 5
    expected = np.array(params["kernel"].split(","), dtype=object).reshape(5, 5).tolist()
    assert cell_values(at, 5) == expected
    assert "From the link: **CNN run 12, filter 3**" in [block.value for block in at.markdown]
    assert not at.warning


def test_the_linked_kernel_is_shown_beside_v_and_h_with_scipys_responses():
    """Three responses side by side: the linked kernel, V and H, each with the range scipy gives on the photo."""
    at = open_with(linked_params(LEARNED, "CNN run 12, filter 3"))
    assert "Your kernel beside the article's V and H" in [header.value for header in at.subheader]
    titles = [block.value for block in at.markdown]
    start = titles.index("**CNN run 12, filter 3**")
    assert titles[start : start + 3] == [
        "**CNN run 12, filter 3**",
        f"**{kernels.PRESETS['v'].title}**",
        f"**{kernels.PRESETS['h'].title}**",
    ]
    codes = [block.value for block in at.code]
    assert kernels.PRESETS["v"].formatted() in codes and kernels.PRESETS["h"].formatted() in codes
    gray = kernels.to_gray(load_image(ROOT / "assets" / "samples" / "chelsea.jpg")).astype(np.float64)
    linked = kernels.kernel_from_query(linked_params(LEARNED))
    references = [linked.matrix, kernels.PRESETS["v"].matrix, kernels.PRESETS["h"].matrix]
    # The page's images: input, output, then the three side by side.
    captions = [image.captions[0] for image in at.get("image")[2:5]]
    for caption, kernel in zip(captions, references, strict=True):
        expected = ndimage.correlate(gray, kernel, mode="constant")
        assert range_in(caption) == pytest.approx((expected.min(), expected.max()), rel=1e-3, abs=1e-3), caption


def test_a_bad_kernel_in_the_link_gets_a_message_and_the_page_stays_up():
    """`kernel=1,2,3` is refused with the link's rule; the page shows V on the cat, and `present=1` stays."""
    at = open_with({"kernel": "1,2,3", "present": "1"})
    assert not at.exception
    assert [warning.value for warning in at.warning] == [
        "Ignored the kernel in the link: the link's kernel has 3 values; a kernel link carries 9 numbers "
        "(3x3) or 25 (5x5), row by row, separated by commas."
    ]
    assert at.selectbox(key="kernel").value == kernels.PRESETS["v"].title
    assert at.get("image")[1].captions[0].startswith("Output: 451x300")
    assert at.query_params.get("present") == "1"
    assert "kernel" not in at.query_params


def test_a_link_entry_that_is_not_a_number_is_named():
    """A word in the link names its row and column; nothing else on the page changes."""
    at = open_with({"kernel": "1,0,-1,2,zero,-2,1,0,-1"})
    assert "row 2, column 2 of the link's kernel: 'zero' is not a number" in at.warning[0].value
    assert at.title[0].value == "Kernel lab"


def test_the_address_follows_your_own_kernel_and_forgets_the_name_when_it_changes():
    """Editing a cell writes the new kernel into the address without the link's name; a preset clears it."""
    at = open_with(linked_params(kernels.PRESETS["h"].matrix, "H from a friend"))
    assert at.query_params["kernel_name"] == "H from a friend"
    at.text_input(key="cell3_1_1").set_value("5").run()
    assert not at.exception
    assert at.query_params["kernel"] == "-1,0,1,-2,5,2,-1,0,1"
    assert "kernel_name" not in at.query_params
    assert "**Your own kernel**" in [block.value for block in at.markdown]
    at.selectbox(key="kernel").set_value("Sobel x").run()
    assert "kernel" not in at.query_params


def test_typing_your_own_kernel_makes_a_shareable_address():
    """Choosing Your own kernel and typing 1/9 beside a 2 puts 0.111 in the address, which loads it again."""
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert "kernel" not in at.query_params
    at.selectbox(key="kernel").set_value(CUSTOM).run()
    at.text_input(key="cell3_0_0").set_value("1/9").run()
    shared = at.query_params["kernel"]
    assert shared == "0.111,-2,-1,0,0,0,1,2,1"
    again = open_with({"kernel": shared})
    assert cell_values(again, 3)[0] == ["0.111", "-2", "-1"]


def button_script():
    """A page that shows one learned kernel's button, as the shallow-net lab does per kernel."""
    import numpy as np

    from pages.kernels.link import open_in_kernel_lab

    weights = np.random.default_rng(12).normal(0.0, 0.25, (3, 3, 1, 8)).astype(np.float32)
    for number in (2, 5):
        open_in_kernel_lab(weights[:, :, 0, number], f"CNN run 7, filter {number}")


def test_the_open_in_the_kernel_lab_button_carries_each_kernels_link():
    """Each button links to the kernel lab with its own kernel and name, which the lab reads back."""
    at = AppTest.from_function(button_script, default_timeout=30).run()
    assert not at.exception
    buttons = at.get("link_button")
    assert [button.proto.label for button in buttons] == ["Open in the kernel lab"] * 2
    weights = np.random.default_rng(12).normal(0.0, 0.25, (3, 3, 1, 8)).astype(np.float32)
    for button, number in zip(buttons, (2, 5), strict=True):
        assert button.proto.url == kernels.kernel_lab_link(weights[:, :, 0, number], f"CNN run 7, filter {number}")
        query = dict(part.split("=", 1) for part in button.proto.url.split("?", 1)[1].split("&"))
        linked = kernels.kernel_from_query({"kernel": query["kernel"]})
        np.testing.assert_allclose(linked.matrix, weights[:, :, 0, number], atol=5e-4 * np.abs(weights).max())
