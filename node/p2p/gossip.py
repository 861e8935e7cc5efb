"""The bounded memory of gossip messages already seen, so each is handled and relayed once."""

from __future__ import annotations

from collections import OrderedDict

DEFAULT_SEEN_CACHE_SIZE = 65_536


class SeenCache:
    """An LRU set of message digests.

    Bounded so that a flood of distinct messages costs memory proportional to the bound, not to
    the flood; a message older than the window may then be relayed again, which the application
    layer (txpool, consensus) already tolerates as a duplicate.
    """

    def __init__(self, capacity: int = DEFAULT_SEEN_CACHE_SIZE) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._entries: OrderedDict[bytes, None] = OrderedDict()

    def add(self, digest: bytes) -> bool:
        """Record a digest; True if it was new, False if already seen (and refresh it)."""
        if digest in self._entries:
            self._entries.move_to_end(digest)
            return False
        self._entries[digest] = None
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
        return True

    def __contains__(self, digest: object) -> bool:
        return digest in self._entries

    def __len__(self) -> int:
        return len(self._entries)
