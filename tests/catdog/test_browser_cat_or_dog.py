"""The cat-or-dog page in a real browser: Debian's chromium, headless, driven by Playwright."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from browser_helpers import screenshot_whole_page, wait_until_idle
from PIL import Image
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PHOTOS = Path(__file__).resolve().parents[1] / "data" / "catdog"
# The first upload loads TensorFlow and the model in the server; give it time on 2 busy cores.
VERDICT_MS = 120_000


def open_cat_or_dog(page, url: str) -> None:
    """Visits /cat_or_dog directly, as from a shared link, and waits for the page in the app's frame."""
    page.goto(f"{url}/cat_or_dog")
    page.get_by_text("Upload one or more photos").wait_for(timeout=30_000)
    wait_until_idle(page, VERDICT_MS)
    # app.py's menu and switch, not a bare page.
    page.get_by_test_id("stSidebar").get_by_text("Presentation mode").wait_for(timeout=30_000)
    assert "Kernel lab" in page.get_by_test_id("stSidebar").inner_text()


def test_upload_photos_and_see_verdicts(app_server, page, artifacts_dir):
    """On /cat_or_dog, uploading a cat, a dog and a broken file shows two verdicts, their
    heatmaps and charts, and one error naming the broken file."""
    open_cat_or_dog(page, app_server.url)
    broken = artifacts_dir / "broken-upload.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        [str(PHOTOS / "cat_chelsea.jpg"), str(PHOTOS / "dog_darknet.jpg"), str(broken)]
    )
    page.get_by_text("cat_chelsea.jpg: CAT").wait_for(timeout=VERDICT_MS)
    page.get_by_text("dog_darknet.jpg: DOG").wait_for(timeout=VERDICT_MS)
    page.get_by_text("'broken-upload.jpg' is damaged").wait_for(timeout=VERDICT_MS)
    wait_until_idle(page, VERDICT_MS)
    body = page.inner_text("body")
    assert "Grad-CAM for" in body and "P(cat)" in body
    # Charts are drawn a moment after the text; wait for both.
    expect(page.locator('[data-testid="stVegaLiteChart"]')).to_have_count(2, timeout=30_000)
    # Each card shows the heatmap overlay; the crops are hidden in closed expanders.
    assert page.locator('[data-testid="stImage"] img').count() >= 2
    screenshot_whole_page(page, artifacts_dir / "cat_or_dog.png", VERDICT_MS)

    page.get_by_text("What the network sees").first.click()
    page.get_by_text("The 224x224 input").first.wait_for(timeout=30_000)
    page.get_by_text("What the network sees").first.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir / "cat_or_dog-input.png"))


def odd_png(width: int, height: int) -> bytes:
    pixels = np.random.default_rng(width * 7 + height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


ODD_SIZES = [(8000, 2), (2, 8000), (1, 1), (3, 3), (2, 1), (100000, 1)]


def test_very_flat_tall_and_tiny_photos_are_shown(app_server, page, artifacts_dir):
    """Uploading 8000x2, 2x8000, 1x1, 3x3, 2x1 and 100000x1 PNGs gives six cards, no traceback,
    and every picture, including the outlined photos in the expanders, loads in the browser."""
    open_cat_or_dog(page, app_server.url)
    files = [
        {"name": f"{width}x{height}.png", "mimeType": "image/png", "buffer": odd_png(width, height)}
        for width, height in ODD_SIZES
    ]
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(files=files)
    for width, height in ODD_SIZES:
        page.get_by_text(f"{width}x{height}.png: ").wait_for(timeout=VERDICT_MS)
    wait_until_idle(page, VERDICT_MS)
    assert page.get_by_test_id("stException").count() == 0
    for index in range(len(ODD_SIZES)):
        page.get_by_text("What the network sees").nth(index).click()
    page.get_by_text("Decoded at 100000x1").wait_for(timeout=30_000)
    wait_until_idle(page, VERDICT_MS)
    images = page.locator('[data-testid="stImage"] img')
    expect(images).to_have_count(3 * len(ODD_SIZES), timeout=30_000)
    for index in range(images.count()):
        images.nth(index).scroll_into_view_if_needed()
        assert images.nth(index).evaluate(
            "img => img.decode().then(() => img.naturalWidth > 0 && img.naturalHeight > 0)"
        )
    screenshot_whole_page(page, artifacts_dir / "cat_or_dog-odd-sizes.png", VERDICT_MS)
