"""The kernel lab in a real browser: Debian's chromium, headless, driven by Playwright."""

from __future__ import annotations

import io

import numpy as np
import pytest
from browser_helpers import choose_option, screenshot_whole_page, wait_until_idle
from PIL import Image

pytestmark = pytest.mark.browser

SETTLE_MS = 30_000


def open_kernel_lab(page, url: str) -> None:
    """Opens the app's home page and follows the menu to the kernel lab, as a new user does."""
    page.goto(url)
    page.get_by_text("Image classification explorer").first.wait_for(timeout=SETTLE_MS)
    page.get_by_test_id("stSidebarNav").get_by_text("Kernel lab").click()
    page.get_by_text("How one output pixel is computed").wait_for(timeout=SETTLE_MS)
    wait_until_idle(page)


def test_kernel_lab_shows_photo_kernel_and_output(app_server, page, artifacts_dir):
    """Opening /kernels shows the sample cat, the article's V kernel, both images and the pixel sum."""
    open_kernel_lab(page, app_server.url)
    assert page.url.endswith("/kernels")
    body = page.inner_text("body")
    assert "Kernel lab" in body
    kernel_box = page.get_by_test_id("stSelectbox").filter(has_text="Kernel").locator("input")
    assert kernel_box.input_value() == "V (the article's vertical filter)"
    assert "About the names V and H" in body
    assert "Sum of the products" in body
    assert "From hand-made to learned" in body
    images = page.locator('[data-testid="stImage"] img')
    images.nth(1).wait_for(timeout=SETTLE_MS)
    assert all(images.nth(index).evaluate("img => img.naturalWidth > 0") for index in range(2))
    screenshot_whole_page(page, artifacts_dir / "kernels.png")


def test_switching_kernel_and_uploading_a_broken_file(app_server, page, artifacts_dir):
    """Choosing Sobel x updates the explanation; a broken upload shows the loader's message."""
    open_kernel_lab(page, app_server.url)
    choose_option(page, page.get_by_test_id("stSelectbox").filter(has_text="Kernel"), "Sobel x")
    page.get_by_text("The x-derivative (right minus left)").wait_for(timeout=SETTLE_MS)
    wait_until_idle(page)
    page.get_by_text("Gradient magnitude").click()
    wait_until_idle(page)
    screenshot_whole_page(page, artifacts_dir / "kernels-sobel-magnitude.png")

    page.get_by_test_id("stButtonGroup").get_by_text("Upload", exact=True).click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": "holiday.jpg", "mimeType": "image/jpeg", "buffer": b"not really a JPEG"}]
    )
    page.get_by_text("is not an image file we can read").wait_for(timeout=SETTLE_MS)
    assert "Kernel lab" in page.inner_text("body")
    screenshot_whole_page(page, artifacts_dir / "kernels-bad-upload.png")


def odd_png(width: int, height: int) -> bytes:
    pixels = np.random.default_rng(width * 7 + height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_very_flat_tall_and_tiny_uploads_are_filtered(app_server, page, artifacts_dir):
    """Each of an 8000x2, 2x8000, 1x1, 3x3, 2x1 and 100000x1 upload is filtered and drawn, no traceback."""
    open_kernel_lab(page, app_server.url)
    page.get_by_test_id("stButtonGroup").get_by_text("Upload", exact=True).click()
    for width, height in [(8000, 2), (2, 8000), (1, 1), (3, 3), (2, 1), (100000, 1)]:
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
            files=[{"name": f"{width}x{height}.png", "mimeType": "image/png", "buffer": odd_png(width, height)}]
        )
        page.get_by_text(f"photo {width}x{height}").wait_for(timeout=SETTLE_MS)
        wait_until_idle(page)
        assert page.get_by_test_id("stException").count() == 0
        assert "Sum of the products" in page.inner_text("body")
        images = page.locator('[data-testid="stImage"] img')
        for index in range(2):
            assert images.nth(index).evaluate("img => img.decode().then(() => img.naturalWidth > 0)")
        screenshot_whole_page(page, artifacts_dir / f"kernels-{width}x{height}.png")


def test_a_shared_kernel_link_opens_the_lab_with_the_kernel_in_its_cells(app_server, page, artifacts_dir):
    """A learned 5x5 kernel's link, followed from another lab's page, fills the 25 cells and shows V and H beside it."""
    from playwright.sync_api import expect

    from core.kernels import kernel_cells, kernel_lab_link

    learned = np.random.default_rng(12).normal(0.0, 0.25, (5, 5)).astype(np.float32)
    link = kernel_lab_link(learned, "CNN run 12, filter 3")
    # The link is relative, as a button on the shallow-net lab's page holds it: resolve it from there.
    page.goto(f"{app_server.url}/shallow_nets")
    page.get_by_text("Shallow-net lab").first.wait_for(timeout=SETTLE_MS)
    page.goto(page.evaluate("link => new URL(link, location.href).href", link))
    page.get_by_text("From the link:").wait_for(timeout=SETTLE_MS)
    wait_until_idle(page)
    assert page.url.split("?")[0].endswith("/kernels")
    kernel_box = page.get_by_test_id("stSelectbox").filter(has_text="Kernel").locator("input")
    assert kernel_box.input_value() == "Your own kernel"
    body = page.inner_text("body")
    assert "CNN run 12, filter 3" in body
    assert "Your kernel beside the article's V and H" in body
    # Each cell holds the link's value (the inputs get their values just after they appear: wait for it).
    for r, row in enumerate(kernel_cells(learned)):
        for c, text in enumerate(row):
            expect(page.get_by_label(f"Row {r + 1}, column {c + 1}", exact=True)).to_have_value(text, timeout=SETTLE_MS)
    images = page.locator('[data-testid="stImage"] img')
    images.nth(4).wait_for(timeout=SETTLE_MS)
    assert all(images.nth(index).evaluate("img => img.naturalWidth > 0") for index in range(5))
    assert page.get_by_test_id("stException").count() == 0
    screenshot_whole_page(page, artifacts_dir / "kernels-linked.png")


def test_a_broken_kernel_link_says_why_and_shows_the_lab(app_server, page):
    """A link with a word among the numbers names the entry; the lab still shows V on the sample photo."""
    page.goto(f"{app_server.url}/kernels?kernel=1,0,-1,2,zero,-2,1,0,-1")
    page.get_by_text("'zero' is not a number").wait_for(timeout=SETTLE_MS)
    wait_until_idle(page)
    kernel_box = page.get_by_test_id("stSelectbox").filter(has_text="Kernel").locator("input")
    assert kernel_box.input_value() == "V (the article's vertical filter)"
    assert "Sum of the products" in page.inner_text("body")
