"""A trained network in numpy, from its saved `.keras` file, without importing Keras or TensorFlow.

The page process never imports TensorFlow (seconds and hundreds of MB per server), yet it shows
what a trained run learned and what it predicts. A `.keras` file is a zip holding `config.json`
(the layers, in order, with their names) and `model.weights.h5`, where Keras stores each layer's
variables under `layers/<snake_case class name>[_<count>]/vars/<i>`: `read_weights` maps those
back to the layers' own names (`hidden_1`, `conv_1`, `classes`, ...) with h5py. `Network` then
runs the same forward pass as `build_model`'s model in inference mode (dropout off) for the
three architectures:

    article  image (28, 28, 1) -> hidden_i: Dense(N) on each pixel -> activation_i -> dropout_i
             -> flatten (28 * 28 * N) -> classes: Dense(10, softmax)
    mlp      image -> flatten_input (784) -> hidden_i -> activation_i -> dropout_i -> classes
    cnn      image -> conv_i: Conv2D(F, k, "same") -> activation_i -> pool_i: MaxPooling2D(2)
             -> dropout_i -> flatten (channels last) -> classes
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.shallow.config import ACTIVATIONS, NUM_CLASSES

LEAKY_SLOPE = 0.3
"""LeakyReLU's negative slope in `config.ACTIVATIONS`."""

_ELEMENT_BUDGET = 2**24
"""Hidden values kept at once by `predict` (64 MB of float32): it works in batches this size."""


class NetworkFileError(ValueError):
    """A model file that is missing, not a `.keras` file, or not the network its run describes."""


def _snake_case(name: str) -> str:
    """The name Keras' saver gives a layer's class (`PReLU` -> `p_re_lu`), as `keras.src.utils.naming`."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def read_weights(model_path: str | Path) -> dict[str, list[np.ndarray]]:
    """Every layer's variables, read from a `.keras` file with h5py.

    Args:
        model_path: a file written by `model.save` (e.g. `RunStore.save_model`).

    Returns:
        Layer name -> its variables as float32 arrays in Keras order (a Dense layer's kernel, then
        its bias; a PReLU layer's slopes), in the model's layer order; layers without variables
        (input, dropout, flatten, pooling) map to an empty list.

    Raises:
        NetworkFileError: the file is missing or is not a readable `.keras` model.
    """
    import h5py

    path = Path(model_path)
    if not path.is_file():
        raise NetworkFileError(f"The model file {path} does not exist (the run may have been deleted); train it again.")
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            weights_bytes = archive.read("model.weights.h5")
        layers = config["config"]["layers"]
        names = [(layer["class_name"], layer["config"]["name"]) for layer in layers]
        weights: dict[str, list[np.ndarray]] = {}
        used: dict[str, int] = {}
        with h5py.File(io.BytesIO(weights_bytes), "r") as store:
            for class_name, name in names:
                # Keras names each saved layer by its class, counting repeats: dense, dense_1, ...
                stored = _snake_case(class_name)
                if stored in used:
                    used[stored] += 1
                    stored = f"{stored}_{used[stored]}"
                else:
                    used[stored] = 0
                group = store.get(f"layers/{stored}/vars")
                variables = [] if group is None else [group[key] for key in sorted(group, key=int)]
                weights[name] = [np.asarray(variable, dtype=np.float32) for variable in variables]
    except (zipfile.BadZipFile, KeyError, TypeError, ValueError, OSError) as error:
        raise NetworkFileError(
            f"The model file {path} is not a readable .keras model ({type(error).__name__}: {error}); "
            "train the run again."
        ) from error
    return weights


@dataclass(frozen=True)
class Shape:
    """The settings that decide a network's layers (a `TrainingConfig` carries them all).

    `filters`, `kernel_size` and `conv_blocks` matter for the CNN only, `hidden_units` for the others.
    """

    architecture: str = "article"
    hidden_units: tuple[int, ...] = (392,)
    activation: str = "none"
    filters: int = 8
    kernel_size: int = 3
    conv_blocks: int = 1

    @classmethod
    def of(cls, config) -> Shape:
        """The shape of a `TrainingConfig`, a dict of its settings, or anything with those attributes."""
        if isinstance(config, Shape):
            return config
        get = config.get if isinstance(config, dict) else lambda name, default: getattr(config, name, default)
        defaults = cls()
        units = get("hidden_units", defaults.hidden_units)
        return cls(
            architecture=get("architecture", defaults.architecture),
            hidden_units=(int(units),) if isinstance(units, int) else tuple(int(u) for u in units),
            activation=get("activation", defaults.activation),
            filters=int(get("filters", defaults.filters)),
            kernel_size=int(get("kernel_size", defaults.kernel_size)),
            conv_blocks=int(get("conv_blocks", defaults.conv_blocks)),
        )

    @property
    def blocks(self) -> int:
        """Hidden layers (article, mlp) or convolution blocks (cnn)."""
        return self.conv_blocks if self.architecture == "cnn" else len(self.hidden_units)

    def layer_names(self) -> list[str]:
        """The named layers `build_model` makes, in order, without the input."""
        names = ["flatten_input"] if self.architecture == "mlp" else []
        for index in range(1, self.blocks + 1):
            names.append(f"conv_{index}" if self.architecture == "cnn" else f"hidden_{index}")
            if self.activation != "none":
                names.append(f"activation_{index}")
            if self.architecture == "cnn":
                names.append(f"pool_{index}")
            names.append(f"dropout_{index}")
        if self.architecture != "mlp":
            names.append("flatten")
        return [*names, "classes"]


def as_inputs(images: np.ndarray) -> np.ndarray:
    """Images as the networks take them: float32 (n, 28, 28, 1) in [0, 1].

    Args:
        images: uint8 (n, 28, 28) pixels 0..255, or floats (n, 28, 28) or (n, 28, 28, 1) in [0, 1];
            one (28, 28) image is taken as n = 1.

    Raises:
        ValueError: another shape, or floats outside [0, 1].
    """
    images = np.asarray(images)
    if images.shape == (28, 28):
        images = images[None]
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[1:] != (28, 28, 1):
        raise ValueError(f"Images must be (n, 28, 28) or (n, 28, 28, 1), not {images.shape}.")
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255)
    if not np.issubdtype(images.dtype, np.floating) and not np.issubdtype(images.dtype, np.integer):
        raise ValueError(f"Images must be uint8 pixels or floats in [0, 1], not {images.dtype}.")
    images = images.astype(np.float32)
    if images.size and not (np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1):
        raise ValueError("Float images must lie in [0, 1] (pixels divided by 255); pass uint8 for 0..255.")
    return images


def conv_same(inputs: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Keras' Conv2D with "same" padding and stride 1 (a cross-correlation, channels last).

    Args:
        inputs: (n, H, W, C).
        kernel: (k, k, C, F), k odd, as Keras stores it.
        bias: (F,).

    Returns:
        (n, H, W, F) float32.
    """
    rows, cols, channels, filters = kernel.shape
    if inputs.shape[-1] != channels:
        raise ValueError(f"A kernel for {channels} input channels cannot take {inputs.shape[-1]}.")
    top, left = (rows - 1) // 2, (cols - 1) // 2
    padded = np.pad(inputs, ((0, 0), (top, rows - 1 - top), (left, cols - 1 - left), (0, 0)))
    height, width = inputs.shape[1:3]
    output = np.zeros((inputs.shape[0], height, width, filters), np.float32)
    # One product per kernel offset keeps memory at one output's size whatever the kernel.
    for row in range(rows):
        for col in range(cols):
            output += padded[:, row : row + height, col : col + width, :] @ kernel[row, col]
    return output + bias


def max_pool(inputs: np.ndarray, size: int = 2) -> np.ndarray:
    """Keras' MaxPooling2D(size) with "valid" padding: the largest of each size x size block."""
    count, height, width, channels = inputs.shape
    height, width = height // size, width // size
    blocks = inputs[:, : height * size, : width * size].reshape(count, height, size, width, size, channels)
    return blocks.max(axis=(2, 4))


def activate(name: str, values: np.ndarray, slopes: np.ndarray | None = None) -> np.ndarray:
    """One of `config.ACTIVATIONS` on an array; PReLU takes its trained slopes (one per element)."""
    if name == "relu":
        return np.maximum(values, 0)
    if name == "leaky_relu":
        return np.where(values > 0, values, np.float32(LEAKY_SLOPE) * values)
    if name == "prelu":
        return np.where(values > 0, values, slopes * values)
    if name == "elu":
        return np.where(values > 0, values, np.expm1(np.minimum(values, 0)))
    if name == "none":
        return values
    raise ValueError(f"Unknown activation {name!r}; choose one of: {', '.join(ACTIVATIONS)}.")


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class Network:
    """A trained shallow network's forward pass in numpy (inference: dropout off).

    Build it with `Network.from_file(config, path)` or `Network.from_weights(config, weights)`.
    """

    def __init__(self, shape: Shape, weights: dict[str, list[np.ndarray]]):
        if shape.architecture not in ("article", "mlp", "cnn"):
            raise ValueError(f"Unknown architecture {shape.architecture!r}; choose one of: article, mlp, cnn.")
        if shape.activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {shape.activation!r}; choose one of: {', '.join(ACTIVATIONS)}.")
        self.shape = shape
        self.weights = {name: [np.asarray(v, np.float32) for v in variables] for name, variables in weights.items()}
        self._check()

    @classmethod
    def from_weights(cls, config, weights: dict[str, list[np.ndarray]]) -> Network:
        """The network of `config` (a `TrainingConfig`, its dict, or a `Shape`) with these weights.

        Raises:
            NetworkFileError: the weights are not those of the network `config` describes.
        """
        return cls(Shape.of(config), weights)

    @classmethod
    def from_file(cls, config, path: str | Path) -> Network:
        """The network of `config`, with the weights of its saved `.keras` file.

        Raises:
            NetworkFileError: the file is missing, unreadable, or holds another network.
        """
        weights = read_weights(path)
        try:
            return cls.from_weights(config, weights)
        except NetworkFileError as error:
            raise NetworkFileError(f"{path}: {error}") from None

    def _check(self) -> None:
        """Raises NetworkFileError unless every layer has variables of the shapes the settings imply."""
        shape = self.shape
        expected: dict[str, list[tuple[int, ...]]] = {}
        if shape.architecture == "cnn":
            channels, side = 1, 28
            for index in range(1, shape.blocks + 1):
                k = shape.kernel_size
                expected[f"conv_{index}"] = [(k, k, channels, shape.filters), (shape.filters,)]
                if shape.activation == "prelu":
                    expected[f"activation_{index}"] = [(side, side, shape.filters)]
                channels, side = shape.filters, side // 2
            flat = side * side * channels
        else:
            inputs = 1 if shape.architecture == "article" else 28 * 28
            for index, units in enumerate(shape.hidden_units, start=1):
                expected[f"hidden_{index}"] = [(inputs, units), (units,)]
                if shape.activation == "prelu":
                    expected[f"activation_{index}"] = [(28, 28, units) if shape.architecture == "article" else (units,)]
                inputs = units
            flat = 28 * 28 * inputs if shape.architecture == "article" else inputs
        expected["classes"] = [(flat, NUM_CLASSES), (NUM_CLASSES,)]
        for name, shapes in expected.items():
            found = [tuple(v.shape) for v in self.weights.get(name, [])]
            if found != shapes:
                raise NetworkFileError(
                    f"The saved model does not match its settings: layer {name!r} has variables {found or 'none'}, "
                    f"expected {shapes}."
                )

    def _layers(self, inputs: np.ndarray):
        """Yields (layer name, output) through the network, in order."""
        shape, weights = self.shape, self.weights
        x = inputs
        if shape.architecture == "mlp":
            x = x.reshape(len(x), -1)
            yield "flatten_input", x
        for index in range(1, shape.blocks + 1):
            if shape.architecture == "cnn":
                kernel, bias = weights[f"conv_{index}"]
                x = conv_same(x, kernel, bias)
                yield f"conv_{index}", x
            else:
                kernel, bias = weights[f"hidden_{index}"]
                x = x @ kernel + bias
                yield f"hidden_{index}", x
            if shape.activation != "none":
                slopes = weights[f"activation_{index}"][0] if shape.activation == "prelu" else None
                x = activate(shape.activation, x, slopes)
                yield f"activation_{index}", x
            if shape.architecture == "cnn":
                x = max_pool(x)
                yield f"pool_{index}", x
            yield f"dropout_{index}", x  # Dropout is the identity at inference.
        if shape.architecture != "mlp":
            x = x.reshape(len(x), -1)
            yield "flatten", x
        kernel, bias = weights["classes"]
        yield "logits", x @ kernel + bias

    def layer_outputs(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Every named layer's output for these images, as Keras computes them at inference.

        Returns:
            Layer name (`Shape.layer_names()`) -> its (n, ...) float32 output, plus "logits"
            (the class scores before softmax); "classes" holds the probabilities.
        """
        outputs = dict(self._layers(as_inputs(images)))
        outputs["classes"] = softmax(outputs["logits"])
        return outputs

    def logits(self, images: np.ndarray) -> np.ndarray:
        """(n, 10) class scores before the softmax, in batches that bound memory."""
        inputs = as_inputs(images)
        batch = max(1, _ELEMENT_BUDGET // self._values_per_image())
        parts = [self._forward(inputs[start : start + batch]) for start in range(0, len(inputs), batch)]
        return np.concatenate(parts) if parts else np.zeros((0, NUM_CLASSES), np.float32)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """(n, 10) class probabilities, like `model.predict`."""
        return softmax(self.logits(images))

    def _forward(self, inputs: np.ndarray) -> np.ndarray:
        # Only the last layer's output (the logits) is kept, not every layer's.
        return deque(self._layers(inputs), maxlen=1)[0][1]

    def _values_per_image(self) -> int:
        shape = self.shape
        if shape.architecture == "cnn":
            return 28 * 28 * max(shape.filters, 1)
        per_pixel = 28 * 28 if shape.architecture == "article" else 1
        return per_pixel * max(shape.hidden_units)
