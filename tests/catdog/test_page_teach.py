"""Teach your own through Streamlit's AppTest: photos per class, training, evaluation, use, export/import."""

from __future__ import annotations

import builtins
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "catdog" / "lab.py")
PHOTOS = ROOT / "tests" / "data" / "catdog"


def variants(name: str, count: int) -> list[bytes]:
    """`count` different JPEGs made from one shipped photo: shifted crops, some mirrored, brighter."""
    photo = Image.open(PHOTOS / name).convert("RGB")
    width, height = photo.size
    made = []
    for index in range(count):
        shift = 0.03 * index
        picture = photo.crop((int(width * shift), int(height * shift / 2), int(width * (0.8 + shift / 2)), height))
        if index % 2:
            picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        pixels = np.clip(np.asarray(picture, np.int16) + 6 * index, 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=95)
        made.append(buffer.getvalue())
    return made


def teach_mode() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.radio(key="catdog_mode").set_value("Teach your own").run()
    assert not at.exception
    return at


def upload(at: AppTest, index: int, files: list[tuple[str, bytes]]) -> AppTest:
    for name, data in files:
        at.file_uploader[index].upload(name, data, "image/jpeg")
    return at.run()


def wait_for(at: AppTest, condition, timeout: float = 180.0) -> AppTest:
    """Reruns the page (as its polling fragment would) until `condition(at)` holds."""
    deadline = time.monotonic() + timeout
    while not condition(at):
        assert time.monotonic() < deadline, "gave up waiting: " + " | ".join(m.value for m in at.markdown)
        time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception
    return at


def button(at: AppTest, label: str):
    return next(item for item in at.button if item.label == label)


def chart_rows(chart) -> list[dict]:
    """The rows a chart plots (Streamlit ships them as Arrow tables beside the spec)."""
    frames = [convert_arrow_bytes_to_pandas_df(dataset.data.data) for dataset in chart.proto.datasets]
    return [row for frame in frames for row in frame.to_dict("records")]


def has_metric(at: AppTest) -> bool:
    return any(metric.label.startswith("Cross-validated accuracy") for metric in at.metric)


@pytest.fixture(scope="module")
def trained() -> AppTest:
    """Five cat photos, five coffee photos in a class renamed "cup" (and a broken file), trained."""
    at = teach_mode()
    upload(at, 0, [(f"cat{i}.jpg", data) for i, data in enumerate(variants("cat_chelsea.jpg", 5))])
    at.text_input(key="teach_name_1").set_value("cup").run()
    upload(
        at,
        1,
        [(f"cup{i}.jpg", data) for i, data in enumerate(variants("other_coffee.jpg", 5))] + [("broken.jpg", b"junk")],
    )
    assert any("'broken.jpg' is not an image file we can read" in error.value for error in at.error)
    button(at, "Train").click().run()
    return wait_for(at, has_metric)


def test_page_offers_two_classes_and_every_way_to_add_photos():
    """Teach mode starts with "cat" and "dog", an uploader and a camera switch each, example photos, and Train disabled."""
    at = teach_mode()
    assert [field.value for field in at.text_input] == ["cat", "dog"]
    assert [uploader.label for uploader in at.file_uploader][:2] == ["Photos of cat", "Photos of dog"]
    assert [toggle.label for toggle in at.toggle][:2] == ["Camera", "Camera"]
    at.toggle(key="teach_camera_0").set_value(True).run()
    assert at.camera_input[0].label == "A photo of cat"
    assert button(at, "Train").disabled
    assert any("Privacy" in markdown.value for markdown in at.markdown)


def test_example_photos_thumbnails_remove_and_warning():
    """Example photos land in their class with a thumbnail each; Remove takes one away; few photos warn."""
    at = teach_mode()
    button(at, "Add the example photos of dog").click().run()
    assert "**2 photos**" in [markdown.value for markdown in at.markdown]
    assert any("Fewer than 5 photos in cat, dog" in warning.value for warning in at.warning)
    assert len(at.get("image")) == 2
    at.button(key=next(item.key for item in at.button if item.label == "Remove")).click().run()
    assert "**1 photo**" in [markdown.value for markdown in at.markdown]
    assert button(at, "Train").disabled  # cat has no photo yet


def test_classes_can_be_added_and_removed():
    """ "Add a class" adds a third card (up to eight); a class beyond two can be removed."""
    at = teach_mode()
    button(at, "Add a class").click().run()
    assert [field.value for field in at.text_input] == ["cat", "dog", "class 3"]
    for _ in range(5):
        button(at, "Add a class").click().run()
    assert len(at.text_input) == 8 and not any(item.label == "Add a class" for item in at.button)
    at.button(key="teach_drop_2").click().run()
    assert [field.value for field in at.text_input][:3] == ["cat", "dog", "class 4"]


def test_training_shows_accuracy_confusion_and_curves(trained):
    """Cross-validated accuracy over 5 folds (every photo right), a confusion matrix and training curves."""
    assert not trained.exception
    metric = next(metric for metric in trained.metric if metric.label.startswith("Cross-validated"))
    assert metric.label == "Cross-validated accuracy (5 folds)" and metric.value == "100.0%"
    confusion = next(chart for chart in trained.get("vega_lite_chart") if '"rect"' in chart.proto.spec)
    cells = {(row["true"], row["predicted"]): row["photos"] for row in chart_rows(confusion)}
    assert cells == {("cat", "cat"): 5, ("cat", "cup"): 0, ("cup", "cat"): 0, ("cup", "cup"): 5}
    assert not any("Fewer than 5 photos" in warning.value for warning in trained.warning)
    assert not any(markdown.value.startswith("**Misclassified") for markdown in trained.markdown)


def test_learning_curve(trained):
    """The "how many photos" button draws held-out accuracy for 1 to 4 photos per class."""
    button(trained, "How many photos do you need?").click().run()

    def has_curve(at):
        return any("photos_per_class" in chart.proto.spec for chart in at.get("vega_lite_chart"))

    wait_for(trained, has_curve)
    chart = next(chart for chart in trained.get("vega_lite_chart") if "photos_per_class" in chart.proto.spec)
    rows = chart_rows(chart)
    assert [row["photos_per_class"] for row in rows] == [1, 2, 3, 4]
    assert all(0.0 <= row["low"] <= row["accuracy"] <= row["high"] <= 1.0 for row in rows)


def test_classify_beside_imagenet_then_export_and_import(trained):
    """A new photo gets your class with Grad-CAM beside ImageNet's verdict; the exported model imports back."""
    at = trained
    index = next(i for i, uploader in enumerate(at.file_uploader) if uploader.label == "Photos to classify")
    upload(at, index, [("chelsea.jpg", (PHOTOS / "cat_chelsea.jpg").read_bytes()), ("notes.jpg", b"text")])
    assert "chelsea.jpg: cat" in [subheader.value for subheader in at.subheader]
    assert any("ImageNet's verdict: **CAT**" in markdown.value for markdown in at.markdown)
    assert any("Grad-CAM for **cat**" in caption.value for caption in at.caption)
    assert any("'notes.jpg' is not an image" in error.value for error in at.error)
    table = next(frame.value for frame in at.dataframe if "your class" in frame.value.columns)
    assert list(table["your class"]) == ["cat", "cup"] and table["probability"][0] > 0.9

    button(at, "Prepare the .keras file").click().run()
    exported = at.session_state["teach_export"]
    assert exported[:2] == b"PK" and len(at.get("download_button")) == 1
    fresh = teach_mode()
    index = next(i for i, uploader in enumerate(fresh.file_uploader) if uploader.label.startswith("Import"))
    fresh.file_uploader[index].upload("mine.keras", exported, "application/octet-stream")
    fresh.run()
    assert not fresh.exception
    assert any(caption.value == "Your classes: cat, cup." for caption in fresh.caption)
    fresh.file_uploader[index].upload("other.keras", b"not a model", "application/octet-stream")
    fresh.run()
    assert any("'other.keras' is not a .keras file" in error.value for error in fresh.error)


def test_photos_are_never_written(monkeypatch):
    """Embedding, training and judging open no file for writing (the photos stay in memory)."""
    from core.catdog import teach
    from core.catdog.classify import Classifier

    classifier = Classifier()
    real_open = builtins.open

    def read_only_open(file, mode="r", *args, **kwargs):
        if any(flag in mode for flag in "wax+"):
            raise AssertionError(f"{file} opened for writing")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", read_only_open)
    monkeypatch.setattr(io, "open", read_only_open)
    photos = [[(f"c{i}.jpg", data) for i, data in enumerate(variants("cat_chelsea.jpg", 2))],
              [(f"d{i}.jpg", data) for i, data in enumerate(variants("dog_darknet.jpg", 2))]]  # fmt: skip
    training, keys, labels = teach.embed_and_train(classifier, photos, ["cat", "dog"], teach.HeadConfig(epochs=20))
    teach.judge(classifier, training.head, photos[0][0][1])
    assert len(keys) == 4 and labels.tolist() == [0, 0, 1, 1]


def test_teach_mode_without_photos_does_not_import_tensorflow():
    """Switching to Teach your own and adding a photo leaves TensorFlow unimported until Train (a fresh process)."""
    code = (
        "import json, sys; from streamlit.testing.v1 import AppTest;"
        f"at = AppTest.from_file({PAGE!r}, default_timeout=60).run();"
        "at.radio(key='catdog_mode').set_value('Teach your own').run();"
        "at.button(key='teach_examples_0').click().run();"
        "print(json.dumps([bool(at.exception), len(at.get('image')), 'tensorflow' in sys.modules]))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, timeout=120
    ).stdout
    assert json.loads(output.strip().splitlines()[-1]) == [False, 1, False]
