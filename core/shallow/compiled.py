"""Compiled loops (numba) for the numpy engines' element-wise work.

numpy runs an expression such as Adam's update as a dozen passes over memory, each with its
own temporary; these kernels make one pass and keep every intermediate in registers. The
optimizer updates do the same float32 operations in the same order as the numpy code they
replace, without fused multiply-adds, so their results are bit-for-bit numpy's; the layer
passes sum in another order and agree to float32 rounding (tests check both).

numba is imported on first use (about 0.3 s); compiled kernels are cached on disk beside
this file, so later processes load them instead of compiling. Where numba is not installed
or cannot compile, `available()` is False and the engines keep their numpy code.
"""

from __future__ import annotations

import functools
import math

import numpy as np

LEAKY_SLOPE = 0.3  # keras.layers.LeakyReLU(negative_slope=0.3), as core.shallow builds it.
ACTIVATIONS = ("none", "relu", "leaky_relu", "prelu")
"""The activations the layer kernels compute, by their index here. ELU is left to numpy, whose
exponential is vector code (numba's calls the C library one value at a time)."""


@functools.cache
def _compiled():
    """The compiled kernels, or None when numba is missing or fails."""
    try:
        import numba
    except ImportError:
        return None
    jit = numba.njit(nogil=True, cache=True, error_model="numpy", fastmath=False, boundscheck=False)

    @jit
    def adam(weight, grad, first, second, alpha, beta_1, beta_2, keep_1, keep_2, epsilon):
        for index in range(weight.size):
            g = grad[index]
            m = first[index] * beta_1 + g * keep_1
            v = second[index] * beta_2 + (g * g) * keep_2
            first[index] = m
            second[index] = v
            weight[index] -= (m / (np.sqrt(v) + epsilon)) * alpha

    @jit
    def rmsprop(weight, grad, first, rate, rho, keep, epsilon):
        for index in range(weight.size):
            g = grad[index]
            mean_square = first[index] * rho + (g * g) * keep
            first[index] = mean_square
            weight[index] -= (g / np.sqrt(mean_square + epsilon)) * rate

    @jit
    def momentum(weight, grad, first, rate, momentum):
        for index in range(weight.size):
            velocity = first[index] * momentum - grad[index] * rate
            first[index] = velocity
            weight[index] += velocity

    # The layer passes work row by row, one (slice, image) row of N values at a time, with
    # every branch outside the loops over n, so that those loops compile to vector code.
    f32 = np.float32

    @jit
    def forward(z, first, inputs, kernel, bias, mask, use_mask, scale, kind, alpha, out):
        # z[s, b, n] += bias[n] (or, with a per-pixel first layer, z = inputs[s, b] kernel[n]
        # + bias[n]); out = act(z) * mask * scale (mask 1 and scale 1 without dropout). One
        # loop per case, each simple enough to become vector code.
        slices, batch, units = z.shape
        zero = f32(0.0)
        for s in range(slices):
            alpha_row = alpha[s] if kind == 3 else alpha[0]
            for b in range(batch):
                zr, outr = z[s, b], out[s, b]
                maskr = mask[s, b] if use_mask else mask[0, 0]
                x = inputs[s, b] if first else zero
                if first:
                    for n in range(units):
                        zr[n] = x * kernel[n]
                if kind == 0:
                    for n in range(units):
                        v = zr[n] + bias[n]
                        zr[n] = v
                        outr[n] = (v * f32(maskr[n])) * scale
                elif kind == 1:
                    for n in range(units):
                        v = zr[n] + bias[n]
                        zr[n] = v
                        outr[n] = (max(v, zero) * f32(maskr[n])) * scale
                elif kind == 2:
                    for n in range(units):
                        v = zr[n] + bias[n]
                        zr[n] = v
                        outr[n] = ((v if v > 0 else f32(LEAKY_SLOPE) * v) * f32(maskr[n])) * scale
                else:
                    for n in range(units):
                        v = zr[n] + bias[n]
                        zr[n] = v
                        outr[n] = ((max(v, zero) + alpha_row[n] * min(v, zero)) * f32(maskr[n])) * scale

    @jit
    def backward(grad, z, mask, use_mask, scale, kind, alpha, first, inputs, bias_sum, alpha_sum, kernel_sum):
        # grad: dLoss/da, turned in place into dLoss/dz = da * mask * scale * act'(z), with
        # TensorFlow's act'(0): 0 for ReLU and PReLU, the slope for LeakyReLU. Sums over the
        # block: bias_sum[n] of dz, alpha_sum[s, n] of da * mask * scale * min(z, 0) (PReLU),
        # kernel_sum[n] of inputs[s, b] dz (a per-pixel first layer's one-row kernel).
        slices, batch, units = grad.shape
        zero, one = f32(0.0), f32(1.0)
        for s in range(slices):
            alpha_row = alpha[s] if kind == 3 else alpha[0]
            alpha_sum_row = alpha_sum[s] if kind == 3 else alpha_sum[0]
            for b in range(batch):
                gr, zr = grad[s, b], z[s, b]
                maskr = mask[s, b] if use_mask else mask[0, 0]
                x = inputs[s, b] if first else zero
                if kind == 0:
                    for n in range(units):
                        g = (gr[n] * f32(maskr[n])) * scale
                        gr[n] = g
                        bias_sum[n] += g
                        kernel_sum[n] += x * g
                elif kind == 1:
                    for n in range(units):
                        g = ((gr[n] * f32(maskr[n])) * scale) * (one if zr[n] > 0 else zero)
                        gr[n] = g
                        bias_sum[n] += g
                        kernel_sum[n] += x * g
                elif kind == 2:
                    for n in range(units):
                        g = ((gr[n] * f32(maskr[n])) * scale) * (one if zr[n] > 0 else f32(LEAKY_SLOPE))
                        gr[n] = g
                        bias_sum[n] += g
                        kernel_sum[n] += x * g
                else:
                    for n in range(units):
                        g = (gr[n] * f32(maskr[n])) * scale
                        value = zr[n]
                        alpha_sum_row[n] += g * min(value, zero)
                        g = g * (f32(value > 0) + alpha_row[n] * f32(value < 0))
                        gr[n] = g
                        bias_sum[n] += g
                        kernel_sum[n] += x * g

    @jit
    def pixel_weights(kernel, bias, out_kernel, weights_uv):
        # [U_p | V_p] = [w * W_p | c * W_p] for a slice of pixels: (slice, N, 2K).
        slices, units, classes = out_kernel.shape
        for s in range(slices):
            for n in range(units):
                w, c = kernel[n], bias[n]
                for k in range(classes):
                    weights_uv[s, n, k] = w * out_kernel[s, n, k]
                    weights_uv[s, n, classes + k] = c * out_kernel[s, n, k]

    @jit
    def pixel_gradients(sums, out_kernel, kernel, bias, scale, grad, kernel_sum, bias_sum):
        # From [Q_p | R_p] = M_p^T [x_p g | g]: the output kernel's gradient s (w Q + c R)
        # and the hidden layer's sums, kernel_sum[n] += sum_k Q W and bias_sum[n] += sum_k R W
        # (with W before this step's update).
        slices, units, classes = out_kernel.shape
        for s in range(slices):
            for n in range(units):
                w, c = kernel[n], bias[n]
                q_total = f32(0.0)
                r_total = f32(0.0)
                for k in range(classes):
                    q, r, weight = sums[s, n, k], sums[s, n, classes + k], out_kernel[s, n, k]
                    q_total += q * weight
                    r_total += r * weight
                    grad[s, n, k] = (w * q + c * r) * scale
                kernel_sum[n] += q_total
                bias_sum[n] += r_total

    @jit
    def masked_codes(keep, indices, table, expanded):
        # For each value: its 0/1 dropout decision times the float32 table entry of its
        # pixel's level, table[indices[s, b], j] (column j of a table with N or 2N columns,
        # the decision of neuron j mod N), into `expanded`.
        slices, batch, units = keep.shape
        width = table.shape[1]
        for s in range(slices):
            for b in range(batch):
                row = table[indices[s, b]]
                decisions = keep[s, b]
                outr = expanded[s, b]
                for half in range(0, width, units):
                    for n in range(units):
                        outr[half + n] = f32(decisions[n]) * row[half + n]

    return {
        "masked_codes": masked_codes,
        "adam": adam,
        "rmsprop": rmsprop,
        "sgd": momentum,
        "forward": forward,
        "backward": backward,
        "pixel_weights": pixel_weights,
        "pixel_gradients": pixel_gradients,
    }


def available() -> bool:
    """True when the compiled kernels can be used (numba installed and working)."""
    return _compiled() is not None


def warm_up() -> bool:
    """Compiles (or loads from the disk cache) the optimizer updates now, on tiny arrays;
    False without numba. `jobs.warm_up_engines` does this and then every layer pass."""
    if not available():
        return False
    block = [np.zeros(4, np.float32) for _ in range(4)]
    for kind in ("adam", "rmsprop", "sgd"):
        optimizer_update(kind, *block, learning_rate=1e-3, iterations=1)
    return True


_NO_ROWS = np.zeros((1, 1), np.float32)
_NO_ROW = np.zeros(1, np.float32)


def layer_forward(activation, z, bias, mask, scale, alpha, out, inputs=None, kernel=None) -> None:
    """A hidden layer's element-wise forward pass over a (slices, batch, N) block, compiled.

    z holds the layer's product (bias not yet added) and gets z + bias; out gets act(z),
    times the 0/1 `mask` and `scale` when a mask is given. For a per-pixel first layer
    `inputs` is the (slices, batch) pixel values and z is computed as inputs * kernel[0]
    + bias. `alpha` is PReLU's (slices, N) slopes.
    """
    first = inputs is not None
    _compiled()["forward"](
        z,
        first,
        inputs if first else _NO_ROWS,
        kernel[0] if first else _NO_ROW,
        bias,
        np.ones((1, 1, z.shape[2]), bool) if mask is None else mask,
        mask is not None,
        np.float32(scale if mask is not None else 1.0),
        ACTIVATIONS.index(activation),
        _NO_ROWS if alpha is None else alpha,
        out,
    )


def layer_backward(activation, grad, z, mask, scale, alpha, inputs=None):
    """dLoss/da to dLoss/dz in place on `grad` (mask, scale, act'(z)), compiled.

    Returns, summed over the block in float32: the bias' gradient (N,), PReLU's slopes'
    (slices, N) (None for other activations) and, with `inputs` (a per-pixel first layer's
    pixel values), the kernel's (N,).
    """
    slices, _, units = grad.shape
    bias_sum = np.zeros(units, np.float32)
    alpha_sum = np.zeros((slices, units), np.float32) if alpha is not None else np.zeros((1, 1), np.float32)
    kernel_sum = np.zeros(units, np.float32)
    _compiled()["backward"](
        grad,
        z,
        np.ones((1, 1, units), bool) if mask is None else mask,
        mask is not None,
        np.float32(scale if mask is not None else 1.0),
        ACTIVATIONS.index(activation),
        _NO_ROWS if alpha is None else alpha,
        inputs is not None,
        _NO_ROWS if inputs is None else inputs,
        bias_sum,
        alpha_sum,
        kernel_sum,
    )
    return bias_sum, alpha_sum if alpha is not None else None, kernel_sum


def pixel_weights(kernel, bias, out_kernel, weights_uv) -> None:
    """[w W_p | c W_p] for a (slice, N, K) block of the output kernel, into (slice, N, 2K)."""
    _compiled()["pixel_weights"](kernel, bias, out_kernel, weights_uv)


def pixel_gradients(sums, out_kernel, kernel, bias, scale, grad, kernel_sum, bias_sum) -> None:
    """The output kernel's gradient of a slice, s (w Q + c R) from sums = [Q | R], and its
    share of the hidden layer's gradient sums (float64, added to)."""
    _compiled()["pixel_gradients"](sums, out_kernel, kernel, bias, np.float32(scale), grad, kernel_sum, bias_sum)


def masked_codes(keep, indices, table, expanded) -> None:
    """expanded[s, b, j] = keep[s, b, j mod N] * table[indices[s, b], j], in one pass.

    keep: (slices, batch, N) 0/1 bytes; indices: (slices, batch) each value's row of the
    float32 (levels, N or 2N) table (ELU's act and act' of each pixel level).
    """
    _compiled()["masked_codes"](keep, indices, table, expanded)


def _flat(*arrays: np.ndarray) -> list[np.ndarray] | None:
    """1-D views of C-contiguous float32 arrays of one size, or None if any is not one."""
    size = arrays[0].size
    for array in arrays:
        if array.dtype != np.float32 or not array.flags.c_contiguous or array.size != size:
            return None
    return [array.reshape(-1) for array in arrays]


def optimizer_update(kind: str, weight, grad, first, second, learning_rate: float, iterations: int) -> bool:
    """One Keras-3 update of `weight` in place, compiled; False if it cannot run here.

    The formulas and constants are `NumpyOptimizer`'s, with each "1 - beta" rounded to float32
    from its double as numpy rounds it (Adam: beta 0.9 / 0.999, epsilon 1e-4
    and the bias correction folded into the rate; RMSprop: rho 0.9; SGD: momentum 0.85).
    """
    kernels = _compiled()
    flat = _flat(weight, grad, first, second)
    if kernels is None or flat is None:
        return False
    weight, grad, first, second = flat
    f32 = np.float32
    if kind == "adam":
        alpha = learning_rate * math.sqrt(1 - 0.999**iterations) / (1 - 0.9**iterations)
        kernels["adam"](
            weight, grad, first, second, f32(alpha), f32(0.9), f32(0.999), f32(1 - 0.9), f32(1 - 0.999), f32(1e-4)
        )
    elif kind == "rmsprop":
        kernels["rmsprop"](weight, grad, first, f32(learning_rate), f32(0.9), f32(1 - 0.9), f32(1e-4))
    else:
        kernels["sgd"](weight, grad, first, f32(learning_rate), f32(0.85))
    return True


def main(argv: list[str] | None = None) -> int:
    """`python -m core.shallow.compiled`: compile every kernel into numba's disk cache (set-up)."""
    import argparse
    import time

    parser = argparse.ArgumentParser(
        prog="python -m core.shallow.compiled",
        description="Compiles the numpy engines' kernels into numba's disk cache (one tiny step per engine path).",
    )
    parser.parse_args(argv)
    if not available():
        print("numba is not installed: the numpy engines run their numpy passes.")
        return 0
    from core.shallow.jobs import warm_up_engines

    start = time.perf_counter()
    warm_up_engines()
    print(f"Compiled kernels ready in numba's cache ({time.perf_counter() - start:.1f} s).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
