"""A thread-safe LRU map bounded by the bytes its entries are accounted at.

The EVM keeps two such caches of content that never changes under its key (code by its
hash, a code's instruction map by the code), shared by every thread that executes: block
building and import, and client calls.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

ENTRY_OVERHEAD = 512
"""What a cost function adds per entry beyond its bytes' contents: the bytes objects' headers,
the dict slot and the LRU links (an upper bound, so that many tiny entries are accounted too)."""

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """Values by key, least recently used out first, at most `max_bytes` as `cost` counts.

    An entry costing more than an eighth of the budget is not kept, so that one huge value
    cannot flush everything else.
    """

    def __init__(self, max_bytes: int, cost: Callable[[K, V], int]) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._cost = cost
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: K) -> bool:
        return key in self._entries

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        cost = self._cost(key, value)
        if cost > self.max_bytes // 8:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = value
            self.size += cost
            while self.size > self.max_bytes:
                evicted_key, evicted = self._entries.popitem(last=False)
                self.size -= self._cost(evicted_key, evicted)
