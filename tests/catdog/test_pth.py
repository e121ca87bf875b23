"""core.catdog.pth: PyTorch checkpoints read with numpy alone, checked against files torch wrote."""

from __future__ import annotations

import io
import json
import pickle
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from core.catdog.efficientnet import packaged_pth_path
from core.catdog.pth import LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, PthError, load_pth, load_state_dict

DATA = Path(__file__).resolve().parents[1] / "data" / "pth"


@pytest.mark.parametrize("layout", ["legacy", "zip"])
def test_reads_what_torch_wrote(layout):
    """Both layouts give torch's values, dtypes and shapes, incl. strided views and shared storages."""
    state = load_pth(DATA / f"{layout}.pth")
    expected = np.load(DATA / "expected.npz")
    assert list(state) == list(expected.files)
    for name in expected.files:
        array = state[name]
        assert array.dtype == expected[name].dtype, name
        assert array.shape == expected[name].shape, name
        np.testing.assert_array_equal(array, expected[name], err_msg=name)
        assert array.flags.c_contiguous and array.flags.owndata


def test_packaged_efficientnet_lite0_matches_torch():
    """Every tensor of the packaged EfficientNet-Lite0 .pth has torch's shape and sums."""
    state = load_state_dict(packaged_pth_path())
    sums = json.loads((DATA / "lite0_sums.json").read_text())
    assert list(state) == list(sums)
    for name, (shape, total, absolute_total) in sums.items():
        array = state[name].astype(np.float64)
        assert list(array.shape) == shape, name
        assert array.sum() == pytest.approx(total, rel=1e-9, abs=1e-9), name
        assert np.abs(array).sum() == pytest.approx(absolute_total, rel=1e-9), name


def test_main_lists_tensors(capsys):
    """`python -m core.catdog.pth FILE` lists each tensor and the element count."""
    from core.catdog.pth import main

    assert main([str(DATA / "legacy.pth")]) == 0
    output = capsys.readouterr().out
    assert "transposed" in output and "(4, 2, 3)" in output
    # 24 + 24 + 4 + 4 + 3 + 4 + 3 + 1 + 5 elements.
    assert output.strip().endswith("9 tensors, 72 elements")


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned-by-pickle",))


def _legacy_stream(main_object_bytes: bytes, storage_keys=(), storages=b"") -> bytes:
    header = b"".join(
        pickle.dumps(value, protocol=2)
        for value in (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, {"little_endian": True})
    )
    return header + main_object_bytes + pickle.dumps(list(storage_keys), protocol=2) + storages


def test_refuses_code_in_the_pickle(tmp_path, monkeypatch):
    """A checkpoint that asks for os.system is refused, and the command never runs."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    path.write_bytes(_legacy_stream(pickle.dumps(OrderedDict(weight=_Evil()), protocol=2)))
    with pytest.raises(PthError, match="refused for safety"):
        load_pth(path)
    assert not (tmp_path / "pwned-by-pickle").exists()


def _fake_torch_pickle(tensor_args: tuple, storage_numel: int) -> bytes:
    """Pickles {"w": tensor} as torch would, with stand-in torch modules (no torch needed)."""
    utils = types.ModuleType("torch._utils")
    torch_module = types.ModuleType("torch")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while pickling")

    class FloatStorage:
        pass

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    utils._rebuild_tensor_v2, torch_module.FloatStorage, torch_module._utils = (
        _rebuild_tensor_v2,
        FloatStorage,
        utils,
    )

    class Storage:
        pass

    storage = Storage()

    class Tensor:
        def __reduce__(self):
            return (_rebuild_tensor_v2, (storage, *tensor_args))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if obj is storage:
                return ("storage", FloatStorage, "0", "cpu", storage_numel, None)
            return None

    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch_module, "torch._utils": utils})
    try:
        buffer = io.BytesIO()
        Pickler(buffer, protocol=2).dump(OrderedDict(w=Tensor()))
        return buffer.getvalue()
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _storage_bytes(values) -> bytes:
    data = np.asarray(values, dtype="<f4")
    return data.size.to_bytes(8, "little") + data.tobytes()


def test_hand_written_legacy_stream_with_offset_and_strides(tmp_path):
    """A tensor at an offset with a column stride is read from the right storage elements."""
    path = tmp_path / "strided.pth"
    main_pickle = _fake_torch_pickle((1, (2, 2), (1, 3), False, OrderedDict()), storage_numel=7)
    path.write_bytes(_legacy_stream(main_pickle, ["0"], _storage_bytes(range(7))))
    np.testing.assert_array_equal(load_pth(path)["w"], [[1, 4], [2, 5]])


def test_tensor_past_the_end_of_its_storage_is_refused(tmp_path):
    """A tensor claiming more elements than its storage holds raises PthError, not a crash."""
    path = tmp_path / "overflow.pth"
    main_pickle = _fake_torch_pickle((0, (10,), (1,), False, OrderedDict()), storage_numel=4)
    path.write_bytes(_legacy_stream(main_pickle, ["0"], _storage_bytes(range(4))))
    with pytest.raises(PthError, match="past the end"):
        load_pth(path)


@pytest.mark.parametrize("cut", [10, 200, 600, -5])
def test_truncated_checkpoint_is_refused(tmp_path, cut):
    """A checkpoint cut short anywhere raises PthError with a message."""
    data = (DATA / "legacy.pth").read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[:cut])
    with pytest.raises(PthError):
        load_pth(path)


def test_not_a_checkpoint(tmp_path):
    """A JPEG or random bytes are not mistaken for a checkpoint."""
    path = tmp_path / "photo.pth"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    with pytest.raises(PthError, match="Not a PyTorch checkpoint|damaged"):
        load_pth(path)
