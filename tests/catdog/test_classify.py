"""core.catdog.classify: the ported network against PyTorch, known photos, Grad-CAM and the command line."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.catdog import classify
from core.catdog.classify import (
    CAT_CLASSES,
    DISPLAY_PIXELS,
    DOG_CLASSES,
    Analysis,
    Classifier,
    centre_box,
    class_names,
    crop_for_display,
    load_for_network,
    outline_crop,
    overlay,
    prepare,
    softmax,
    stem_filters,
    verdict,
)
from core.images import ImageError, load_image

PHOTOS = Path(__file__).resolve().parents[1] / "data" / "catdog"
ROOT = Path(__file__).resolve().parents[2]

# The photos we ship (licences in tests/data/catdog/LICENSES.md) and what a person sees in them.
EXPECTED_LABELS = {
    "cat_chelsea.jpg": "cat",
    "dog_darknet.jpg": "dog",
    "dog_and_person_darknet.jpg": "dog",
    "other_coffee.jpg": "neither",
    "other_eagle_darknet.jpg": "neither",
    "other_giraffe_darknet.jpg": "neither",
    "other_rocket.jpg": "neither",
}


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier()


@pytest.fixture(scope="module")
def predictions(classifier):
    prepared = [load_for_network(PHOTOS / name)[1] for name in EXPECTED_LABELS]
    return dict(zip(EXPECTED_LABELS, classifier.predict(prepared), strict=True))


def test_logits_match_pytorch_reference(classifier):
    """On 4 photos and a noise image, our logits equal torch's (recorded once) to 1e-3."""
    reference = np.load(PHOTOS / "reference_logits.npz")
    _features, logits = classifier.run(reference["pixels"])
    np.testing.assert_allclose(logits, reference["logits"], atol=1e-3)
    np.testing.assert_allclose(softmax(logits), softmax(reference["logits"]), atol=1e-5)
    assert (logits.argmax(axis=1) == reference["logits"].argmax(axis=1)).all()


def test_known_photos_top1(predictions):
    """Known photos get the ImageNet class a person would name (ImageNet has no giraffe class)."""
    top1 = {name: prediction.top5[0][0] for name, prediction in predictions.items()}
    assert top1["cat_chelsea.jpg"] in {"tabby", "tiger cat", "Egyptian cat"}
    assert top1["dog_darknet.jpg"] in {"malamute", "German shepherd", "Siberian husky", "Eskimo dog"}
    assert top1["other_coffee.jpg"] == "espresso"
    assert top1["other_rocket.jpg"] in {"missile", "projectile", "space shuttle"}
    assert top1["other_eagle_darknet.jpg"] in {"kite", "bald eagle"}  # kite: the bird, class 21


def test_verdicts_on_known_photos(predictions):
    """Every shipped photo gets the verdict a person would give, with a wide margin."""
    for name, expected in EXPECTED_LABELS.items():
        prediction = predictions[name]
        assert prediction.label == expected, (name, prediction.p_cat, prediction.p_dog)
        if expected == "neither":
            assert max(prediction.p_cat, prediction.p_dog) < 0.1, name
        else:
            assert max(prediction.p_cat, prediction.p_dog) > 0.75, name


def test_prediction_fields_are_consistent(predictions):
    """top5 is sorted, sums to at most 1, and P(cat)/P(dog) are the class-range sums."""
    prediction = predictions["cat_chelsea.jpg"]
    probabilities = [p for _name, p in prediction.top5]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0
    assert prediction.p_cat == pytest.approx(prediction.probabilities[281:286].sum())
    assert prediction.explained_class in CAT_CLASSES
    assert predictions["dog_darknet.jpg"].explained_class in DOG_CLASSES
    assert predictions["other_coffee.jpg"].explained_class == 967  # espresso, the top-1


def test_verdict_threshold_and_ranges():
    """The verdict sums classes 281-285 and 151-268 and needs THRESHOLD for cat or dog."""
    probabilities = np.zeros(1000)
    probabilities[[281, 285]] = 0.3  # two cat classes: P(cat) 0.6
    probabilities[151] = 0.2
    assert verdict(probabilities) == ("cat", pytest.approx(0.6), pytest.approx(0.2))
    probabilities = np.zeros(1000)
    probabilities[[151, 268]] = 0.25  # first and last dog class
    assert verdict(probabilities)[0] == "dog"
    probabilities = np.zeros(1000)
    probabilities[[280, 286, 150, 269]] = 0.24  # the neighbours: fox, cougar, hyena-less edges
    assert verdict(probabilities) == ("neither", 0.0, 0.0)
    probabilities = np.zeros(1000)
    probabilities[281], probabilities[151] = 0.45, 0.45
    assert verdict(probabilities)[0] == "neither"
    assert verdict(probabilities, threshold=0.4)[0] == "cat"


def test_class_names_in_standard_order():
    """The 1000 names from Debian's darknet lists land in the standard ImageNet index order."""
    names = class_names()
    assert len(names) == 1000
    assert (names[0], names[1], names[999]) == ("tench", "goldfish", "toilet tissue")
    assert names[151] == "Chihuahua" and names[268] == "Mexican hairless"
    assert names[281:286] == ["tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"]
    assert names[967] == "espresso"


def test_centre_crop_geometry():
    """A 4000x3000 photo keeps its centre 2625x2625 square (224/256 of the short side)."""
    assert centre_box(4000, 3000) == (687.5, 187.5, 3312.5, 2812.5)
    image = np.zeros((300, 400, 3), np.uint8)
    image[:, 200:] = 255  # right half white
    prepared = prepare(image)
    assert prepared.pixels.shape == (224, 224, 3) and prepared.pixels.dtype == np.uint8
    assert prepared.pixels[:, :100].max() == 0 and prepared.pixels[:, 124:].min() == 255
    with pytest.raises(ValueError, match="uint8 RGB"):
        prepare(np.zeros((10, 10), np.uint8))


def _jpeg(width: int, height: int, orientation: int | None = None) -> bytes:
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    image.save(buffer, "JPEG", quality=80, exif=exif.tobytes())
    return buffer.getvalue()


def test_big_jpegs_decode_at_reduced_scale_upright():
    """A 4000x3000 JPEG decodes at 1000x750 (DCT scaling); EXIF rotation still applies."""
    image, prepared = load_for_network(_jpeg(4000, 3000))
    assert image.shape == (750, 1000, 3)
    rotated, _ = load_for_network(_jpeg(4000, 3000, orientation=6))
    assert rotated.shape == (1000, 750, 3)
    assert load_image(_jpeg(4000, 3000)).shape == (3000, 4000, 3)  # the default is unchanged
    assert prepared.decoded_size == (1000, 750)


def test_broken_input_raises_image_error():
    """Garbage and truncated JPEGs raise the loader's ImageError, with a message."""
    with pytest.raises(ImageError, match="not an image"):
        load_for_network(b"definitely not an image")
    with pytest.raises(ImageError, match="truncated|damaged"):
        load_for_network(_jpeg(300, 200)[:600])


def test_grad_cam_equals_tensorflow_gradients(classifier, predictions):
    """The closed-form Grad-CAM equals Grad-CAM from TensorFlow's GradientTape."""
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the reference gradient uses TensorFlow's GradientTape")
    import tensorflow as tf

    prediction = predictions["dog_darknet.jpg"]
    pixels = load_for_network(PHOTOS / "dog_darknet.jpg")[1].pixels[None].astype(np.float32)
    with tf.GradientTape() as tape:
        features, logits = classifier._features_and_logits([pixels], training=False)
        score = logits[0, prediction.explained_class]
    gradients = tape.gradient(score, features)[0].numpy()
    alphas = gradients.mean(axis=(0, 1))
    reference = np.maximum(features[0].numpy() @ alphas, 0)
    reference /= reference.max()
    np.testing.assert_allclose(classifier.grad_cam(prediction), reference, atol=1e-4)


def test_grad_cam_finds_the_dog(classifier, predictions):
    """In darknet's dog photo (dog left, bicycle right) the dog-class heatmap lies on the dog."""
    heatmap = classifier.grad_cam(predictions["dog_darknet.jpg"])
    assert heatmap.shape == (7, 7) and heatmap.min() >= 0 and heatmap.max() == pytest.approx(1)
    assert heatmap[:, :3].sum() > 3 * heatmap[:, 4:].sum()


def test_grad_cam_shows_a_dog_verdict_for_the_wrong_reason(classifier, predictions):
    """A person, a small dog cut by the crop (left) and a white horse (right): the "Great
    Pyrenees" verdict comes from the white horse, which Grad-CAM shows on the right."""
    prediction = predictions["dog_and_person_darknet.jpg"]
    assert prediction.top5[0][0] == "Great Pyrenees"
    heatmap = classifier.grad_cam(prediction)
    assert heatmap[:, 4:].sum() > 2 * heatmap[:, :3].sum()


def test_overlay_blends_by_opacity():
    """Opacity 0 gives the photo, 1 the colour map; out-of-range opacity raises."""
    image = np.full((20, 30, 3), 100, np.uint8)
    heatmap = np.zeros((7, 7), np.float32)
    np.testing.assert_array_equal(overlay(image, heatmap, 0.0), image)
    assert overlay(image, heatmap, 1.0).max() <= 4  # the ramp starts near black
    assert overlay(image, np.ones((7, 7)), 1.0).mean() > 200  # and ends near white-yellow
    with pytest.raises(ValueError, match="opacity"):
        overlay(image, heatmap, 1.5)


def test_outline_crop_dims_what_the_network_never_sees():
    """Outside the crop the picture is dimmed, inside it is unchanged, with a yellow frame."""
    image = np.full((100, 200, 3), 200, np.uint8)
    outlined = outline_crop(image, centre_box(200, 100))  # (56.25, 6.25, 143.75, 93.75)
    assert outlined[50, 10].tolist() == [90, 90, 90]
    assert outlined[50, 100].tolist() == [200, 200, 200]
    assert outlined[50, 56].tolist() == [255, 215, 0]


def test_reduced_analysis_keeps_what_the_page_shows_at_display_size():
    """A 2400x1600 decode is kept at about half a megapixel, the crop box scaled with it, so the
    448x448 crop the page shows matches the full-size crop and the outline sits in the same place."""
    rows, cols = np.mgrid[0:1600, 0:2400]
    image = np.stack([cols * 255 // 2399, rows * 255 // 1599, (rows + cols) * 255 // 3998], axis=2).astype(np.uint8)
    prepared = prepare(image)
    full = Analysis(image, prepared, prediction=None, heatmap=np.ones((7, 7), np.float32))
    small = full.reduced()
    height, width = small.image.shape[:2]
    assert width * height <= DISPLAY_PIXELS and width * height > 0.99 * DISPLAY_PIXELS
    assert abs(width / height - 1.5) < 0.01
    assert small.prepared.pixels is prepared.pixels and small.heatmap is full.heatmap
    assert small.prepared.decoded_size == (2400, 1600)  # what the file was decoded at, for the caption
    scale = width / 2400
    assert np.allclose(small.prepared.box, np.array(prepared.box) * [scale, height / 1600, scale, height / 1600])
    shown_full = crop_for_display(image, prepared.box).astype(int)
    shown_small = crop_for_display(small.image, small.prepared.box).astype(int)
    assert np.abs(shown_full - shown_small)[2:-2, 2:-2].max() <= 3
    outlined = outline_crop(small.image, small.prepared.box)
    left, top = (round(value) for value in small.prepared.box[:2])
    assert outlined[height // 2, left].tolist() == [255, 215, 0] and outlined[top, width // 2].tolist() == [255, 215, 0]
    tiny = Analysis(image[:500, :500], prepare(image[:500, :500]), None, full.heatmap)
    assert tiny.reduced() is tiny  # small enough already: nothing copied


def test_analyse_names_the_file_in_errors(classifier):
    """analyse() of an upload-like object gives the verdict, or an ImageError naming the file."""
    upload = io.BytesIO((PHOTOS / "other_coffee.jpg").read_bytes())
    result = classifier.analyse(upload)
    assert result.prediction.label == "neither" and result.heatmap.shape == (7, 7)
    assert result.prepared.pixels.shape == (224, 224, 3) and result.image.shape == (400, 600, 3)
    broken = io.BytesIO(b"GIF89a broken")
    broken.name = "holiday.gif"
    with pytest.raises(ImageError, match="'holiday.gif'"):
        classifier.analyse(broken)


def test_stem_filters_are_the_models_first_layer(classifier):
    """stem_filters() (numpy only) returns the loaded model's first-layer kernel, (3, 3, 3, 32)."""
    filters = stem_filters()
    assert filters.shape == (3, 3, 3, 32) and filters.dtype == np.float32
    np.testing.assert_array_equal(filters, classifier.model.get_layer("stem_conv").get_weights()[0])


def test_missing_model_says_how_to_build_it(tmp_path):
    """Without the ported file, the error names `make models`."""
    with pytest.raises(classify.ModelMissingError, match="make models"):
        Classifier(tmp_path / "absent.keras")


def test_cli_json_with_good_and_bad_files(tmp_path):
    """--json prints one object per file, errors for bad files, the rest still classified, exit 1."""
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    arguments = [str(PHOTOS / "cat_chelsea.jpg"), str(broken), str(empty), str(tmp_path / "missing.jpg")]
    arguments.append(str(PHOTOS / "other_coffee.jpg"))
    result = subprocess.run(
        [sys.executable, "-m", "core.catdog", *arguments, "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["path"] for line in lines] == arguments
    cat, bad, blank, missing, coffee = lines
    assert cat["label"] == "cat" and cat["p_cat"] > 0.75 and set(cat) == {"path", "label", "p_cat", "p_dog", "top5"}
    assert len(cat["top5"]) == 5 and all(isinstance(name, str) and 0 <= p <= 1 for name, p in cat["top5"])
    assert set(bad) == {"path", "error"} and "not an image" in bad["error"]
    assert "empty" in blank["error"] and "does not exist" in missing["error"]
    assert coffee["label"] == "neither" and coffee["top5"][0][0] == "espresso"


def test_cli_folder_all_good_exits_zero(tmp_path, capsys):
    """A folder is searched for images (other files ignored); all classified means exit 0."""
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    for name in ("dog_darknet.jpg", "other_rocket.jpg"):
        (folder / "nested" / name).write_bytes((PHOTOS / name).read_bytes())
    (folder / "notes.txt").write_text("not a photo")
    assert classify.main([str(folder)]) == 0
    output = capsys.readouterr().out
    assert "dog_darknet.jpg: DOG" in output and "other_rocket.jpg: NEITHER" in output
    assert "notes.txt" not in output and "2 classified, 0 failed" in output


def test_cli_empty_folder_is_an_error(tmp_path, capsys):
    """A folder without images exits 1 with a message instead of printing nothing."""
    assert classify.main([str(tmp_path)]) == 1
    assert "No image files" in capsys.readouterr().err


@pytest.mark.parametrize(("width", "height"), [(8000, 2), (2, 8000), (1, 1), (3, 3), (2, 1), (100000, 1)])
def test_outline_crop_handles_every_size_the_loader_accepts(width, height):
    """Very flat, very tall and one-pixel images get a frame of at least one pixel and a displayable size."""
    image = np.full((height, width, 3), 200, np.uint8)
    outlined = outline_crop(image, centre_box(width, height))
    assert max(outlined.shape[:2]) <= 1460 and max(outlined.shape[:2]) <= 8 * min(outlined.shape[:2])
    assert (outlined == np.array([255, 215, 0], np.uint8)).all(axis=-1).any()


def test_outline_crop_scales_a_big_photo_and_its_box_together():
    """A 2920x1460 photo is shown at 1460x730 with the centre square framed at half its coordinates."""
    image = np.full((1460, 2920, 3), 200, np.uint8)
    outlined = outline_crop(image, centre_box(2920, 1460))  # (821.25, 91.25, 2098.75, 1368.75)
    assert outlined.shape == (730, 1460, 3)
    assert outlined[365, 100].tolist() == [90, 90, 90]  # dimmed, left of the square
    assert outlined[365, 730].tolist() == [200, 200, 200]  # inside
    assert outlined[365, 411].tolist() == [255, 215, 0]  # the frame at 821.25 / 2
