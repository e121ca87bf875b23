"""The shallow CNN: its settings, hand-counted sizes against Keras, the model, the engines that
refuse it, estimates, and a real short training job saved with its .keras file."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.shallow import config as shallow_config
from core.shallow.config import (
    ACTIVATIONS,
    TrainingConfig,
    activations_per_sample,
    build_model,
    count_params,
    flops_per_sample,
    memory_parts,
    resolve_engine,
)
from core.shallow.jobs import JobQueue, make_engine
from core.shallow.runs import RunStore
from core.shallow.scheduling import check_job_minutes

ROOT = Path(__file__).resolve().parents[2]
CNN = TrainingConfig(architecture="cnn", filters=8, kernel_size=3, activation="relu", dropout=0.2)
TINY = CNN.replace(filters=4, learning_rate=3e-3, train_limit=600, batch_size=50, epochs=3, patience=3)


def test_the_spec_parameter_counts_by_hand():
    """F = 8, k = 3: 8*9+8 + 14*14*8*10+10 = 15,770 for one block, 80 + 584 + 3,930 = 4,594 for two."""
    assert count_params(CNN) == 8 * 9 + 8 + 14 * 14 * 8 * 10 + 10 == 15_770
    assert count_params(CNN.replace(conv_blocks=2)) == 80 + (8 * 8 * 9 + 8) + 7 * 7 * 8 * 10 + 10 == 4_594
    # PReLU adds one slope per element of each block's convolution output.
    prelu = CNN.replace(activation="prelu")
    assert count_params(prelu) == 15_770 + 28 * 28 * 8
    assert count_params(prelu.replace(conv_blocks=2)) == 4_594 + 28 * 28 * 8 + 14 * 14 * 8


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("blocks", [1, 2])
@pytest.mark.parametrize("kernel_size", [3, 5])
@pytest.mark.parametrize("filters", [1, 8, 64])
def test_parameter_count_matches_keras(filters, kernel_size, blocks, activation):
    """The hand count equals Keras' own count_params for every filters/kernel/blocks/activation."""
    config = CNN.replace(filters=filters, kernel_size=kernel_size, conv_blocks=blocks, activation=activation)
    assert count_params(config) == build_model(config).count_params()


@pytest.mark.parametrize("activation", ["none", "elu"])
def test_build_model_layer_names_and_shapes(activation):
    """Layers are named image, conv_i, activation_i (absent for "none"), pool_i, dropout_i, flatten, classes."""
    model = build_model(CNN.replace(conv_blocks=2, activation=activation, filters=5, kernel_size=5))
    names = [layer.name for layer in model.layers]
    with_activation = activation != "none"
    block = ["conv_{i}", *(["activation_{i}"] if with_activation else []), "pool_{i}", "dropout_{i}"]
    assert names == ["image", *[name.format(i=i) for i in (1, 2) for name in block], "flatten", "classes"]
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes["image"] == (28, 28, 1)
    assert shapes["conv_1"] == (28, 28, 5) and shapes["pool_1"] == (14, 14, 5)
    assert shapes["conv_2"] == (14, 14, 5) and shapes["pool_2"] == (7, 7, 5)
    assert shapes["flatten"] == (245,) and shapes["classes"] == (10,)
    conv = model.get_layer("conv_2")
    assert conv.kernel.shape == (5, 5, 5, 5) and conv.padding == "same"
    assert model.get_layer("dropout_1").rate == pytest.approx(0.2)
    assert model.get_layer("classes").activation.__name__ == "softmax"


def test_the_model_computes_a_convolution_then_pooling():
    """With set weights, the model's output equals scipy's correlation, ReLU, 2x2 max pooling and the softmax."""
    from scipy.signal import correlate2d

    config = CNN.replace(filters=2, dropout=0.0)
    model = build_model(config)
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 3, 1, 2)).astype(np.float32)
    bias = np.array([0.1, -0.2], np.float32)
    dense = rng.standard_normal((14 * 14 * 2, 10)).astype(np.float32) * 0.1
    dense_bias = rng.standard_normal(10).astype(np.float32)
    model.set_weights([kernel, bias, dense, dense_bias])
    image = rng.random((28, 28), dtype=np.float32)
    maps = np.stack([correlate2d(image, kernel[:, :, 0, f], mode="same") + bias[f] for f in range(2)], axis=-1)
    pooled = np.maximum(maps, 0).reshape(14, 2, 14, 2, 2).max(axis=(1, 3))
    logits = pooled.reshape(-1) @ dense + dense_bias
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    got = model.predict(image[None, :, :, None], verbose=0)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_label_names_the_cnn():
    """The label reads like the spec's example and names blocks only when there are two."""
    assert CNN.label == "CNN 8 filters 3x3, ReLU, dropout 0.2"
    assert CNN.replace(filters=1, kernel_size=5, conv_blocks=2, activation="none").label == (
        "CNN 1 filter 5x5, 2 blocks, none, dropout 0.2"
    )


def test_settings_another_architecture_does_not_read_stay_at_their_defaults():
    """A CNN keeps hidden_units at its default; a dense net keeps filters, kernel and blocks at theirs."""
    cnn = TrainingConfig(architecture="cnn", hidden_units=(78, 78), filters=16)
    assert cnn.hidden_units == (392,) and cnn.filters == 16
    assert cnn == TrainingConfig(architecture="cnn", filters=16)
    dense = TrainingConfig(hidden_units=(78,), filters=16, kernel_size=5, conv_blocks=2)
    assert (dense.filters, dense.kernel_size, dense.conv_blocks) == (8, 3, 1)
    assert count_params(dense) == count_params(TrainingConfig(hidden_units=(78,)))
    # Out of range is refused even where it would be ignored.
    with pytest.raises(ValueError, match="filters per convolution must be 1 to 64"):
        TrainingConfig(filters=0)
    with pytest.raises(ValueError, match="neurons must be 1 to 4,096"):
        TrainingConfig(architecture="cnn", hidden_units=(5000,))


def test_to_dict_round_trip_and_old_saved_configs_load():
    """A CNN config survives to_dict/from_dict; a saved config from before the CNN loads as before."""
    config = CNN.replace(filters=12, kernel_size=5, conv_blocks=2)
    assert TrainingConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    old = {"architecture": "article", "hidden_units": [78, 78], "activation": "none", "dropout": 0.5}
    loaded = TrainingConfig.from_dict(old)
    assert loaded.hidden_units == (78, 78) and (loaded.filters, loaded.kernel_size, loaded.conv_blocks) == (8, 3, 1)


def test_sizes_per_sample_by_hand():
    """Hidden values are the convolutions' outputs; FLOPs are 2 x the multiply-adds of each layer."""
    config = CNN.replace(filters=8, kernel_size=5, conv_blocks=2)
    assert activations_per_sample(config) == 28 * 28 * 8 + 14 * 14 * 8
    assert flops_per_sample(config) == 2 * (28 * 28 * 25 * 1 * 8 + 14 * 14 * 25 * 8 * 8 + 7 * 7 * 8 * 10)
    parts = memory_parts(CNN, "keras")
    assert parts["weights"] == 15_770 * 4 * 6
    assert parts["work"] == max(128 * 28 * 28 * 8 * 4 * 6, 256 * 28 * 28 * 8 * 4 * 2)


def test_the_cnn_trains_with_keras_everywhere(monkeypatch):
    """auto picks Keras fit for the CNN on a CPU and on a GPU, even where JAX is installed."""
    monkeypatch.setattr(shallow_config.importlib.util, "find_spec", lambda name: object())
    assert resolve_engine(CNN, has_gpu=False) == "keras"
    assert resolve_engine(CNN, has_gpu=True) == "keras"
    assert resolve_engine(TrainingConfig(), has_gpu=True) == "jax"


@pytest.mark.parametrize("engine", ["numpy", "jax"])
def test_the_hand_written_engines_refuse_the_cnn(engine):
    """Asking for numpy or jax for the CNN is refused with the engines that can train it, in the
    configuration and in the engines themselves."""
    message = (
        f"The {engine} engine trains dense layers only, not the CNN's convolutions; choose engine 'auto' or 'keras'"
    )
    with pytest.raises(ValueError, match=message):
        CNN.replace(engine=engine)
    with pytest.raises(ValueError, match=message):
        make_engine(CNN, build_model(CNN), engine)


def test_the_lecturers_cap_advises_for_the_cnn():
    """A CNN run over the cap is refused with the epochs that fit; with no way out, it says fewer filters."""
    config = CNN.replace(epochs=50)
    seconds = check_job_minutes(config, None)
    assert seconds > 0
    with pytest.raises(ValueError, match="at most") as refused:
        check_job_minutes(config, seconds / 60 / 10)
    assert "lecturer's cap" in str(refused.value)
    with pytest.raises(ValueError, match="fewer filters or one convolution block"):
        check_job_minutes(config.replace(batch_size=2048, epochs=5000), 1e-9)


def test_calibration_times_the_cnn_on_keras():
    """Calibration builds the CNN, times Keras' batches on real images and gives a positive epoch."""
    from core.shallow.calibration import calibrate

    timing = calibrate(TINY)
    assert timing.engine == "keras"
    assert timing.seconds_per_batch > 0 and timing.seconds_per_validation_image > 0
    assert timing.seconds_per_epoch(TINY) > 0


def test_a_tiny_cnn_trains_through_the_queue_and_saves_its_keras_file(tmp_path):
    """A 4-filter CNN learns on 600 images in a queued job; the run holds the config and a .keras
    file with the spec's layer names and the convolution's weights."""
    queue = JobQueue(store=RunStore(tmp_path / "runs.sqlite"))
    try:
        progress = queue.submit(TINY).wait(300)
    finally:
        queue.close()
    assert progress.status == "finished", progress.error
    assert progress.engine == "keras"
    assert progress.history[-1]["loss"] < progress.history[0]["loss"]
    assert progress.evaluation["accuracy"] > 0.5
    run = queue.store.get_run(progress.run_id)
    assert (
        run.label == "CNN 4 filters 3x3, ReLU, dropout 0.2"
        and run.params == count_params(TINY) == 4 * 9 + 4 + 14 * 14 * 4 * 10 + 10
    )
    assert TrainingConfig.from_dict(run.config) == TINY
    with zipfile.ZipFile(run.model_path) as archive:
        layers = json.loads(archive.read("config.json"))["config"]["layers"]
        assert [layer["name"] for layer in layers] == [
            *("image", "conv_1", "activation_1", "pool_1", "dropout_1", "flatten", "classes")
        ]
        import h5py

        # Keras 3 files a layer's variables under its class's snake-case name, not its own name.
        with archive.open("model.weights.h5") as handle, h5py.File(handle) as weights:
            assert weights["layers/conv2d/vars/0"].shape == (3, 3, 1, 4)
            assert weights["layers/dense/vars/0"].shape == (14 * 14 * 4, 10)


def cli(*args, db):
    return subprocess.run(
        [sys.executable, "-m", "core.shallow", *args, "--db", str(db)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_command_line_trains_a_cnn_and_prints_its_config(tmp_path):
    """`--architecture cnn --filters 2 --kernel-size 5 --conv-blocks 2 --json` trains that CNN and reports it."""
    result = cli(
        *("--architecture", "cnn", "--filters", "2", "--kernel-size", "5", "--conv-blocks", "2"),
        *("--activation", "relu", "--dropout", "0.2", "--learning-rate", "3e-3"),
        *("--epochs", "1", "--train-limit", "300", "--json"),
        db=tmp_path / "runs.sqlite",
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout.strip().splitlines()[-1])
    config = TrainingConfig.from_dict(output["config"])
    assert (config.architecture, config.filters, config.kernel_size, config.conv_blocks) == ("cnn", 2, 5, 2)
    assert output["params"] == (25 * 2 + 2) + (25 * 2 * 2 + 2) + 7 * 7 * 2 * 10 + 10
    assert output["engine"] == "keras" and Path(output["model_path"]).exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--filters", "0"], "--filters: The CNN's filters per convolution must be 1 to 64, not 0"),
        (["--filters", "65"], "--filters: The CNN's filters per convolution must be 1 to 64, not 65"),
        (["--kernel-size", "4"], "--kernel-size: invalid choice: 4 (choose from 3, 5)"),
        (["--conv-blocks", "3"], "--conv-blocks: invalid choice: 3 (choose from 1, 2)"),
        (["--engine", "numpy"], "The numpy engine trains dense layers only"),
    ],
)
def test_the_command_line_refuses_bad_cnn_settings(tmp_path, args, message):
    """Out-of-range CNN settings exit with status 2 and the reason, before anything trains."""
    result = cli("--architecture", "cnn", *args, db=tmp_path / "runs.sqlite")
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def sweep_accuracies() -> dict[int, float]:
    """Test accuracy (%) per F from the saved sweep, `python -m bench cnn` (bench/results/cnn.json)."""
    rows = json.loads((ROOT / "bench" / "results" / "cnn.json").read_text())["rows"]
    return {
        int(row["metric"].split(":")[0].removeprefix("F=")): row["value"]
        for row in rows
        if row["metric"].endswith(": test accuracy")
    }


def test_the_cnn_presets_are_what_the_sweep_measured():
    """Each CNN preset is the sweep's network with the sweep's settings and its measured accuracy; the
    one that beats AlexNet has the fewest parameters of every swept CNN above 86.43%."""
    from bench.bench_cnn import SETTINGS
    from core.shallow.config import article_results, cnn_presets

    measured = sweep_accuracies()
    presets = cnn_presets()
    assert presets and all("bench cnn" in preset.source and "article" in preset.source for preset in presets)
    for preset in presets:
        config = preset.config
        sweep_config = TrainingConfig(architecture="cnn", filters=config.filters, **SETTINGS)
        assert config == sweep_config
        assert 100 * preset.measured["test_accuracy"] == pytest.approx(measured[config.filters], abs=0.005)
    alexnet = article_results()[1]
    beating = [filters for filters, accuracy in measured.items() if accuracy > 100 * alexnet]
    smallest = min(beating, key=lambda filters: count_params(CNN.replace(filters=filters)))
    winner = next(preset for preset in presets if preset.measured["test_accuracy"] > alexnet)
    assert winner.config.filters == smallest and "AlexNet" in winner.title
