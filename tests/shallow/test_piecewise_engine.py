"""The two-product engine for ReLU, LeakyReLU, PReLU and ELU against the Keras model as reference."""

from __future__ import annotations

import numpy as np
import pytest

from core.shallow.config import TrainingConfig, build_model, make_optimizer
from core.shallow.piecewise_engine import NumpyPiecewiseEngine, fits_piecewise_engine, pixel_levels

ACTIVATIONS = ["relu", "leaky_relu", "prelu", "elu"]


def level_images(count, seed=0):
    """Pixel values as Fashion-MNIST has them (k / 255), a quarter exactly 0 (z = 0 there)."""
    rng = np.random.default_rng(seed)
    levels = rng.integers(0, 256, (count, 784))
    levels[rng.random((count, 784)) < 0.25] = 0
    return levels.astype(np.float32) * np.float32(1 / 255)


@pytest.fixture(scope="module")
def batch():
    return level_images(16), np.random.default_rng(1).integers(0, 10, 16)


@pytest.fixture(scope="module")
def float_batch():
    """Pixel values with far more than 256 distinct values: z is computed per slice."""
    rng = np.random.default_rng(2)
    return rng.random((16, 784), dtype=np.float32), rng.integers(0, 10, 16)


def random_weights(model, seed=1, zero_biases=False):
    """Glorot-sized random weights; PReLU slopes in [0.1, 0.5]; biases non-zero unless asked."""
    rng = np.random.default_rng(seed)
    weights = []
    for variable in model.weights:
        if "alpha" in variable.path:
            weights.append(rng.uniform(0.1, 0.5, variable.shape).astype(np.float32))
        elif "bias" in variable.path and zero_biases:
            weights.append(np.zeros(variable.shape, np.float32))
        else:
            fan_in = variable.shape[0] if len(variable.shape) == 2 else 1
            size = 0.5 if fan_in == 1 else 1.5 / np.sqrt(fan_in)
            weights.append((rng.standard_normal(variable.shape) * size).astype(np.float32))
    return weights


def keras_gradients(model, images, labels, mask, keep):
    """Loss and gradients of the real Keras model, its Dropout layer replaced by `mask`."""
    import tensorflow as tf

    x = tf.constant(images.reshape(-1, 28, 28, 1))
    keras_mask = tf.constant(mask.transpose(1, 0, 2).reshape(len(images), 28, 28, -1).astype(np.float32))
    with tf.GradientTape() as tape:
        for layer in model.layers[1:]:
            x = x * keras_mask / keep if layer.__class__.__name__ == "Dropout" else layer(x)
        loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(labels, x))
    return float(loss), [g.numpy() for g in tape.gradient(loss, model.trainable_weights)]


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("data", ["batch", "float_batch"])
@pytest.mark.parametrize("dropout", [0.5, 0.8])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradients_under_a_mask_equal_tensorflow(request, data, dropout, activation, compiled):
    """Under the same dropout mask, loss and every gradient (PReLU's slopes too) equal TensorFlow's,
    with the compiled passes or numpy's."""
    images, labels = request.getfixturevalue(data)
    config = TrainingConfig(hidden_units=(5,), activation=activation, dropout=dropout)
    model = build_model(config)
    # Zero biases as Keras initialises them: z is exactly 0 on every black pixel.
    model.set_weights(random_weights(model, seed=3, zero_biases=data == "batch"))
    engine = NumpyPiecewiseEngine(config, model.get_weights(), threads=2, compiled=compiled)
    assert (engine.kernels is not None) == compiled
    loss, _, grads, mask = engine.gradients(images, labels)
    assert abs(mask.mean() - (1 - dropout)) < 0.02
    reference_loss, expected = keras_gradients(model, images, labels, mask, engine.keep)
    assert loss == pytest.approx(reference_loss, rel=1e-5)
    assert len(grads) == len(expected)
    for ours, theirs, variable in zip(grads, expected, model.trainable_weights, strict=True):
        scale = np.abs(theirs).max() + 1e-12
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5 * scale, err_msg=variable.path)


@pytest.mark.parametrize("activation, threads", [("prelu", 1), ("prelu", 3), ("elu", 3)])
def test_a_given_mask_gives_the_same_gradients_for_any_threads_and_slices(batch, activation, threads):
    """The mask handed in is the one used: any worker count and slice size give the same gradients."""
    images, labels = batch
    config = TrainingConfig(hidden_units=(6,), activation=activation, dropout=0.8, seed=4)
    weights = random_weights(build_model(config), seed=5)
    _, _, reference, mask = NumpyPiecewiseEngine(config, weights, threads=2).gradients(images, labels)
    engine = NumpyPiecewiseEngine(config, weights, threads=threads)
    engine.chunk = 7  # 112 slices of 7 pixels.
    _, _, grads, used = engine.gradients(images, labels, mask)
    np.testing.assert_array_equal(used, mask)
    for ours, theirs in zip(grads, reference, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6 * np.abs(theirs).max())


@pytest.mark.parametrize(
    "activation, optimizer",
    [("relu", "adam"), ("leaky_relu", "rmsprop"), ("prelu", "sgd"), ("prelu", "adam"), ("elu", "adam")],
)
def test_steps_without_dropout_match_keras(batch, activation, optimizer):
    """With dropout 0, three optimizer steps give Keras' own weights (train_on_batch)."""
    images, labels = batch
    config = TrainingConfig(
        hidden_units=(6,), activation=activation, dropout=0.0, optimizer=optimizer, learning_rate=1e-3, batch_size=16
    )
    model = build_model(config)
    model.set_weights(random_weights(model, seed=6))
    engine = NumpyPiecewiseEngine(config, model.get_weights(), threads=2)
    model.compile(optimizer=make_optimizer(config), loss="sparse_categorical_crossentropy")
    for _ in range(3):
        keras_loss = float(model.train_on_batch(images.reshape(-1, 28, 28, 1), labels))
        numpy_loss, _ = engine.train_batch(images, labels)
        assert numpy_loss == pytest.approx(keras_loss, rel=1e-4)
    for ours, theirs in zip(engine.get_weights(), model.get_weights(), strict=True):
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("data", ["batch", "float_batch"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_prediction_equals_the_keras_model(request, data, activation):
    """Without dropout, probabilities equal Keras' predict (the table path and the computed one)."""
    images, _ = request.getfixturevalue(data)
    config = TrainingConfig(hidden_units=(7,), activation=activation)
    model = build_model(config)
    model.set_weights(random_weights(model, seed=7))
    engine = NumpyPiecewiseEngine(config, model.get_weights(), threads=2)
    expected = model.predict(images.reshape(-1, 28, 28, 1), verbose=0)
    np.testing.assert_allclose(engine.predict(images, chunk=5), expected, rtol=1e-4, atol=1e-6)
    assert engine.predict(images[:0]).shape == (0, 10)


def test_pixel_levels_are_exact_or_refused():
    """k / 255 (however rounded) maps back exactly; more than 256 values, or NaN, give None."""
    levels = np.arange(256, dtype=np.float32)
    for values in (levels / np.float32(255), levels * np.float32(1 / 255)):
        indices, table = pixel_levels(values[::-1].copy())
        np.testing.assert_array_equal(table[indices], values[::-1])
    assert pixel_levels(np.random.default_rng(0).random(1000, dtype=np.float32)) is None
    assert pixel_levels(np.array([0.0, np.nan], np.float32)) is None
    assert pixel_levels(np.array([0.0, 1.5], np.float32)) is None


def test_mask_keeps_the_right_share_and_is_seeded(batch):
    """A step's dropout mask keeps 1 - dropout of the values; the same seed draws the same mask."""
    images, labels = batch
    config = TrainingConfig(hidden_units=(16,), activation="leaky_relu", dropout=0.8, seed=5)
    weights = build_model(config).get_weights()
    first = NumpyPiecewiseEngine(config, weights).gradients(images, labels)[3]
    second = NumpyPiecewiseEngine(config, weights).gradients(images, labels)[3]
    third = NumpyPiecewiseEngine(config.replace(seed=6), weights).gradients(images, labels)[3]
    assert first.shape == (784, 16, 16) and abs(first.mean() - 0.2) < 0.01
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, third)


def test_auto_picks_it_for_each_one_layer_piecewise_network():
    """The engine `auto` resolves to on a CPU trains each one-layer per-pixel net with an activation here."""
    from core.shallow.config import resolve_engine
    from core.shallow.jobs import make_engine

    for activation in ACTIVATIONS:
        config = TrainingConfig(hidden_units=(4,), activation=activation, dropout=0.5)
        engine = make_engine(config, build_model(config), resolve_engine(config))
        assert isinstance(engine, NumpyPiecewiseEngine)
        engine.close()
    for changes in ({"activation": "none"}, {"hidden_units": (4, 4)}, {"architecture": "mlp"}):
        assert not fits_piecewise_engine(TrainingConfig(hidden_units=(4,), activation="relu").replace(**changes))
    with pytest.raises(ValueError, match="ReLU, LeakyReLU, PReLU or ELU"):
        NumpyPiecewiseEngine(TrainingConfig(hidden_units=(4, 4), activation="elu"), [])


def fashion_subset(count):
    from core.shallow.jobs import _dataset

    x_all, y_all, _, _ = _dataset(None)
    return x_all[:count], y_all[:count]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_engine_learns_fashion_mnist(activation):
    """A few epochs on 1,000 images: loss falls and validation accuracy beats chance by far."""
    images, labels = fashion_subset(1500)
    config = TrainingConfig(
        hidden_units=(16,), activation=activation, dropout=0.5, learning_rate=3e-3, train_limit=1000, batch_size=64
    )
    engine = NumpyPiecewiseEngine(config, build_model(config).get_weights())
    losses = [engine.train_epoch(images[:1000], labels[:1000], lambda *a: True)[0] for _ in range(3)]
    assert losses[-1] < losses[0]
    assert engine.evaluate(images[1000:], labels[1000:])[1] > 0.6
    engine.close()
