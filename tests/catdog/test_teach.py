"""Teach your own: views, the feature cache, folds, heads, Grad-CAM, export/import, the command line."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.catdog import teach
from core.catdog.classify import Classifier
from core.images import ImageError

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ROOT / "tests" / "data" / "catdog"


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier()


def jpeg(image: np.ndarray | Image.Image) -> bytes:
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def variants(name: str, count: int) -> list[bytes]:
    """`count` different photos made from one shipped photo: shifted crops, mirrored, brighter."""
    photo = Image.open(PHOTOS / name).convert("RGB")
    width, height = photo.size
    made = []
    for index in range(count):
        shift = 0.03 * index
        box = (int(width * shift), int(height * shift / 2), int(width * (0.8 + shift / 2)), height)
        picture = photo.crop(box)
        if index % 2:
            picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        pixels = np.clip(np.asarray(picture, np.int16) + 6 * index, 0, 255).astype(np.uint8)
        made.append(jpeg(pixels))
    return made


def separable_features(per_class: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features where class k lights up channels 10k..10k+9 far above the noise, with 4 noisy views."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), per_class)
    features = rng.uniform(0.0, 0.3, (len(labels), len(teach.VIEWS), teach.FEATURES)).astype(np.float32)
    for photo, label in enumerate(labels):
        features[photo, :, 10 * label : 10 * label + 10] += 3.0
    return features, labels


def test_folds_counted_by_hand():
    """Five photos of class 0 and three of class 1 in 3 folds: class 0 dealt to folds 0,1,2,0,1,
    class 1 then to 2,0,1, so the folds hold 3, 3 and 2 photos with both classes in each."""
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    folds = teach.stratified_folds(labels, 3, seed=4)
    assert sorted(np.concatenate(folds).tolist()) == list(range(8))
    assert [len(fold) for fold in folds] == [3, 3, 2]
    assert [np.bincount(labels[fold], minlength=2).tolist() for fold in folds] == [[2, 1], [2, 1], [1, 1]]
    assert teach.fold_count(labels) == 3
    assert teach.fold_count(np.array([0] * 9 + [1] * 7)) == 5
    assert teach.fold_count(np.array([0, 0, 1])) == 0
    with pytest.raises(teach.TeachError, match="at least 3 photos in every class"):
        teach.stratified_folds(np.array([0, 0, 0, 1, 1]), 3)


def test_head_on_separable_features_reaches_full_accuracy():
    """A linear head and one with a hidden layer both get every held-out photo right on separable features."""
    features, labels = separable_features(6, 3)
    for config in (teach.HeadConfig(epochs=40), teach.HeadConfig(hidden_units=32, epochs=40)):
        training = teach.train(features, labels, ["a", "b", "c"], config)
        assert training.evaluation.folds == 5
        assert training.evaluation.accuracy == 1.0
        assert training.evaluation.confusion.tolist() == [[6, 0, 0], [0, 6, 0], [0, 0, 6]]
        assert training.loss[-1] < training.loss[0] / 5
        assert len(training.loss) == 40 and len(training.accuracy) == 40


def test_held_out_photos_never_train_their_fold():
    """Random labels on random features stay near chance under cross-validation (no view leaks
    across folds), although the final head fits them."""
    rng = np.random.default_rng(1)
    photos = rng.uniform(0, 1, (40, 1, teach.FEATURES))
    # A photo's views are near copies of each other, so a held-out photo whose views trained
    # its own fold would be recognised almost every time.
    features = (photos + rng.normal(0, 0.01, (40, len(teach.VIEWS), teach.FEATURES))).astype(np.float32)
    labels = rng.permutation(np.repeat([0, 1], 20))
    training = teach.train(features, labels, ["x", "y"], teach.HeadConfig(epochs=60, dropout_rate=0.0))
    assert training.accuracy[-1] > 0.95
    assert training.evaluation.accuracy < 0.8


def test_numpy_head_matches_keras():
    """The numpy head gives the Keras head's probabilities for the same weights, with a hidden layer too."""
    features, labels = separable_features(4, 2)
    pooled = features[:, 0]
    for hidden in (0, 16):
        config = teach.HeadConfig(hidden_units=hidden, epochs=10)
        head = teach.train(features, labels, ["p", "q"], config).head
        model = teach.build_head(2, config)
        model.set_weights(list(head.weights))
        expected = np.asarray(model.predict_on_batch(pooled))
        np.testing.assert_allclose(head.probabilities(pooled), expected, rtol=1e-5, atol=1e-6)


def test_grad_cam_is_the_gradient_of_the_class_logit():
    """Grad-CAM's weights equal TensorFlow's gradient of the head's logit through the pooling,
    for a linear head and for a ReLU hidden layer."""
    import tensorflow as tf

    rng = np.random.default_rng(2)
    feature_map = rng.uniform(0, 2, (7, 7, teach.FEATURES)).astype(np.float32)
    for hidden in (0, 8):
        shapes = [(teach.FEATURES, 3), (3,)] if not hidden else [(teach.FEATURES, 8), (8,), (8, 3), (3,)]
        weights = tuple(rng.normal(0, 0.1, shape).astype(np.float32) for shape in shapes)
        head = teach.Head(("a", "b", "c"), weights, teach.HeadConfig(hidden_units=hidden))
        maps = tf.Variable(feature_map)
        with tf.GradientTape() as tape:
            tensor = tf.reduce_mean(maps, axis=(0, 1))[None]
            if hidden:
                tensor = tf.nn.relu(tensor @ weights[0] + weights[1])
            logit = (tensor @ weights[-2] + weights[-1])[0, 1]
        gradient = tape.gradient(logit, maps).numpy()
        alphas = gradient.mean(axis=(0, 1))
        expected = np.maximum(feature_map @ alphas, 0)
        expected = expected / expected.max()
        np.testing.assert_allclose(head.grad_cam(feature_map, 1), expected, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(head.class_gradient(feature_map.mean(axis=(0, 1)), 1) / 49, alphas, atol=1e-7)


def test_mirror_view_is_the_mirrored_photo(classifier):
    """The mirror view of a photo has the features of the mirrored photo's centre view, and differs
    from the photo's own centre view (the network is not mirror-symmetric)."""
    photo = np.asarray(Image.open(PHOTOS / "dog_darknet.jpg").convert("RGB"))
    png = io.BytesIO()
    Image.fromarray(photo).save(png, "PNG")
    mirrored = io.BytesIO()
    Image.fromarray(photo[:, ::-1].copy()).save(mirrored, "PNG")
    original, flipped = teach.embed_photos(classifier, [("a.png", png.getvalue()), ("b.png", mirrored.getvalue())])
    np.testing.assert_allclose(original.features[1], flipped.features[0], rtol=0.02, atol=0.02)
    assert (
        np.abs(original.features[0] - original.features[1]).mean()
        > 10 * np.abs(original.features[1] - flipped.features[0]).mean()
    )
    assert original.features.shape == (len(teach.VIEWS), teach.FEATURES)


def test_centre_view_is_the_verdicts_input(classifier):
    """The centre view's features are the mean of the feature map the cat-or-dog verdict uses."""
    data = (PHOTOS / "cat_chelsea.jpg").read_bytes()
    embedded = teach.embed_photos(classifier, [("cat.jpg", data)])[0]
    feature_map = classifier.analyse(data).prediction.features
    np.testing.assert_allclose(embedded.features[0], feature_map.mean(axis=(0, 1)), rtol=1e-4, atol=1e-4)


def test_each_photo_is_embedded_once(classifier, monkeypatch):
    """A cache keyed by content hash: the same bytes twice (under two names) and again later run the network once."""
    calls = []
    real_run = classifier.run
    monkeypatch.setattr(classifier, "run", lambda pixels: calls.append(len(pixels)) or real_run(pixels))
    data = (PHOTOS / "other_coffee.jpg").read_bytes()
    cache: dict = {}
    first = teach.embed_photos(classifier, [("one.jpg", data), ("two.jpg", data)], cache)
    again = teach.embed_photos(classifier, [("three.jpg", data)], cache)
    assert calls == [len(teach.VIEWS)]
    assert first[0] is first[1] is again[0]
    assert list(cache) == [teach.content_hash(data)]


def test_bad_photos_get_the_labs_messages(classifier):
    """An unreadable upload gives the shared loader's message naming it; the good photo is still embedded."""
    good = (PHOTOS / "cat_chelsea.jpg").read_bytes()
    results = teach.embed_photos(classifier, [("notes.png", b"just text"), ("cat.jpg", good)])
    assert isinstance(results[0], ImageError)
    assert "'notes.png' is not an image file we can read" in str(results[0])
    assert isinstance(results[1], teach.Embedded)


def test_learning_curve_on_separable_features():
    """One row per photos-per-class up to the smallest class minus one; separable classes are learnt from one."""
    features, labels = separable_features(5, 2)
    rows = teach.learning_curve(features, labels, 2, teach.HeadConfig(epochs=30), repeats=2)
    assert [row["photos_per_class"] for row in rows] == [1, 2, 3, 4]
    assert [row["held_out"] for row in rows] == [8, 6, 4, 2]
    assert all(row["accuracy"] == 1.0 for row in rows)
    assert teach.learning_curve(features[:6], np.array([0, 0, 0, 0, 0, 1]), 2) == []
    assert teach.curve_sizes(20) == [1, 2, 3, 4, 7, 10, 17, 19]
    assert teach.curve_sizes(2) == [1] and teach.curve_sizes(1) == []


def test_names_and_config_are_checked():
    """Class names and head settings are validated with messages a user can act on."""
    assert teach.check_class_names([" cat ", "dog"]) == ["cat", "dog"]
    with pytest.raises(teach.TeachError, match="2 to 8 classes"):
        teach.check_class_names(["cat"])
    with pytest.raises(teach.TeachError, match="used twice"):
        teach.check_class_names(["Cat", "cat"])
    with pytest.raises(teach.TeachError, match="must be 1 to 30"):
        teach.check_class_names(["cat", "<dog>"])
    with pytest.raises(ValueError, match="dropout_rate"):
        teach.HeadConfig(dropout_rate=1.5)
    with pytest.raises(teach.TeachError, match="Add at least one photo to dog"):
        teach.train(np.zeros((2, 4, teach.FEATURES), np.float32), np.array([0, 0]), ["cat", "dog"])
    assert teach.few_photo_classes({"cat": 4, "dog": 5}) == ["cat"]


def test_export_and_import(classifier):
    """The exported .keras maps pixels to the head's probabilities for the same photo; importing it gives the head back."""
    import keras

    features, labels = separable_features(3, 3)
    head = teach.train(features, labels, ["ant", "bee", "cow"], teach.HeadConfig(hidden_units=8, epochs=10)).head
    data = teach.export_model(classifier, head)
    imported = teach.import_model(data)
    assert imported.class_names == ("ant", "bee", "cow") and imported.config.hidden_units == 8
    for mine, theirs in zip(head.weights, imported.weights, strict=True):
        np.testing.assert_array_equal(mine, theirs)

    pixels = teach.load_for_network(PHOTOS / "dog_darknet.jpg")[1].pixels[None].astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "exported.keras"
        path.write_bytes(data)
        model = keras.saving.load_model(path, compile=False, custom_objects={"ClassNames": teach._class_names_layer()})
    expected = head.probabilities(classifier.run(pixels)[0].mean(axis=(1, 2)))
    np.testing.assert_allclose(np.asarray(model.predict_on_batch(pixels)), expected, rtol=1e-4, atol=1e-5)

    with pytest.raises(teach.TeachError, match="not a .keras file"):
        teach.import_model(b"hello", "notes.txt")
    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(teach.TeachError, match="could not be loaded"):
        teach.import_model(plain.getvalue(), "odd.keras")


def test_judge_gives_taught_class_and_imagenet_verdict(classifier):
    """A head taught cat photos against coffee photos calls Chelsea a cat, beside ImageNet's own verdict."""
    photos = [(f"cat{i}.jpg", data) for i, data in enumerate(variants("cat_chelsea.jpg", 5))]
    photos += [(f"cup{i}.jpg", data) for i, data in enumerate(variants("other_coffee.jpg", 5))]
    embedded = teach.embed_photos(classifier, photos)
    training = teach.train(np.stack([item.features for item in embedded]), np.repeat([0, 1], 5), ["kitty", "cup"])
    assert training.evaluation.accuracy == 1.0
    verdict = teach.judge(classifier, training.head, PHOTOS / "cat_chelsea.jpg")
    assert verdict.label == "kitty" and verdict.probabilities["kitty"] > 0.9
    assert verdict.analysis.prediction.label == "cat"
    assert verdict.heatmap.shape == (7, 7) and verdict.heatmap.max() == pytest.approx(1.0)


def run_cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core.catdog.teach", *arguments],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip


def test_command_line_train_and_predict(tmp_path):
    """train prints the cross-validated accuracy as JSON and writes the model; predict prints one
    line per file, an error line for a broken one, and exits 1 because of it."""
    for name, source in (("cats", "cat_chelsea.jpg"), ("cups", "other_coffee.jpg")):
        folder = tmp_path / name
        folder.mkdir()
        for index, data in enumerate(variants(source, 4)):
            (folder / f"{index}.jpg").write_bytes(data)
    model = tmp_path / "mine.keras"
    trained = run_cli("train", "--class", f"cat={tmp_path / 'cats'}", "--class", f"cup={tmp_path / 'cups'}",
                      "--out", str(model), "--epochs", "40", "--json")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout.strip().splitlines()[-1])
    assert summary["cv_accuracy"] == 1.0 and summary["folds"] == 4
    assert summary["photos"] == {"cat": 4, "cup": 4} and summary["confusion"] == [[4, 0], [0, 4]]
    assert model.is_file()

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    predicted = run_cli("predict", "--model", str(model), str(PHOTOS / "cat_chelsea.jpg"), str(broken), "--json")
    assert predicted.returncode == 1
    lines = [json.loads(line) for line in predicted.stdout.strip().splitlines()]
    assert lines[0]["label"] == "cat" and set(lines[0]["probabilities"]) == {"cat", "cup"}
    assert lines[0]["probabilities"]["cat"] > 0.9
    assert lines[1]["path"] == str(broken) and "damaged" in lines[1]["error"]

    good = run_cli("predict", "--model", str(model), str(PHOTOS / "other_coffee.jpg"), "--json")
    assert good.returncode == 0 and json.loads(good.stdout)["label"] == "cup"
    missing = run_cli("predict", "--model", str(tmp_path / "none.keras"), str(broken))
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    one_class = run_cli("train", "--class", f"cat={tmp_path / 'cats'}", "--out", str(tmp_path / "x.keras"))
    assert one_class.returncode == 1 and "2 to 8 classes" in one_class.stderr
