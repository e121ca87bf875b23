"""Training engines: one Keras model is the source of truth, an engine moves its weights.

`KerasEngine` trains any configuration with `model.fit` (and the GPU when Keras sees one).
`NumpyPerPixelEngine` trains the article's best model (one per-pixel `Dense(N)` with no
activation, dropout, `Dense(10)`) several times faster on a CPU, with the same maths:

    hidden[b, p, n] = x[b, p] * w[n] + c[n]                        (Dense(N) on each pixel)
    logits[b, k]    = s * sum_{p,n} m[b, p, n] * hidden[b, p, n] * W[p, n, k] + bias[k]

with m the 0/1 dropout mask and s = 1 / keep. Grouping by pixel p, with U_p = w * W_p and
V_p = c * W_p (each N x K), the forward pass is one batched product over the pixels,
`M_p @ [U_p | V_p]`, and the backward pass another, `M_p^T @ [x_p g | g]`, from which the
gradients of W, w and c follow element-wise. Only the mask is materialised; the
(batch, 28, 28, N) hidden tensor Keras builds (and its gradient) never is. Without
dropout (evaluation) the network collapses to one linear map, A_p = sum_n w[n] W[p, n].
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from core.shallow.config import NUM_CLASSES, PIXELS, PREDICT_BATCH, TrainingConfig

BatchCallback = Callable[[int, float, float], bool]
"""Called after each batch with (batch index, mean loss so far, mean accuracy so far);
returning False stops the epoch early (a user pressed Stop)."""

CLIP = 1e-7  # Keras clips probabilities to [1e-7, 1 - 1e-7] in categorical cross-entropy.


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean categorical cross-entropy, computed as Keras does."""
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, CLIP, 1 - CLIP))))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def output_layer(products, pixels_first, labels, scale, out_bias, stacked):
    """From the per-pixel products to the loss, and back to what the backward products need.

    Args:
        products: (784, batch, 2K) float32, M_p @ [U_p | V_p] for every pixel p.
        pixels_first: (784, batch) pixel values.
        labels: (batch,) classes.
        scale: 1 / keep, the dropout scale.
        out_bias: (K,) output bias.
        stacked: (784, batch, 2K) float32, filled with [x_p g | g].

    Returns:
        loss, accuracy, and g = dLoss/dlogits (batch, K).
    """
    classes = out_bias.shape[0]
    logits = np.einsum("pbk,pb->bk", products[:, :, :classes], pixels_first)
    logits += products[:, :, classes:].sum(axis=0)
    logits *= scale
    logits += out_bias
    probabilities = softmax(logits)
    loss = cross_entropy(probabilities, labels)
    accuracy = float(np.mean(probabilities.argmax(1) == labels))
    grad_logits = probabilities
    grad_logits[np.arange(len(labels)), labels] -= 1.0
    grad_logits /= len(labels)
    np.multiply(pixels_first[:, :, None], grad_logits[None], out=stacked[:, :, :classes])
    stacked[:, :, classes:] = grad_logits[None]
    return loss, accuracy, grad_logits


def draw_keep(generator, kept: np.ndarray, threshold: int, fraction: float) -> None:
    """Fills a boolean block with independent keep decisions with P(keep) = (threshold + fraction) / 256.

    One random byte per value: a byte under `threshold` keeps it; the 1-in-256 values whose
    byte equals it are kept with probability `fraction` by a second, 53-bit draw, so P(keep)
    is exact (0.2 is 51.2 / 256).
    """
    count = kept.size
    raw = generator.random_raw(-(-count // 8)).view(np.uint8)[:count].reshape(kept.shape)
    np.less(raw, threshold, out=kept)
    if fraction:
        borderline = np.flatnonzero(raw == threshold)
        second = generator.random_raw(len(borderline)) >> np.uint64(11)
        kept.reshape(-1)[borderline] = second < np.uint64(fraction * 2.0**53)


class NumpyOptimizer:
    """Adam, RMSprop and SGD with momentum, with Keras 3's update formulas."""

    def __init__(self, config: TrainingConfig, shapes: list[tuple[int, ...]], compiled: bool = True):
        from core.shallow import compiled as kernels

        self.kind = config.optimizer
        self.learning_rate = config.learning_rate
        self.iterations = 0
        self.slots = [[np.zeros(shape, np.float32) for shape in shapes] for _ in range(2)]
        # The compiled one-pass update (same float32 operations) where numba is installed.
        self.kernels = kernels if compiled and kernels.available() else None

    def start_step(self) -> None:
        """Counts one optimizer step; `update` calls that follow belong to it."""
        self.iterations += 1

    def update(self, index: int, weight: np.ndarray, grad: np.ndarray, region=slice(None), scratch=None) -> None:
        """Updates weight `index` (or the `region` of it that `weight` is) in place."""
        self._update(weight, grad, self.slots[0][index][region], self.slots[1][index][region], scratch)

    def _update(self, weight, grad, first, second, scratch=None) -> None:
        """One update of a block, in place and without temporaries (`scratch` is reused)."""
        if self.kernels is not None and self.kernels.optimizer_update(
            self.kind, weight, grad, first, second, self.learning_rate, self.iterations
        ):
            return
        scratch = np.empty_like(grad) if scratch is None else scratch
        rate = self.learning_rate
        if self.kind == "adam":
            beta_1, beta_2, epsilon = 0.9, 0.999, 1e-4
            alpha = rate * math.sqrt(1 - beta_2**self.iterations) / (1 - beta_1**self.iterations)
            first *= beta_1
            np.multiply(grad, 1 - beta_1, out=scratch)
            first += scratch
            second *= beta_2
            np.square(grad, out=scratch)
            scratch *= 1 - beta_2
            second += scratch
            np.sqrt(second, out=scratch)
            scratch += epsilon
            np.divide(first, scratch, out=scratch)
            scratch *= alpha
            weight -= scratch
        elif self.kind == "rmsprop":
            rho, epsilon = 0.9, 1e-4
            first *= rho
            np.square(grad, out=scratch)
            scratch *= 1 - rho
            first += scratch
            np.add(first, epsilon, out=scratch)
            np.sqrt(scratch, out=scratch)
            np.divide(grad, scratch, out=scratch)
            scratch *= rate
            weight -= scratch
        else:  # SGD, momentum 0.85.
            first *= 0.85
            np.multiply(grad, rate, out=scratch)
            first -= scratch
            weight += first


class ShuffledEpochs:
    """`train_epoch` and `close` for the numpy engines: shuffled batches through `train_batch`.

    The engine provides `config`, `shuffle_rng`, `train_batch(images, labels)` and `pool` (its
    worker threads, or None).
    """

    def train_epoch(self, images: np.ndarray, labels: np.ndarray, on_batch: BatchCallback) -> tuple[float, float]:
        """One pass over shuffled data; returns the epoch's mean loss and accuracy."""
        order = self.shuffle_rng.permutation(len(labels))
        batch_size = self.config.batch_size
        loss_sum = correct_sum = seen = 0.0
        for index, start in enumerate(range(0, len(order), batch_size)):
            chosen = order[start : start + batch_size]
            loss, accuracy = self.train_batch(images[chosen], labels[chosen])
            loss_sum += loss * len(chosen)
            correct_sum += accuracy * len(chosen)
            seen += len(chosen)
            if on_batch(index, loss_sum / seen, correct_sum / seen) is False:
                break
        return loss_sum / max(seen, 1), correct_sum / max(seen, 1)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False)


class NumpyPerPixelEngine(ShuffledEpochs):
    """The article's linear per-pixel network, trained with batched matrix products.

    Args:
        config: must satisfy `config.fits_numpy_engine`.
        weights: the Keras model's weights in its order: hidden kernel (1, N), hidden bias
            (N,), output kernel (784 N, 10), output bias (10,).
        threads: threads that draw the dropout mask.
    """

    name = "numpy"

    def __init__(self, config: TrainingConfig, weights: list[np.ndarray], threads: int = 2, compiled: bool = True):
        from core.shallow import compiled as kernels

        if not config.fits_numpy_engine:
            raise ValueError("The numpy engine needs one linear per-pixel hidden layer.")
        self.config = config
        # The compiled passes (mask, weights, gradients, optimizer) where numba is installed.
        self.kernels = kernels if compiled and kernels.available() else None
        self.units = config.hidden_units[0]
        self.keep = 1.0 - config.dropout
        self.set_weights(weights)
        self.optimizer = NumpyOptimizer(config, [w.shape for w in self.weights], compiled=compiled)
        seeds = np.random.SeedSequence(config.seed).spawn(threads + 1)
        self.shuffle_rng = np.random.default_rng(seeds[0])
        self.mask_rngs = [np.random.Generator(np.random.SFC64(seed)) for seed in seeds[1:]]
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="dropout-mask") if threads > 1 else None
        # _draw_keep needs one random byte per value: byte < 51 keeps with probability
        # 51/256, and the 1-in-256 values at exactly 51 are kept with probability 0.2 (for
        # keep = 0.2) by a second draw, so P(keep) is exact and the scale is 1 / keep.
        self.byte_threshold, self.byte_fraction = divmod(self.keep * 256, 1.0)
        self.byte_threshold = int(self.byte_threshold)
        if self.byte_fraction < 1e-9:
            self.byte_fraction = 0.0
        self.scale = 1.0 / self.keep
        self._buffer_cache: dict[int, dict] = {}
        # Pixels per slice: the float32 slice of the mask (chunk x batch x N) stays in cache.
        self.chunk = max(1, min(PIXELS, (2 << 20) // max(1, config.batch_size * self.units * 4)))

    # Weights in, weights out -----------------------------------------------------------------
    def set_weights(self, weights: list[np.ndarray]) -> None:
        kernel, bias, out_kernel, out_bias = (np.array(w, dtype=np.float32, copy=True) for w in weights)
        self.weights = [
            kernel.reshape(-1),
            bias,
            out_kernel.reshape(PIXELS, self.units, NUM_CLASSES),
            out_bias,
        ]

    def get_weights(self) -> list[np.ndarray]:
        kernel, bias, out_kernel, out_bias = self.weights
        return [
            kernel.reshape(1, self.units).copy(),
            bias.copy(),
            out_kernel.reshape(PIXELS * self.units, NUM_CLASSES).copy(),
            out_bias.copy(),
        ]

    # Inference: the exact linear collapse of the network without dropout ---------------------
    def collapsed(self) -> tuple[np.ndarray, np.ndarray]:
        kernel, bias, out_kernel, out_bias = self.weights
        matrix = np.einsum("n,pnk->pk", kernel, out_kernel)
        offset = np.einsum("n,pnk->k", bias, out_kernel) + out_bias
        return matrix, offset

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities for (n, 784) images in [0, 1]."""
        matrix, offset = self.collapsed()
        return softmax(images @ matrix + offset)

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        probabilities = self.predict(images)
        return cross_entropy(probabilities, labels), float(np.mean(probabilities.argmax(1) == labels))

    # Training --------------------------------------------------------------------------------
    def gradients(self, images: np.ndarray, labels: np.ndarray, mask: np.ndarray):
        """Loss, accuracy and gradients (Keras weight order) of a batch under a given mask.

        Args:
            images: (batch, 784) float32 pixels in [0, 1].
            labels: (batch,) integer classes.
            mask: (784, batch, N) float32 0/1 dropout mask (kept = 1).
        """
        kernel, bias, out_kernel, out_bias = self.weights
        batch = len(labels)
        pixels_first = np.ascontiguousarray(images.T)  # (784, batch)
        scale = self.scale if self.keep < 1.0 else 1.0

        # Forward: [U_p | V_p] = [w * W_p | c * W_p], then one product per pixel.
        weights_uv = np.concatenate([kernel[None, :, None] * out_kernel, bias[None, :, None] * out_kernel], axis=2)
        products = np.matmul(mask, weights_uv)  # (784, batch, 2K)
        stacked = np.empty((PIXELS, batch, 2 * NUM_CLASSES), np.float32)
        loss, accuracy, grad_logits = output_layer(products, pixels_first, labels, scale, out_bias, stacked)
        # Backward: Q_p = M_p^T (x_p g), R_p = M_p^T g.
        sums = np.matmul(mask.transpose(0, 2, 1), stacked)  # (784, N, 2K)
        q_sums, r_sums = sums[:, :, :NUM_CLASSES], sums[:, :, NUM_CLASSES:]
        grad_out_kernel = kernel[None, :, None] * q_sums
        grad_out_kernel += bias[None, :, None] * r_sums
        grad_out_kernel *= scale
        grad_kernel = scale * np.einsum("pnk,pnk->n", q_sums, out_kernel)
        grad_bias = scale * np.einsum("pnk,pnk->n", r_sums, out_kernel)
        grad_out_bias = grad_logits.sum(axis=0)
        return loss, accuracy, [grad_kernel, grad_bias, grad_out_kernel, grad_out_bias]

    def train_batch(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        """One optimizer step on a batch; returns its loss and accuracy (with dropout, like Keras)."""
        optimizer = self.optimizer
        optimizer.start_step()
        out_kernel = self.weights[2]

        def apply_slice(start: int, stop: int, grad: np.ndarray, scratch: np.ndarray) -> None:
            optimizer.update(2, out_kernel[start:stop], grad, slice(start, stop), scratch)

        loss, accuracy, small_grads, _ = self._fused_step(images, labels, apply_slice)
        for index, grad in zip((0, 1, 3), small_grads, strict=True):
            optimizer.update(index, self.weights[index], grad)
        return loss, accuracy

    def fused_gradients(self, images: np.ndarray, labels: np.ndarray):
        """What `train_batch` computes, returned instead of applied (for checking it).

        Returns:
            loss, accuracy, gradients (Keras weight order), and the (784, batch, N) boolean
            mask that was drawn.
        """
        grad_out_kernel = np.empty_like(self.weights[2])

        def keep_slice(start: int, stop: int, grad: np.ndarray, scratch: np.ndarray) -> None:
            grad_out_kernel[start:stop] = grad

        loss, accuracy, (grad_kernel, grad_bias, grad_out_bias), kept = self._fused_step(images, labels, keep_slice)
        return loss, accuracy, [grad_kernel, grad_bias, grad_out_kernel, grad_out_bias], kept

    def _fused_step(self, images: np.ndarray, labels: np.ndarray, out_kernel_sink):
        """`gradients()` with a freshly drawn mask, computed in cache-sized slices of pixels.

        The float 0/1 mask never exists whole: each worker thread draws the random bits of a
        slice of pixels, keeps them as one byte per value, expands the slice to float32 while
        it is in cache and multiplies it; the backward pass expands the bytes again, forms
        the slice's output-kernel gradient and hands it to `out_kernel_sink(start, stop,
        grad, scratch)` (the optimizer, while it is in cache). That cuts the memory traffic that
        bounds the unfused version several times over.

        Returns:
            loss, accuracy, (hidden kernel, hidden bias, output bias) gradients, the mask.
        """
        kernel, bias, out_kernel, out_bias = self.weights
        batch = len(labels)
        units, classes = self.units, NUM_CLASSES
        buffers = self._buffers(batch)
        kept, products, stacked = buffers["kept"], buffers["products"], buffers["stacked"]
        pixels_first = np.ascontiguousarray(images.T)
        scale = self.scale if self.keep < 1.0 else 1.0
        slices = [(start, min(start + self.chunk, PIXELS)) for start in range(0, PIXELS, self.chunk)]
        workers = len(self.mask_rngs)
        kernel_column, bias_column = kernel[None, :, None], bias[None, :, None]

        compiled = self.kernels

        def forward(worker: int) -> None:
            expanded, weights_uv = buffers["expanded"][worker], buffers["uv"][worker]
            generator = self.mask_rngs[worker].bit_generator
            for start, stop in slices[worker::workers]:
                count, width = (stop - start) * batch * units, stop - start
                if self.keep < 1.0:
                    self._draw_keep(generator, kept[start:stop], count)
                else:
                    kept[start:stop] = True
                # [U_p | V_p] = [w * W_p | c * W_p] for the slice's pixels.
                if compiled is not None:
                    compiled.pixel_weights(kernel, bias, out_kernel[start:stop], weights_uv[:width])
                else:
                    np.multiply(kernel_column, out_kernel[start:stop], out=weights_uv[:width, :, :classes])
                    np.multiply(bias_column, out_kernel[start:stop], out=weights_uv[:width, :, classes:])
                np.copyto(expanded[:width], kept[start:stop])
                np.matmul(expanded[:width], weights_uv[:width], out=products[start:stop])

        partial_kernel = np.zeros((workers, units), np.float64)
        partial_bias = np.zeros((workers, units), np.float64)

        def backward(worker: int) -> None:
            expanded, sums = buffers["expanded"][worker], buffers["sums"][worker]
            grad, scratch = buffers["grad"][worker], buffers["scratch"][worker]
            for start, stop in slices[worker::workers]:
                width = stop - start
                np.copyto(expanded[:width], kept[start:stop])
                # Q_p = M_p^T (x_p g) and R_p = M_p^T g, side by side.
                np.matmul(expanded[:width].transpose(0, 2, 1), stacked[start:stop], out=sums[:width])
                # The hidden layer's gradients use W before this step changes it.
                if compiled is not None:
                    compiled.pixel_gradients(
                        sums[:width], out_kernel[start:stop], kernel, bias, scale, grad[:width],
                        partial_kernel[worker], partial_bias[worker],
                    )  # fmt: skip
                else:
                    q_sums, r_sums = sums[:width, :, :classes], sums[:width, :, classes:]
                    partial_kernel[worker] += np.einsum("pnk,pnk->n", q_sums, out_kernel[start:stop])
                    partial_bias[worker] += np.einsum("pnk,pnk->n", r_sums, out_kernel[start:stop])
                    np.multiply(kernel_column, q_sums, out=grad[:width])
                    grad[:width] += bias_column * r_sums
                    grad[:width] *= scale
                out_kernel_sink(start, stop, grad[:width], scratch[:width])

        with self._blas_single_thread():
            self._run_workers(forward)
            loss, accuracy, grad_logits = output_layer(products, pixels_first, labels, scale, out_bias, stacked)
            self._run_workers(backward)
        grad_kernel = (scale * partial_kernel.sum(axis=0)).astype(np.float32)
        grad_bias = (scale * partial_bias.sum(axis=0)).astype(np.float32)
        return loss, accuracy, (grad_kernel, grad_bias, grad_logits.sum(axis=0)), kept

    def _draw_keep(self, generator, kept: np.ndarray, count: int) -> None:
        """Fills a boolean block with independent keep decisions, P(keep) = 1 - dropout exactly."""
        draw_keep(generator, kept, self.byte_threshold, self.byte_fraction)

    def _buffers(self, batch: int) -> dict:
        """Work arrays, allocated once per batch size (the last batch may be smaller)."""
        if batch not in self._buffer_cache:
            units, pairs = self.units, 2 * NUM_CLASSES
            self._buffer_cache[batch] = {
                "kept": np.empty((PIXELS, batch, units), bool),
                "products": np.empty((PIXELS, batch, pairs), np.float32),
                "stacked": np.empty((PIXELS, batch, pairs), np.float32),
                # One set of slice-sized work arrays per worker thread.
                "expanded": [np.empty((self.chunk, batch, units), np.float32) for _ in self.mask_rngs],
                "uv": [np.empty((self.chunk, units, pairs), np.float32) for _ in self.mask_rngs],
                "sums": [np.empty((self.chunk, units, pairs), np.float32) for _ in self.mask_rngs],
                "grad": [np.empty((self.chunk, units, NUM_CLASSES), np.float32) for _ in self.mask_rngs],
                "scratch": [np.empty((self.chunk, units, NUM_CLASSES), np.float32) for _ in self.mask_rngs],
            }
        return self._buffer_cache[batch]

    def _run_workers(self, work) -> None:
        if self.pool is None:
            work(0)
        else:
            for future in [self.pool.submit(work, worker) for worker in range(len(self.mask_rngs))]:
                future.result()

    def _blas_single_thread(self):
        """Each worker thread runs its own small products, so BLAS must not start threads too."""
        if self.pool is None:
            return contextlib.nullcontext()
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=1, user_api="blas")


class KerasEngine:
    """Any configuration, trained by Keras' own `fit` one epoch at a time."""

    name = "keras"

    def __init__(self, config: TrainingConfig, model):
        import keras

        from core.shallow.config import make_optimizer

        self.config = config
        self.model = model
        self.keras = keras
        model.compile(optimizer=make_optimizer(config), loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.model.set_weights(weights)

    def get_weights(self) -> list[np.ndarray]:
        return [np.array(w, copy=True) for w in self.model.get_weights()]

    @staticmethod
    def _images(images: np.ndarray) -> np.ndarray:
        return images.reshape(-1, 28, 28, 1)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(
            self.model.predict(self._images(images), batch_size=PREDICT_BATCH, verbose=0), dtype=np.float64
        )

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        probabilities = self.predict(images)
        return cross_entropy(probabilities, labels), float(np.mean(probabilities.argmax(1) == labels))

    def train_epoch(self, images: np.ndarray, labels: np.ndarray, on_batch: BatchCallback) -> tuple[float, float]:
        keras = self.keras

        class Progress(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                logs = logs or {}
                if on_batch(batch, float(logs.get("loss", math.nan)), float(logs.get("accuracy", math.nan))) is False:
                    self.model.stop_training = True

        history = self.model.fit(
            self._images(images),
            labels,
            batch_size=self.config.batch_size,
            epochs=1,
            shuffle=True,
            verbose=0,
            callbacks=[Progress()],
        )
        return float(history.history["loss"][-1]), float(history.history["accuracy"][-1])

    def close(self) -> None:
        pass
