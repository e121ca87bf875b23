"""The numpy engine against Keras/TensorFlow as the independent reference."""

from __future__ import annotations

import numpy as np
import pytest

from core.shallow.config import TrainingConfig, build_model, make_optimizer
from core.shallow.engines import KerasEngine, NumpyPerPixelEngine


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    images = rng.random((32, 784), dtype=np.float32)
    labels = rng.integers(0, 10, 32)
    return images, labels


def random_weights(model, seed=1):
    """Non-zero biases too, so every gradient term is exercised."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(w.shape) * 0.1).astype(np.float32) for w in model.get_weights()]


@pytest.mark.parametrize(
    "optimizer, units, threads",
    [("adam", 8, 1), ("rmsprop", 8, 1), ("sgd", 8, 1), ("adam", 200, 2), ("sgd", 200, 2)],
)
def test_steps_without_dropout_match_keras(batch, optimizer, units, threads):
    """With dropout 0, three steps give Keras' weights (each optimizer; one and two threads)."""
    images, labels = batch
    # A rate that keeps every probability above Keras' 1e-7 clip, where the two losses agree.
    config = TrainingConfig(hidden_units=(units,), dropout=0.0, optimizer=optimizer, learning_rate=0.08 / units)
    model = build_model(config)
    model.set_weights(random_weights(model))
    engine = NumpyPerPixelEngine(config, model.get_weights(), threads=threads)
    model.compile(optimizer=make_optimizer(config), loss="sparse_categorical_crossentropy")
    for _ in range(3):
        keras_loss = float(model.train_on_batch(images.reshape(-1, 28, 28, 1), labels))
        numpy_loss, _ = engine.train_batch(images, labels)
        assert numpy_loss == pytest.approx(keras_loss, rel=1e-4)
    for ours, theirs in zip(engine.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=2e-6)


def test_gradients_with_a_dropout_mask_match_tensorflow(batch):
    """Under the same 0/1 mask, the batched-product gradients equal TensorFlow's autodiff."""
    import tensorflow as tf

    images, labels = batch
    config = TrainingConfig(hidden_units=(6,), dropout=0.5)
    model = build_model(config)
    weights = random_weights(model, seed=2)
    engine = NumpyPerPixelEngine(config, weights, threads=1)
    mask = (np.random.default_rng(3).random((784, 32, 6)) < 0.5).astype(np.float32)
    loss, _, grads = engine.gradients(images, labels, mask)

    kernel, bias, out_kernel, out_bias = (tf.Variable(w) for w in weights)
    keras_mask = tf.constant(mask.transpose(1, 0, 2))  # (batch, pixel, neuron)
    with tf.GradientTape() as tape:
        hidden = images[:, :, None] * kernel[0][None, None, :] + bias
        dropped = hidden * keras_mask * engine.scale
        logits = tf.reshape(dropped, (32, -1)) @ out_kernel + out_bias
        reference_loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    expected = tape.gradient(reference_loss, [kernel, bias, out_kernel, out_bias])
    assert loss == pytest.approx(float(reference_loss), rel=1e-5)
    for ours, theirs in zip(grads, expected, strict=True):
        np.testing.assert_allclose(ours.reshape(theirs.shape), theirs.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("threads, compiled", [(1, True), (2, True), (2, False)])
def test_fused_step_equals_the_plain_formulation(batch, threads, compiled):
    """The sliced, threaded step computes exactly the gradients of the mask it drew, with the
    compiled passes (weights, gradients) or numpy's."""
    images, labels = batch
    config = TrainingConfig(hidden_units=(24,), dropout=0.8, seed=7)
    model = build_model(config)
    engine = NumpyPerPixelEngine(config, random_weights(model, seed=5), threads=threads, compiled=compiled)
    assert (engine.kernels is not None) == compiled
    loss, accuracy, grads, kept = engine.fused_gradients(images, labels)
    assert kept.shape == (784, 32, 24) and abs(kept.mean() - 0.2) < 0.01
    reference_loss, reference_accuracy, reference = engine.gradients(images, labels, kept.astype(np.float32))
    assert loss == pytest.approx(reference_loss, rel=1e-6) and accuracy == reference_accuracy
    for ours, theirs in zip(grads, reference, strict=True):
        # Same sums in another order: equal up to float32 rounding of the largest terms.
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())


@pytest.mark.parametrize("dropout", [0.8, 0.5, 0.37])
def test_keep_probability_is_exact(dropout):
    """20 million draws keep 1 - dropout of the values to within 4e-4 (byte test + second draw)."""
    config = TrainingConfig(hidden_units=(8,), dropout=dropout, seed=11)
    engine = NumpyPerPixelEngine(config, build_model(config).get_weights(), threads=1)
    kept = np.empty((20, 1000, 1000), bool)
    engine._draw_keep(engine.mask_rngs[0].bit_generator, kept, kept.size)
    # Without the second draw, dropout 0.8 would keep 51/256 = 0.19922 (off by 7.8e-4).
    assert abs(kept.mean() - (1 - dropout)) < 4e-4


def test_mask_keeps_the_right_share_and_is_seeded(batch):
    """A step's mask keeps 1 - dropout of the values; the same seed draws the same mask."""
    images, labels = batch
    config = TrainingConfig(hidden_units=(16,), dropout=0.8, seed=5)
    weights = build_model(config).get_weights()
    first = NumpyPerPixelEngine(config, weights).fused_gradients(images, labels)[3].copy()
    second = NumpyPerPixelEngine(config, weights).fused_gradients(images, labels)[3]
    third = NumpyPerPixelEngine(config.replace(seed=6), weights).fused_gradients(images, labels)[3]
    assert first.shape == (784, 32, 16) and abs(first.mean() - 0.2) < 0.005
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, third)
    assert NumpyPerPixelEngine(config, weights).scale == pytest.approx(1 / 0.2, rel=1e-4)


def test_collapsed_prediction_equals_the_keras_model(batch):
    """Without dropout the network is one linear map: predictions equal Keras' predict."""
    images, _ = batch
    config = TrainingConfig(hidden_units=(10,))
    model = build_model(config)
    model.set_weights(random_weights(model, seed=4))
    engine = NumpyPerPixelEngine(config, model.get_weights(), threads=1)
    expected = model.predict(images.reshape(-1, 28, 28, 1), verbose=0)
    np.testing.assert_allclose(engine.predict(images), expected, rtol=1e-4, atol=1e-6)


def fashion_subset(count):
    from core.shallow.jobs import _dataset

    x_all, y_all, _, _ = _dataset(None)
    return x_all[:count], y_all[:count]


def test_numpy_engine_learns_fashion_mnist():
    """A few epochs on 1,000 images: loss falls and validation accuracy beats chance by far."""
    images, labels = fashion_subset(1500)
    config = TrainingConfig(hidden_units=(16,), dropout=0.5, learning_rate=3e-3, train_limit=1000, batch_size=64)
    engine = NumpyPerPixelEngine(config, build_model(config).get_weights())
    losses = [engine.train_epoch(images[:1000], labels[:1000], lambda *a: True)[0] for _ in range(3)]
    assert losses[-1] < losses[0]
    assert engine.evaluate(images[1000:], labels[1000:])[1] > 0.6


def test_keras_engine_learns_and_stops_on_request():
    """The Keras engine learns a ReLU net, and a callback returning False ends the epoch early."""
    images, labels = fashion_subset(1500)
    config = TrainingConfig(hidden_units=(8,), activation="relu", dropout=0.2, learning_rate=3e-3, batch_size=50)
    engine = KerasEngine(config, build_model(config))
    first, _ = engine.train_epoch(images[:1000], labels[:1000], lambda *a: True)
    second, _ = engine.train_epoch(images[:1000], labels[:1000], lambda *a: True)
    assert second < first
    assert engine.evaluate(images[1000:], labels[1000:])[1] > 0.4
    seen = []
    engine.train_epoch(images[:1000], labels[:1000], lambda batch, *a: seen.append(batch) or batch < 2)
    assert seen == [0, 1, 2]
