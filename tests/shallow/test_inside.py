"""What the views show of a trained network: templates, neuron maps, kernels, feature maps, colours."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import correlate2d

from core.shallow import inside
from core.shallow.network import Network
from tests.shallow.test_network import real_images, saved_model


def keras_logits(model, images: np.ndarray) -> np.ndarray:
    """Keras' own class scores before the softmax: the model with its class layer's softmax switched off."""
    import keras

    layer = model.get_layer("classes")
    softmax = layer.activation
    layer.activation = keras.activations.linear
    try:
        return np.asarray(model(images[..., None].astype(np.float32) / 255, training=False))
    finally:
        layer.activation = softmax


@pytest.mark.parametrize("network", ["article", "article-deep", "mlp"])
def test_templates_dot_image_plus_bias_are_keras_logits(tmp_path, network):
    """A linear network's ten templates and biases give Keras' pre-softmax logits for real test images."""
    settings, model, path = saved_model(tmp_path, network, "none")
    net = Network.from_file(settings, path)
    templates, biases = inside.class_templates(net)
    assert templates.shape == (10, 28, 28) and biases.shape == (10,)
    images = real_images(32)
    mine = (images.reshape(len(images), -1) / 255) @ templates.reshape(10, -1).T + biases
    np.testing.assert_allclose(mine, keras_logits(model, images), rtol=1e-4, atol=1e-4)


def test_only_linear_networks_collapse(tmp_path):
    settings, _, path = saved_model(tmp_path, "article", "relu")
    with pytest.raises(ValueError, match="without activation"):
        inside.class_templates(Network.from_file(settings, path))


def test_per_pixel_neuron_maps_rebuild_the_logits(tmp_path):
    """Neuron j's map into class c, times neuron j's per-pixel outputs, summed over j, plus the bias, is Keras' logit c."""
    import keras

    settings, model, path = saved_model(tmp_path, "article", "relu")
    net = Network.from_file(settings, path)
    images = real_images(8)
    hidden = keras.Model(model.input, model.get_layer("activation_1").output).predict(
        images[..., None] / 255.0, verbose=0
    )
    logits = keras_logits(model, images)
    for class_index in (0, 7):
        maps = inside.neuron_maps(net, [0, 1, 2], class_index)
        rebuilt = np.einsum("nhwj,jhw->n", hidden, maps) + net.weights["classes"][1][class_index]
        np.testing.assert_allclose(rebuilt, logits[:, class_index], rtol=1e-4, atol=1e-4)


def test_mlp_neuron_maps_are_its_input_weights(tmp_path):
    """An MLP neuron's 28 x 28 map, dotted with an image, plus its bias, is Keras' hidden_1 output for it."""
    import keras

    settings, model, path = saved_model(tmp_path, "mlp", "elu")
    net = Network.from_file(settings, path)
    images = real_images(8)
    hidden = keras.Model(model.input, model.get_layer("hidden_1").output).predict(images[..., None] / 255.0, verbose=0)
    maps = inside.neuron_maps(net, [5, 0])
    rebuilt = np.einsum("nhw,jhw->nj", images / 255.0, maps) + net.weights["hidden_1"][1][[5, 0]]
    np.testing.assert_allclose(rebuilt, hidden[:, [5, 0]], rtol=1e-4, atol=1e-5)


def test_strongest_neurons_are_the_largest_weights_and_bad_choices_are_refused(tmp_path):
    settings, _, path = saved_model(tmp_path, "article", "none")
    net = Network.from_file(settings, path)
    kernel = net.weights["classes"][0].reshape(784, 3, 10)
    kernel[:, 1] *= 50
    kernel[:, 2] *= 10
    assert inside.strongest_neurons(net, 2) == [1, 2]
    with pytest.raises(ValueError, match="no neuron 3"):
        inside.neuron_maps(net, [3], 0)
    with pytest.raises(ValueError, match="class"):
        inside.neuron_maps(net, [0])


@pytest.mark.parametrize("network", ["cnn", "cnn-two-blocks"])
def test_kernels_and_feature_maps_match_scipy(tmp_path, network):
    """Each kernel, correlated with the block's input by scipy ("same", zeros) plus its bias, is the conv map shown;
    pooling is the largest of each 2 x 2 block of the activation map."""
    settings, _, path = saved_model(tmp_path, network, "leaky_relu")
    net = Network.from_file(settings, path)
    image = real_images(1)[0]
    maps = inside.feature_maps(net, image)
    stages = ["conv_1", "activation_1", "pool_1"] + (["conv_2", "activation_2", "pool_2"] if "two" in network else [])
    assert list(maps) == stages
    block_input = (image / 255.0)[None]
    for block in range(1, net.shape.conv_blocks + 1):
        kernels = inside.conv_kernels(net, block)
        assert kernels.shape == (settings.filters, block_input.shape[0], settings.kernel_size, settings.kernel_size)
        bias = net.weights[f"conv_{block}"][1]
        for f in range(settings.filters):
            expected = sum(correlate2d(block_input[c], kernels[f, c], mode="same") for c in range(len(block_input)))
            np.testing.assert_allclose(maps[f"conv_{block}"][f], expected + bias[f], rtol=1e-4, atol=1e-5)
        activated = maps[f"activation_{block}"]
        np.testing.assert_allclose(activated, np.where(maps[f"conv_{block}"] > 0, 1, 0.3) * maps[f"conv_{block}"])
        side = activated.shape[1] // 2
        pooled = activated.reshape(len(activated), side, 2, side, 2).max(axis=(2, 4))
        np.testing.assert_array_equal(maps[f"pool_{block}"], pooled)
        block_input = maps[f"pool_{block}"]
    with pytest.raises(ValueError, match="no block 3"):
        inside.conv_kernels(net, 3)


def test_diverging_colours_put_zero_in_the_middle_on_one_scale():
    """0 is white, +scale red, -scale blue, beyond the scale clipped, half way half the colour; the bar runs - to +."""
    colours = inside.diverging_rgb(np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0]), scale=1.0)
    np.testing.assert_array_equal(colours[3], inside.ZERO)
    np.testing.assert_array_equal(colours[5], inside.POSITIVE)
    np.testing.assert_array_equal(colours[1], inside.NEGATIVE)
    np.testing.assert_array_equal(colours[0], colours[1])
    np.testing.assert_array_equal(colours[6], colours[5])
    np.testing.assert_array_equal(colours[4], np.rint((inside.ZERO + inside.POSITIVE) / 2))
    bar = inside.colour_bar(width=101, height=4)
    assert bar.shape == (4, 101, 3)
    np.testing.assert_array_equal(bar[0, 50], inside.ZERO)
    np.testing.assert_array_equal(bar[0, 0], inside.NEGATIVE)
    np.testing.assert_array_equal(bar[0, -1], inside.POSITIVE)
    assert inside.shared_scale(np.array([0.1, -0.4]), np.array([0.3])) == pytest.approx(0.4)
    assert inside.enlarge(np.arange(4).reshape(2, 2), 3).shape == (6, 6)
