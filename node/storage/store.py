"""Key-value stores with atomic batches: LevelDB (plyvel) on disk, a dict in memory.

py-evm 0.12 ships no LevelDB backend, so `LevelDBStore` adapts plyvel to py-evm's
`BaseAtomicDB`. A block is written through `atomic_batch()`: reads see the batch's own writes,
and nothing reaches the store until the batch commits as one LevelDB write batch (synced to
disk), so a node killed at any moment restarts at its last committed block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar, overload

import plyvel
from eth.abc import AtomicWriteBatchAPI
from eth.db.backends.base import BaseAtomicDB, BaseDB

_DELETED = None

_T = TypeVar("_T")


class StoreBatch(BaseAtomicDB, AtomicWriteBatchAPI):
    """Pending writes over a store (or an outer batch), readable before they are committed.

    py-evm's state persists through `atomic_batch()`; on a batch that nests, so a block's
    state writes land in the block's batch and reach the store only with the block.
    """

    def __init__(self, store: BaseDB) -> None:
        self._store = store
        self._pending: dict[bytes, bytes | None] = {}

    def __getitem__(self, key: bytes) -> bytes:
        if key in self._pending:
            value = self._pending[key]
            if value is _DELETED:
                raise KeyError(key)
            return value
        return self._store[key]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending[key] = value

    def __delitem__(self, key: bytes) -> None:
        if key not in self:
            raise KeyError(key)
        self._pending[key] = _DELETED

    def _exists(self, key: bytes) -> bool:
        if key in self._pending:
            return self._pending[key] is not _DELETED
        return key in self._store

    @property
    def pending(self) -> dict[bytes, bytes | None]:
        return self._pending

    @contextmanager
    def atomic_batch(self) -> Iterator[StoreBatch]:
        inner = StoreBatch(self)
        yield inner
        self._pending.update(inner.pending)


class KeyValueStore(BaseAtomicDB):
    """The store interface every Tally component writes through."""

    @contextmanager
    def atomic_batch(self) -> Iterator[StoreBatch]:
        batch = StoreBatch(self)
        yield batch
        self.commit(batch.pending)

    def commit(self, writes: dict[bytes, bytes | None]) -> None:
        raise NotImplementedError

    def iterate_prefix(self, prefix: bytes, *, reverse: bool = False) -> Iterator[bytes]:
        """Keys starting with `prefix`, in byte order (or reversed)."""
        raise NotImplementedError

    def iterate_range(
        self, start: bytes, stop: bytes, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) for start <= key < stop, in byte order (or reversed): what a cursor
        page reads, lazily, so a page costs what it returns whatever the store's size."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the store; further use is an error."""


DEFAULT_CACHE_MIB = 256
DEFAULT_OPEN_FILES = 1000
"""LevelDB's own default for `max_open_files`."""
BLOOM_FILTER_BITS = 10
"""Bits per key of each table's Bloom filter (LevelDB's recommended figure, and geth's): a
read of a key a table does not hold skips it without reading its blocks. Without them, a
lookup that misses (a receipt polled before its transaction is mined, a key of another kind)
searched every level: on a 1,000,000-account store, 4.1 us against 1.3 with them."""


class LevelDBStore(KeyValueStore):
    """LevelDB through plyvel: the node's durable store.

    `cache_mib` sizes LevelDB's block cache of uncompressed table blocks. It fills as the
    chain grows and then stays full, so it bounds most of what a long-running node holds.
    `open_files` bounds the rest that grows with the store: LevelDB keeps up to that many
    tables (less 10) open, each memory-mapped (about 2 MiB, whose pages count in RSS once
    read) with its index and Bloom filter in memory; past it, the least recently read are
    closed and opened again when needed.
    Tables written before Bloom filters were on get theirs when compaction rewrites them."""

    def __init__(
        self,
        path: Path,
        cache_mib: int = DEFAULT_CACHE_MIB,
        open_files: int = DEFAULT_OPEN_FILES,
    ) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._db = plyvel.DB(
            str(path),
            create_if_missing=True,
            lru_cache_size=cache_mib * 2**20,
            max_open_files=open_files,
            bloom_filter_bits=BLOOM_FILTER_BITS,
        )

    def __getitem__(self, key: bytes) -> bytes:
        value = self._db.get(key)
        if value is None:
            raise KeyError(key)
        return value

    # Mapping.get's overloads: a default of another type widens the result.
    @overload
    def get(self, key: bytes) -> bytes | None: ...
    @overload
    def get(self, key: bytes, default: bytes) -> bytes: ...
    @overload
    def get(self, key: bytes, default: _T) -> bytes | _T: ...
    def get(self, key: bytes, default: _T | None = None) -> bytes | _T | None:
        return self._db.get(key, default)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._db.put(key, value, sync=True)

    def __delitem__(self, key: bytes) -> None:
        self._db.delete(key, sync=True)

    def _exists(self, key: bytes) -> bool:
        return self._db.get(key) is not None

    def commit(self, writes: dict[bytes, bytes | None]) -> None:
        with self._db.write_batch(transaction=True, sync=True) as batch:
            for key, value in writes.items():
                if value is _DELETED:
                    batch.delete(key)
                else:
                    batch.put(key, value)

    def iterate_prefix(self, prefix: bytes, *, reverse: bool = False) -> Iterator[bytes]:
        yield from self._db.iterator(prefix=prefix, reverse=reverse, include_value=False)

    def iterate_range(
        self, start: bytes, stop: bytes, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        with self._db.iterator(start=start, stop=stop, reverse=reverse) as items:
            yield from items

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()


class MemoryStore(KeyValueStore):
    """A dict: for tests and for throw-away execution (eth_call overlays)."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}

    def __getitem__(self, key: bytes) -> bytes:
        return self._data[key]

    # Mapping.get's overloads: a default of another type widens the result.
    @overload
    def get(self, key: bytes) -> bytes | None: ...
    @overload
    def get(self, key: bytes, default: bytes) -> bytes: ...
    @overload
    def get(self, key: bytes, default: _T) -> bytes | _T: ...
    def get(self, key: bytes, default: _T | None = None) -> bytes | _T | None:
        return self._data.get(key, default)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._data[key] = value

    def __delitem__(self, key: bytes) -> None:
        del self._data[key]

    def _exists(self, key: bytes) -> bool:
        return key in self._data

    def commit(self, writes: dict[bytes, bytes | None]) -> None:
        for key, value in writes.items():
            if value is _DELETED:
                self._data.pop(key, None)
            else:
                self._data[key] = value

    def iterate_prefix(self, prefix: bytes, *, reverse: bool = False) -> Iterator[bytes]:
        keys = sorted((k for k in self._data if k.startswith(prefix)), reverse=reverse)
        yield from keys

    def iterate_range(
        self, start: bytes, stop: bytes, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        keys = sorted((k for k in self._data if start <= k < stop), reverse=reverse)
        yield from ((key, self._data[key]) for key in keys)
