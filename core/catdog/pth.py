"""Reads PyTorch `.pth` checkpoints with numpy alone, safely (no torch, no arbitrary code).

PyTorch has written two layouts. Both are read here, through a restricted unpickler that
knows only the few names a plain state dict uses (ordered dicts, tensors, storages) and
refuses everything else, so a hostile file cannot run code:

* the legacy stream (PyTorch < 1.6): five pickles one after the other, then raw storages::

      magic number | protocol version | sys info | the object | storage keys
      then, for each storage key in that order: int64 element count, then the raw bytes

* the zip archive (PyTorch >= 1.6): `<name>/data.pkl` holds the object and each storage
  is the file `<name>/data/<key>`.

Tensors come back as C-contiguous numpy arrays (copies, so they own their memory).
`python -m core.catdog.pth FILE` lists the tensors in a checkpoint.
"""

from __future__ import annotations

import io
import pickle
import sys
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

# Storage classes by the names PyTorch pickles them under, with the numpy dtype of an element.
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class PthError(ValueError):
    """The file is not a PyTorch checkpoint this reader can load safely; the message says why."""


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(STORAGE_DTYPES[self.name])


@dataclass
class _Storage:
    """A placeholder for a storage whose bytes are read after the pickle."""

    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass
class _Tensor:
    """A placeholder for a tensor: a strided view into a storage, built once storages are read."""

    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride, *_unused) -> _Tensor:
    """Stands in for `torch._utils._rebuild_tensor_v2` (and v1)."""
    if not isinstance(storage, _Storage):
        raise PthError("A tensor in the checkpoint does not point at a storage.")
    return _Tensor(storage, int(storage_offset), tuple(int(n) for n in size), tuple(int(s) for s in stride))


def _rebuild_parameter(data, *_unused):
    """Stands in for `torch._utils._rebuild_parameter`: a parameter is its tensor."""
    return data


# The only globals a state dict needs; anything else (os.system, eval, ...) is refused.
SAFE_GLOBALS = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only the names in SAFE_GLOBALS and turns storage ids into placeholders."""

    def __init__(self, file, storages: dict[str, _Storage], zip_layout: bool):
        super().__init__(file)
        self.storages = storages
        self.zip_layout = zip_layout

    def find_class(self, module: str, name: str):
        try:
            return SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise PthError(
                f"The checkpoint refers to {module}.{name}, which a plain weights file never needs; "
                "it was refused for safety."
            ) from None

    def persistent_load(self, saved_id):
        if not isinstance(saved_id, tuple) or not saved_id or saved_id[0] not in ("storage", b"storage"):
            raise PthError(f"Unknown persistent id in the checkpoint: {saved_id!r:.80}")
        if self.zip_layout:
            storage_type, key, _location, numel = saved_id[1:5]
            view_metadata = None
        else:
            storage_type, key, _location, numel, view_metadata = saved_id[1:6]
        if not isinstance(storage_type, _StorageType):
            raise PthError(f"Unknown storage type in the checkpoint: {storage_type!r:.80}")
        if view_metadata is not None:
            raise PthError("Storage views (a pre-1.0 PyTorch feature) are not supported.")
        key = key.decode() if isinstance(key, bytes) else str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(key, storage_type.dtype, int(numel))
        return self.storages[key]


def _materialise(obj):
    """Replaces tensor placeholders (inside dicts, lists, tuples) with numpy arrays."""
    if isinstance(obj, _Tensor):
        storage = obj.storage
        if storage.data is None:
            raise PthError(f"Storage {storage.key} has no data in the checkpoint.")
        if any(n < 0 for n in obj.shape) or any(s < 0 for s in obj.stride) or obj.offset < 0:
            raise PthError("A tensor in the checkpoint has a negative size, stride or offset.")
        last = obj.offset + sum((n - 1) * s for n, s in zip(obj.shape, obj.stride, strict=True) if n > 0)
        if 0 not in obj.shape and last >= storage.data.size:
            raise PthError(f"A tensor reaches past the end of storage {storage.key}.")
        item = storage.data.itemsize
        view = np.lib.stride_tricks.as_strided(
            storage.data[obj.offset :],
            shape=obj.shape,
            strides=tuple(s * item for s in obj.stride),
            writeable=False,
        )
        return np.array(view, order="C", copy=True)  # (ascontiguousarray would make 0-d 1-d)
    if isinstance(obj, dict):
        return type(obj)((key, _materialise(value)) for key, value in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(value) for value in obj)
    return obj


def _load_legacy(data: bytes) -> object:
    stream = io.BytesIO(data)
    try:
        magic = pickle.load(stream)
    except Exception as error:
        raise PthError(f"Not a PyTorch checkpoint (no pickle header: {error}).") from error
    if magic != LEGACY_MAGIC_NUMBER:
        raise PthError("Not a PyTorch checkpoint (wrong magic number).")
    if pickle.load(stream) != LEGACY_PROTOCOL_VERSION:
        raise PthError("Unsupported legacy PyTorch protocol version.")
    sys_info = pickle.load(stream)
    if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
        raise PthError("Big-endian checkpoints are not supported.")
    storages: dict[str, _Storage] = {}
    result = _RestrictedUnpickler(stream, storages, zip_layout=False).load()
    keys = pickle.load(stream)
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise PthError(f"Storage {key} is listed but no tensor uses it.")
        header = stream.read(8)
        if len(header) != 8:
            raise PthError("The checkpoint is truncated (a storage header is missing).")
        numel = int.from_bytes(header, "little", signed=True)
        if numel != storage.numel:
            raise PthError(f"Storage {key} holds {numel} elements, the pickle said {storage.numel}.")
        nbytes = numel * storage.dtype.itemsize
        raw = stream.read(nbytes)
        if len(raw) != nbytes:
            raise PthError("The checkpoint is truncated (a storage is shorter than declared).")
        storage.data = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))
    return _materialise(result)


def _load_zip(data: bytes) -> object:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        pickles = [name for name in names if name.endswith("/data.pkl") or name == "data.pkl"]
        if len(pickles) != 1:
            raise PthError("The zip checkpoint has no single data.pkl.")
        prefix = pickles[0][: -len("data.pkl")]
        storages: dict[str, _Storage] = {}
        with archive.open(pickles[0]) as handle:
            result = _RestrictedUnpickler(io.BytesIO(handle.read()), storages, zip_layout=True).load()
        for key, storage in storages.items():
            try:
                raw = archive.read(f"{prefix}data/{key}")
            except KeyError:
                raise PthError(f"Storage {key} is missing from the zip checkpoint.") from None
            if len(raw) != storage.numel * storage.dtype.itemsize:
                raise PthError(f"Storage {key} has the wrong size in the zip checkpoint.")
            storage.data = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))
    return _materialise(result)


def load_pth(path: str | Path) -> object:
    """Loads a PyTorch checkpoint (usually a state dict) with numpy arrays for tensors.

    Args:
        path: a `.pth`/`.pt` file in the legacy or the zip layout.

    Returns:
        The unpickled object, usually an OrderedDict of parameter name -> numpy array.

    Raises:
        PthError: not a checkpoint, truncated, or it asks for code outside the safe list.
    """
    data = Path(path).read_bytes()
    if zipfile.is_zipfile(io.BytesIO(data)):
        return _load_zip(data)
    try:
        return _load_legacy(data)
    except PthError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as error:
        raise PthError(f"The checkpoint is damaged ({error}).") from error


def load_state_dict(path: str | Path) -> OrderedDict[str, np.ndarray]:
    """Loads a checkpoint that must be a state dict (name -> array).

    A checkpoint wrapped as `{"state_dict": ...}` or `{"model": ...}` is unwrapped.
    """
    state = load_pth(path)
    if isinstance(state, dict):
        for wrapper in ("state_dict", "model"):
            if isinstance(state.get(wrapper), dict):
                state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise PthError("The checkpoint is not a state dict of tensors.")
    return OrderedDict(state)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m core.catdog.pth FILE.pth", file=sys.stderr)
        return 2
    try:
        state = load_state_dict(args[0])
    except (PthError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    total = 0
    for name, array in state.items():
        total += array.size
        print(f"{name:<60} {array.dtype!s:<8} {tuple(array.shape)}")
    print(f"{len(state)} tensors, {total:,} elements")
    return 0


if __name__ == "__main__":
    sys.exit(main())
