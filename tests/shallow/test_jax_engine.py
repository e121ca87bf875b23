"""The compiled JAX engine against Keras (steps, gradients, predictions) and inside a real job."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from core.shallow.config import TrainingConfig, build_model, estimate, make_optimizer, resolve_engine

pytest.importorskip("jax")

from core.shallow.jax_engine import JaxEngine, weight_layout  # noqa: E402


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return rng.random((32, 784), dtype=np.float32), rng.integers(0, 10, 32)


def random_weights(model, config, seed=1):
    """Non-zero biases too, so every gradient term is exercised; PReLU slopes kept positive."""
    rng = np.random.default_rng(seed)
    weights = [(rng.standard_normal(w.shape) * 0.1).astype(np.float32) for w in model.get_weights()]
    for index, role in enumerate(weight_layout(config)):
        if role.startswith("alpha"):
            weights[index] = np.abs(weights[index]) + 0.1
    return weights


NETWORKS = [
    ("article", (8,), "none", "adam"),
    ("article", (6, 5), "relu", "rmsprop"),
    ("article", (4,), "prelu", "adam"),
    ("article", (3, 3, 3), "elu", "sgd"),
    ("mlp", (16,), "elu", "sgd"),
    ("mlp", (8, 8, 8), "leaky_relu", "adam"),
    ("mlp", (12, 6), "prelu", "rmsprop"),
]


@pytest.mark.parametrize("architecture, units, activation, optimizer", NETWORKS)
def test_steps_without_dropout_match_keras(batch, architecture, units, activation, optimizer):
    """With dropout 0, three steps give Keras' losses and weights (each activation, depth and optimizer)."""
    images, labels = batch
    config = TrainingConfig(
        architecture=architecture,
        hidden_units=units,
        activation=activation,
        dropout=0.0,
        optimizer=optimizer,
        learning_rate=0.01,
    )
    model = build_model(config)
    model.set_weights(random_weights(model, config))
    engine = JaxEngine(config, model.get_weights())
    assert len(engine.get_weights()) == len(weight_layout(config))
    model.compile(optimizer=make_optimizer(config), loss="sparse_categorical_crossentropy")
    for _ in range(3):
        keras_loss = float(model.train_on_batch(images.reshape(-1, 28, 28, 1), labels))
        jax_loss, _ = engine.train_batch(images, labels)
        assert jax_loss == pytest.approx(keras_loss, rel=1e-4)
    for ours, theirs in zip(engine.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(
        engine.predict(images), model.predict(images.reshape(-1, 28, 28, 1), verbose=0), rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize("architecture, units, activation", [("article", (5, 4), "relu"), ("mlp", (9,), "prelu")])
def test_gradients_under_a_dropout_mask_match_tensorflow(batch, architecture, units, activation):
    """Under the same 0/1 masks, jax.grad of our forward pass equals TensorFlow's through the Keras layers."""
    import tensorflow as tf

    images, labels = batch
    config = TrainingConfig(architecture=architecture, hidden_units=units, activation=activation, dropout=0.5)
    model = build_model(config)
    weights = random_weights(model, config, seed=4)
    model.set_weights(weights)
    engine = JaxEngine(config, weights)
    rng = np.random.default_rng(5)
    spatial = (28, 28) if architecture == "article" else ()
    masks = [(rng.random((32, *spatial, width)) < 0.5).astype(np.float32) for width in units]
    loss, grads = engine.gradients(images, labels, masks)

    with tf.GradientTape() as tape:
        hidden = tf.constant(images.reshape(-1, 28, 28, 1))
        if architecture == "mlp":
            hidden = model.get_layer("flatten_input")(hidden)
        for index, mask in enumerate(masks, start=1):
            hidden = model.get_layer(f"hidden_{index}")(hidden)
            hidden = model.get_layer(f"activation_{index}")(hidden)
            hidden = hidden * mask / 0.5
        if architecture == "article":
            hidden = model.get_layer("flatten")(hidden)
        probabilities = model.get_layer("classes")(hidden)
        reference = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(labels, probabilities))
    expected = tape.gradient(reference, model.trainable_weights)
    assert loss == pytest.approx(float(reference), rel=1e-5)
    for ours, theirs in zip(grads, expected, strict=True):
        np.testing.assert_allclose(ours, np.asarray(theirs), rtol=2e-4, atol=2e-6)


def test_dropout_keeps_the_right_share_and_the_seed_repeats(batch):
    """Dropout 0.8 trains differently from no dropout; the same seed gives the same weights twice."""
    images, labels = batch
    config = TrainingConfig(hidden_units=(6,), dropout=0.8, learning_rate=0.01, seed=3)
    weights = build_model(config).get_weights()
    first, second = JaxEngine(config, weights), JaxEngine(config, weights)
    undropped = JaxEngine(config.replace(dropout=0.0), weights)
    for engine in (first, second, undropped):
        for _ in range(2):
            engine.train_batch(images, labels)
    for ours, again in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, again)
    assert not np.allclose(first.get_weights()[0], undropped.get_weights()[0])

    import jax

    from core.shallow.jax_engine import forward

    params = [jax.numpy.asarray(w) for w in weights]
    # With the output layer set to the identity on one hidden value, the logits show the mask.
    params[-2] = jax.numpy.zeros_like(params[-2]).at[:, 0].set(1.0)
    ones = jax.numpy.ones((64, 784))
    params[0], params[1] = jax.numpy.ones_like(params[0]), jax.numpy.zeros_like(params[1])
    logits = forward(config, params, ones, key=jax.random.PRNGKey(0))
    # Each logit sums 784 x 6 hidden values of 1 / 0.2 kept with probability 0.2: mean 784 x 6.
    assert abs(float(logits[:, 0].mean()) / (784 * 6) - 1) < 0.05


def test_an_epoch_runs_in_chunks_and_stops_when_asked(monkeypatch):
    """Progress comes once per chunk with growing batch numbers; returning False ends the epoch early."""
    import core.shallow.jax_engine

    monkeypatch.setattr(core.shallow.jax_engine, "CHUNK_SECONDS", 1e-4)  # Chunks of a batch or two.
    rng = np.random.default_rng(1)
    images, labels = rng.random((640, 784), dtype=np.float32), rng.integers(0, 10, 640)
    config = TrainingConfig(architecture="mlp", hidden_units=(8,), dropout=0.5, batch_size=10, learning_rate=0.01)
    engine = JaxEngine(config, build_model(config).get_weights())
    seen = []
    engine.train_epoch(images, labels, lambda index, loss, accuracy: seen.append(index))
    assert seen == sorted(seen) and seen[-1] == 63 and len(seen) > 2
    calls = []
    engine.train_epoch(images, labels, lambda index, loss, accuracy: calls.append(index) or False)
    assert len(calls) == 1 and calls[0] < 63


def test_a_partial_last_batch_is_trained():
    """35 images in batches of 16 train 16 + 16 + 3: the epoch's loss averages all 35."""
    images, labels = np.random.default_rng(2).random((35, 784), dtype=np.float32), np.arange(35) % 10
    config = TrainingConfig(architecture="mlp", hidden_units=(4,), dropout=0.0, batch_size=16, learning_rate=1e-6)
    engine = JaxEngine(config, build_model(config).get_weights())
    indexes = []
    loss, accuracy = engine.train_epoch(images, labels, lambda index, *rest: indexes.append(index))
    assert indexes[-1] == 2 and engine.step == 3
    reference_loss, reference_accuracy = engine.evaluate(images, labels)  # A rate of 1e-6 barely moves it.
    assert loss == pytest.approx(reference_loss, rel=1e-3) and accuracy == pytest.approx(reference_accuracy)


def test_auto_picks_jax_on_a_gpu_and_never_on_a_cpu(monkeypatch):
    """auto: JAX on a GPU server with JAX; numpy on a CPU; Keras on a GPU without JAX."""
    linear, relu = TrainingConfig(), TrainingConfig(activation="relu", architecture="mlp")
    assert resolve_engine(linear, has_gpu=True) == resolve_engine(relu, has_gpu=True) == "jax"
    assert resolve_engine(linear) == resolve_engine(relu) == "numpy"  # On a CPU numpy trains the MLP too.
    assert estimate(linear, has_gpu=True).seconds_per_epoch < estimate(linear).seconds_per_epoch
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "jax" else real_find_spec(name))
    assert resolve_engine(relu, has_gpu=True) == "keras"
    with pytest.raises(ValueError, match="needs JAX"):
        TrainingConfig(engine="jax")


def test_a_job_on_the_jax_engine_trains_saves_and_reloads(tmp_path):
    """A real job with engine jax learns, records the engine and device, and its .keras file predicts the same."""
    import keras

    from core.shallow.jobs import JobQueue, split_data
    from core.shallow.runs import RunStore

    store = RunStore(tmp_path / "runs.sqlite")
    config = TrainingConfig(
        hidden_units=(16,), activation="relu", dropout=0.5, learning_rate=3e-3, train_limit=600, epochs=3, engine="jax"
    )
    queue = JobQueue(store=store)
    try:
        progress = queue.submit(config).wait(300)
    finally:
        queue.close()
    assert progress.status == "finished", progress.error
    run = store.get_run(progress.run_id)
    assert run.engine == "jax" and "(jax)" in run.device
    assert run.test_accuracy > 0.5  # Ten classes: chance is 0.1.
    history = store.history(run.run_id)
    assert history[-1]["loss"] < history[0]["loss"]
    _, _, (x_test, y_test) = split_data(config)
    reloaded = keras.saving.load_model(run.model_path)
    engine = JaxEngine(config, reloaded.get_weights())
    np.testing.assert_allclose(
        engine.predict(x_test[:200]), reloaded.predict(x_test[:200].reshape(-1, 28, 28, 1), verbose=0), atol=1e-5
    )
    accuracy = float(np.mean(reloaded.predict(x_test.reshape(-1, 28, 28, 1), verbose=0).argmax(1) == y_test))
    assert accuracy == pytest.approx(run.test_accuracy, abs=1e-4)
