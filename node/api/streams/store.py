"""Subscriptions and their cursors in the node's LevelDB (`S` and `C` keys).

Every change is one synced LevelDB write batch, so a node killed at any moment restarts with
each cursor at an acknowledged position: never past an event the subscriber did not confirm.
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

    def create(self, subscription: Subscription, cursor: Cursor) -> None:
        key = _id(subscription.id)
        self._store.commit(
            {
                schema.stream_key(key): subscription.encode(),
                schema.stream_cursor_key(key): cursor.encode(),
            }
        )

    def get(self, stream_id: str) -> Subscription | None:
        data = self._store.get(schema.stream_key(_id(stream_id)))
        return None if data is None else Subscription.decode(data)

    def all(self) -> list[Subscription]:
        prefix = schema.stream_prefix()
        stop = bytes([prefix[0] + 1])
        return [Subscription.decode(value) for _, value in self._store.iterate_range(prefix, stop)]

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
