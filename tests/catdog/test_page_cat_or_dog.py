"""The cat-or-dog page through Streamlit's AppTest: uploads, verdicts, errors, the slider."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "catdog" / "lab.py")
PHOTOS = ROOT / "tests" / "data" / "catdog"


def photo(name: str) -> bytes:
    return (PHOTOS / name).read_bytes()


@pytest.fixture(scope="module")
def uploaded() -> AppTest:
    """The page after uploading a cat, a broken file, a PNG-named text file and a coffee cup."""
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    uploader = at.file_uploader[0]
    uploader.upload("chelsea.jpg", photo("cat_chelsea.jpg"), "image/jpeg")
    uploader.upload("broken.jpg", b"\xff\xd8\xff\xe0 this is not really a jpeg", "image/jpeg")
    uploader.upload("notes.png", b"just some text", "image/png")
    uploader.upload("coffee.jpg", photo("other_coffee.jpg"), "image/jpeg")
    return at.run()


def test_page_invites_an_upload_before_any_photo():
    """With no photo the page explains itself and asks for one, without loading the model."""
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Cat or dog"
    assert any("Upload one or more photos" in info.value for info in at.info)
    assert at.file_uploader[0].accept_multiple_files
    assert "75%" in " ".join(markdown.value for markdown in at.markdown)  # the article's result


def test_each_good_photo_gets_a_verdict(uploaded):
    """The cat and the coffee cup each get a card with their verdict, in upload order."""
    assert not uploaded.exception
    assert [header.value for header in uploaded.subheader] == ["chelsea.jpg: CAT", "coffee.jpg: NEITHER"]
    assert any(success.value.startswith("**Cat**, 9") for success in uploaded.success)
    assert any("Neither a cat nor a dog" in info.value for info in uploaded.info)
    shown = " ".join(markdown.value for markdown in uploaded.markdown)
    assert "P(cat) **92" in shown


def test_bad_files_get_their_own_error_and_do_not_stop_the_rest(uploaded):
    """Two unreadable uploads give one error each, naming the file; the others are classified."""
    errors = [error.value for error in uploaded.error]
    assert len(errors) == 2
    assert "'broken.jpg' is damaged" in errors[0]
    assert "'notes.png' is not an image file we can read" in errors[1]


def test_top5_and_probability_chart(uploaded):
    """Each verdict shows the top-5 ImageNet classes and a P(cat)/P(dog) bar chart."""
    tables = uploaded.dataframe
    assert len(tables) == 2
    cat_classes = list(tables[0].value["ImageNet class"])
    assert len(cat_classes) == 5 and set(cat_classes[:3]) == {"Egyptian cat", "tiger cat", "tabby"}
    assert tables[1].value["ImageNet class"][0] == "espresso"
    charts = uploaded.get("vega_lite_chart")
    assert len(charts) == 2
    spec = json.loads(charts[0].proto.spec)
    assert "layer" in spec  # bars plus the dashed threshold rule


def test_grad_cam_caption_and_what_the_network_sees(uploaded):
    """The heatmap names the breed it explains, and the expander shows the 224x224 input."""
    captions = " ".join(caption.value for caption in uploaded.caption)
    assert "Grad-CAM for **" in captions
    assert "The 224x224 input" in captions and "(p - 127) / 128" in captions
    assert len(uploaded.expander) >= 2


def test_opacity_slider_reruns_without_reclassifying(uploaded):
    """Moving the opacity slider redraws the same verdicts (the analysis is cached)."""
    uploaded.slider[0].set_value(0.9).run()
    assert not uploaded.exception
    assert [header.value for header in uploaded.subheader] == ["chelsea.jpg: CAT", "coffee.jpg: NEITHER"]


def test_example_photos_toggle():
    """The example-photos switch classifies the three shipped examples: a cat and two dogs."""
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.toggle(key="examples").set_value(True).run()
    assert not at.exception
    assert [header.value for header in at.subheader] == [
        "cat_chelsea.jpg: CAT",
        "dog_and_person_darknet.jpg: DOG",
        "dog_darknet.jpg: DOG",
    ]


def test_camera_appears_only_when_asked():
    """The camera input (which asks the browser for permission) is drawn only after the switch."""
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert len(at.camera_input) == 0
    at.toggle(key="camera_on").set_value(True).run()
    assert len(at.camera_input) == 1


def test_page_without_photos_does_not_import_tensorflow():
    """Opening the page without a photo leaves TensorFlow unimported (a fresh process)."""
    code = (
        "import json, sys; from streamlit.testing.v1 import AppTest;"
        f"at = AppTest.from_file({PAGE!r}, default_timeout=60).run();"
        "print(json.dumps([bool(at.exception), 'tensorflow' in sys.modules]))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, timeout=120
    ).stdout
    assert json.loads(output.strip().splitlines()[-1]) == [False, False]


def test_a_large_png_is_kept_at_display_size_in_the_shared_cache():
    """A 3200x2400 PNG (23 MB decoded; PNGs decode at full size) is shown and reported at its
    size, but the analysis every session shares keeps the image at about half a megapixel."""
    from core.cache import ByteBoundedCache, fingerprint
    from core.catdog.classify import DISPLAY_PIXELS

    rows, cols = np.mgrid[0:2400, 0:3200]
    picture = np.stack([cols * 255 // 3199, rows * 255 // 2399, np.full_like(rows, 90)], axis=2).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG", compress_level=1)
    data = buffer.getvalue()
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.file_uploader[0].upload("poster.png", data, "image/png")
    at.run()
    assert not at.exception and not at.error
    assert at.subheader[0].value.startswith("poster.png: ")
    assert any("Decoded at 3200x2400" in caption.value for caption in at.caption)
    (cache,) = [cache for cache in ByteBoundedCache.live_caches() if cache.name == "cat-or-dog analyses"]
    kept = cache.get(fingerprint(data))
    height, width = kept.image.shape[:2]
    assert width * height <= DISPLAY_PIXELS and (width, height) == (836, 627)
    assert cache.sizes()[fingerprint(data)] < 2.5 * 2**20 < picture.nbytes / 8  # 1.6 MB image, 0.25 MB features
    assert cache.bytes_held <= cache.max_bytes


def odd_png(width: int, height: int) -> bytes:
    pixels = np.random.default_rng(width * 7 + height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


ODD_SIZES = [(8000, 2), (2, 8000), (1, 1), (3, 3), (2, 1), (100000, 1)]


def test_very_flat_tall_or_tiny_photos_each_get_a_card():
    """8000x2, 2x8000, 1x1, 3x3, 2x1 and 100000x1 uploads each get a verdict and both pictures,
    and the cat uploaded after them still gets its own."""
    at = AppTest.from_file(PAGE, default_timeout=240).run()
    uploader = at.file_uploader[0]
    for width, height in ODD_SIZES:
        uploader.upload(f"{width}x{height}.png", odd_png(width, height), "image/png")
    uploader.upload("chelsea.jpg", photo("cat_chelsea.jpg"), "image/jpeg")
    at.run()
    assert not at.exception and not at.error
    titles = [header.value.rsplit(":", 1)[0] for header in at.subheader]
    assert titles == [f"{width}x{height}.png" for width, height in ODD_SIZES] + ["chelsea.jpg"]
    assert at.subheader[-1].value == "chelsea.jpg: CAT"
    captions = " ".join(caption.value for caption in at.caption)
    for width, height in ODD_SIZES:
        assert f"Decoded at {width}x{height}; the yellow square is kept." in captions
    # Per card: the heatmap overlay, the outlined photo and the 224x224 input.
    assert len(at.get("image")) == 3 * (len(ODD_SIZES) + 1)
