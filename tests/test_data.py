"""Fashion-MNIST loader: the real files, the search order, and broken copies."""

from __future__ import annotations

import gzip
import shutil
import struct

import numpy as np
import pytest

from core import data
from core.data import CLASS_NAMES, DatasetError, load_fashion_mnist, read_idx


def write_idx(path, array: np.ndarray, magic: int | None = None, compress=True):
    """Writes a uint8 IDX file the way the Fashion-MNIST files are written."""
    magic = magic if magic is not None else 0x800 + array.ndim
    raw = struct.pack(">I", magic) + struct.pack(">" + "I" * array.ndim, *array.shape) + array.tobytes()
    if compress:
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)


def tiny_dataset(folder, train=60000, test=10000):
    """A complete synthetic dataset with the real shapes: image i is filled with i % 256."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    shapes = {"train": train, "t10k": test}
    for prefix, count in shapes.items():
        images = (np.arange(count, dtype=np.uint32) % 256).astype(np.uint8)[:, None, None] * np.ones(
            (1, 28, 28), np.uint8
        )
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, count, dtype=np.uint8))
    return folder


@pytest.fixture
def no_defaults(monkeypatch, tmp_path):
    """Points the default locations at empty folders, so only what a test provides is found."""
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setattr(data, "KERAS_CACHE_DIR", tmp_path / "no-keras")
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")


@pytest.mark.skipif(
    not data.DEBIAN_DIR.is_dir() and not data.KERAS_CACHE_DIR.expanduser().is_dir(),
    reason="Fashion-MNIST is not installed",
)
def test_real_files_have_keras_shapes_and_balanced_classes():
    """The installed data loads with keras.datasets' shapes and 6,000/1,000 images per class."""
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    # Known values of the published files: the first training label is 9 (ankle boot).
    assert y_train[0] == 9 and y_test[0] == 9
    assert 0 < x_train.mean() < 255
    assert len(CLASS_NAMES) == 10 and CLASS_NAMES[9] == "Ankle boot"


def test_second_call_is_served_from_memory(tmp_path, no_defaults):
    """A second call returns the very same arrays, read-only so the cache cannot be spoilt."""
    folder = tiny_dataset(tmp_path)
    first = load_fashion_mnist(folder)
    second = load_fashion_mnist(folder)
    assert first[0][0] is second[0][0]
    assert not first[0][0].flags.writeable
    assert first[0][0][300, 0, 0] == 300 % 256


def test_explicit_path_wins_over_environment(tmp_path, monkeypatch, no_defaults):
    """An explicit path is used even when FASHION_MNIST_DIR names another folder."""
    good = tiny_dataset(tmp_path / "good")
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "empty"))
    assert data.find_dataset_dir(good) == good
    with pytest.raises(DatasetError, match="lacks"):
        data.find_dataset_dir()


def test_search_order_prefers_keras_cache_over_debian(tmp_path, monkeypatch):
    """With no explicit folder, Keras' cache is searched before Debian's folder."""
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    keras_dir = tiny_dataset((tmp_path / "keras").resolve())
    debian_dir = tiny_dataset((tmp_path / "debian").resolve())
    monkeypatch.setattr(data, "KERAS_CACHE_DIR", keras_dir)
    monkeypatch.setattr(data, "DEBIAN_DIR", debian_dir)
    assert data.find_dataset_dir() == keras_dir
    shutil.rmtree(keras_dir)
    assert data.find_dataset_dir() == debian_dir


def test_missing_everywhere_says_where_it_looked_and_how_to_fix(no_defaults):
    """No data anywhere gives one message naming the folders and the fixes."""
    with pytest.raises(DatasetError) as error:
        load_fashion_mnist()
    message = str(error.value)
    assert "no-keras" in message and "no-debian" in message
    assert "apt-get install" in message and "FASHION_MNIST_DIR" in message


def test_uncompressed_files_are_accepted(tmp_path):
    """Raw (un-gzipped) IDX files parse the same as .gz ones."""
    labels = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "labels", labels, compress=False)
    assert read_idx(tmp_path / "labels", 0x801, (10,)).tolist() == list(range(10))


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda raw: raw[: len(raw) // 2], "truncated"),
        (lambda raw: raw + b"\0" * 10, "longer than its header"),
        (lambda raw: b"\x00\x00\x08\x01" + raw[4:], "magic number"),
        (lambda raw: raw[:4] + struct.pack(">III", 100, 28, 28) + raw[16:], "shape"),
        (lambda raw: raw[:10], "too few"),
        (lambda raw: b"", "too few"),
    ],
)
def test_broken_image_file_names_the_file_and_the_fix(tmp_path, no_defaults, damage, expected):
    """A damaged images file raises DatasetError naming that file, the fault and how to fix it."""
    folder = tiny_dataset(tmp_path)
    target = folder / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(target.read_bytes())
    target.write_bytes(gzip.compress(damage(raw)))
    with pytest.raises(DatasetError, match=expected) as error:
        load_fashion_mnist(folder)
    assert "t10k-images-idx3-ubyte.gz" in str(error.value)
    assert "apt-get install --reinstall dataset-fashion-mnist" in str(error.value)


def test_truncated_gzip_stream_is_reported(tmp_path, no_defaults):
    """A .gz cut short mid-stream (an interrupted download) is reported, not a crash."""
    folder = tiny_dataset(tmp_path)
    target = folder / "train-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-40])
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte.gz.*could not be read"):
        load_fashion_mnist(folder)


def test_not_gzip_at_all_is_reported(tmp_path, no_defaults):
    """A file with a .gz name that is not gzip (an HTML error page) is reported."""
    folder = tiny_dataset(tmp_path)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz"):
        load_fashion_mnist(folder)


def test_labels_out_of_range_are_rejected(tmp_path, no_defaults):
    """A labels file holding a class number above 9 is rejected."""
    folder = tiny_dataset(tmp_path)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.full(60000, 12, np.uint8))
    with pytest.raises(DatasetError, match="label 12"):
        load_fashion_mnist(folder)


def test_cli_check_reports_missing_data(no_defaults, capsys):
    """`python -m core.data check` exits 1 with the reason when there is no data."""
    assert data.main(["check"]) == 1
    assert "not found" in capsys.readouterr().err
