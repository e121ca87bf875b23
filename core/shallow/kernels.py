"""Compiled loops (numba) for the numpy engines' element-wise work.

numpy runs an expression such as Adam's update as a dozen passes over memory, each with its
own temporary; these kernels make one pass and keep every intermediate in registers. Each
kernel does the same float32 operations in the same order as the numpy code it replaces,
without fused multiply-adds, so results are bit-for-bit the numpy ones (tests check that).

numba is imported on first use (about 0.3 s); compiled kernels are cached on disk beside
this file, so later processes load them instead of compiling. Where numba is not installed
or cannot compile, `available()` is False and the engines keep their numpy code.
"""

from __future__ import annotations

import functools
import math

import numpy as np


@functools.cache
def _compiled():
    """The compiled kernels, or None when numba is missing or fails."""
    try:
        import numba
    except ImportError:
        return None
    jit = numba.njit(nogil=True, cache=True, error_model="numpy", fastmath=False)

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

    return {"adam": adam, "rmsprop": rmsprop, "sgd": momentum}


def available() -> bool:
    """True when the compiled kernels can be used (numba installed and working)."""
    return _compiled() is not None


def warm_up() -> bool:
    """Compiles (or loads from the disk cache) every kernel now, on tiny arrays.

    Called where a process has time to spare before training (the app's warm training
    process), so a first batch does not wait for the compiler; also lets a memory
    measurement leave the compiler's one-time allocations out. False without numba.
    """
    if not available():
        return False
    block = [np.zeros(4, np.float32) for _ in range(4)]
    for kind in ("adam", "rmsprop", "sgd"):
        optimizer_update(kind, *block, learning_rate=1e-3, iterations=1)
    return True


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
