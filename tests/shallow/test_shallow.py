"""The training configuration, its estimates, and the Keras models it builds."""

from __future__ import annotations

import pytest

from core.shallow.config import (
    TrainingConfig,
    article_results,
    build_model,
    check_affordable,
    count_params,
    estimate,
    matching_article_result,
)

# Parameter counts from the issue (and the article's own model summary for N = 784).
ARTICLE_COUNTS = {(7,): 54_904, (78,): 611_686, (392,): 3_074_074, (784,): 6_148_138, (78, 78): 617_848}


@pytest.mark.parametrize("units, expected", ARTICLE_COUNTS.items())
def test_article_parameter_counts(units, expected):
    """Hand counts match the published totals and Keras' own count of the built model."""
    config = TrainingConfig(hidden_units=units)
    assert count_params(config) == expected
    assert build_model(config).count_params() == expected


def test_conventional_mlp_parameter_count():
    """Flatten first, then Dense(392): 784*392 + 392 + 392*10 + 10 = 311,650."""
    config = TrainingConfig(architecture="mlp", hidden_units=(392,))
    assert count_params(config) == 784 * 392 + 392 + 392 * 10 + 10 == 311_650
    assert build_model(config).count_params() == 311_650


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "prelu", "elu"])
def test_activations_build_and_count(activation):
    """Every activation builds, and the hand count (PReLU's per-element slopes included) agrees."""
    for architecture in ("article", "mlp"):
        config = TrainingConfig(architecture=architecture, hidden_units=(6, 5), activation=activation)
        model = build_model(config)
        assert model.count_params() == count_params(config)
        assert any(activation.replace("_", "") in layer.__class__.__name__.lower() for layer in model.layers)


def test_article_model_shapes():
    """The hidden output is (28, 28, N): the same N neurons applied to every pixel."""
    model = build_model(TrainingConfig(hidden_units=(12,)))
    assert tuple(model.get_layer("hidden_1").output.shape) == (None, 28, 28, 12)
    assert tuple(model.get_layer("flatten").output.shape) == (None, 28 * 28 * 12)
    assert model.output.shape[-1] == 10


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"hidden_units": ()}, "1 to 3 hidden layers"),
        ({"hidden_units": (1, 2, 3, 4)}, "1 to 3 hidden layers"),
        ({"hidden_units": (0,)}, "neurons"),
        ({"dropout": 1.0}, "Dropout"),
        ({"dropout": -0.1}, "Dropout"),
        ({"learning_rate": 0}, "learning rate"),
        ({"epochs": 0}, "Epochs"),
        ({"patience": 0}, "Patience"),
        ({"train_limit": 5}, "training-set size"),
        ({"train_limit": 54_001}, "training-set size"),
        ({"batch_size": 500, "train_limit": 100}, "batch size"),
        ({"activation": "tanh"}, "Unknown activation"),
        ({"optimizer": "adagrad"}, "Unknown optimizer"),
        ({"architecture": "resnet"}, "Unknown architecture"),
        ({"architecture": "cnn", "filters": 0}, "filters per convolution must be 1 to 64"),
        ({"architecture": "cnn", "filters": 65}, "filters per convolution must be 1 to 64"),
        ({"architecture": "cnn", "kernel_size": 4}, "kernel size must be 3"),
        ({"architecture": "cnn", "conv_blocks": 3}, "1 or 2 convolution blocks"),
        ({"architecture": "cnn", "engine": "numpy"}, "numpy engine trains dense layers only"),
        ({"validation_split": 0.9}, "validation split"),
        ({"engine": "numpy", "mixed_precision": True}, "float32"),
    ],
)
def test_invalid_settings_raise_actionable_errors(changes, message):
    """Impossible settings raise ValueError naming the setting and its allowed range."""
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**changes)


def test_unaffordable_settings_are_refused_before_any_work():
    """Three layers of 4,096 per-pixel neurons in batches of 4,096 cannot fit in memory: refused with advice."""
    with pytest.raises(ValueError, match="GiB"):
        check_affordable(TrainingConfig(hidden_units=(4096, 4096, 4096), batch_size=4096))
    cost = check_affordable(TrainingConfig(hidden_units=(7,), train_limit=1000))
    assert cost.params == 54_904 and cost.seconds_per_epoch < 60


def test_estimates_grow_with_the_model():
    """More neurons cost more memory and time; on a CPU numpy trains every dense network (the MLP too), on a GPU JAX."""
    small, large = estimate(TrainingConfig(hidden_units=(78,))), estimate(TrainingConfig(hidden_units=(784,)))
    assert large.memory_bytes > small.memory_bytes and large.seconds_per_epoch > small.seconds_per_epoch
    assert small.engine == "numpy"
    assert estimate(TrainingConfig(activation="relu")).engine == "numpy"
    assert estimate(TrainingConfig(hidden_units=(78, 78, 78), activation="elu")).engine == "numpy"
    assert estimate(TrainingConfig(architecture="mlp", hidden_units=(78, 78, 78), activation="elu")).engine == "numpy"
    assert estimate(TrainingConfig(hidden_units=(392,)), has_gpu=True).engine == "jax"  # JAX is in the dev set.
    assert estimate(TrainingConfig(hidden_units=(392,), mixed_precision=True)).engine == "keras"


def test_config_round_trips_through_a_dict():
    """to_dict/from_dict round-trip, and unknown keys are refused."""
    config = TrainingConfig(hidden_units=(78, 78), dropout=0.5, seed=3)
    assert TrainingConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="Unknown setting"):
        TrainingConfig.from_dict({"neurons": 3})


def test_article_results_are_the_published_numbers():
    """The presets hold the article's numbers and configurations exactly."""
    results, alexnet = article_results()
    by_id = {result.id: result for result in results}
    assert alexnet == 0.8643
    best = by_id["392-none-d0.8"]
    assert best.reported == {
        "test_accuracy": 0.8636,
        "test_loss": 0.38,
        "test_precision": 0.8877,
        "test_recall": 0.8455,
        "epochs": 377,
    }
    assert best.config == TrainingConfig(hidden_units=(392,), activation="none", dropout=0.8)
    assert by_id["392-relu-d0.5"].reported == {"test_accuracy": 0.8620, "test_loss": 0.39}
    assert by_id["392-none-d0.5"].reported["test_accuracy"] == 0.8469
    assert by_id["392-relu-d0.8"].reported["epochs"] == 68
    assert by_id["78x2-d0.5"].reported["test_loss"] == 0.3691
    assert by_id["392x2-d0.5"].config.hidden_units == (392, 392)
    assert matching_article_result(TrainingConfig(hidden_units=(78, 78), dropout=0.5)).id == "78x2-d0.5"
    assert matching_article_result(TrainingConfig(hidden_units=(10,))) is None


def test_durations_read_naturally():
    """Durations are written the way a person would say them."""
    from core.shallow.config import format_duration

    assert [format_duration(s) for s in (0, 0.3, 45, 720, 12600)] == ["0 s", "under 1 s", "45 s", "12 min", "3.5 h"]


def test_memory_covers_keras_prediction_batches():
    """4,096 ReLU neurons at batch 16: the work estimate holds one (256, 28, 28, 4096) float32 prediction tensor."""
    from core.shallow.config import PREDICT_BATCH, memory_parts

    config = TrainingConfig(hidden_units=(4096,), activation="relu", batch_size=16)
    one_tensor = PREDICT_BATCH * 28 * 28 * 4096 * 4  # 3.1 GiB, counted by hand.
    assert memory_parts(config, "keras")["work"] >= one_tensor


@pytest.mark.parametrize(
    "settings",
    [
        {"hidden_units": (1,), "dropout": 0.5, "batch_size": 2048, "train_limit": 2048},
        # Two layers: the dense engine keeps both layers' outputs for the backward pass.
        {"hidden_units": (24, 24), "activation": "relu", "dropout": 0.5, "batch_size": 256, "train_limit": 256},
        {"hidden_units": (16, 16), "activation": "prelu", "dropout": 0.5, "batch_size": 256, "train_limit": 256},
    ],
)
def test_memory_covers_the_numpy_engines_work_arrays(settings):
    """The numpy engine's measured peak for one training step (tracemalloc) is within its estimate.

    Measured in a fresh process: threads that other tests leave behind would allocate while
    tracemalloc counts.
    """
    import subprocess
    import sys

    from core.labs import ROOT
    from core.shallow.config import memory_parts

    code = f"""
import tracemalloc
import numpy as np
from core.shallow.config import TrainingConfig, build_model
from core.shallow.jobs import make_engine
config = TrainingConfig(**{settings!r})
engine = make_engine(config, build_model(config), "numpy")
batch = config.batch_size
rng = np.random.default_rng(0)
images = rng.random((batch, 784), dtype=np.float32)
labels = rng.integers(0, 10, batch)
from core.shallow.jobs import warm_up_engines
warm_up_engines()  # The compiler's one-time allocations are not the step's.
tracemalloc.start()
engine.train_batch(images, labels)
print(type(engine).__name__, tracemalloc.get_traced_memory()[1])
"""
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=300
    )
    name, peak = completed.stdout.strip().splitlines()[-1].split()
    config = TrainingConfig(**settings)
    assert name == ("NumpyPerPixelEngine" if len(config.hidden_units) == 1 else "NumpyDenseEngine")
    parts = memory_parts(config, "numpy")
    assert int(peak) <= parts["work"] + parts["weights"]


def test_available_memory_is_capped_by_the_cgroup_limit(tmp_path):
    """A container's cgroup v2 limit (limit minus usage) caps MemAvailable; 'max' means no cap."""
    from core.shallow.config import available_memory_bytes, cgroup_available_bytes

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 67108864 kB\nMemAvailable: 33554432 kB\n")  # 32 GiB available.
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    (cgroup / "memory.max").write_text("4294967296\n")  # 4 GiB.
    (cgroup / "memory.current").write_text("1073741824\n")  # 1 GiB used.
    assert cgroup_available_bytes(cgroup) == 3 * 2**30
    assert available_memory_bytes(meminfo, cgroup) == 3 * 2**30
    (cgroup / "memory.max").write_text("max\n")
    assert available_memory_bytes(meminfo, cgroup) == 32 * 2**30
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "memory" / "memory.limit_in_bytes").write_text(str(2 * 2**30))
    (v1 / "memory" / "memory.usage_in_bytes").write_text(str(2**29))
    assert available_memory_bytes(meminfo, v1) == 2 * 2**30 - 2**29
