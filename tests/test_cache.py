"""The byte-bounded cache that the pages share between sessions."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pytest

from core.cache import MIB, ByteBoundedCache, fingerprint, size_in_bytes


def block(megabytes: float, fill: int = 0) -> np.ndarray:
    return np.full(int(megabytes * MIB), fill, np.uint8)


@dataclass(frozen=True)
class Result:
    image: np.ndarray
    box: tuple[float, float, float, float]


def test_size_counts_array_data_inside_containers():
    """A dataclass holding a 3 MB array and a tuple counts at least the 3 MB and little more."""
    value = Result(block(3), (0.0, 0.0, 1.0, 1.0))
    assert 3 * MIB <= size_in_bytes(value) < 3 * MIB + 4096
    assert 5 * MIB <= size_in_bytes((block(2), [block(3)], {"a": block(0.5)})) - 0.5 * MIB < 5 * MIB + 4096


def test_a_view_counts_the_whole_array_it_keeps_alive():
    """A one-row view of a 4 MB array holds all 4 MB; two views of it count the base once."""
    base = np.zeros((1024, 4096), np.uint8)
    assert size_in_bytes(base[:1]) >= base.nbytes
    assert base.nbytes <= size_in_bytes((base[:1], base[1:2], base)) < base.nbytes + 4096


def test_inserting_past_the_bound_drops_the_oldest_and_stays_within_bytes():
    """Twenty 1 MB values into a 5.5 MB cache: at most 5 kept, the newest, bytes held within the bound."""
    cache = ByteBoundedCache(int(5.5 * MIB), "test")
    for index in range(20):
        cache.put(index, block(1, index))
        assert cache.bytes_held <= cache.max_bytes
        assert cache.bytes_held == sum(cache.sizes().values())
    assert list(cache.sizes()) == [15, 16, 17, 18, 19]
    assert cache.get(19)[0] == 19 and cache.get(3) is None
    assert 5 * MIB <= cache.bytes_held <= 5.5 * MIB


def test_recently_used_entries_survive():
    """Reading an entry makes it the newest, so the next insertion drops another one."""
    cache = ByteBoundedCache(3 * MIB + 4096, "test")
    for key in "abc":
        cache.put(key, block(1))
    cache.get("a")
    cache.put("d", block(1))
    assert set(cache.sizes()) == {"a", "c", "d"}


def test_a_value_larger_than_the_bound_is_returned_but_not_kept():
    """A 10 MB result in a 4 MB cache is computed and returned, and the small entries stay."""
    cache = ByteBoundedCache(4 * MIB, "test")
    cache.put("small", block(1))
    value = cache.get_or_compute("big", lambda: block(10))
    assert value.nbytes == 10 * MIB
    assert "big" not in cache and "small" in cache
    assert cache.bytes_held < 2 * MIB


def test_get_or_compute_computes_once_and_errors_are_not_kept():
    """A second call is served from the cache; an exception propagates and leaves nothing behind."""
    cache = ByteBoundedCache(MIB, "test")
    calls = []
    for _ in range(3):
        assert cache.get_or_compute("k", lambda: calls.append(1) or np.arange(4)).tolist() == [0, 1, 2, 3]
    assert len(calls) == 1 and (cache.hits, cache.misses) == (2, 1)

    def fails():
        raise ValueError("bad photo")

    with pytest.raises(ValueError, match="bad photo"):
        cache.get_or_compute("bad", fails)
    assert "bad" not in cache


def test_kept_arrays_are_read_only():
    """Every session gets the same object, so a kept array cannot be changed in place."""
    cache = ByteBoundedCache(MIB, "test")
    kept = cache.get_or_compute("k", lambda: Result(np.zeros((4, 4)), (0, 0, 4, 4)))
    with pytest.raises(ValueError, match="read-only"):
        kept.image[0, 0] = 1


def test_fingerprint_digests_large_arguments():
    """Keys hold digests, not the data: equal content gives equal keys, shape and dtype count."""
    data = bytes(range(256)) * 4096
    key = fingerprint(data, np.zeros((2, 3)), "same", 2)
    assert key == fingerprint(bytes(data), np.zeros((2, 3)), "same", 2)
    assert len(repr(key)) < 300
    assert fingerprint(np.zeros((2, 3))) != fingerprint(np.zeros((3, 2)))
    assert fingerprint(np.zeros(3, np.float32)) != fingerprint(np.zeros(3, np.int32))
    assert fingerprint(data) != fingerprint(data[:-1] + b"\x01")
    with pytest.raises(TypeError):
        fingerprint({"a": 1})


def test_wrap_memoises_by_argument_content():
    """A wrapped function runs once per distinct array content, whatever object carries it."""
    cache = ByteBoundedCache(MIB, "test")
    calls = []

    def double(array, factor=2):
        calls.append(1)
        return array * factor

    memoised = cache.wrap(double)
    assert memoised(np.arange(3)).tolist() == [0, 2, 4]
    assert memoised(np.arange(3)).tolist() == [0, 2, 4]
    assert memoised(np.arange(3), factor=3).tolist() == [0, 3, 6]
    assert len(calls) == 2


def test_threads_share_the_cache_without_losing_count():
    """Eight threads inserting 1 MB values keep the byte count exact and within the bound."""
    cache = ByteBoundedCache(10 * MIB, "test")

    def worker(offset):
        for index in range(40):
            cache.get_or_compute((offset, index % 13), lambda: block(1))

    threads = [threading.Thread(target=worker, args=(offset,)) for offset in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.bytes_held == sum(cache.sizes().values()) <= cache.max_bytes
    assert len(cache) == cache.max_bytes // size_in_bytes(block(1))  # 1 MiB plus the array header each


def test_bad_bound_is_refused():
    """A bound that is not a positive whole number of bytes says so."""
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_bytes"):
            ByteBoundedCache(bad)


def test_live_caches_lists_each_cache():
    """A status panel or test can find every cache the server holds."""
    cache = ByteBoundedCache(MIB, "findable")
    assert cache in ByteBoundedCache.live_caches()
    assert "findable" in repr(cache)
