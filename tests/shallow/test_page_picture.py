"""Try a trained run on your own picture (AppTest): the saved run's and the finished live run's section.

One tiny run is trained in the page's own queue (a temporary `EXPLORER_DATA_DIR`); the page is then
opened on it as a live job (`?job=`) and as a saved run (`?run=`), and photos are uploaded.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from core.data import CLASS_NAMES
from core.labs import ROOT
from core.shallow.config import TrainingConfig
from core.shallow.jobs import default_queue
from core.shallow.picture import prepare_picture

PAGE = str(ROOT / "pages" / "shallow" / "lab.py")
TINY = TrainingConfig(hidden_units=(8,), dropout=0.5, learning_rate=3e-3, train_limit=1000, batch_size=50, epochs=2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished tiny run of the page's queue: (job id, run id, model path)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPLORER_DATA_DIR", str(tmp_path_factory.mktemp("picture-runs")))
        queue = default_queue()
        for job in queue.active():
            queue.cancel(job.id)
        queue.store = None
        job = queue.submit(TINY)
        progress = job.wait(300)
        assert progress.status == "finished", progress.error
        yield job.id, progress.run_id, queue.store.get_run(progress.run_id).model_path


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def trouser_photo() -> bytes:
    """Dark trousers (two legs) on a white background, as a product photo."""
    image = Image.new("RGB", (240, 400), "white")
    draw = ImageDraw.Draw(image)
    draw.polygon([(60, 30), (180, 30), (200, 370), (135, 370), (120, 120), (105, 370), (40, 370)], fill=(30, 30, 60))
    return png(np.asarray(image))


def keras_probabilities(model_path: str, image: np.ndarray) -> np.ndarray:
    """Keras' own answer for one 28 x 28 picture: the reference for the page's numpy network."""
    import keras

    model = keras.models.load_model(model_path)
    return model.predict(image[None, :, :, None].astype(np.float32) / 255, verbose=0)[0]


def open_page(**query) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params.update(query)
    return at.run()


def saved_run_page(run_id: int) -> AppTest:
    at = open_page(run=str(run_id))
    at.session_state["sn_tab"] = "Saved runs"
    return at.run()


def chart_frame(at: AppTest):
    """The data of the page's last chart (the bar chart of the class probabilities)."""
    from streamlit import dataframe_util

    chart = at.get("vega_lite_chart")[-1].proto
    return dataframe_util.convert_arrow_bytes_to_pandas_df(chart.datasets[0].data.data)


def verdict(at: AppTest) -> str:
    return next(block.value for block in at.markdown if block.value.startswith("The network says"))


def test_a_saved_runs_section_prepares_the_photo_and_gives_keras_probabilities(trained):
    """Under a saved run: the upload's seven steps shown small, then the class Keras' model gives the same picture."""
    _, run_id, model_path = trained
    at = saved_run_page(run_id)
    assert not at.exception
    assert "Try it on your own picture" in [header.value for header in at.subheader]
    at.file_uploader(key="sn_saved_picture_upload").set_value(("trousers.png", trouser_photo(), "image/png")).run()
    assert not at.exception
    captions = [image.captions for image in at.get("image")][-1]
    assert captions[0] == "1. Your photo" and captions[-1] == "7. Grayscale" and len(captions) == 7
    assert any("was negated" in caption.value for caption in at.caption)
    expected = keras_probabilities(model_path, prepare_picture(trouser_photo()).image)
    best = int(expected.argmax())
    assert verdict(at) == f"The network says **{CLASS_NAMES[best]}** ({expected[best]:.1%})."
    chart = chart_frame(at)
    assert list(chart["class"]) == list(CLASS_NAMES)
    np.testing.assert_allclose(chart["probability"], expected, rtol=1e-4, atol=1e-6)


def test_a_bad_upload_gets_the_loaders_message_and_the_run_stays_shown(trained):
    """A file that is not an image shows the shared loader's message; the run's results stay on the page."""
    _, run_id, _ = trained
    at = saved_run_page(run_id)
    at.file_uploader(key="sn_saved_picture_upload").set_value(("shirt.jpg", b"not really a JPEG", "image/jpeg"))
    at.run()
    assert not at.exception
    assert [error.value for error in at.error] == [
        "The image is not an image file we can read. Use a PNG, JPEG, GIF, BMP, TIFF or WebP file."
    ]
    assert any(metric.label == "Test accuracy" for metric in at.metric)
    assert not any(block.value.startswith("The network says") for block in at.markdown)


def test_the_finished_live_run_has_the_section_too(trained):
    """Following the finished job (`?job=`), the section sits under its results and classifies a light-on-dark picture."""
    job_id, _, model_path = trained
    at = open_page(job=job_id)
    assert not at.exception
    assert "Try it on your own picture" in [header.value for header in at.subheader]
    # A real Fashion-MNIST test image (already light on dark), as a 10x larger photo.
    from core.data import load_fashion_mnist

    image = load_fashion_mnist()[1][0][0]
    photo = png(np.stack([np.kron(image, np.ones((10, 10), np.uint8))] * 3, axis=2))
    at.file_uploader(key="sn_job_picture_upload").set_value(("boot.png", photo, "image/png")).run()
    assert not at.exception
    assert any("was not negated" in caption.value for caption in at.caption)
    expected = keras_probabilities(model_path, prepare_picture(photo).image)
    assert verdict(at).startswith(f"The network says **{CLASS_NAMES[int(expected.argmax())]}**")


def test_camera_is_offered_beside_upload(trained):
    """The section offers Upload and Camera; Camera shows the camera input."""
    _, run_id, _ = trained
    at = saved_run_page(run_id)
    at.segmented_control(key="sn_saved_picture_source").set_value("Camera").run()
    assert not at.exception
    assert at.get("camera_input")
