"""The numpy network read from a saved `.keras` file against Keras' own forward pass."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import numpy as np
import pytest

from core.shallow.config import ACTIVATIONS, TrainingConfig, build_model
from core.shallow.network import Network, NetworkFileError, Shape, as_inputs, read_weights
from core.shallow.runs import RunStore

NETWORKS = {
    "article": {"architecture": "article", "hidden_units": (3,)},
    "article-deep": {"architecture": "article", "hidden_units": (3, 2)},
    "mlp": {"architecture": "mlp", "hidden_units": (6, 4)},
    "cnn": {"architecture": "cnn", "filters": 3, "kernel_size": 3, "conv_blocks": 1},
    "cnn-two-blocks": {"architecture": "cnn", "filters": 2, "kernel_size": 5, "conv_blocks": 2},
}


def real_images(count: int = 16) -> np.ndarray:
    """Real Fashion-MNIST test images, uint8 (count, 28, 28)."""
    from core.data import load_fashion_mnist

    _, (x_test, _) = load_fashion_mnist()
    return np.array(x_test[:count])


def settings_for(network: str, activation: str):
    values = dict(NETWORKS[network], activation=activation)
    return TrainingConfig(**values, dropout=0.3, train_limit=1000)


def scramble(model, seed: int = 0) -> None:
    """Random weights of every sign (biases, PReLU slopes too), so no term of the forward pass is zero."""
    rng = np.random.default_rng(seed)
    weights = []
    for variable in model.weights:
        shape = tuple(variable.shape)
        if "alpha" in variable.path:
            weights.append(rng.uniform(0.05, 0.9, shape))
        else:
            weights.append(rng.normal(0, 1.0 / np.sqrt(max(1, np.prod(shape[:-1]))), shape) + 0.05 * rng.normal())
    model.set_weights([w.astype(np.float32) for w in weights])


def saved_model(tmp_path, network: str, activation: str):
    """A Keras model of that network with random weights, saved the way the lab saves runs."""
    settings = settings_for(network, activation)
    model = build_model(settings)
    scramble(model)
    path = RunStore(tmp_path / "runs.sqlite").save_model(model, 1)
    return settings, model, path


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("network", list(NETWORKS))
def test_predictions_and_every_layer_equal_keras(tmp_path, network, activation):
    """For each architecture and activation, `Network` read from the saved file gives Keras' probabilities
    and every named layer's output (Keras sub-models), within float32 tolerance."""
    import keras

    settings, model, path = saved_model(tmp_path, network, activation)
    images = real_images()
    inputs = images[..., None].astype(np.float32) / 255
    net = Network.from_file(settings, path)

    expected = model.predict(inputs, verbose=0)
    np.testing.assert_allclose(net.predict(images), expected, rtol=1e-4, atol=2e-5)

    names = [layer.name for layer in model.layers if layer.name != "image"]
    assert names == Shape.of(settings).layer_names()
    probe = keras.Model(model.input, [model.get_layer(name).output for name in names])
    mine = net.layer_outputs(images)
    for name, keras_output in zip(names, probe.predict(inputs, verbose=0), strict=True):
        scale = float(np.abs(keras_output).max()) or 1.0
        np.testing.assert_allclose(mine[name], keras_output, rtol=1e-4, atol=1e-5 * scale, err_msg=name)


def test_read_weights_names_each_layer_as_the_model_does(tmp_path):
    """Variables come back under the layers' own names, in Keras order (kernel, bias; PReLU slopes)."""
    _, model, path = saved_model(tmp_path, "article-deep", "prelu")
    weights = read_weights(path)
    assert list(weights) == [layer.name for layer in model.layers]
    for layer in model.layers:
        assert len(weights[layer.name]) == len(layer.weights)
        for mine, theirs in zip(weights[layer.name], layer.get_weights(), strict=True):
            np.testing.assert_array_equal(mine, theirs)
    assert weights["activation_2"][0].shape == (28, 28, 2)


def test_float_and_uint8_images_give_the_same_prediction(tmp_path):
    """uint8 pixels, floats (n, 28, 28) and (n, 28, 28, 1) in [0, 1], and one (28, 28) image agree."""
    settings, _, path = saved_model(tmp_path, "article", "relu")
    net = Network.from_file(settings, path)
    images = real_images(4)
    floats = images.astype(np.float32) / 255
    reference = net.predict(images)
    np.testing.assert_allclose(net.predict(floats), reference, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(net.predict(floats[..., None]), reference, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(net.predict(images[0]), reference[:1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(reference.sum(axis=1), 1, rtol=1e-6)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((2, 32, 32), np.uint8), "28, 28"),
        (np.full((1, 28, 28), 3.0), r"\[0, 1\]"),
        (np.full((1, 28, 28), np.nan), r"\[0, 1\]"),
        (np.array([["a"] * 28] * 28), "uint8"),
    ],
)
def test_bad_images_are_refused_with_a_message(images, message):
    """Wrong shapes, unscaled floats, NaN and strings raise ValueError saying what is expected."""
    with pytest.raises(ValueError, match=message):
        as_inputs(images)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(NetworkFileError, match="does not exist"):
        read_weights(tmp_path / "run-9.keras")


@pytest.mark.parametrize("damage", ["not a zip", "no weights", "truncated"])
def test_a_corrupt_file_gets_a_clear_error(tmp_path, damage):
    """A file that is not a zip, a zip without model.weights.h5, or a cut-off file raise NetworkFileError."""
    _, _, path = saved_model(tmp_path, "article", "none")
    broken = tmp_path / "broken.keras"
    if damage == "not a zip":
        broken.write_bytes(b"hello, not a model")
    elif damage == "no weights":
        with zipfile.ZipFile(path) as source, zipfile.ZipFile(broken, "w") as target:
            target.writestr("config.json", source.read("config.json"))
    else:
        broken.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(NetworkFileError, match="not a readable .keras model"):
        read_weights(broken)


def test_a_file_of_another_network_is_refused(tmp_path):
    """Settings that do not match the saved layers (another width, or the MLP) name the layer that differs."""
    settings, _, path = saved_model(tmp_path, "article", "none")
    with pytest.raises(NetworkFileError, match="hidden_1"):
        Network.from_file(settings.replace(hidden_units=(5,)), path)
    with pytest.raises(NetworkFileError, match="does not match"):
        Network.from_file(settings.replace(architecture="mlp"), path)


def test_shape_reads_the_cnn_settings_from_a_dict_with_defaults():
    """A config without the CNN fields gets the spec's defaults (8 filters, 3 x 3, one block)."""
    assert Shape.of({"architecture": "cnn", "activation": "elu"}) == Shape(
        architecture="cnn", activation="elu", filters=8, kernel_size=3, conv_blocks=1
    )
    assert Shape.of(TrainingConfig(hidden_units=(7, 5))).hidden_units == (7, 5)


def test_importing_and_predicting_does_not_import_keras_or_tensorflow(tmp_path):
    """The page process can read a saved run and predict with it without TensorFlow or Keras."""
    settings, model, path = saved_model(tmp_path, "cnn", "prelu")
    images = real_images(3)
    expected = model.predict(images[..., None] / 255.0, verbose=0)
    np.save(tmp_path / "images.npy", images)
    script = (
        "import sys, json, numpy as np\n"
        "from core.shallow.network import Network\n"
        f"net = Network.from_file({settings.to_dict()!r}, {str(path)!r})\n"
        f"print(json.dumps(net.predict(np.load({str(tmp_path / 'images.npy')!r})).tolist()))\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    import json

    np.testing.assert_allclose(np.array(json.loads(result.stdout)), expected, rtol=1e-4, atol=2e-5)
