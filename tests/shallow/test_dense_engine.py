"""The numpy engine for every lab network, against the real Keras model as the reference."""

from __future__ import annotations

import numpy as np
import pytest

from core.shallow.config import ACTIVATIONS, TrainingConfig, build_model, make_optimizer
from core.shallow.dense_engine import NumpyDenseEngine


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    # Pixel values as Fashion-MNIST has them (k / 255), a quarter of them exactly 0, so that
    # z = 0 (where ReLU's derivative is a convention) happens as it does in real data.
    levels = rng.integers(0, 256, (16, 784))
    levels[rng.random((16, 784)) < 0.25] = 0
    images = levels.astype(np.float32) * np.float32(1 / 255)
    labels = rng.integers(0, 10, 16)
    return images, labels


def random_weights(model, seed=1, zero_biases=False):
    """Random weights of Glorot's size; biases non-zero unless asked, so every term is exercised."""
    rng = np.random.default_rng(seed)
    weights = []
    for variable in model.weights:
        fan_in = variable.shape[0] if len(variable.shape) == 2 else 1
        values = (rng.standard_normal(variable.shape) * (0.3 if fan_in == 1 else 1.5 / np.sqrt(fan_in))).astype(
            np.float32
        )
        if "alpha" in variable.path:
            values = rng.uniform(0.1, 0.5, variable.shape).astype(np.float32)
        elif zero_biases and "bias" in variable.path:
            values = np.zeros(variable.shape, np.float32)
        weights.append(values)
    return weights


def keras_gradients(model, images, labels, masks, keep):
    """Loss and gradients of the real Keras model's layers, its Dropout replaced by `masks`."""
    import tensorflow as tf

    x = tf.constant(images.reshape(-1, 28, 28, 1))
    layer_masks = iter(masks)
    with tf.GradientTape() as tape:
        for layer in model.layers[1:]:
            if layer.__class__.__name__ == "Dropout":
                mask = next(layer_masks)  # (positions, batch, N) -> Keras' layout.
                mask = mask.transpose(1, 0, 2).reshape(tuple(x.shape))
                x = x * tf.constant(mask.astype(np.float32)) / keep
            else:
                x = layer(x)
        loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(labels, x))
    grads = tape.gradient(loss, model.trainable_weights)
    return float(loss), [g.numpy() for g in grads]


CASES = [
    (architecture, activation, units)
    for architecture, layer_sets in (("article", [(5,), (4, 3), (3, 2, 4)]), ("mlp", [(7,), (6, 5), (5, 4, 3)]))
    for activation in ACTIVATIONS
    for units in layer_sets
]


@pytest.mark.parametrize("architecture, activation, units", CASES)
def test_gradients_under_a_mask_equal_keras(batch, architecture, activation, units):
    """Under the same dropout masks, loss and every gradient equal TensorFlow's on the Keras model."""
    images, labels = batch
    config = TrainingConfig(architecture=architecture, hidden_units=units, activation=activation, dropout=0.5)
    model = build_model(config)
    # Zero biases as Keras initialises them: many z are exactly 0 on black pixels.
    model.set_weights(random_weights(model, seed=len(units), zero_biases=activation != "none"))
    engine = NumpyDenseEngine(config, model.get_weights(), threads=2)
    loss, _, grads, masks = engine.gradients(images, labels)
    assert [m.mean() for m in masks] == pytest.approx([0.5] * len(units), abs=0.1)
    reference_loss, expected = keras_gradients(model, images, labels, masks, engine.keep)
    assert loss == pytest.approx(reference_loss, rel=1e-5)
    for ours, theirs, variable in zip(grads, expected, model.trainable_weights, strict=True):
        scale = np.abs(theirs).max() + 1e-12
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5 * scale, err_msg=variable.path)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("mode", ["kept", "recomputed", "numpy passes"])
def test_kept_and_recomputed_forward_values_both_give_keras_gradients(batch, activation, mode, monkeypatch):
    """Slices of 7 pixels; the forward values kept for the backward pass (the default up to a
    gigabyte, only a for none/ReLU/LeakyReLU), recomputed slice by slice, or kept with numpy's
    passes instead of the compiled ones: each equals TensorFlow's gradients."""
    import core.shallow.dense_engine

    images, labels = batch
    config = TrainingConfig(hidden_units=(4, 3), activation=activation, dropout=0.5)
    model = build_model(config)
    model.set_weights(random_weights(model, seed=4, zero_biases=activation != "none"))
    monkeypatch.setattr(core.shallow.dense_engine, "SLICE_BYTES", 16 * 4 * 4 * 7)
    if mode == "recomputed":
        monkeypatch.setattr(core.shallow.dense_engine, "KEEP_FORWARD_BYTES", 0)
    engine = NumpyDenseEngine(config, model.get_weights(), threads=2, compiled=mode != "numpy passes")
    assert len(engine._slices(16)) == 112
    assert core.shallow.dense_engine.keeps_forward(engine.units, engine.positions, 16) == (mode != "recomputed")
    loss, _, grads, masks = engine.gradients(images, labels)
    reference_loss, expected = keras_gradients(model, images, labels, masks, engine.keep)
    assert loss == pytest.approx(reference_loss, rel=1e-5)
    for ours, theirs, variable in zip(grads, expected, model.trainable_weights, strict=True):
        scale = np.abs(theirs).max() + 1e-12
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5 * scale, err_msg=variable.path)


@pytest.mark.parametrize("threads", [1, 3])
def test_threads_and_slices_do_not_change_the_gradients(batch, threads, monkeypatch):
    """Any number of workers and any slice size give the same gradients for the same masks."""
    import core.shallow.dense_engine

    images, labels = batch
    config = TrainingConfig(hidden_units=(6, 4), activation="elu", dropout=0.3)
    weights = random_weights(build_model(config), seed=3)
    _, _, reference, masks = NumpyDenseEngine(config, weights, threads=1).gradients(images, labels)
    monkeypatch.setattr(core.shallow.dense_engine, "SLICE_BYTES", 16 * 6 * 4 * 7)  # 7 pixels a slice.
    engine = NumpyDenseEngine(config, weights, threads=threads)
    assert len(engine._slices(16)) == 112
    _, _, grads, _ = engine.gradients(images, labels, masks)
    for ours, theirs in zip(grads, reference, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6 * np.abs(theirs).max())


@pytest.mark.parametrize(
    "architecture, activation, optimizer",
    [
        ("article", "relu", "adam"),
        ("article", "prelu", "rmsprop"),
        ("mlp", "leaky_relu", "sgd"),
        ("mlp", "elu", "adam"),
    ],
)
def test_steps_without_dropout_match_keras(batch, architecture, activation, optimizer):
    """With dropout 0, three optimizer steps give Keras' own weights (train_on_batch)."""
    images, labels = batch
    config = TrainingConfig(
        architecture=architecture,
        hidden_units=(6, 5),
        activation=activation,
        dropout=0.0,
        optimizer=optimizer,
        learning_rate=1e-3,
        batch_size=16,
    )
    model = build_model(config)
    model.set_weights(random_weights(model, seed=5))
    engine = NumpyDenseEngine(config, model.get_weights(), threads=2)
    model.compile(optimizer=make_optimizer(config), loss="sparse_categorical_crossentropy")
    for _ in range(3):
        keras_loss = float(model.train_on_batch(images.reshape(-1, 28, 28, 1), labels))
        numpy_loss, _ = engine.train_batch(images, labels)
        assert numpy_loss == pytest.approx(keras_loss, rel=1e-4)
    for ours, theirs in zip(engine.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("architecture, units", [("article", (4, 3)), ("mlp", (8,))])
def test_prediction_equals_the_keras_model(batch, architecture, units):
    """Without dropout, predicted probabilities equal Keras' predict (in chunks of images)."""
    images, _ = batch
    config = TrainingConfig(architecture=architecture, hidden_units=units, activation="prelu")
    model = build_model(config)
    model.set_weights(random_weights(model, seed=4))
    engine = NumpyDenseEngine(config, model.get_weights(), threads=2)
    expected = model.predict(images.reshape(-1, 28, 28, 1), verbose=0)
    np.testing.assert_allclose(engine.predict(images, chunk=5), expected, rtol=1e-4, atol=1e-6)
    assert [w.shape for w in engine.get_weights()] == [w.shape for w in model.get_weights()]


def test_masks_keep_the_right_share_and_are_seeded(batch):
    """Each layer's mask keeps 1 - dropout of its values; the same seed draws the same masks."""
    images, labels = batch
    config = TrainingConfig(hidden_units=(16, 8), activation="relu", dropout=0.8, seed=5)
    weights = build_model(config).get_weights()
    first = NumpyDenseEngine(config, weights).gradients(images, labels)[3]
    second = NumpyDenseEngine(config, weights).gradients(images, labels)[3]
    third = NumpyDenseEngine(config.replace(seed=6), weights).gradients(images, labels)[3]
    assert [m.shape for m in first] == [(784, 16, 16), (784, 16, 8)]
    assert all(abs(m.mean() - 0.2) < 0.01 for m in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not np.array_equal(first[0], third[0])


def test_mixed_precision_is_refused_with_a_message():
    """The engine is float32; asking it for mixed precision says to use Keras."""
    config = TrainingConfig(hidden_units=(4,), activation="relu", mixed_precision=True)
    with pytest.raises(ValueError, match="engine 'keras'"):
        NumpyDenseEngine(config, build_model(config.replace(mixed_precision=False)).get_weights())


def fashion_subset(count):
    from core.shallow.jobs import _dataset

    x_all, y_all, _, _ = _dataset(None)
    return x_all[:count], y_all[:count]


@pytest.mark.parametrize(
    "architecture, units, activation", [("article", (16,), "relu"), ("article", (8, 8), "none"), ("mlp", (64,), "elu")]
)
def test_engine_learns_fashion_mnist(architecture, units, activation):
    """A few epochs on 1,000 images: loss falls and validation accuracy beats chance by far."""
    images, labels = fashion_subset(1500)
    config = TrainingConfig(
        architecture=architecture,
        hidden_units=units,
        activation=activation,
        dropout=0.5,
        learning_rate=3e-3,
        train_limit=1000,
        batch_size=64,
    )
    engine = NumpyDenseEngine(config, build_model(config).get_weights())
    losses = [engine.train_epoch(images[:1000], labels[:1000], lambda *a: True)[0] for _ in range(3)]
    assert losses[-1] < losses[0]
    assert engine.evaluate(images[1000:], labels[1000:])[1] > 0.6
