"""A least-recently-used cache bounded by bytes, for results that every session shares.

Streamlit's `st.cache_data` and `st.cache_resource` bound a cache by its number of entries
and its age only, so one cache of 64 entries may hold 64 small results or 64 decoded
photos of 192 MB each. `ByteBoundedCache` counts the bytes its values hold (numpy arrays
and the containers around them, see `size_in_bytes`) and drops the least recently used
entries until the total fits its bound; a value larger than the whole bound is returned
but never kept. A page holds one per server with `st.cache_resource`; this module knows
nothing of Streamlit.

Values are shared by every caller, not copied as `st.cache_data` copies them, so the
numpy arrays inside a kept value are made read-only: a caller that wants to change one
works on a copy. Keys never hold the arguments themselves: `fingerprint` turns bytes and
arrays into digests, so a key for a 50 MB upload is a few dozen bytes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import numpy as np

MIB = 2**20


def _digest(buffer) -> str:
    return hashlib.blake2b(buffer, digest_size=16).hexdigest()


def fingerprint(*parts) -> tuple:
    """A small hashable key for arguments that may be large: bytes and arrays become digests.

    Arrays count with their shape and dtype, so the same bytes seen as another shape give
    another key; tuples and lists are fingerprinted item by item, frozen dataclasses and
    other hashable values are kept as they are.

    Raises:
        TypeError: a part is neither an array, bytes, a sequence nor hashable.
    """
    key = []
    for part in parts:
        if isinstance(part, np.ndarray):
            key.append(("ndarray", part.shape, part.dtype.str, _digest(np.ascontiguousarray(part).data)))
        elif isinstance(part, (bytes, bytearray, memoryview)):
            key.append(("bytes", len(part), _digest(part)))
        elif isinstance(part, (tuple, list)):
            key.append((type(part).__name__, fingerprint(*part)))
        elif isinstance(part, Hashable):
            hash(part)  # A tuple subclass or dataclass holding unhashable fields fails here.
            key.append(part)
        else:
            raise TypeError(f"Cannot use a {type(part).__name__} in a cache key.")
    return tuple(key)


def _arrays_and_leaves(value, seen: set[int]) -> Iterator[object]:
    """Every array and every other leaf object reachable from value, each once."""
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        yield value  # The instance itself (its __dict__ or slots), then its fields.
        for field in dataclasses.fields(value):
            yield from _arrays_and_leaves(getattr(value, field.name), seen)
    elif isinstance(value, (tuple, list, set, frozenset)):
        yield value
        for item in value:
            yield from _arrays_and_leaves(item, seen)
    elif isinstance(value, dict):
        yield value
        for key, item in value.items():
            yield from _arrays_and_leaves(key, seen)
            yield from _arrays_and_leaves(item, seen)
    else:
        yield value


def size_in_bytes(value) -> int:
    """The memory a value keeps alive, counted generously.

    numpy arrays count their data, and an array that is a view counts the whole array it
    views (which the view keeps alive); dataclasses, tuples, lists, sets and dicts count
    themselves and everything in them; anything else counts `sys.getsizeof`. Objects
    reached twice count once.
    """
    total = 0
    bases: dict[int, int] = {}
    for leaf in _arrays_and_leaves(value, set()):
        if isinstance(leaf, np.ndarray):
            owner = leaf
            while isinstance(owner.base, np.ndarray):
                owner = owner.base
            bases[id(owner)] = max(bases.get(id(owner), 0), owner.nbytes, leaf.nbytes)
            total += sys.getsizeof(leaf) - (leaf.nbytes if leaf.base is None and leaf.flags.owndata else 0)
        else:
            total += sys.getsizeof(leaf)
    return total + sum(bases.values())


def _freeze(value) -> None:
    """Makes every array in value read-only, since every caller shares it."""
    for leaf in _arrays_and_leaves(value, set()):
        if isinstance(leaf, np.ndarray):
            leaf.flags.writeable = False


class ByteBoundedCache:
    """A thread-safe LRU cache that holds at most `max_bytes` of values.

    Args:
        max_bytes: the bound on the bytes held, as `size_in_bytes` counts them.
        name: names the cache in `live_caches()` and in messages.

    Every live cache is listed by `ByteBoundedCache.live_caches()`, so that a test or a
    status panel can see what the server holds.
    """

    _live: weakref.WeakSet[ByteBoundedCache] = weakref.WeakSet()

    def __init__(self, max_bytes: int, name: str = "cache"):
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"max_bytes must be a whole number of at least 1, not {max_bytes!r}.")
        self.max_bytes = max_bytes
        self.name = name
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        ByteBoundedCache._live.add(self)

    @classmethod
    def live_caches(cls) -> list[ByteBoundedCache]:
        return list(cls._live)

    def __repr__(self) -> str:
        return f"ByteBoundedCache({self.name!r}: {len(self)} entries, {self.bytes_held:,} of {self.max_bytes:,} bytes)"

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._entries

    @property
    def bytes_held(self) -> int:
        with self._lock:
            return self._bytes

    def sizes(self) -> dict[Hashable, int]:
        """Each kept key with the bytes its value holds, least recently used first."""
        with self._lock:
            return {key: size for key, (_value, size) in self._entries.items()}

    def get(self, key, default=None):
        """The value kept under key (now the most recently used), or default."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return default
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key, value) -> bool:
        """Keeps value under key, dropping the least recently used entries until it fits.

        Returns:
            True if it was kept; False if it alone is larger than max_bytes (nothing is dropped then).
        """
        size = size_in_bytes(value)
        if size > self.max_bytes:
            return False
        _freeze(value)
        with self._lock:
            if key in self._entries:
                self._bytes -= self._entries.pop(key)[1]
            while self._entries and self._bytes + size > self.max_bytes:
                self._bytes -= self._entries.popitem(last=False)[1][1]
            self._entries[key] = (value, size)
            self._bytes += size
        return True

    def get_or_compute(self, key, compute: Callable[[], Any]):
        """The value under key, computing and keeping it if it is not there.

        compute runs outside the lock, so other keys are served meanwhile; an exception
        from it propagates and nothing is kept.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[0]
            self.misses += 1
        value = compute()
        self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def wrap(self, function: Callable) -> Callable:
        """function memoised in this cache, keyed by its name and the `fingerprint` of its arguments."""
        name = f"{function.__module__}.{function.__qualname__}"

        @functools.wraps(function)
        def memoised(*args, **kwargs):
            key = (name, fingerprint(*args), fingerprint(*sorted(kwargs.items())))
            return self.get_or_compute(key, lambda: function(*args, **kwargs))

        return memoised
