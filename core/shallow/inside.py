"""Inside a trained network: what its weights compute, as numbers and as pictures (UI-free).

    class_templates   a linear network collapsed to ten 28 x 28 templates: logit_c = sum_p x_p T_c[p] + b_c
    neuron_maps       chosen neurons' weights as 28 x 28 maps (into one class, or from the input)
    strongest_neurons a sensible default choice of neurons: the largest weights
    conv_kernels      a CNN block's kernels, (filters, input channels, k, k)
    feature_maps      a CNN's maps of one image after each conv, activation and pooling
    diverging_rgb     signed values as colours: blue below zero, white at zero, red above, one scale
    colour_bar        the legend of that scale, as a picture

Everything takes a `core.shallow.network.Network` and returns numpy arrays.
"""

from __future__ import annotations

import numpy as np

from core.shallow.network import Network

NEGATIVE = np.array([33, 102, 172], np.float32)  # ColorBrewer RdBu's blue end.
ZERO = np.array([247, 247, 247], np.float32)  # Near-white, so a zero weight reads as "nothing".
POSITIVE = np.array([178, 24, 43], np.float32)  # RdBu's red end.


def collapses_to_templates(network: Network) -> bool:
    """True for the networks without activation outside the CNN: every layer is linear, so they collapse."""
    return network.shape.architecture in ("article", "mlp") and network.shape.activation == "none"


def class_templates(network: Network) -> tuple[np.ndarray, np.ndarray]:
    """The ten 28 x 28 templates and biases a linear network is, exactly.

    Per-pixel network: each pixel x_p goes through the hidden layers alone, and linear layers
    compose, so its hidden vector is h_p = x_p u + v with u = W_1 W_2 ... W_L (the first kernel is
    (1, N_1)) and v the composed biases. The class layer's kernel W_c, reshaped (784, N, 10),
    then gives logit_c = sum_p x_p (u . W_c[p, :, c]) + (b_c + sum_p v . W_c[p, :, c]). For one
    layer u = W_1[0], so T = W_1 . W_2 reshaped. The MLP's layers compose the same way over the
    784 inputs: T = W_1 W_2 ... W_c.

    Returns:
        templates (10, 28, 28) float64 and biases (10,): logits = images (n, 784) @ T.reshape(10, 784).T + b.

    Raises:
        ValueError: the network has an activation or is a CNN (it does not collapse).
    """
    if not collapses_to_templates(network):
        raise ValueError("Only a network without activation (per-pixel or MLP) collapses to class templates.")
    weights = {name: [np.asarray(v, np.float64) for v in variables] for name, variables in network.weights.items()}
    units = network.shape.hidden_units
    if network.shape.architecture == "article":
        slope, offset = np.ones(1), np.zeros(1)
    else:
        slope, offset = np.eye(28 * 28), np.zeros(28 * 28)
    for index in range(1, len(units) + 1):
        kernel, bias = weights[f"hidden_{index}"]
        slope, offset = slope @ kernel, offset @ kernel + bias
    class_kernel, class_bias = weights["classes"]
    if network.shape.architecture == "article":
        per_pixel = class_kernel.reshape(28 * 28, units[-1], 10)
        templates = np.einsum("n,pnc->cp", slope, per_pixel)
        biases = class_bias + np.einsum("n,pnc->c", offset, per_pixel)
    else:
        templates = (slope @ class_kernel).T
        biases = class_bias + offset @ class_kernel
    return templates.reshape(10, 28, 28), biases


def neuron_count(network: Network) -> int:
    """Neurons whose weights `neuron_maps` shows: the last hidden layer's (per-pixel) or the first's (MLP)."""
    units = network.shape.hidden_units
    return units[-1] if network.shape.architecture == "article" else units[0]


def neuron_maps(network: Network, neurons: list[int], class_index: int | None = None) -> np.ndarray:
    """Chosen neurons' weights as 28 x 28 maps.

    Per-pixel network: neuron j of the last hidden layer has one output weight per pixel into each
    class, the class kernel reshaped (28, 28, N, 10)[:, :, j, class_index]. MLP: neuron j of the
    first hidden layer has one input weight per pixel, its kernel's column (784,) as 28 x 28.

    Returns:
        (len(neurons), 28, 28) float32.

    Raises:
        ValueError: a CNN, a neuron out of range, or a per-pixel network without a class.
    """
    architecture = network.shape.architecture
    if architecture == "cnn":
        raise ValueError("A CNN has kernels, not per-neuron maps: see its kernels and feature maps.")
    count = neuron_count(network)
    bad = [j for j in neurons if not 0 <= j < count]
    if bad:
        raise ValueError(f"Neurons are numbered 0 to {count - 1}; there is no neuron {bad[0]}.")
    if architecture == "article":
        if class_index is None or not 0 <= class_index < 10:
            raise ValueError("Choose a class 0 to 9: a per-pixel neuron has one map per class.")
        kernel = network.weights["classes"][0].reshape(28, 28, count, 10)
        return np.stack([kernel[:, :, j, class_index] for j in neurons]) if neurons else np.zeros((0, 28, 28))
    kernel = network.weights["hidden_1"][0]
    return np.stack([kernel[:, j].reshape(28, 28) for j in neurons]) if neurons else np.zeros((0, 28, 28))


def strongest_neurons(network: Network, count: int = 4) -> list[int]:
    """The neurons with the largest weights (sum of squares over all their shown maps), largest first."""
    total = neuron_count(network)
    if network.shape.architecture == "article":
        kernel = network.weights["classes"][0].reshape(28 * 28, total, 10)
        strength = np.square(kernel).sum(axis=(0, 2))
    else:
        strength = np.square(network.weights["hidden_1"][0]).sum(axis=0)
    return [int(j) for j in np.argsort(-strength, kind="stable")[:count]]


def conv_kernels(network: Network, block: int = 1) -> np.ndarray:
    """Block `block`'s kernels as (filters, input channels, k, k) from Keras' (k, k, channels, filters)."""
    if network.shape.architecture != "cnn":
        raise ValueError("Only the CNN has convolution kernels.")
    if not 1 <= block <= network.shape.conv_blocks:
        raise ValueError(f"This CNN has {network.shape.conv_blocks} block(s); there is no block {block}.")
    return np.transpose(network.weights[f"conv_{block}"][0], (3, 2, 0, 1))


def feature_maps(network: Network, image: np.ndarray) -> dict[str, np.ndarray]:
    """A CNN's maps of one image per stage: "conv_1", "activation_1" (if any), "pool_1", ... each (F, H, W)."""
    if network.shape.architecture != "cnn":
        raise ValueError("Only the CNN has feature maps.")
    outputs = network.layer_outputs(np.asarray(image)[None] if np.ndim(image) == 2 else image)
    stages = [name for name in network.shape.layer_names() if name.startswith(("conv_", "activation_", "pool_"))]
    return {name: np.transpose(outputs[name][0], (2, 0, 1)) for name in stages}


def shared_scale(*arrays: np.ndarray) -> float:
    """The largest absolute value among the arrays (1.0 when all are zero), for one colour scale."""
    largest = max((float(np.abs(a).max()) for a in arrays if np.size(a)), default=0.0)
    return largest or 1.0


def diverging_rgb(values: np.ndarray, scale: float | None = None) -> np.ndarray:
    """Signed values as uint8 RGB (..., 3): -scale blue, 0 white, +scale red, linear between, clipped beyond.

    Args:
        values: any shape.
        scale: the value shown at full colour; by default the largest absolute value.
    """
    values = np.asarray(values, np.float32)
    scale = shared_scale(values) if scale is None else float(scale)
    if not scale > 0:
        raise ValueError(f"The colour scale must be positive, not {scale}.")
    t = np.clip(values / scale, -1, 1)[..., None]
    colour = np.where(t >= 0, ZERO + t * (POSITIVE - ZERO), ZERO - t * (NEGATIVE - ZERO))
    return np.rint(colour).astype(np.uint8)


def colour_bar(width: int = 256, height: int = 16) -> np.ndarray:
    """The legend of `diverging_rgb`: -scale at the left edge, 0 in the middle, +scale at the right."""
    row = diverging_rgb(np.linspace(-1, 1, width), 1.0)
    return np.repeat(row[None], height, axis=0)


def enlarge(picture: np.ndarray, factor: int) -> np.ndarray:
    """A small picture (H, W) or (H, W, 3) scaled up by whole pixels, so each weight stays a sharp square."""
    if factor < 1:
        raise ValueError(f"The enlargement must be a whole number of at least 1, not {factor}.")
    return np.repeat(np.repeat(picture, factor, axis=0), factor, axis=1)
