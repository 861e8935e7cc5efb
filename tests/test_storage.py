"""One conformance suite for both key-value stores, plus LevelDB durability."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.storage.store import KeyValueStore, LevelDBStore, MemoryStore


@pytest.fixture(params=["memory", "leveldb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyValueStore]:
    instance: KeyValueStore = MemoryStore() if request.param == "memory" else LevelDBStore(tmp_path)
    yield instance
    instance.close()


def test_get_set_delete(store: KeyValueStore) -> None:
    store[b"k"] = b"v"
    assert store[b"k"] == b"v" and b"k" in store and store.get(b"missing") is None
    del store[b"k"]
    assert b"k" not in store
    with pytest.raises(KeyError):
        store[b"k"]


def test_batch_reads_its_own_writes_and_commits_all_at_once(store: KeyValueStore) -> None:
    store[b"old"] = b"1"
    with store.atomic_batch() as batch:
        batch[b"a"] = b"2"
        del batch[b"old"]
        assert batch[b"a"] == b"2" and b"old" not in batch
        assert b"a" not in store and store[b"old"] == b"1"
    assert store[b"a"] == b"2" and b"old" not in store


def test_a_failed_batch_writes_nothing(store: KeyValueStore) -> None:
    with pytest.raises(RuntimeError), store.atomic_batch() as batch:
        batch[b"a"] = b"2"
        raise RuntimeError("boom")
    assert b"a" not in store


def test_nested_batches_reach_the_store_only_with_the_outer(store: KeyValueStore) -> None:
    with store.atomic_batch() as outer:
        with outer.atomic_batch() as inner:
            inner[b"x"] = b"1"
        assert outer[b"x"] == b"1" and b"x" not in store
    assert store[b"x"] == b"1"


def test_prefix_iteration_is_ordered(store: KeyValueStore) -> None:
    for key in (b"p3", b"p1", b"q0", b"p2"):
        store[key] = b""
    assert list(store.iterate_prefix(b"p")) == [b"p1", b"p2", b"p3"]
    assert list(store.iterate_prefix(b"p", reverse=True)) == [b"p3", b"p2", b"p1"]


def test_leveldb_keeps_committed_batches_across_reopen(tmp_path: Path) -> None:
    first = LevelDBStore(tmp_path)
    with first.atomic_batch() as batch:
        batch[b"durable"] = b"yes"
    first.close()
    second = LevelDBStore(tmp_path)
    assert second[b"durable"] == b"yes"
    second.close()


def _mapped_tables(path: Path) -> set[str]:
    """The table files of the store at `path` mapped into this process's memory."""
    lines = Path("/proc/self/maps").read_text().splitlines()
    return {line.split()[-1] for line in lines if line.endswith(".ldb") and str(path) in line}


def _incompressible(key: bytes) -> bytes:
    return random.Random(key).randbytes(128 * 1024)


def test_open_files_bounds_the_tables_mapped_into_memory(tmp_path: Path) -> None:
    """LevelDB maps every table it keeps open into memory, and those pages count in a node's
    RSS; `open_files` (LevelDB's least, 74: 64 tables) bounds them once the store outgrows
    it. 325 MiB of incompressible values make some 80 tables, each read back."""
    store = LevelDBStore(tmp_path, cache_mib=8, open_files=74)
    keys = [index.to_bytes(4, "big") for index in range(2600)]
    for key in keys:
        store.commit({key: _incompressible(key)})
    assert all(store[key] == _incompressible(key) for key in keys)
    assert len(list(tmp_path.glob("*.ldb"))) > 64
    assert 0 < len(_mapped_tables(tmp_path)) <= 64
    store.close()
