"""A numpy engine for every network the shallow-net lab offers (both architectures, any
activation, one to three hidden layers, any dropout, the three optimizers).

The per-pixel network applies the same hidden layers to each of the 784 pixels, so for one
pixel p and one image b, with m the 0/1 dropout masks, s = 1 / keep and act the activation,

    a0[b, p]    = x[b, p]                                     (one input value per pixel)
    z_l[b, p]   = a_{l-1}[b, p] @ W_l + c_l                   (W_l shared by every pixel)
    a_l[b, p]   = s * m_l[b, p] * act(z_l[b, p])
    logits[b]   = sum_p a_L[b, p] @ Wout_p + bias             (Wout_p: pixel p's rows)

and the backward pass is the usual chain rule on the same quantities. Keras keeps the whole
(batch, 28, 28, N) tensors of every layer (and their gradients) in memory; here the pixels
are cut into slices whose tensors fit in cache, each worker thread runs the forward pass of
its slices (only the 0/1 masks and the batch's logits are kept), and after the loss the
backward pass recomputes each slice's forward values while they are in cache. The slice of
the output kernel is handed to the optimizer as soon as its gradient is known. The MLP is
the same computation with one "pixel" whose input is the whole flattened image.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from core.shallow.compiled import LEAKY_SLOPE
from core.shallow.config import NUM_CLASSES, PIXELS, TrainingConfig, refuse_convolutions
from core.shallow.engines import NumpyOptimizer, ShuffledEpochs, cross_entropy, draw_keep, softmax

SLICE_BYTES = 2 << 20
"""Bytes of one float32 (slice, batch, neurons) tensor; a few of them stay in cache at once."""
SIGN_ACTIVATIONS = ("none", "relu", "leaky_relu")
"""Activations whose derivative wherever it matters follows from the layer's output a = s m
act(z): none has 1; ReLU and LeakyReLU are positive exactly where z is (a dropped value has a
zero gradient anyway), and TensorFlow's derivative at z = 0 (ReLU 0, LeakyReLU its slope) is
the one for a = 0. For them a step keeps only a."""
KEEP_FORWARD_BYTES = 1 << 30
"""Up to this size, a step keeps every slice's forward values (each layer's a, and z where needed) for the
backward pass; a larger step recomputes them slice by slice (a second forward product)."""


def keeps_forward(units: tuple[int, ...], positions: int, batch: int) -> bool:
    """Whether a step of this network keeps its forward values instead of recomputing them.

    With two or more layers the recomputation repeats every product but the first layer's:
    for 392 + 392 neurons a quarter of the step's multiply-adds. Writing the values out and
    reading them back costs far less while they fit in memory.
    """
    return len(units) > 1 and 2 * 4 * batch * positions * sum(units) <= KEEP_FORWARD_BYTES


def activate(kind: str, z: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """act(z) as Keras computes it, in a new array."""
    if kind == "none":
        return z.copy()
    if kind == "relu":
        return np.maximum(z, 0)
    if kind == "leaky_relu":
        return np.where(z > 0, z, np.float32(LEAKY_SLOPE) * z)
    if kind == "prelu":
        # keras.layers.PReLU: relu(z) - alpha * relu(-z).
        return np.maximum(z, 0) + alpha * np.minimum(z, 0)
    # ELU with alpha 1: z above zero, exp(z) - 1 at or below.
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))


def backprop_activation(kind: str, z: np.ndarray, grad: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """dLoss/dz from dLoss/d act(z), with TensorFlow's derivative at z = 0 (in place on grad).

    ReLU's and PReLU's derivative at 0 is 0 (both are built on tf.nn.relu), LeakyReLU's is
    its slope there, ELU's is 1.
    """
    if kind == "none":
        return grad
    if kind == "relu":
        grad *= z > 0
    elif kind == "leaky_relu":
        grad *= np.where(z > 0, np.float32(1.0), np.float32(LEAKY_SLOPE))
    elif kind == "prelu":
        grad *= (z > 0) + alpha * (z < 0)
    else:
        grad *= np.where(z > 0, np.float32(1.0), np.exp(np.minimum(z, 0)))
    return grad


def log_softmax_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy from the logits, unclipped, as Keras computes it in training.

    Keras' softmax output remembers its logits and the loss uses them, so no 1e-7 clip
    applies; the gradient p - onehot below is this loss's exact gradient.
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    return float(np.mean(log_norm - shifted[np.arange(len(labels)), labels]))


def accumulate(sums: list, index: int, value: np.ndarray) -> None:
    """sums[index] += value, where None stands for zero (the first value is kept, not copied)."""
    if sums[index] is None:
        sums[index] = value
    else:
        sums[index] += value


def kept_forward_bytes(config: TrainingConfig) -> int:
    """Bytes of the forward values a training step of `config` keeps (0 if it recomputes them)."""
    positions = PIXELS if config.architecture == "article" else 1
    units = tuple(config.hidden_units)
    if positions == 1 or not keeps_forward(units, positions, config.batch_size):
        return 0  # The MLP is one slice: its few values are kept without whole-step arrays.
    arrays = 1 if config.activation in SIGN_ACTIVATIONS else 2
    return arrays * 4 * config.batch_size * positions * sum(units)


class NumpyDenseEngine(ShuffledEpochs):
    """Trains any `TrainingConfig` of the lab on the CPU with numpy; Keras' maths, float32.

    Args:
        config: the run's settings (mixed precision is a Keras feature and is refused).
        weights: the Keras model's weights in its order: per hidden layer its kernel, bias
            and (PReLU) slopes; then the output kernel and bias.
        threads: worker threads over pixel slices (the MLP uses BLAS' own threads instead).
    """

    name = "numpy"

    def __init__(self, config: TrainingConfig, weights: list[np.ndarray], threads: int = 2, compiled: bool = True):
        from core.shallow import compiled as kernels

        refuse_convolutions(config, "numpy")
        if config.mixed_precision:
            raise ValueError("The numpy engine computes in float32; choose engine 'keras' for mixed precision.")
        self.config = config
        self.per_pixel = config.architecture == "article"
        self.positions = PIXELS if self.per_pixel else 1
        self.units = tuple(config.hidden_units)
        self.activation = config.activation
        self.keep = 1.0 - config.dropout
        self.scale = 1.0 / self.keep
        self.shapes = [tuple(w.shape) for w in weights]
        per_layer = 3 if self.activation == "prelu" else 2
        if len(weights) != per_layer * len(self.units) + 2:
            raise ValueError(f"Expected {per_layer * len(self.units) + 2} weight arrays, got {len(weights)}.")
        self.per_layer = per_layer
        self.set_weights(weights)
        self.optimizer = NumpyOptimizer(config, [w.shape for w in self.weights], compiled=compiled)
        # The compiled layer passes where numba is installed; numpy's passes otherwise.
        compilable = self.activation in kernels.ACTIVATIONS
        self.kernels = kernels if compiled and compilable and kernels.available() else None
        self._store, self._store_batch = None, None
        workers = max(1, threads) if self.per_pixel else 1
        seeds = np.random.SeedSequence(config.seed).spawn(workers + 1)
        self.shuffle_rng = np.random.default_rng(seeds[0])
        self.mask_rngs = [np.random.Generator(np.random.SFC64(seed)) for seed in seeds[1:]]
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="dense-engine") if workers > 1 else None
        # One random byte per kept/dropped decision, exact as in NumpyPerPixelEngine: bytes
        # below the threshold keep, bytes equal to it keep with the leftover fraction.
        self.byte_threshold, self.byte_fraction = divmod(self.keep * 256, 1.0)
        self.byte_threshold = int(self.byte_threshold)
        if self.byte_fraction < 1e-9:
            self.byte_fraction = 0.0

    # Weights in, weights out -----------------------------------------------------------------
    def set_weights(self, weights: list[np.ndarray]) -> None:
        arrays = [np.array(w, dtype=np.float32, copy=True) for w in weights]
        for layer in range(len(self.units)):
            if self.activation == "prelu":
                index = layer * 3 + 2
                arrays[index] = arrays[index].reshape(self.positions, self.units[layer])
        arrays[-2] = arrays[-2].reshape(self.positions, self.units[-1], NUM_CLASSES)
        self.weights = arrays

    def get_weights(self) -> list[np.ndarray]:
        return [w.reshape(shape).copy() for w, shape in zip(self.weights, self.shapes, strict=True)]

    def _layer(self, layer: int):
        base = layer * self.per_layer
        alpha = self.weights[base + 2] if self.activation == "prelu" else None
        return self.weights[base], self.weights[base + 1], alpha

    # The slice computations ------------------------------------------------------------------
    def _inputs(self, images: np.ndarray) -> np.ndarray:
        """(positions, batch, input width): each pixel's value, or the whole flattened image."""
        if self.per_pixel:
            return np.ascontiguousarray(images.T)[:, :, None]
        return images[None]

    def _forward(self, inputs: np.ndarray, start: int, stop: int, masks, store=None) -> list[tuple]:
        """Forward pass of pixels start:stop; returns (z, a) per layer (a with dropout applied).

        `store`: per layer a (z, a) pair of whole-step arrays whose start:stop slices receive
        the values (kept for the backward pass), or None for new slice-sized arrays.
        """
        values = inputs[start:stop]
        width, batch = values.shape[:2]
        cache = []
        for layer, units in enumerate(self.units):
            kernel, bias, alpha = self._layer(layer)
            first = self.per_pixel and layer == 0
            mask = None if masks is None else masks[layer][start:stop]
            alpha_slice = None if alpha is None else alpha[start:stop]
            if store is None:
                z, out = np.empty((2, width, batch, units), np.float32)
            elif self.activation in SIGN_ACTIVATIONS:
                # The backward pass reads act'(z) off the kept output; z itself is not kept.
                z, out = np.empty((width, batch, units), np.float32), store[layer][start:stop]
            else:
                z, out = store[layer][0][start:stop], store[layer][1][start:stop]
            if first and self.kernels is None:
                np.multiply(values, kernel[0], out=z)  # (slice, batch, 1) x (N,): Dense on one input value.
            elif not first:
                np.matmul(values.reshape(-1, values.shape[-1]), kernel, out=z.reshape(-1, units))
            if self.kernels is not None:
                # One compiled pass: bias, activation, mask and scale (and a first layer's z).
                self.kernels.layer_forward(
                    self.activation,
                    z,
                    bias,
                    mask,
                    self.scale,
                    alpha_slice,
                    out,
                    values[:, :, 0] if first else None,
                    kernel,
                )
            else:
                z += bias
                out[...] = activate(self.activation, z, None if alpha is None else alpha_slice[:, None, :])
                if mask is not None:
                    out *= mask
                    out *= np.float32(self.scale)
            cache.append((out if store is not None and self.activation in SIGN_ACTIVATIONS else z, out))
            values = out
        return cache

    def _logits_part(self, cache, start: int, stop: int) -> np.ndarray:
        """This slice's share of the logits: sum over its pixels of a_L[p] @ Wout_p."""
        products = np.matmul(cache[-1][1], self.weights[-2][start:stop])  # (slice, batch, K)
        return products.sum(axis=0)

    def _backward(self, inputs, start, stop, masks, cache, grad_logits, sums, out_kernel_sink) -> None:
        """Adds this slice's gradients of the shared weights to `sums`; hands on the output kernel's."""
        out_kernel = self.weights[-2][start:stop]
        last = cache[-1][1]
        grad_out_kernel = np.matmul(last.transpose(0, 2, 1), grad_logits)  # (slice, N_L, K)
        grad_values = np.matmul(grad_logits, out_kernel.transpose(0, 2, 1))  # (slice, batch, N_L)
        out_kernel_sink(start, stop, grad_out_kernel)
        for layer in reversed(range(len(self.units))):
            kernel, bias, alpha = self._layer(layer)
            z = cache[layer][0]
            mask = None if masks is None else masks[layer][start:stop]
            base = layer * self.per_layer
            first = self.per_pixel and layer == 0
            below = inputs[start:stop] if layer == 0 else cache[layer - 1][1]
            inner = below.shape[-1]
            if self.kernels is not None:
                # One compiled pass: mask, scale, the activation's derivative, and the sums
                # for the bias (and PReLU's slopes, and a per-pixel first layer's kernel).
                grad_z = grad_values
                bias_sum, alpha_sum, kernel_sum = self.kernels.layer_backward(
                    self.activation,
                    grad_z,
                    z,
                    mask,
                    self.scale,
                    None if alpha is None else alpha[start:stop],
                    below[:, :, 0] if first else None,
                )
                accumulate(sums, base + 1, bias_sum)
                if alpha is not None:
                    if sums[base + 2] is None:
                        sums[base + 2] = np.zeros_like(alpha)
                    sums[base + 2][start:stop] += alpha_sum
                if first:
                    accumulate(sums, base, kernel_sum[None])
            else:
                if mask is not None:
                    grad_values *= mask
                    grad_values *= np.float32(self.scale)
                if alpha is not None:
                    # d PReLU / d alpha = min(z, 0), one slope per pixel and neuron.
                    if sums[base + 2] is None:
                        sums[base + 2] = np.zeros_like(alpha)
                    sums[base + 2][start:stop] += np.einsum("pbn,pbn->pn", grad_values, np.minimum(z, 0))
                alpha_slice = None if alpha is None else alpha[start:stop, None, :]
                grad_z = backprop_activation(self.activation, z, grad_values, alpha_slice)
                accumulate(sums, base + 1, grad_z.sum(axis=(0, 1)))
                if first:
                    accumulate(sums, base, np.einsum("pb,pbn->n", below[:, :, 0], grad_z)[None])
            if not first:
                accumulate(sums, base, below.reshape(-1, inner).T @ grad_z.reshape(-1, grad_z.shape[-1]))
            if layer > 0:
                grad_values = (grad_z.reshape(-1, grad_z.shape[-1]) @ kernel.T).reshape(below.shape)

    # Masks -----------------------------------------------------------------------------------
    def _draw_keep(self, generator, kept: np.ndarray) -> None:
        """Fills a boolean block with independent keep decisions, P(keep) = 1 - dropout exactly."""
        draw_keep(generator, kept, self.byte_threshold, self.byte_fraction)

    def _forward_store(self, batch: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Whole-step (positions, batch, N) arrays for the layers' a (and z, where act'(z)
        cannot be read off a), made once per batch size and reused, so that keeping them
        costs no allocation per step."""
        if self._store_batch != batch:
            self._store = None  # The old arrays go before the new ones are made.
            kept = 1 if self.activation in SIGN_ACTIVATIONS else 2
            self._store = [np.empty((kept, self.positions, batch, units), np.float32) for units in self.units]
            self._store_batch = batch
        return [arrays[0] if len(arrays) == 1 else (arrays[0], arrays[1]) for arrays in self._store]

    # The step --------------------------------------------------------------------------------
    def _slices(self, batch: int) -> list[tuple[int, int]]:
        widest = max(self.units)
        chunk = max(1, min(self.positions, SLICE_BYTES // max(1, batch * widest * 4)))
        return [(start, min(start + chunk, self.positions)) for start in range(0, self.positions, chunk)]

    def _run_workers(self, work) -> None:
        if self.pool is None:
            work(0)
        else:
            for future in [self.pool.submit(work, worker) for worker in range(len(self.mask_rngs))]:
                future.result()

    def _blas_single_thread(self):
        """Each worker thread runs its own products, so BLAS must not start threads too."""
        if self.pool is None:
            return contextlib.nullcontext()
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=1, user_api="blas")

    def _step(self, images, labels, masks, out_kernel_sink):
        """Loss, accuracy and the shared weights' gradients of one batch under `masks`.

        Args:
            masks: per hidden layer a (positions, batch, N) boolean keep mask, or None to
                draw fresh ones (filled in place).
            out_kernel_sink: called as (start, stop, gradient) for each slice of the output
                kernel, after that slice's forward values no longer need it.

        Returns:
            loss, accuracy, gradients of every weight but the output kernel (None there),
            dLoss/dlogits and the masks.
        """
        batch = len(labels)
        inputs = self._inputs(images)
        dropping = self.keep < 1.0
        draw = masks is None and dropping
        if draw:
            masks = [np.empty((self.positions, batch, units), bool) for units in self.units]
        if not dropping:
            masks = None
        slices = self._slices(batch)
        keep_forward = len(slices) == 1 or keeps_forward(self.units, self.positions, batch)
        workers = len(self.mask_rngs)
        partial_logits = np.zeros((workers, batch, NUM_CLASSES), np.float32)
        saved: dict = {}

        store = self._forward_store(batch) if keep_forward and len(slices) > 1 else None

        def forward(worker: int) -> None:
            generator = self.mask_rngs[worker].bit_generator
            for start, stop in slices[worker::workers]:
                if draw:
                    for mask in masks:
                        self._draw_keep(generator, mask[start:stop])
                cache = self._forward(inputs, start, stop, masks, store)
                partial_logits[worker] += self._logits_part(cache, start, stop)
                if keep_forward:
                    saved[start] = cache  # Kept for the backward pass instead of recomputed.

        with self._blas_single_thread():
            self._run_workers(forward)
            logits = partial_logits.sum(axis=0) + self.weights[-1]
            loss = log_softmax_loss(logits, labels)
            probabilities = softmax(logits)
            accuracy = float(np.mean(probabilities.argmax(1) == labels))
            grad_logits = probabilities
            grad_logits[np.arange(batch), labels] -= 1.0
            grad_logits /= batch
            # Each worker sums its slices' gradients of the shared weights (the output
            # kernel goes to the sink slice by slice instead); None until a slice adds one.
            per_worker = [[None] * len(self.weights) for _ in range(workers)]

            def backward(worker: int) -> None:
                for start, stop in slices[worker::workers]:
                    cache = saved.get(start) or self._forward(inputs, start, stop, masks)
                    self._backward(inputs, start, stop, masks, cache, grad_logits, per_worker[worker], out_kernel_sink)

            self._run_workers(backward)
        grads = per_worker[0]
        for other in per_worker[1:]:
            for index, grad in enumerate(other):
                if grad is not None:
                    accumulate(grads, index, grad)
        out_index = len(self.weights) - 2
        for index, weight in enumerate(self.weights):
            if grads[index] is None and index != out_index:
                grads[index] = np.zeros_like(weight)  # A worker with no slices, or no dropout paths.
        grads[-1] = grad_logits.sum(axis=0)
        return loss, accuracy, grads, grad_logits, masks

    def gradients(self, images: np.ndarray, labels: np.ndarray, masks=None):
        """Loss, accuracy, gradients (Keras weight shapes) and the masks used, without a step.

        Args:
            masks: per hidden layer a (784 or 1, batch, N) boolean keep mask; None draws them.
        """
        grad_out_kernel = np.empty_like(self.weights[-2])

        def keep_slice(start: int, stop: int, grad: np.ndarray) -> None:
            grad_out_kernel[start:stop] = grad

        loss, accuracy, grads, _, masks = self._step(images, labels, masks, keep_slice)
        grads[-2] = grad_out_kernel
        shaped = [grad.reshape(shape) for grad, shape in zip(grads, self.shapes, strict=True)]
        return loss, accuracy, shaped, masks

    def train_batch(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        """One optimizer step on a batch; returns its loss and accuracy (with dropout, like Keras)."""
        optimizer = self.optimizer
        optimizer.start_step()
        out_index = len(self.weights) - 2
        out_kernel = self.weights[out_index]

        def apply_slice(start: int, stop: int, grad: np.ndarray) -> None:
            optimizer.update(out_index, out_kernel[start:stop], grad, slice(start, stop))

        loss, accuracy, grads, _, _ = self._step(images, labels, None, apply_slice)
        for index, grad in enumerate(grads):
            if index != out_index:
                optimizer.update(index, self.weights[index], grad)
        return loss, accuracy

    # Inference -------------------------------------------------------------------------------
    def predict(self, images: np.ndarray, chunk: int = 512) -> np.ndarray:
        """Class probabilities for (n, 784) images in [0, 1], without dropout."""
        outputs = []
        workers = len(self.mask_rngs)
        with self._blas_single_thread():
            for first in range(0, len(images), chunk):
                inputs = self._inputs(np.asarray(images[first : first + chunk], np.float32))
                slices = self._slices(inputs.shape[1])
                partial = np.zeros((workers, inputs.shape[1], NUM_CLASSES), np.float32)

                def forward(worker: int, inputs=inputs, slices=slices, partial=partial) -> None:
                    for start, stop in slices[worker::workers]:
                        partial[worker] += self._logits_part(self._forward(inputs, start, stop, None), start, stop)

                self._run_workers(forward)
                outputs.append(softmax(partial.sum(axis=0) + self.weights[-1]))
        return np.concatenate(outputs).astype(np.float64)

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        probabilities = self.predict(images)
        return cross_entropy(probabilities, labels), float(np.mean(probabilities.argmax(1) == labels))
