"""The compiled optimizer updates against the numpy code they replace, and where they step aside."""

from __future__ import annotations

import numpy as np
import pytest

from core.shallow import compiled as kernels
from core.shallow.config import TrainingConfig
from core.shallow.engines import NumpyOptimizer


def test_numba_is_installed_so_the_engines_use_the_compiled_updates():
    assert kernels.available()
    assert kernels.warm_up()
    assert NumpyOptimizer(TrainingConfig(), [(3,)]).kernels is kernels


@pytest.mark.parametrize("kind", ["adam", "rmsprop", "sgd"])
def test_compiled_updates_are_bit_for_bit_the_numpy_ones(kind):
    """Ten steps of both on the same gradients: weights and both slots identical to the bit."""
    config = TrainingConfig(optimizer=kind, learning_rate=3e-3)
    shape = (7, 13, 10)
    compiled, plain = NumpyOptimizer(config, [shape]), NumpyOptimizer(config, [shape], compiled=False)
    assert compiled.kernels is not None and plain.kernels is None
    rng = np.random.default_rng(5)
    weight_compiled = rng.standard_normal(shape).astype(np.float32)
    weight_plain, initial = weight_compiled.copy(), weight_compiled.copy()
    for _ in range(10):
        grad = (rng.standard_normal(shape) * rng.choice([1e-6, 1e-2, 1.0, 30.0])).astype(np.float32)
        for optimizer, weight in ((compiled, weight_compiled), (plain, weight_plain)):
            optimizer.start_step()
            optimizer.update(0, weight, grad)
    assert np.all(weight_compiled != initial)
    np.testing.assert_array_equal(weight_compiled, weight_plain)
    for slot in range(2):
        np.testing.assert_array_equal(compiled.slots[slot][0], plain.slots[slot][0])


def test_a_region_update_changes_only_that_region():
    """The engines hand the output kernel over slice by slice, as views into the weights."""
    config = TrainingConfig(optimizer="adam")
    optimizer = NumpyOptimizer(config, [(6, 4, 10)])
    weight = np.ones((6, 4, 10), np.float32)
    grad = np.full((2, 4, 10), 0.5, np.float32)
    optimizer.start_step()
    optimizer.update(0, weight[2:4], grad, slice(2, 4))
    assert np.all(weight[2:4] < 1) and np.all(weight[:2] == 1) and np.all(weight[4:] == 1)
    assert np.all(optimizer.slots[0][0][2:4] != 0) and np.all(optimizer.slots[0][0][4:] == 0)


def test_arrays_it_cannot_take_are_left_to_numpy():
    """A strided view or a float64 array is refused (False), never silently copied and lost."""
    weight = np.ones((8, 10), np.float32)
    slots = [np.zeros((4, 10), np.float32) for _ in range(2)]
    grad = np.ones((4, 10), np.float32)
    assert not kernels.optimizer_update("adam", weight[::2], grad, *slots, learning_rate=1e-3, iterations=1)
    assert np.all(weight == 1)
    as_double = np.ones((4, 10))
    assert not kernels.optimizer_update("sgd", as_double, grad, *slots, learning_rate=1e-3, iterations=1)
    # And the optimizer still updates the strided view, with numpy.
    optimizer = NumpyOptimizer(TrainingConfig(optimizer="adam"), [(4, 10)])
    optimizer.start_step()
    optimizer.update(0, weight[::2], grad)
    assert np.all(weight[::2] < 1) and np.all(weight[1::2] == 1)


def test_the_set_up_command_fills_numba_cache(capsys):
    """`python -m core.shallow.compiled` (run by `make`'s set-up) compiles or loads every kernel
    into numba's cache beside the module."""
    from pathlib import Path

    assert kernels.main([]) == 0
    assert "Compiled kernels ready" in capsys.readouterr().out
    index_files = (Path(kernels.__file__).parent / "__pycache__").glob("compiled._compiled.locals.*.nbi")
    names = {path.name.split(".")[3].rsplit("-", 1)[0] for path in index_files}
    assert {"adam", "rmsprop", "momentum", "forward", "backward", "pixel_weights", "pixel_gradients"} <= names
    assert "masked_codes" in names
