"""Fashion-MNIST, read from the four IDX files with no download at run time.

The loader looks in, in order: an explicit `path`, `$FASHION_MNIST_DIR`, Keras' cache
(`~/.keras/datasets/fashion-mnist`) and Debian's `dataset-fashion-mnist` package
(`/usr/share/datasets/fashion-mnist`). A folder named explicitly (argument or environment)
must hold good files; the defaults are only candidates. The IDX parser checks magic numbers,
counts, shapes and lengths, so a truncated or foreign file fails with a message that names
it and says how to get good data.

Command line: `python -m core.data check|info|download`.
"""

from __future__ import annotations

import argparse
import gzip
import os
import struct
import sys
import threading
import zlib
from pathlib import Path

import numpy as np

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

ENV_VAR = "FASHION_MNIST_DIR"
KERAS_CACHE_DIR = Path("~/.keras/datasets/fashion-mnist")
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

# File stem -> (IDX magic number, expected shape).
FILES = {
    "train-images-idx3-ubyte": (0x00000803, (60000, 28, 28)),
    "train-labels-idx1-ubyte": (0x00000801, (60000,)),
    "t10k-images-idx3-ubyte": (0x00000803, (10000, 28, 28)),
    "t10k-labels-idx1-ubyte": (0x00000801, (10000,)),
}

HOW_TO_FIX = (
    "Get good copies with `apt-get install --reinstall dataset-fashion-mnist` (Debian), "
    "or delete the file and run `python -m core.data download` (needs internet), "
    f"or point {ENV_VAR} at a folder holding the four .gz files from "
    "https://github.com/zalandoresearch/fashion-mnist."
)


class DatasetError(ValueError):
    """Fashion-MNIST is missing or a file is broken; the message says which and what to do."""


def candidate_dirs(path: str | os.PathLike | None = None) -> list[tuple[Path, bool]]:
    """Lists the folders to search, in order, each with whether it was named explicitly."""
    if path is not None:
        return [(Path(path).expanduser(), True)]
    if os.environ.get(ENV_VAR):
        return [(Path(os.environ[ENV_VAR]).expanduser(), True)]
    return [(KERAS_CACHE_DIR.expanduser(), False), (DEBIAN_DIR, False)]


def _file_in(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def find_dataset_dir(path: str | os.PathLike | None = None) -> Path:
    """Returns the first folder that holds all four files.

    Raises:
        DatasetError: an explicitly named folder lacks files, or no candidate has them.
    """
    searched = []
    for folder, explicit in candidate_dirs(path):
        missing = [stem for stem in FILES if _file_in(folder, stem) is None]
        if not missing:
            return folder
        if explicit:
            raise DatasetError(
                f"Fashion-MNIST folder {folder} lacks {', '.join(m + '.gz' for m in missing)}. " + HOW_TO_FIX
            )
        searched.append(str(folder))
    raise DatasetError("Fashion-MNIST was not found (looked in " + ", ".join(searched) + "). " + HOW_TO_FIX)


def read_idx(file_path: str | os.PathLike, magic: int, shape: tuple[int, ...]) -> np.ndarray:
    """Parses one IDX file (gzipped or not) of unsigned bytes and checks it completely.

    Args:
        file_path: the `.gz` or raw IDX file.
        magic: the expected magic number (0x801 for a vector, 0x803 for 3-D images).
        shape: the expected shape, e.g. (60000, 28, 28).

    Returns:
        A uint8 array of that shape.

    Raises:
        DatasetError: the file cannot be read, or its header, size or values are wrong.
    """
    file_path = Path(file_path)

    def broken(reason: str) -> DatasetError:
        return DatasetError(f"{file_path} is not a valid Fashion-MNIST file: {reason}. {HOW_TO_FIX}")

    try:
        if file_path.suffix == ".gz":
            with gzip.open(file_path, "rb") as stream:
                raw = stream.read()
        else:
            raw = file_path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise broken(f"it could not be read ({error})") from error

    ndim = len(shape)
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise broken(f"it holds only {len(raw)} bytes, too few for an IDX header")
    (found_magic,) = struct.unpack(">I", raw[:4])
    if found_magic != magic:
        raise broken(f"magic number {found_magic:#010x}, expected {magic:#010x}")
    dims = struct.unpack(">" + "I" * ndim, raw[4:header_size])
    if tuple(dims) != tuple(shape):
        raise broken(f"its header says shape {tuple(dims)}, expected {tuple(shape)}")
    expected_bytes = int(np.prod(shape))
    body = len(raw) - header_size
    if body != expected_bytes:
        what = "truncated" if body < expected_bytes else "longer than its header says"
        raise broken(f"it is {what} ({body} data bytes, expected {expected_bytes})")
    array = np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)
    if ndim == 1 and array.max(initial=0) >= len(CLASS_NAMES):
        raise broken(f"it holds label {int(array.max())}, but labels run from 0 to 9")
    return array


_cache: dict[tuple, tuple] = {}
_cache_lock = threading.Lock()


def load_fashion_mnist(path: str | os.PathLike | None = None):
    """Loads Fashion-MNIST like `keras.datasets.fashion_mnist.load_data()`, offline.

    Args:
        path: a folder holding the four IDX files; by default the search order above.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: uint8 arrays of shapes (60000, 28, 28),
        (60000,), (10000, 28, 28) and (10000,). They are read-only and shared between
        calls (the second call costs nothing); copy before changing them in place.

    Raises:
        DatasetError: the data is missing or a file is broken.
    """
    folder = find_dataset_dir(path)
    files = {stem: _file_in(folder, stem) for stem in FILES}
    key = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files.values())
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        arrays = {stem: read_idx(files[stem], *FILES[stem]) for stem in FILES}
        result = (
            (arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]),
            (arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"]),
        )
        _cache.clear()
        _cache[key] = result
        return result


def download_with_keras() -> Path:
    """Fetches Fashion-MNIST into Keras' cache with Keras' own downloader (needs internet)."""
    import keras  # Heavy, and only needed on this fallback path.

    keras.datasets.fashion_mnist.load_data()
    return KERAS_CACHE_DIR.expanduser()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="say whether the four files are found (no parsing)")
    check.add_argument("--quiet", action="store_true")
    info = sub.add_parser("info", help="load the data fully and print shapes and class counts")
    info.add_argument("--path")
    sub.add_parser("download", help="fetch the data with Keras into ~/.keras (needs internet)")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            folder = find_dataset_dir()
            if not args.quiet:
                print(f"Fashion-MNIST found in {folder}")
        elif args.command == "info":
            (x_train, y_train), (x_test, y_test) = load_fashion_mnist(args.path)
            print(f"folder: {find_dataset_dir(args.path)}")
            print(f"train: {x_train.shape} {x_train.dtype}, test: {x_test.shape} {x_test.dtype}")
            for index, name in enumerate(CLASS_NAMES):
                train_count = int((y_train == index).sum())
                test_count = int((y_test == index).sum())
                print(f"  {index} {name:<12} train {train_count:>5}  test {test_count:>5}")
        else:
            print(f"Downloaded into {download_with_keras()}")
    except DatasetError as error:
        if not getattr(args, "quiet", False):
            print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # The download path: no internet, a proxy, a full disk...
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
