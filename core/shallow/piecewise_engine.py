"""The two-product engine for one per-pixel layer with ReLU, LeakyReLU, PReLU or ELU.

In the one-layer per-pixel network a hidden value depends only on its pixel's value,
z[b, p, n] = x[b, p] w[n] + c[n]. ReLU, LeakyReLU and PReLU are linear on each side of zero,
so with d the slope of the side z is on (0 or 1 for ReLU, 0.3 or 1 for LeakyReLU,
alpha[p, n] or 1 for PReLU) and m the 0/1 dropout mask,

    s * m * act(z) = s * F * z,        F = m * d,

and the derivative of act is that same d (TensorFlow's value at z = 0: 0 for ReLU and
PReLU, the slope for LeakyReLU). `NumpyPerPixelEngine`'s two products therefore hold with F
in place of the 0/1 mask: forward `F_p @ [w W_p | c W_p]`, backward `F_p^T @ [x_p g | g]`.

F is never stored as float32. The side of zero only depends on (pixel value, neuron), and a
Fashion-MNIST batch has at most 256 distinct pixel values (k / 255), so a (256, N) table,
computed with the very float32 operations Keras uses for z, gives every (b, p, n) side by
one gather; other inputs compute z per slice instead. The mask stored per value is one
byte: F itself for ReLU (0/1); 10 F for LeakyReLU (0, 3, 10, the 1/10 folded into the
scale); for PReLU two 0/1 masks side by side, P = m [z > 0] and Q = m [z < 0], so F = P +
alpha Q is one product over 2N "neurons" (the rows of Q carry alpha) and the backward
product over them also gives alpha's gradient:

    dLoss/d alpha[p, n] = s * sum_k W[p, n, k] (w[n] (Q_p^T x_p g)[n, k] + c[n] (Q_p^T g)[n, k]).

ELU is not linear below zero, so its slice carries floats: A = m act(z) and D = m act'(z),
both gathered from (256, N) tables of act and act' and multiplied by the 0/1 mask. The
forward pass is `A_p @ W_p`; the backward pass one product `[A_p | D_p]^T [x_p g | g]`, whose
A rows give the output kernel's gradient (A^T g) and whose D rows give the hidden layer's
(dLoss/dw = s sum W (D^T x g), dLoss/dc = s sum W (D^T g)).
"""

from __future__ import annotations

import numpy as np

from core.shallow.config import NUM_CLASSES, PIXELS, TrainingConfig
from core.shallow.dense_engine import activate
from core.shallow.engines import NumpyOptimizer, NumpyPerPixelEngine, output_layer, softmax

ACTIVATIONS = ("relu", "leaky_relu", "prelu", "elu")
LEAKY_CODES = (3, 10)
"""LeakyReLU's per-value byte: 10 x slope (0.3 -> 3, 1 -> 10); the engine scales by 1/10."""
LEVELS = 256
"""Distinct pixel values a batch may have for the side-of-zero table (Fashion-MNIST: k / 255)."""


def fits_piecewise_engine(config: TrainingConfig) -> bool:
    """One per-pixel hidden layer with ReLU, LeakyReLU, PReLU or ELU, in float32."""
    return (
        config.architecture == "article"
        and len(config.hidden_units) == 1
        and config.activation in ACTIVATIONS
        and not config.mixed_precision
    )


def pixel_levels(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Each value's index into at most 256 distinct values, or None if there are more.

    The guess is round(255 x) (exact for k / 255 however it was computed); it is kept only
    if every index stands for a single value, so the tables below are exact for any input.

    Returns:
        (indices as uint8, same shape as pixels; the (256,) float32 value of each index).
    """
    scaled = np.rint(pixels * np.float32(LEVELS - 1))
    if not np.all((scaled >= 0) & (scaled < LEVELS)):  # Also False for NaN.
        return None
    indices = scaled.astype(np.uint8)
    values = np.zeros(LEVELS, np.float32)
    values[indices] = pixels
    if not np.array_equal(values[indices], pixels):
        return None
    return indices, values


class NumpyPiecewiseEngine(NumpyPerPixelEngine):
    """One per-pixel `Dense(N)` with ReLU, LeakyReLU, PReLU or ELU, dropout, `Dense(10)`.

    Args:
        config: must satisfy `fits_piecewise_engine(config)`.
        weights: the Keras model's weights in its order: hidden kernel (1, N), hidden bias
            (N,), for PReLU its slopes (28, 28, N), output kernel (784 N, 10), output bias (10,).
        threads: worker threads over slices of pixels.
    """

    def __init__(self, config: TrainingConfig, weights: list[np.ndarray], threads: int = 2, compiled: bool = True):
        if not fits_piecewise_engine(config):
            raise ValueError("The piecewise engine needs one per-pixel layer with ReLU, LeakyReLU, PReLU or ELU.")
        self.activation = config.activation
        self.prelu = config.activation == "prelu"
        self.elu = config.activation == "elu"
        expected = 5 if self.prelu else 4
        if len(weights) != expected:
            raise ValueError(f"Expected {expected} weight arrays for {config.activation}, got {len(weights)}.")
        # The base class sets up the linear net's mask drawing, threads and seeds; this engine
        # then takes the real config and weights (and, for PReLU, the slopes and their slots).
        super().__init__(config.replace(activation="none"), weights[:2] + weights[-2:], threads, compiled)
        self.config = config
        self.set_weights(weights)
        self.optimizer = NumpyOptimizer(config, [w.shape for w in self.weights], compiled=compiled)
        # Bytes kept per value (PReLU: P and Q side by side), and float32 values per value
        # in the products (PReLU: P and Q; ELU: m act(z) and m act'(z)).
        self.code_width = self.units * (2 if self.prelu else 1)
        width = self.units * (2 if self.prelu or self.elu else 1)
        self.float_width = width
        self.chunk = max(1, min(PIXELS, (2 << 20) // max(1, config.batch_size * width * 4)))
        self.code_scale = 1.0 / LEAKY_CODES[1] if self.activation == "leaky_relu" else 1.0

    # Weights in, weights out -----------------------------------------------------------------
    @property
    def out_index(self) -> int:
        return len(self.weights) - 2

    def set_weights(self, weights: list[np.ndarray]) -> None:
        arrays = [np.array(w, dtype=np.float32, copy=True) for w in weights]
        self.shapes = [w.shape for w in arrays]
        arrays[0] = arrays[0].reshape(-1)
        if len(arrays) == 5:
            arrays[2] = arrays[2].reshape(PIXELS, self.units)
        arrays[-2] = arrays[-2].reshape(PIXELS, self.units, NUM_CLASSES)
        self.weights = arrays

    def get_weights(self) -> list[np.ndarray]:
        return [w.reshape(shape).copy() for w, shape in zip(self.weights, self.shapes, strict=True)]

    def _alpha(self) -> np.ndarray | None:
        return self.weights[2] if self.prelu else None

    # The side of zero ------------------------------------------------------------------------
    def _code_table(self, z: np.ndarray) -> np.ndarray:
        """The byte each (value, neuron) multiplies its 0/1 dropout decision by, from z.

        Shape z.shape, or for PReLU the last axis doubled: [z > 0 | z < 0]; for ELU the
        float32 [act(z) | act'(z)] (TensorFlow's derivative: 1 above zero, exp(z) at or below).
        """
        if self.elu:
            derivative = np.exp(np.minimum(z, 0))
            derivative[z > 0] = 1.0
            return np.concatenate([activate("elu", z, None), derivative], axis=-1)
        if self.activation == "relu":
            return (z > 0).view(np.uint8)
        if self.activation == "leaky_relu":
            low, high = LEAKY_CODES
            return np.where(z > 0, np.uint8(high), np.uint8(low))
        return np.concatenate([z > 0, z < 0], axis=-1).view(np.uint8)

    def _slice_codes(self, levels, pixels_first, start: int, stop: int, columns=slice(None)) -> np.ndarray:
        """(slice, batch, N or 2N) codes of pixels start:stop (only `columns` of the table)."""
        kernel, bias = self.weights[0], self.weights[1]
        if levels is not None:
            indices, table = levels
            return table[:, columns][indices[start:stop]]
        # Any other input: z as Keras computes it (one product, then the bias).
        z = pixels_first[start:stop, :, None] * kernel
        z += bias
        return self._code_table(z)

    def _levels(self, pixels_first: np.ndarray):
        """The gather table for this batch's pixel values, or None (then z is computed per slice)."""
        found = pixel_levels(pixels_first)
        if found is None:
            return None
        indices, values = found
        kernel, bias = self.weights[0], self.weights[1]
        z = values[:, None] * kernel
        z += bias
        return indices.astype(np.intp), self._code_table(z)

    # Training --------------------------------------------------------------------------------
    def train_batch(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        """One optimizer step on a batch; returns its loss and accuracy (with dropout, like Keras)."""
        optimizer = self.optimizer
        optimizer.start_step()
        out_index = self.out_index
        out_kernel = self.weights[out_index]

        def apply_slice(start: int, stop: int, grad: np.ndarray, scratch: np.ndarray) -> None:
            optimizer.update(out_index, out_kernel[start:stop], grad, slice(start, stop), scratch)

        loss, accuracy, small_grads, _ = self._fused_step(images, labels, apply_slice)
        for index, grad in enumerate(small_grads):
            if grad is not None:
                optimizer.update(index, self.weights[index], grad)
        return loss, accuracy

    def gradients(self, images: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None):
        """Loss, accuracy, gradients (Keras weight shapes) and the dropout mask of one batch.

        The same fused, sliced step as `train_batch`, with the gradients returned instead of
        applied (for checking them).

        Args:
            mask: (784, batch, N) boolean dropout keep mask; None draws one.

        Returns:
            loss, accuracy, gradients, and the (784, batch, N) boolean keep mask used.
        """
        grad_out_kernel = np.empty_like(self.weights[self.out_index])

        def keep_slice(start: int, stop: int, grad: np.ndarray, scratch: np.ndarray) -> None:
            grad_out_kernel[start:stop] = grad

        shape = (PIXELS, len(labels), self.units)
        if mask is not None:
            mask = np.asarray(mask, bool)
            if mask.shape != shape:
                raise ValueError(f"The dropout mask must have shape {shape}, not {mask.shape}.")
            drawn = None
        else:
            drawn = np.ones(shape, bool)
        loss, accuracy, grads, _ = self._fused_step(images, labels, keep_slice, given_mask=mask, record_mask=drawn)
        grads[self.out_index] = grad_out_kernel
        shaped = [grad.reshape(shape) for grad, shape in zip(grads, self.shapes, strict=True)]
        return loss, accuracy, shaped, mask if mask is not None else drawn

    def fused_gradients(self, images: np.ndarray, labels: np.ndarray):
        """`gradients` with a freshly drawn mask (the base class' name for it)."""
        return self.gradients(images, labels)

    def _fused_step(self, images, labels, out_kernel_sink, given_mask=None, record_mask=None):
        """One batch's loss, accuracy and gradients, in cache-sized slices of pixels.

        Each worker draws its slices' dropout decisions (or takes `given_mask`'s; a drawn mask
        is copied into `record_mask` when one is given), multiplies
        them by the slices' codes (one byte per value, kept for the backward pass), expands
        the bytes to float32 while they are in cache and runs the forward product; after the
        loss, the backward product per slice, whose output-kernel gradient goes to
        `out_kernel_sink(start, stop, grad, scratch)` at once.

        Returns:
            loss, accuracy, the gradients in internal order (None for the output kernel),
            and the per-value codes.
        """
        kernel, bias = self.weights[0], self.weights[1]
        alpha = self._alpha()
        out_kernel, out_bias = self.weights[-2], self.weights[-1]
        batch = len(labels)
        units, classes = self.units, NUM_CLASSES
        buffers = self._buffers(batch)
        codes, products, stacked = buffers["kept"], buffers["products"], buffers["stacked"]
        pixels_first = np.ascontiguousarray(images.T)
        levels = self._levels(pixels_first)
        scale = (self.scale if self.keep < 1.0 else 1.0) * self.code_scale
        slices = [(start, min(start + self.chunk, PIXELS)) for start in range(0, PIXELS, self.chunk)]
        workers = len(self.mask_rngs)
        kernel_column, bias_column = kernel[None, :, None], bias[None, :, None]
        compiled = self.kernels

        def forward(worker: int) -> None:
            expanded, weights_uv = buffers["expanded"][worker], buffers["uv"][worker]
            generator = self.mask_rngs[worker].bit_generator
            for start, stop in slices[worker::workers]:
                width = stop - start
                # ELU's forward pass needs act(z) alone, not act'(z).
                columns = slice(0, units) if self.elu else slice(None)
                # ELU's float tables in one compiled pass (for the byte codes numpy's gather
                # and product were faster).
                gather = compiled is not None and levels is not None and self.elu
                slice_codes = None if gather else self._slice_codes(levels, pixels_first, start, stop, columns)
                keep = buffers["drawn"][worker][:width]
                if given_mask is not None:
                    keep[...] = given_mask[start:stop]
                elif self.keep < 1.0:
                    self._draw_keep(generator, keep, keep.size)
                    if record_mask is not None:
                        record_mask[start:stop] = keep
                else:
                    keep[...] = True
                held, keep = codes[start:stop], keep.view(np.uint8)
                if self.elu:
                    # m act(z) @ W_p into the products' unweighted half (x_p multiplies the other).
                    np.copyto(held, keep)
                    activated = expanded[:width, :, :units]
                    if gather:  # One pass: the decision times the level's act(z).
                        compiled.masked_codes(keep, levels[0][start:stop], levels[1][:, :units], activated)
                    else:
                        np.copyto(activated, keep)
                        activated *= slice_codes[:, :, :units]
                    products[start:stop, :, :classes] = 0.0
                    products[start:stop, :, classes:] = np.matmul(activated, out_kernel[start:stop])
                    continue
                if self.prelu:
                    np.multiply(keep, slice_codes[:, :, units:], out=held[:, :, units:])
                    np.multiply(keep, slice_codes[:, :, :units], out=held[:, :, :units])
                else:
                    np.multiply(keep, slice_codes, out=held)
                # [w W_p | c W_p], and for PReLU the same rows times alpha below them.
                top = weights_uv[:width, :units]
                if compiled is not None:
                    compiled.pixel_weights(kernel, bias, out_kernel[start:stop], top)
                else:
                    np.multiply(kernel_column, out_kernel[start:stop], out=top[:, :, :classes])
                    np.multiply(bias_column, out_kernel[start:stop], out=top[:, :, classes:])
                if self.prelu:
                    np.multiply(alpha[start:stop, :, None], top, out=weights_uv[:width, units:])
                np.copyto(expanded[:width], held)
                np.matmul(expanded[:width], weights_uv[:width], out=products[start:stop])

        partial_kernel = np.zeros((workers, units), np.float64)
        partial_bias = np.zeros((workers, units), np.float64)
        alpha_grad = np.empty_like(alpha) if self.prelu else None

        def elu_backward(worker: int, start: int, stop: int) -> None:
            """[m act(z) | m act'(z)]^T [x_p g | g]: the output kernel's gradient from the
            first, the hidden layer's (through act') from the second."""
            expanded, sums = buffers["expanded"][worker], buffers["sums"][worker]
            width = stop - start
            if compiled is not None and levels is not None:
                compiled.masked_codes(codes[start:stop], levels[0][start:stop], levels[1], expanded[:width])
            else:
                np.copyto(expanded[:width, :, :units], codes[start:stop])
                expanded[:width, :, units:] = expanded[:width, :, :units]
                expanded[:width] *= self._slice_codes(levels, pixels_first, start, stop)
            np.matmul(expanded[:width].transpose(0, 2, 1), stacked[start:stop], out=sums[:width])
            weights_slice = out_kernel[start:stop]
            derivative_sums = sums[:width, units:]
            partial_kernel[worker] += np.einsum("pnk,pnk->n", derivative_sums[:, :, :classes], weights_slice)
            partial_bias[worker] += np.einsum("pnk,pnk->n", derivative_sums[:, :, classes:], weights_slice)
            grad = buffers["grad"][worker][:width]
            np.multiply(sums[:width, :units, classes:], scale, out=grad)
            out_kernel_sink(start, stop, grad, buffers["scratch"][worker][:width])

        def backward(worker: int) -> None:
            expanded, sums = buffers["expanded"][worker], buffers["sums"][worker]
            grad, scratch = buffers["grad"][worker], buffers["scratch"][worker]
            for start, stop in slices[worker::workers]:
                width = stop - start
                if self.elu:
                    elu_backward(worker, start, stop)
                    continue
                np.copyto(expanded[:width], codes[start:stop])
                # F_p^T [x_p g | g] (for PReLU: P_p^T and Q_p^T of it, stacked).
                np.matmul(expanded[:width].transpose(0, 2, 1), stacked[start:stop], out=sums[:width])
                weights_slice = out_kernel[start:stop]
                if self.prelu:
                    positive, negative = sums[:width, :units], sums[:width, units:]
                    # alpha's gradient uses Q's sums alone: s W (w Q x g + c Q g).
                    np.multiply(kernel_column, negative[:, :, :classes], out=grad[:width])
                    grad[:width] += bias_column * negative[:, :, classes:]
                    alpha_grad[start:stop] = scale * np.einsum("pnk,pnk->pn", grad[:width], weights_slice)
                    # F = P + alpha Q.
                    negative *= alpha[start:stop, :, None]
                    positive += negative
                    total = positive
                else:
                    total = sums[:width]
                # The hidden layer's gradients use W before this step changes it.
                if compiled is not None:
                    compiled.pixel_gradients(
                        total,
                        weights_slice,
                        kernel,
                        bias,
                        scale,
                        grad[:width],
                        partial_kernel[worker],
                        partial_bias[worker],
                    )
                else:
                    q_sums, r_sums = total[:, :, :classes], total[:, :, classes:]
                    partial_kernel[worker] += np.einsum("pnk,pnk->n", q_sums, weights_slice)
                    partial_bias[worker] += np.einsum("pnk,pnk->n", r_sums, weights_slice)
                    np.multiply(kernel_column, q_sums, out=grad[:width])
                    grad[:width] += bias_column * r_sums
                    grad[:width] *= scale
                out_kernel_sink(start, stop, grad[:width], scratch[:width])

        with self._blas_single_thread():
            self._run_workers(forward)
            loss, accuracy, grad_logits = output_layer(products, pixels_first, labels, scale, out_bias, stacked)
            self._run_workers(backward)
        grads: list[np.ndarray | None] = [None] * len(self.weights)
        grads[0] = (scale * partial_kernel.sum(axis=0)).astype(np.float32)
        grads[1] = (scale * partial_bias.sum(axis=0)).astype(np.float32)
        if self.prelu:
            grads[2] = alpha_grad
        grads[-1] = grad_logits.sum(axis=0)
        return loss, accuracy, grads, codes

    def _buffers(self, batch: int) -> dict:
        """Work arrays, allocated once per batch size (the last batch may be smaller)."""
        if batch not in self._buffer_cache:
            width, pairs = self.float_width, 2 * NUM_CLASSES
            self._buffer_cache[batch] = {
                "kept": np.empty((PIXELS, batch, self.code_width), np.uint8),
                "products": np.empty((PIXELS, batch, pairs), np.float32),
                "stacked": np.empty((PIXELS, batch, pairs), np.float32),
                "drawn": [np.empty((self.chunk, batch, self.units), bool) for _ in self.mask_rngs],
                "expanded": [np.empty((self.chunk, batch, width), np.float32) for _ in self.mask_rngs],
                "uv": [np.empty((self.chunk, width, pairs), np.float32) for _ in self.mask_rngs],
                "sums": [np.empty((self.chunk, width, pairs), np.float32) for _ in self.mask_rngs],
                "grad": [np.empty((self.chunk, self.units, NUM_CLASSES), np.float32) for _ in self.mask_rngs],
                "scratch": [np.empty((self.chunk, self.units, NUM_CLASSES), np.float32) for _ in self.mask_rngs],
            }
        return self._buffer_cache[batch]

    # Inference -------------------------------------------------------------------------------
    def predict(self, images: np.ndarray, chunk: int = 512) -> np.ndarray:
        """Class probabilities for (n, 784) images in [0, 1], without dropout.

        With at most 256 distinct pixel values, each pixel's share of the logits is a
        (256, 10) table (act(z) of each value times W_p) and the logits are gathered from the
        784 tables; otherwise act(z) is computed for chunks of images.
        """
        kernel, bias = self.weights[0], self.weights[1]
        alpha = self._alpha()
        out_kernel, out_bias = self.weights[-2], self.weights[-1]
        images = np.asarray(images, np.float32).reshape(-1, PIXELS)
        found = pixel_levels(images)
        if found is not None:
            indices, values = found
            z = values[:, None] * kernel
            z += bias
            if self.prelu:
                # relu(z) W_p + min(z, 0) (alpha_p W_p): PReLU's slopes are per pixel.
                tables = np.matmul(np.maximum(z, 0), out_kernel)
                tables += np.matmul(np.minimum(z, 0), alpha[:, :, None] * out_kernel)
            else:
                tables = np.matmul(activate(self.activation, z, None), out_kernel)  # (784, 256, K)
            pixel_rows = np.arange(PIXELS)[:, None]
        outputs = [np.zeros((0, NUM_CLASSES), np.float32)]
        for first in range(0, len(images), chunk):
            if found is not None:
                chosen = indices[first : first + chunk].T.astype(np.intp)  # (784, chunk)
                logits = tables[pixel_rows, chosen].sum(axis=0)
            else:
                pixels_first = np.ascontiguousarray(images[first : first + chunk].T)
                logits = np.zeros((pixels_first.shape[1], NUM_CLASSES), np.float32)
                for start in range(0, PIXELS, 16):
                    z = pixels_first[start : start + 16, :, None] * kernel
                    z += bias
                    alpha_slice = None if alpha is None else alpha[start : start + 16, None, :]
                    activated = activate(self.activation, z, alpha_slice)
                    logits += np.matmul(activated, out_kernel[start : start + 16]).sum(axis=0)
            outputs.append(softmax(logits + out_bias))
        return np.concatenate(outputs).astype(np.float64)
