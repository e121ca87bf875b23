"""A compiled JAX engine for the dense shallow networks (the CNN trains with Keras): their maths, jit-compiled.

The Keras model stays the source of truth: its weights come in (`model.get_weights()` order:
each hidden layer's kernel and bias, PReLU's alpha after its layer, then the output kernel
and bias) and go back out the same way. The forward pass is the model's, written in
`jax.numpy`:

    per-pixel ("article"): h = x[b, i, j, None] @ W1 + c1        (Dense(N) on each pixel)
    MLP:                   h = flatten(x) @ W1 + c1
    then per hidden layer: h = dropout(activation(h)), the next Dense, ...
    logits = flatten(h) @ W_out + b_out;  loss = mean(-log softmax(logits)[label])

with Keras' own dropout (keep each value with probability 1 - rate, scale kept ones by
1 / (1 - rate)) drawn on the device from a key folded with the step number, and Keras'
Adam / RMSprop / SGD-with-momentum update formulas. Gradients come from `jax.grad`.

An epoch runs as a few compiled chunks: one `jit`-compiled loop (`lax.fori_loop`) trains
`count` batches in a row on the device, and the chunk length is chosen from the measured
step time so that each chunk takes about `CHUNK_SECONDS` and the live panel still updates
at least twice a second. The loop's length is a traced number, so one compilation serves
every chunk (a last, smaller batch compiles once more). On a GPU the data set is copied to
the device once; on a CPU the same code runs, slower than the numpy engine, and is what the
tests check against Keras.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from core.shallow.config import NUM_CLASSES, TrainingConfig, refuse_convolutions
from core.shallow.engines import cross_entropy

CHUNK_SECONDS = 0.25
"""Target wall time of one compiled chunk of batches (progress is reported after each)."""

PREDICT_ELEMENTS = 2**25
"""Hidden values (float32) one prediction batch may hold on a CPU: 128 MiB, whatever the layer
width; eight times as many on a GPU, whose memory is larger and whose dispatches cost more."""

LEAKY_SLOPE = 0.3
ELU_ALPHA = 1.0

BatchCallback = Callable[[int, float, float], bool | None]


def jax_available() -> bool:
    """Whether JAX can be imported here (it is optional on a CPU server)."""
    import importlib.util

    return importlib.util.find_spec("jax") is not None


def jax_sees_gpu() -> bool:
    """Whether JAX's default device is an accelerator (imports JAX; False when it is missing)."""
    if not jax_available():
        return False
    try:
        import jax

        return jax.devices()[0].platform != "cpu"
    except Exception:  # A broken CUDA install must not stop training on the CPU.
        return False


def jax_device_name() -> str:
    """The device JAX computes on, e.g. "GPU: NVIDIA H200 (jax)" or "CPU (jax)"."""
    import jax

    device = jax.devices()[0]
    if device.platform == "cpu":
        from core.device import describe_device

        return f"CPU: {describe_device().cpu_model} (jax)"
    return f"GPU: {device.device_kind} (jax)"


def weight_layout(config: TrainingConfig) -> list[str]:
    """The role of each entry of the Keras model's `get_weights()`, in order."""
    layout = []
    for index in range(1, len(config.hidden_units) + 1):
        layout += [f"kernel_{index}", f"bias_{index}"]
        if config.activation == "prelu":
            layout.append(f"alpha_{index}")
    return layout + ["out_kernel", "out_bias"]


def _activation(name: str, values, alpha=None):
    import jax.numpy as jnp

    if name == "none":
        return values
    if name == "relu":
        return jnp.maximum(values, 0)
    if name == "leaky_relu":
        return jnp.where(values > 0, values, LEAKY_SLOPE * values)
    if name == "prelu":  # Keras: relu(x) - alpha * relu(-x), alpha per value.
        return jnp.maximum(values, 0) - alpha * jnp.maximum(-values, 0)
    if name == "elu":
        return jnp.where(values > 0, values, ELU_ALPHA * jnp.expm1(jnp.minimum(values, 0)))
    raise ValueError(f"The JAX engine has no activation {name!r}.")


def forward(config: TrainingConfig, params: list, images, masks=None, key=None, compute_dtype=None):
    """Logits of the model for flat images (batch, 784), as the Keras model computes them.

    Args:
        config: the network.
        params: weights in Keras' order (see `weight_layout`).
        images: (batch, 784) float32 in [0, 1].
        masks: optional list of 0/1 keep masks, one per hidden layer, shaped like its output;
            given, they replace random dropout (tests use them to compare gradients).
        key: a `jax.random` key to draw dropout with (training); None and no masks means
            inference, without dropout.
        compute_dtype: the hidden layers' dtype (bfloat16 for mixed precision), else float32.

    Returns:
        (batch, 10) float32 logits.
    """
    import jax
    import jax.numpy as jnp

    batch = images.shape[0]
    keep = 1.0 - config.dropout
    per_layer = 3 if config.activation == "prelu" else 2
    hidden = images.reshape(batch, 28, 28, 1) if config.architecture == "article" else images.reshape(batch, -1)
    if compute_dtype is not None:
        hidden = hidden.astype(compute_dtype)
    for layer in range(len(config.hidden_units)):
        kernel, bias = params[layer * per_layer], params[layer * per_layer + 1]
        alpha = params[layer * per_layer + 2] if config.activation == "prelu" else None
        if compute_dtype is not None:
            kernel, bias = kernel.astype(compute_dtype), bias.astype(compute_dtype)
            alpha = None if alpha is None else alpha.astype(compute_dtype)
        hidden = hidden @ kernel + bias
        hidden = _activation(config.activation, hidden, alpha)
        if config.dropout > 0 and (masks is not None or key is not None):
            if masks is not None:
                kept = masks[layer]
            else:
                kept = jax.random.bernoulli(jax.random.fold_in(key, layer), keep, hidden.shape)
            hidden = jnp.where(kept, hidden / jnp.asarray(keep, hidden.dtype), jnp.zeros((), hidden.dtype))
    out_kernel, out_bias = params[-2], params[-1]
    return hidden.reshape(batch, -1).astype(jnp.float32) @ out_kernel + out_bias


def loss_and_correct(config, params, images, labels, masks=None, key=None, compute_dtype=None):
    """Mean sparse cross-entropy of the softmax output, and the count of right answers."""
    import jax
    import jax.numpy as jnp

    logits = forward(config, params, images, masks=masks, key=key, compute_dtype=compute_dtype)
    log_probabilities = jax.nn.log_softmax(logits)
    picked = jnp.take_along_axis(log_probabilities, labels[:, None], axis=1)[:, 0]
    correct = jnp.sum(jnp.argmax(logits, axis=1) == labels)
    return -jnp.mean(picked), correct


def optimizer_init(config: TrainingConfig, params: list) -> list:
    """Two zeroed slots per weight (Adam's moments, RMSprop's velocity, SGD's momentum)."""
    import jax.numpy as jnp

    return [[jnp.zeros_like(weight) for weight in params] for _ in range(2)]


def optimizer_update(config: TrainingConfig, params, grads, slots, step):
    """One update with Keras 3's formulas; `step` counts from 1. Returns new params and slots."""
    import jax.numpy as jnp

    rate = config.learning_rate
    first, second = slots
    new_params, new_first, new_second = [], [], []
    if config.optimizer == "adam":
        beta_1, beta_2, epsilon = 0.9, 0.999, 1e-4
        step = jnp.asarray(step, jnp.float32)
        alpha = rate * jnp.sqrt(1 - beta_2**step) / (1 - beta_1**step)
        for weight, grad, moment, velocity in zip(params, grads, first, second, strict=True):
            moment = moment + (grad - moment) * (1 - beta_1)
            velocity = velocity + (jnp.square(grad) - velocity) * (1 - beta_2)
            new_params.append(weight - moment * alpha / (jnp.sqrt(velocity) + epsilon))
            new_first.append(moment)
            new_second.append(velocity)
    elif config.optimizer == "rmsprop":
        rho, epsilon = 0.9, 1e-4
        for weight, grad, velocity, unused in zip(params, grads, first, second, strict=True):
            velocity = rho * velocity + (1 - rho) * jnp.square(grad)
            new_params.append(weight - rate * grad / jnp.sqrt(velocity + epsilon))
            new_first.append(velocity)
            new_second.append(unused)
    else:  # SGD with momentum 0.85, as Keras: m = 0.85 m - rate g; w += m.
        for weight, grad, momentum, unused in zip(params, grads, first, second, strict=True):
            momentum = 0.85 * momentum - rate * grad
            new_params.append(weight + momentum)
            new_first.append(momentum)
            new_second.append(unused)
    return new_params, [new_first, new_second]


class JaxEngine:
    """Every shallow network, trained by compiled JAX steps (on the GPU when JAX sees one)."""

    name = "jax"

    def __init__(self, config: TrainingConfig, weights: list[np.ndarray]):
        refuse_convolutions(config, "jax")
        import jax
        import jax.numpy as jnp

        self.config = config
        self.jax, self.jnp = jax, jnp
        self.device = jax_device_name()
        self.compute_dtype = jnp.bfloat16 if config.mixed_precision else None
        self.params = [jnp.asarray(w, jnp.float32) for w in weights]
        self.slots = optimizer_init(config, self.params)
        self.step = 0
        self.key = jax.random.PRNGKey(config.seed)
        self.shuffle_rng = np.random.default_rng(config.seed)
        self._device_data: dict[tuple, tuple] = {}
        self._batches_per_chunk = 1
        self._train_chunk = jax.jit(self._chunk, donate_argnums=(0, 1))
        self._logits = jax.jit(lambda params, images: forward(config, params, images, compute_dtype=self.compute_dtype))

    # Weights in and out -------------------------------------------------------------------------
    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.params = [self.jnp.asarray(w, self.jnp.float32) for w in weights]

    def get_weights(self) -> list[np.ndarray]:
        return [np.array(weight, dtype=np.float32, copy=True) for weight in self.params]

    # The compiled work ---------------------------------------------------------------------------
    def _chunk(self, params, slots, step, key, images, labels, order, start, count):
        """Trains batches order[start], ..., order[start + count - 1]; sums their loss and hits."""
        jax, jnp = self.jax, self.jnp
        config = self.config
        batch = order.shape[1]

        def grads_of(params, chosen_images, chosen_labels, step_key):
            def loss_only(params):
                return loss_and_correct(
                    config, params, chosen_images, chosen_labels, key=step_key, compute_dtype=self.compute_dtype
                )

            return jax.value_and_grad(loss_only, has_aux=True)(params)

        def body(index, carry):
            params, slots, step, loss_sum, correct_sum = carry
            chosen = order[start + index]
            step = step + 1
            (loss, correct), grads = grads_of(params, images[chosen], labels[chosen], jax.random.fold_in(key, step))
            params, slots = optimizer_update(config, params, grads, slots, step)
            return params, slots, step, loss_sum + loss * batch, correct_sum + correct

        zero = jnp.zeros((), jnp.float32)
        return jax.lax.fori_loop(0, count, body, (params, slots, step, zero, jnp.zeros((), jnp.int32)))

    def _on_device(self, images: np.ndarray, labels: np.ndarray):
        """The arrays on the device, copied once per data set (training and validation)."""
        key = (id(images), images.shape, id(labels))
        if key not in self._device_data:
            if len(self._device_data) >= 4:
                self._device_data.clear()
            self._device_data[key] = (self.jnp.asarray(images, self.jnp.float32), self.jnp.asarray(labels, np.int32))
        return self._device_data[key]

    def _run(self, images, labels, order: np.ndarray, start: int, count: int) -> tuple[float, int]:
        params, slots, step, loss_sum, correct_sum = self._train_chunk(
            self.params,
            self.slots,
            self.jnp.asarray(self.step, self.jnp.int32),
            self.key,
            images,
            labels,
            order,
            self.jnp.asarray(start, self.jnp.int32),
            self.jnp.asarray(count, self.jnp.int32),
        )
        self.params, self.slots, self.step = params, slots, self.step + count
        return float(loss_sum), int(correct_sum)

    # The engine interface ------------------------------------------------------------------------
    def train_batch(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        """One optimizer step on one batch; returns its loss and accuracy."""
        device_images, device_labels = self.jnp.asarray(images, self.jnp.float32), self.jnp.asarray(labels, np.int32)
        order = self.jnp.arange(len(labels), dtype=self.jnp.int32)[None, :]
        loss_sum, correct = self._run(device_images, device_labels, order, 0, 1)
        return loss_sum / len(labels), correct / len(labels)

    def train_epoch(self, images: np.ndarray, labels: np.ndarray, on_batch: BatchCallback) -> tuple[float, float]:
        """One pass over shuffled data in compiled chunks; returns the epoch's mean loss and accuracy."""
        device_images, device_labels = self._on_device(images, labels)
        batch_size = self.config.batch_size
        permutation = self.shuffle_rng.permutation(len(labels)).astype(np.int32)
        full = len(labels) // batch_size
        pieces = []
        if full:
            pieces.append((self.jnp.asarray(permutation[: full * batch_size].reshape(full, batch_size)), full))
        if len(labels) % batch_size:
            pieces.append((self.jnp.asarray(permutation[full * batch_size :][None, :]), 1))
        loss_sum = correct_sum = seen = 0.0
        done = 0
        for order, batches in pieces:
            size = order.shape[1]
            start = 0
            while start < batches:
                count = min(self._batches_per_chunk, batches - start)
                began = time.perf_counter()
                chunk_loss, chunk_correct = self._run(device_images, device_labels, order, start, count)
                seconds = time.perf_counter() - began
                if batches > 1 and start > 0:  # The first chunk may include compilation.
                    per_batch = seconds / count
                    self._batches_per_chunk = max(1, min(4096, int(CHUNK_SECONDS / max(per_batch, 1e-6))))
                elif batches > 1:
                    self._batches_per_chunk = max(self._batches_per_chunk, 2)
                start += count
                done += count
                loss_sum += chunk_loss
                correct_sum += chunk_correct
                seen += count * size
                if on_batch(done - 1, loss_sum / seen, correct_sum / seen) is False:
                    return loss_sum / seen, correct_sum / seen
        return loss_sum / max(seen, 1), correct_sum / max(seen, 1)

    def predict_batch_size(self) -> int:
        """Rows per prediction batch, so that one batch's hidden values stay within PREDICT_ELEMENTS."""
        widest = max(self.config.hidden_units) * (784 if self.config.architecture == "article" else 1)
        budget = PREDICT_ELEMENTS * (1 if self.device.startswith("CPU") else 8)
        return int(max(1, min(8192, budget // widest)))

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Softmax probabilities (float64), in fixed-size batches (the last one padded)."""
        size = self.predict_batch_size()
        outputs = []
        for start in range(0, len(images), size):
            chunk = images[start : start + size]
            rows = len(chunk)
            if rows < size and len(images) > size:
                chunk = np.concatenate([chunk, np.zeros((size - rows, chunk.shape[1]), chunk.dtype)])
            logits = self._logits(self.params, self.jnp.asarray(chunk, self.jnp.float32))
            outputs.append(np.asarray(self.jax.nn.softmax(logits), dtype=np.float64)[:rows])
        return np.concatenate(outputs) if outputs else np.zeros((0, NUM_CLASSES))

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        probabilities = self.predict(images)
        return cross_entropy(probabilities, labels), float(np.mean(probabilities.argmax(1) == labels))

    def gradients(self, images: np.ndarray, labels: np.ndarray, masks: list[np.ndarray] | None = None):
        """Loss and gradients for one batch under given 0/1 keep masks (for tests)."""
        jax, jnp = self.jax, self.jnp

        def loss_only(params):
            device_masks = None if masks is None else [jnp.asarray(mask) > 0 for mask in masks]
            return loss_and_correct(
                self.config, params, jnp.asarray(images), jnp.asarray(labels, np.int32), masks=device_masks
            )[0]

        loss, grads = jax.value_and_grad(loss_only)(self.params)
        return float(loss), [np.asarray(grad) for grad in grads]

    def close(self) -> None:
        self._device_data.clear()
