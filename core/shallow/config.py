"""The article's shallow networks: configuration, parameter/memory/time estimates, Keras model.

The article ("Fine-Tuning Shallow Networks with Keras", Fashion-MNIST) applies `Dense(N)` to
the last axis of a (28, 28, 1) image, so the same N neurons see every pixel and the hidden
output is (28, 28, N); dropout follows, then `Flatten` and `Dense(10, softmax)`. The
conventional MLP flattens first. The shallow CNN, the article's own "future work", has one or
two blocks of `Conv2D(F, k x k, padding="same")`, activation, `MaxPooling2D(2)` and dropout,
then `Flatten` and `Dense(10, softmax)`. `TrainingConfig` holds every setting, validated up front;
`build_model(config)` returns the Keras model that is the source of truth for the weights,
whichever engine trains it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

IMAGE_SHAPE = (28, 28, 1)
PIXELS = 28 * 28
NUM_CLASSES = 10
TRAIN_POOL = 60000

ARCHITECTURES = {
    "article": "Per-pixel network (the article): Dense(N) on each pixel, then Flatten",
    "mlp": "Conventional MLP: Flatten first, then Dense(N)",
    "cnn": "Shallow CNN: Conv2D, pooling, then Dense(10)",
}

KERNEL_SIZES = (3, 5)
"""The CNN's square kernel sides on offer."""
CONV_BLOCKS = (1, 2)
"""The CNN's convolution blocks (Conv2D, activation, pooling, dropout) on offer."""

# Activation name -> (label, layer factory). Adding one is one line; "none" is linear.
ACTIVATIONS = {
    "none": ("none (linear)", None),
    "relu": ("ReLU", lambda keras, **kw: keras.layers.ReLU(**kw)),
    "leaky_relu": ("LeakyReLU (0.3)", lambda keras, **kw: keras.layers.LeakyReLU(negative_slope=0.3, **kw)),
    "prelu": (
        "PReLU (init 0.3)",
        lambda keras, **kw: keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(0.3), **kw),
    ),
    "elu": ("ELU", lambda keras, **kw: keras.layers.ELU(alpha=1.0, **kw)),
}

# Optimizer name -> (label, factory(keras, learning_rate)); the article's settings.
OPTIMIZERS = {
    "adam": (
        "Adam (epsilon 1e-4)",
        lambda keras, rate: keras.optimizers.Adam(learning_rate=rate, epsilon=1e-4),
    ),
    "rmsprop": (
        "RMSprop (epsilon 1e-4)",
        lambda keras, rate: keras.optimizers.RMSprop(learning_rate=rate, epsilon=1e-4),
    ),
    "sgd": (
        "SGD (momentum 0.85)",
        lambda keras, rate: keras.optimizers.SGD(learning_rate=rate, momentum=0.85),
    ),
}

ENGINES = {
    "auto": "the fastest engine that trains this exact model",
    "numpy": "hand-written numpy engine for every network here (CPU, float32)",
    "keras": "Keras model.fit (any model; the GPU when Keras sees one)",
    "jax": "compiled JAX steps (any model; the GPU when JAX sees one, else the CPU)",
}

MAX_LAYERS = 3
MAX_UNITS = 4096
MAX_EPOCHS = 5000
MIN_VALIDATION_SPLIT, MAX_VALIDATION_SPLIT = 0.01, 0.5


@dataclass(frozen=True)
class Limit:
    """The inclusive range [low, high] of one numeric setting, shared by the config, the page and the CLI.

    Attributes:
        low, high: the smallest and largest value accepted.
        what: the setting as a sentence starts ("Dropout (the share dropped)").
        step: the page's widget step (None for integers).
    """

    low: float
    high: float
    what: str
    step: float | None = None

    def check(self, value) -> None:
        """Raises ValueError naming the setting and its range when `value` is outside it."""
        if not self.low <= value <= self.high:
            raise ValueError(f"{self.what} must be {_number(self.low)} to {_number(self.high)}, not {_number(value)}.")


def _number(value) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


LIMITS = {
    "hidden_units": Limit(1, MAX_UNITS, "Each hidden layer's neurons"),
    "filters": Limit(1, 64, "The CNN's filters per convolution"),
    "dropout": Limit(0.0, 0.99, "Dropout (the share of hidden values dropped)", step=0.01),
    "learning_rate": Limit(1e-6, 1.0, "The learning rate"),
    "batch_size": Limit(1, TRAIN_POOL - round(TRAIN_POOL * MIN_VALIDATION_SPLIT), "The batch size"),
    "epochs": Limit(1, MAX_EPOCHS, "Epochs"),
    "patience": Limit(1, MAX_EPOCHS, "Patience (epochs without a better validation loss)"),
    "train_limit": Limit(10, TRAIN_POOL - round(TRAIN_POOL * MIN_VALIDATION_SPLIT), "The training-set size"),
    "validation_split": Limit(MIN_VALIDATION_SPLIT, MAX_VALIDATION_SPLIT, "The validation split", step=0.01),
    "seed": Limit(0, 2**31 - 1, "The seed"),
}
"""One rule per numeric setting: `TrainingConfig` checks it, the page's widgets take their
ranges from it, the command line checks it while parsing. Two settings also depend on others:
the training-set size on the validation split, the batch size on the training-set size."""
MEMORY_FRACTION = 0.8
"""Refuse settings whose estimated peak memory exceeds this share of the memory available."""

MAX_SECONDS_PER_EPOCH = float(os.environ.get("EXPLORER_MAX_SECONDS_PER_EPOCH", 4 * 3600))
"""Refuse settings estimated to take longer than this per epoch on this machine."""


@dataclass(frozen=True)
class TrainingConfig:
    """Every setting of one training run; invalid or unaffordable values raise ValueError.

    Defaults are the article's best model: 392 neurons (50% of 784), no activation, 80%
    dropout, Adam (lr 1e-4, epsilon 1e-4), batch 128, 10% validation, patience 50.

    Each architecture reads its own shape settings: the article's net and the MLP
    `hidden_units`, the CNN `filters`, `kernel_size` and `conv_blocks`. The others are kept at
    their defaults, so two configs of the same network compare (and cache) as equal;
    `activation` and `dropout` apply to all three.
    """

    architecture: str = "article"
    hidden_units: tuple[int, ...] = (392,)
    activation: str = "none"
    dropout: float = 0.8
    optimizer: str = "adam"
    learning_rate: float = 1e-4
    batch_size: int = 128
    epochs: int = 377
    patience: int = 50
    train_limit: int | None = None
    validation_split: float = 0.1
    seed: int = 0
    mixed_precision: bool = False
    engine: str = "auto"
    filters: int = 8
    kernel_size: int = 3
    conv_blocks: int = 1

    def __post_init__(self):
        units = self.hidden_units
        if isinstance(units, int):
            units = (units,)
        object.__setattr__(self, "hidden_units", tuple(int(u) for u in units))
        _check_choice("architecture", self.architecture, ARCHITECTURES)
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("engine", self.engine, ENGINES)
        if not 1 <= len(self.hidden_units) <= MAX_LAYERS:
            raise ValueError(f"Use 1 to {MAX_LAYERS} hidden layers, not {len(self.hidden_units)}.")
        for units in self.hidden_units:
            LIMITS["hidden_units"].check(units)
        LIMITS["filters"].check(self.filters)
        if self.kernel_size not in KERNEL_SIZES:
            raise ValueError(f"The CNN's kernel size must be 3 (3 x 3) or 5 (5 x 5), not {self.kernel_size}.")
        if self.conv_blocks not in CONV_BLOCKS:
            raise ValueError(f"The CNN has 1 or 2 convolution blocks, not {self.conv_blocks}.")
        # Valid values another architecture reads go back to their defaults (see the class docstring).
        ignored = ("hidden_units",) if self.is_cnn else ("filters", "kernel_size", "conv_blocks")
        for name in ignored:
            object.__setattr__(self, name, _DEFAULTS[name])
        if self.engine in ("numpy", "jax"):
            refuse_convolutions(self, self.engine)
        for name in ("dropout", "learning_rate", "epochs", "patience", "validation_split", "seed"):
            LIMITS[name].check(getattr(self, name))
        pool = self.train_pool
        if self.train_limit is not None and not LIMITS["train_limit"].low <= self.train_limit <= pool:
            raise ValueError(
                f"The training-set size must be 10 to {pool:,} images (the {pool:,} left after the "
                f"{self.validation_split:.0%} validation split), not {self.train_limit}."
            )
        if not 1 <= self.batch_size <= self.train_size:
            raise ValueError(
                f"The batch size must be 1 to {self.train_size:,} (the training-set size), not {self.batch_size}."
            )
        if self.engine == "jax" and importlib.util.find_spec("jax") is None:
            raise ValueError(
                "The JAX engine needs JAX, which is not installed here (`make run GPU=1` installs it on a "
                "GPU server; `pip install jax` on a CPU); choose engine 'auto' or 'keras'."
            )
        if self.engine == "numpy" and self.mixed_precision:
            raise ValueError("The numpy engine computes in float32; choose engine 'keras' for mixed precision.")

    # Derived sizes -------------------------------------------------------------------------
    @property
    def train_pool(self) -> int:
        """Training images left after the validation split (54,000 at 10%)."""
        return TRAIN_POOL - self.validation_count

    @property
    def validation_count(self) -> int:
        return int(round(TRAIN_POOL * self.validation_split))

    @property
    def train_size(self) -> int:
        return self.train_limit or self.train_pool

    @property
    def batches_per_epoch(self) -> int:
        return -(-self.train_size // self.batch_size)

    @property
    def is_cnn(self) -> bool:
        return self.architecture == "cnn"

    @property
    def fits_numpy_engine(self) -> bool:
        """The two-product per-pixel engine's algebra holds (one linear per-pixel layer, the
        article's best); every other network trains on the general numpy engine."""
        return self.architecture == "article" and len(self.hidden_units) == 1 and self.activation == "none"

    @property
    def label(self) -> str:
        """A short human name, e.g. "392 neurons, none, dropout 0.8" or "CNN 8 filters 3x3, ReLU, dropout 0.2"."""
        if self.is_cnn:
            blocks = "" if self.conv_blocks == 1 else f", {self.conv_blocks} blocks"
            return (
                f"CNN {self.filters} filter{'s' if self.filters > 1 else ''} {self.kernel_size}x{self.kernel_size}"
                f"{blocks}, {ACTIVATIONS[self.activation][0].split(' (')[0]}, dropout {self.dropout:g}"
            )
        layers = " + ".join(str(u) for u in self.hidden_units)
        kind = "" if self.architecture == "article" else "MLP "
        return f"{kind}{layers} neurons, {self.activation}, dropout {self.dropout:g}"

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["hidden_units"] = list(self.hidden_units)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrainingConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"Unknown setting(s): {', '.join(sorted(unknown))}.")
        values = dict(data)
        if "hidden_units" in values:
            values["hidden_units"] = tuple(values["hidden_units"])
        return cls(**values)

    def replace(self, **changes) -> TrainingConfig:
        return dataclasses.replace(self, **changes)


_DEFAULTS = {field.name: field.default for field in dataclasses.fields(TrainingConfig)}


def refuse_convolutions(config: TrainingConfig, engine: str) -> None:
    """Raises ValueError for the CNN: the hand-written numpy and JAX engines train dense layers only.

    Raises:
        ValueError: `config` is the CNN; the message names the engines that train it.
    """
    if config.is_cnn:
        raise ValueError(
            f"The {engine} engine trains dense layers only, not the CNN's convolutions; "
            "choose engine 'auto' or 'keras' for the CNN."
        )


def _check_choice(name: str, value, table: dict) -> None:
    if value not in table:
        raise ValueError(f"Unknown {name} {value!r}; choose one of: {', '.join(table)}.")


# Estimates -------------------------------------------------------------------------------------
def conv_sides(config: TrainingConfig) -> list[int]:
    """The CNN's image side entering each convolution block: 28, then 14 (pooling halves it)."""
    return [IMAGE_SHAPE[0] // 2**block for block in range(config.conv_blocks)]


def _count_cnn_params(config: TrainingConfig) -> int:
    """Each block: F kernels of k x k x (channels in) and F biases ("same" padding keeps the side);
    PReLU a slope per element of the block's (side, side, F) output; then Dense(10) on the
    flattened (side / 2, side / 2, F) output of the last pooling."""
    filters, area = config.filters, config.kernel_size**2
    total, channels = 0, IMAGE_SHAPE[2]
    for side in conv_sides(config):
        total += area * channels * filters + filters
        if config.activation == "prelu":
            total += side * side * filters
        channels = filters
    last = conv_sides(config)[-1] // 2
    return total + last * last * filters * NUM_CLASSES + NUM_CLASSES


def count_params(config: TrainingConfig) -> int:
    """Trainable parameters, counted by hand (tests check them against Keras' own count)."""
    if config.is_cnn:
        return _count_cnn_params(config)
    units = config.hidden_units
    total = 0
    if config.architecture == "article":
        inputs = 1
        for n in units:
            total += inputs * n + n
            inputs = n
        total += PIXELS * units[-1] * NUM_CLASSES + NUM_CLASSES
    else:
        inputs = PIXELS
        for n in units:
            total += inputs * n + n
            inputs = n
        total += inputs * NUM_CLASSES + NUM_CLASSES
    if config.activation == "prelu":
        # PReLU keeps one slope per element of its input (minus the batch axis).
        per_layer = [PIXELS * n if config.architecture == "article" else n for n in units]
        total += sum(per_layer)
    return total


def activations_per_sample(config: TrainingConfig) -> int:
    """Hidden values one image produces (all layers): 784 x N per layer for the article's net,
    the convolutions' (side, side, F) outputs for the CNN."""
    if config.is_cnn:
        return sum(side * side * config.filters for side in conv_sides(config))
    per_pixel = PIXELS if config.architecture == "article" else 1
    return sum(per_pixel * n for n in config.hidden_units)


def flops_per_sample(config: TrainingConfig) -> float:
    """Multiply-adds x 2 of one forward pass."""
    if config.is_cnn:
        flops, channels = 0.0, IMAGE_SHAPE[2]
        for side in conv_sides(config):
            flops += 2 * side * side * config.kernel_size**2 * channels * config.filters
            channels = config.filters
        last = conv_sides(config)[-1] // 2
        return flops + 2 * last * last * config.filters * NUM_CLASSES
    units = config.hidden_units
    if config.architecture == "article":
        flops, inputs = 0.0, 1
        for n in units:
            flops += 2 * PIXELS * inputs * n
            inputs = n
        return flops + 2 * PIXELS * units[-1] * NUM_CLASSES
    flops, inputs = 0.0, PIXELS
    for n in units:
        flops += 2 * inputs * n
        inputs = n
    return flops + 2 * inputs * NUM_CLASSES


def resolve_engine(config: TrainingConfig, has_gpu: bool = False) -> str:
    """The engine that will train this config.

    On a GPU with JAX installed (`make run GPU=1`): the compiled JAX engine, for every dense network.
    On a CPU: numpy for every network but the CNN (`NumpyDenseEngine` trains the MLP in 2 ms a
    batch where `fit` takes 6 ms here, side by side, BENCHMARKS.md).
    The CNN always trains with Keras `fit` (on the GPU when Keras sees one): the hand-written
    engines have no convolutions.
    """
    if config.engine != "auto":
        return config.engine
    if config.is_cnn:
        return "keras"
    if has_gpu and importlib.util.find_spec("jax") is not None:
        return "jax"
    # Mixed precision is a Keras feature (bf16/fp16 layers); the numpy engine is float32.
    return "numpy" if not has_gpu and not config.mixed_precision else "keras"


PREDICT_BATCH = 256
"""The batch `KerasEngine.predict` uses for validation and test predictions."""


def memory_parts(config: TrainingConfig, engine: str | None = None) -> dict[str, int]:
    """The parts of a run's peak memory, in bytes: data, weights, work (batch tensors), runtime.

    `work` is the larger of training's batch tensors and prediction's: Keras predicts in
    batches of `PREDICT_BATCH` whatever the training batch, so a small training batch with
    many neurons peaks at the first validation; the numpy engine keeps, besides its 0/1
    mask, two (784, batch, 20) float32 arrays per step.
    """
    engine = engine or resolve_engine(config)
    params = count_params(config)
    per_sample = activations_per_sample(config) * 4
    if engine == "numpy":
        # The boolean mask (one byte per value) and its random bits, the per-pixel products
        # and the backward pass's stacked gradients, and the batch with its transpose.
        train = config.batch_size * (per_sample * 1.5 + 2 * PIXELS * 2 * NUM_CLASSES * 4 + 2 * PIXELS * 4)
        if len(config.hidden_units) > 1:
            from core.shallow.dense_engine import kept_forward_bytes

            train += kept_forward_bytes(config)  # Deeper networks keep their forward values.
        predict = 0  # The collapsed linear map: (n, 784) @ (784, 10).
    else:
        # Keras keeps a handful of (batch, 28, 28, N) tensors per layer for the backward pass;
        # a forward pass keeps a layer's output and its activation.
        train = config.batch_size * per_sample * 6
        predict = PREDICT_BATCH * per_sample * 2
    return {
        "data": (config.train_size + config.validation_count + 10000) * PIXELS * 4,
        "weights": params * 4 * 6,  # Weights, gradients, two optimizer slots, best copy, update temp.
        "work": int(max(train, predict)),
        "runtime": int(600e6 if engine == "keras" else 150e6),  # TensorFlow itself, or numpy + buffers.
    }


def estimate_memory_bytes(config: TrainingConfig, engine: str | None = None) -> int:
    """Peak memory of a run: data, weights with optimizer state and best copy, work tensors, runtime."""
    return int(sum(memory_parts(config, engine).values()))


# Calibration constants, measured on the reference machine (AMD EPYC, 2 cores, AVX512-BF16):
# seconds per hidden activation element per training sample, and per forward FLOP. Fitted
# to measured epochs (numpy 392: 30 s; Keras 392: 134 s; Keras 392 ReLU, 78+78 and MLP 392
# within 25%); other machines scale by `machine_speed_factor()`.
_SECONDS_PER_ELEMENT = {"keras": 5.6e-9, "numpy": 1.02e-9}
_SECONDS_PER_FLOP = {"keras": 0.96e-10, "numpy": 0.34e-10}
# The JAX engine on a CPU (it is meant for GPUs): measured on a busy 2-core Intel Xeon, 392
# neurons, per-pixel ReLU 20 ms and MLP 0.5 ms per training image, scaled to an idle machine.
_SECONDS_PER_ELEMENT["jax"] = 2.5e-8
_SECONDS_PER_FLOP["jax"] = 2.7e-10
# On a GPU, relative to Keras' CPU cost of the same network: the article's model took 134 s per
# epoch with Keras on the reference CPU, 1.05 s with Keras fit on JAX and 0.28 s with a compiled
# JAX loop on an H100 (54,000 images).
_GPU_SPEEDUP = {"keras": 120.0, "jax": 450.0}
# The CNN on Keras `fit` (oneDNN convolutions): a fixed cost per image (Keras' per-batch work spread over
# 128 images) plus far less per element and per FLOP than the dense layers. Fitted to timed batches of
# 16 CNNs (F 1 to 64, k 3 and 5, one and two blocks; within -27% to +28%) on a 2-core Intel Xeon under a
# load average near 10, divided by the speed factor measured beside them (about 2); see BENCHMARKS.md.
_SECONDS_PER_SAMPLE = {"keras_cnn": 2.0e-5}
_SECONDS_PER_ELEMENT["keras_cnn"] = 1.9e-9
_SECONDS_PER_FLOP["keras_cnn"] = 1.1e-11
_REFERENCE_MATMUL_SECONDS = 0.028


@cache
def machine_speed_factor() -> float:
    """How much slower this machine is than the reference one (1.0 = as fast), measured once.

    Times a fixed matrix product that behaves like the engines' inner loops; ~0.1 s.
    """
    rng = np.random.default_rng(0)
    left = rng.standard_normal((512, 1024), dtype=np.float32)
    right = rng.standard_normal((1024, 512), dtype=np.float32)
    left @ right
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(10):
            left @ right
        best = min(best, time.perf_counter() - start)
    return max(0.25, best / _REFERENCE_MATMUL_SECONDS)


def estimate_seconds_per_epoch(config: TrainingConfig, engine: str | None = None, has_gpu: bool = False) -> float:
    """A first estimate of one epoch on this machine, before anything runs.

    Training reports measured speed from its first batches; this only guards against
    settings that cannot finish in reasonable time, and is shown as an estimate.
    """
    engine = engine or resolve_engine(config, has_gpu)
    cost_engine = "keras" if has_gpu and engine in _GPU_SPEEDUP else engine
    if config.is_cnn:
        cost_engine = "keras_cnn"
    per_sample = (
        _SECONDS_PER_SAMPLE.get(cost_engine, 0.0)
        + activations_per_sample(config) * _SECONDS_PER_ELEMENT[cost_engine]
        + flops_per_sample(config) * _SECONDS_PER_FLOP[cost_engine]
    )
    # Validation each epoch is a forward pass only: about a third of a training step.
    seconds = (config.train_size + config.validation_count / 3) * per_sample * machine_speed_factor()
    if has_gpu and engine in _GPU_SPEEDUP:
        seconds /= _GPU_SPEEDUP[engine]
    return seconds


def cgroup_available_bytes(root: str | os.PathLike = "/sys/fs/cgroup") -> int | None:
    """Memory left under this container's cgroup limit (v2 or v1), or None when there is no limit."""
    root = Path(root)
    for limit_name, usage_name in (
        ("memory.max", "memory.current"),
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),
    ):
        try:
            limit = (root / limit_name).read_text().strip()
            usage = int((root / usage_name).read_text().strip())
        except (OSError, ValueError):
            continue
        # v2 writes "max" for no limit; v1 writes a huge number (about 2**63).
        if limit == "max" or int(limit) >= 2**60:
            return None
        return max(0, int(limit) - usage)
    return None


def available_memory_bytes(meminfo: str | os.PathLike = "/proc/meminfo", cgroup_root="/sys/fs/cgroup") -> int:
    """Memory a new run can use: the kernel's MemAvailable, capped by the container's cgroup limit."""
    available = None
    try:
        for line in Path(meminfo).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    if available is None:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    in_cgroup = cgroup_available_bytes(cgroup_root)
    return available if in_cgroup is None else min(available, in_cgroup)


@dataclass(frozen=True)
class Estimate:
    """What a run will cost, shown before it starts."""

    params: int
    memory_bytes: int
    seconds_per_epoch: float
    engine: str
    memory_available: int = field(default=0)


def estimate(config: TrainingConfig, has_gpu: bool = False) -> Estimate:
    """Parameters, memory and time per epoch for a config on this machine."""
    engine = resolve_engine(config, has_gpu)
    return Estimate(
        params=count_params(config),
        memory_bytes=estimate_memory_bytes(config, engine),
        seconds_per_epoch=estimate_seconds_per_epoch(config, engine, has_gpu),
        engine=engine,
        memory_available=available_memory_bytes(),
    )


def check_affordable(config: TrainingConfig, has_gpu: bool = False) -> Estimate:
    """Returns the estimate, or raises ValueError when the run cannot fit or finish.

    Raises:
        ValueError: memory beyond what is available, or an epoch longer than the limit.
    """
    cost = estimate(config, has_gpu)
    if cost.memory_bytes > MEMORY_FRACTION * cost.memory_available:
        raise ValueError(
            f"This model needs about {cost.memory_bytes / 2**30:.1f} GiB but only "
            f"{cost.memory_available / 2**30:.1f} GiB is free: use {smaller_network(config)}, "
            "a smaller batch, or the conventional MLP."
        )
    if cost.seconds_per_epoch > MAX_SECONDS_PER_EPOCH:
        raise ValueError(
            f"One epoch would take about {format_duration(cost.seconds_per_epoch)} on this machine "
            f"(limit {format_duration(MAX_SECONDS_PER_EPOCH)}): use {smaller_network(config)}, or train "
            "on a subset of the images."
        )
    return cost


def smaller_network(config: TrainingConfig) -> str:
    """How to make this architecture's network smaller, as advice ends a sentence."""
    return "fewer filters or one convolution block" if config.is_cnn else "fewer neurons or layers"


def format_duration(seconds: float) -> str:
    """Like "under 1 s", "45 s", "12 min", "3.5 h"."""
    if seconds <= 0:
        return "0 s"
    if seconds < 1:
        return "under 1 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# The Keras model -----------------------------------------------------------------------------
def build_model(config: TrainingConfig):
    """Builds the Keras model exactly as the article does (or the conventional MLP, or the CNN).

    glorot_uniform kernels and zero biases (Keras' defaults, written out as the article
    does); with mixed precision the hidden layers compute in bf16/fp16 and the softmax
    output stays float32.

    Returns:
        A `keras.Model`, not compiled.
    """
    import keras

    hidden_dtype = mixed_precision_policy() if config.mixed_precision else None
    inputs = keras.Input(IMAGE_SHAPE, name="image")
    x = inputs
    if config.is_cnn:
        return _build_cnn(keras, config, inputs, hidden_dtype)
    if config.architecture == "mlp":
        x = keras.layers.Flatten(name="flatten_input")(x)
    for index, units in enumerate(config.hidden_units, start=1):
        x = keras.layers.Dense(
            units,
            kernel_initializer="glorot_uniform",
            bias_initializer="zeros",
            name=f"hidden_{index}",
            dtype=hidden_dtype,
        )(x)
        factory = ACTIVATIONS[config.activation][1]
        if factory is not None:
            x = factory(keras, name=f"activation_{index}", dtype=hidden_dtype)(x)
        x = keras.layers.Dropout(config.dropout, name=f"dropout_{index}", seed=config.seed + index, dtype=hidden_dtype)(
            x
        )
    if config.architecture == "article":
        x = keras.layers.Flatten(name="flatten")(x)
    outputs = _classes(keras, x)
    return keras.Model(inputs, outputs, name=f"shallow_{config.architecture}")


def _classes(keras, x):
    """The class layer every architecture ends with: Dense(10, softmax), float32 even under mixed precision."""
    return keras.layers.Dense(
        NUM_CLASSES, activation="softmax", name="classes", dtype="float32", kernel_initializer="glorot_uniform"
    )(x)


def _build_cnn(keras, config: TrainingConfig, inputs, hidden_dtype):
    """The shallow CNN: per block `conv_i` -> `activation_i` -> `pool_i` -> `dropout_i`, then
    `flatten` -> `classes` (the layer names the weight readers rely on)."""
    x = inputs
    factory = ACTIVATIONS[config.activation][1]
    for index in range(1, config.conv_blocks + 1):
        x = keras.layers.Conv2D(
            config.filters,
            config.kernel_size,
            padding="same",
            kernel_initializer="glorot_uniform",
            bias_initializer="zeros",
            name=f"conv_{index}",
            dtype=hidden_dtype,
        )(x)
        if factory is not None:
            x = factory(keras, name=f"activation_{index}", dtype=hidden_dtype)(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool_{index}", dtype=hidden_dtype)(x)
        x = keras.layers.Dropout(config.dropout, name=f"dropout_{index}", seed=config.seed + index, dtype=hidden_dtype)(
            x
        )
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = _classes(keras, x)
    return keras.Model(inputs, outputs, name="shallow_cnn")


def make_optimizer(config: TrainingConfig):
    import keras

    return OPTIMIZERS[config.optimizer][1](keras, config.learning_rate)


def mixed_precision_policy() -> str:
    """mixed_float16 on a GPU, mixed_bfloat16 on a CPU (fast where it has AVX512-BF16)."""
    from core.device import describe_device

    return "mixed_float16" if describe_device().gpus else "mixed_bfloat16"


def config_json(config: TrainingConfig) -> str:
    return json.dumps(config.to_dict(), sort_keys=True)


ARTICLE_RESULTS = Path(__file__).resolve().parents[2] / "assets" / "article_results.json"


@dataclass(frozen=True)
class ArticleResult:
    """One configuration the article reports, with its published numbers (fractions)."""

    id: str
    title: str
    config: TrainingConfig
    reported: dict
    quote: str


@cache
def article_results() -> tuple[tuple[ArticleResult, ...], float]:
    """The article's reported results as presets (article defaults filled in), and AlexNet's accuracy."""
    data = json.loads(ARTICLE_RESULTS.read_text(encoding="utf-8"))
    results = tuple(
        ArticleResult(
            id=entry["id"],
            title=entry["title"],
            config=TrainingConfig.from_dict(entry["config"]),
            reported=entry["reported"],
            quote=entry["quote"],
        )
        for entry in data["results"]
    )
    return results, float(data["alexnet"]["test_accuracy"])


CNN_PRESETS = ARTICLE_RESULTS.with_name("cnn_presets.json")


@dataclass(frozen=True)
class MeasuredPreset:
    """A configuration the article does not report, with what it scored when trained here.

    Attributes:
        measured: test_accuracy and test_loss (fractions), epochs_run and best_epoch.
        source: where and how it was measured (the benchmark and its machine).
    """

    id: str
    title: str
    config: TrainingConfig
    measured: dict
    source: str


@cache
def cnn_presets() -> tuple[MeasuredPreset, ...]:
    """The shallow CNN presets, measured by `python -m bench cnn` (the article trains no CNN)."""
    data = json.loads(CNN_PRESETS.read_text(encoding="utf-8"))
    return tuple(
        MeasuredPreset(
            id=entry["id"],
            title=entry["title"],
            config=TrainingConfig.from_dict(entry["config"]),
            measured=entry["measured"],
            source=data["source"],
        )
        for entry in data["presets"]
    )


def matching_article_result(config: TrainingConfig) -> ArticleResult | None:
    """The article's result for the same network (architecture, layers, activation, dropout)."""
    for result in article_results()[0]:
        reference = result.config
        if (reference.architecture, reference.hidden_units, reference.activation, reference.dropout) == (
            config.architecture,
            config.hidden_units,
            config.activation,
            config.dropout,
        ):
            return result
    return None
