"""Teach your own in a real browser: Debian's chromium, headless, driven by Playwright."""

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
# Training loads TensorFlow and the model in the server; give it time on 2 busy cores.
TRAINED_MS = 180_000


def write_variants(folder: Path, source: str, count: int) -> list[str]:
    """Writes `count` different JPEGs made from one shipped photo (shifted crops, some mirrored)."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = Image.open(PHOTOS / source).convert("RGB")
    width, height = photo.size
    paths = []
    for index in range(count):
        shift = 0.03 * index
        picture = photo.crop((int(width * shift), int(height * shift / 2), int(width * (0.8 + shift / 2)), height))
        if index % 2:
            picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        pixels = np.clip(np.asarray(picture, np.int16) + 6 * index, 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=95)
        path = folder / f"{Path(source).stem}_{index}.jpg"
        path.write_bytes(buffer.getvalue())
        paths.append(str(path))
    return paths


def class_upload(page, name: str):
    """The file input of one class's uploader (found by its label, as a person would)."""
    return page.get_by_label(f"Photos of {name}", exact=True).get_by_test_id("stFileUploaderDropzoneInput")


def test_teach_two_classes_and_classify(app_server, page, artifacts_dir, tmp_path):
    """On /cat_or_dog, "Teach your own": five photos per class, Train, the cross-validated accuracy
    and confusion matrix appear, and a new photo is classified with your class beside ImageNet's."""
    page.goto(f"{app_server.url}/cat_or_dog")
    page.get_by_text("Teach your own").first.click()
    page.get_by_text("Teach the network your own classes").wait_for(timeout=30_000)
    # The cat-or-dog uploader goes once the run ends; then each class has its own.
    page.get_by_text("Photos of cats, dogs or anything else").wait_for(state="detached", timeout=30_000)
    wait_until_idle(page)
    class_upload(page, "cat").set_input_files(write_variants(tmp_path / "cats", "cat_chelsea.jpg", 5))
    # The photo's name under its thumbnail (the uploader's own chip may still show it for a moment).
    page.get_by_role("paragraph").filter(has_text="cat_chelsea_4.jpg").first.wait_for(timeout=60_000)
    wait_until_idle(page)
    class_upload(page, "dog").set_input_files(write_variants(tmp_path / "dogs", "dog_darknet.jpg", 5))
    page.get_by_role("paragraph").filter(has_text="dog_darknet_4.jpg").first.wait_for(timeout=60_000)
    wait_until_idle(page)
    expect(page.get_by_text("5 photos", exact=True)).to_have_count(2, timeout=30_000)
    expect(page.get_by_text("Fewer than 5 photos")).to_have_count(0, timeout=30_000)
    page.get_by_role("button", name="Train").click()
    page.get_by_text("Cross-validated accuracy (5 folds)").wait_for(timeout=TRAINED_MS)
    wait_until_idle(page, TRAINED_MS)
    assert "100.0%" in page.get_by_test_id("stMetric").inner_text()
    expect(page.locator('[data-testid="stVegaLiteChart"]')).to_have_count(2, timeout=30_000)
    page.screenshot(path=str(artifacts_dir / "teach-trained.png"))

    page.get_by_label("Photos to classify", exact=True).get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        str(PHOTOS / "other_coffee.jpg")
    )
    page.get_by_text("other_coffee.jpg:").wait_for(timeout=60_000)
    page.get_by_text("ImageNet's verdict").wait_for(timeout=30_000)
    wait_until_idle(page)
    body = page.inner_text("body")
    assert "ImageNet's verdict: NEITHER" in body and "Grad-CAM for" in body
    screenshot_whole_page(page, artifacts_dir / "teach.png")
