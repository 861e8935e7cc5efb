"""Subscriptions and their cursors in the node's LevelDB (`S` and `C` keys).

Every change is one synced LevelDB write batch, so a node killed at any moment restarts with
each cursor at an acknowledged position: never past an event the subscriber did not confirm.
Definitions never change after creation, so they are read from the store once and kept in
memory (the `S` range also holds state-trie nodes whose hash starts with "S": skipped by
length).
"""

from __future__ import annotations

from node.api.streams.model import Cursor, Subscription
from node.storage import schema
from node.storage.store import KeyValueStore


def _id(stream_id: str) -> bytes:
    return bytes.fromhex(stream_id)


class StreamStore:
    def __init__(self, store: KeyValueStore) -> None:
        self._store = store
        self._loaded: dict[str, Subscription] | None = None

    def _definitions(self) -> dict[str, Subscription]:
        if self._loaded is None:
            prefix = schema.stream_prefix()
            length = len(schema.stream_key(bytes(16)))
            self._loaded = {}
            for key, value in self._store.iterate_range(prefix, bytes([prefix[0] + 1])):
                if len(key) == length:
                    subscription = Subscription.decode(value)
                    self._loaded[subscription.id] = subscription
        return self._loaded

    def create(self, subscription: Subscription, cursor: Cursor) -> None:
        key = _id(subscription.id)
        self._store.commit(
            {
                schema.stream_key(key): subscription.encode(),
                schema.stream_cursor_key(key): cursor.encode(),
            }
        )
        self._definitions()[subscription.id] = subscription

    def get(self, stream_id: str) -> Subscription | None:
        return self._definitions().get(stream_id)

    def all(self) -> list[Subscription]:
        """Every stream, in order of creation."""
        return sorted(self._definitions().values(), key=lambda s: (s.created, s.id))

    def cursor(self, stream_id: str) -> Cursor:
        data = self._store.get(schema.stream_cursor_key(_id(stream_id)))
        if data is None:
            raise KeyError(stream_id)
        return Cursor.decode(data)

    def save_cursor(self, stream_id: str, cursor: Cursor) -> None:
        self._store.commit({schema.stream_cursor_key(_id(stream_id)): cursor.encode()})

    def delete(self, stream_id: str) -> None:
        key = _id(stream_id)
        self._store.commit({schema.stream_key(key): None, schema.stream_cursor_key(key): None})
        self._definitions().pop(stream_id, None)
