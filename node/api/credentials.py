"""API keys: random bearer secrets, stored only as their sha256 in the node's store.

A key is `tk_` plus 32 random bytes (url-safe base64), shown once when created. The store
keeps `K + sha256(key)` -> JSON {id, role, label, addresses, created}; a stolen database yields
no usable key. The public `id` (the first 16 hex digits of the digest) names a key for listing
and revocation without revealing it. These records are node-local: never in a block or a root.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from node.api.roles import ApiRole
from node.storage.schema import api_key_key, api_key_prefix
from node.storage.store import KeyValueStore

KEY_PREFIX = "tk_"
BOOTSTRAP_FILE = "api-admin.key"
_KEY_LENGTH = len(api_key_key(bytes(32)))


@dataclass(frozen=True, slots=True)
class ApiKey:
    """What a key may do; `addresses` are the accounts an enterprise or customer acts for."""

    id: str
    role: ApiRole
    label: str
    addresses: tuple[bytes, ...]
    created: int

    def encode(self) -> bytes:
        return json.dumps(
            {
                "id": self.id,
                "role": self.role.value,
                "label": self.label,
                "addresses": ["0x" + a.hex() for a in self.addresses],
                "created": self.created,
            }
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> ApiKey:
        fields = json.loads(data)
        return cls(
            id=fields["id"],
            role=ApiRole(fields["role"]),
            label=fields["label"],
            addresses=tuple(bytes.fromhex(a[2:]) for a in fields["addresses"]),
            created=fields["created"],
        )


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeyStore:
    """Create, look up, list and revoke API keys over the node's key-value store."""

    def __init__(self, store: KeyValueStore) -> None:
        self.store = store

    def create(self, role: ApiRole, label: str, addresses: tuple[bytes, ...]) -> tuple[str, ApiKey]:
        """A new key and its record; the key itself is returned here and never again."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        digest = _digest(key)
        record = ApiKey(digest.hex()[:16], role, label, addresses, int(time.time()))
        self.store.commit({api_key_key(digest): record.encode()})
        return key, record

    def lookup(self, key: str) -> ApiKey | None:
        if not key.startswith(KEY_PREFIX) or len(key) > 128:
            return None
        data = self.store.get(api_key_key(_digest(key)))
        return None if data is None else ApiKey.decode(data)

    def _entries(self) -> list[tuple[bytes, ApiKey]]:
        entries = []
        for store_key in self.store.iterate_prefix(api_key_prefix()):
            if len(store_key) != _KEY_LENGTH:  # a state-trie node whose hash starts with "K"
                continue
            data = self.store.get(store_key)
            if data is not None:
                entries.append((store_key, ApiKey.decode(data)))
        return entries

    def all(self) -> list[ApiKey]:
        """Every key, oldest first (a bank has dozens, not millions)."""
        return sorted((record for _, record in self._entries()), key=lambda r: (r.created, r.id))

    def revoke(self, key_id: str) -> bool:
        for store_key, record in self._entries():
            if record.id == key_id:
                self.store.commit({store_key: None})
                return True
        return False

    def ensure_bootstrap_admin(self, datadir: Path) -> Path | None:
        """On a node with no admin key, create one and write it to `<datadir>/api-admin.key`
        (mode 0600), so the operator can create every other credential; returns the path."""
        if any(record.role is ApiRole.ADMIN for _, record in self._entries()):
            return None
        key, _ = self.create(ApiRole.ADMIN, "bootstrap admin", ())
        path = datadir / BOOTSTRAP_FILE
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(key + "\n")
        path.chmod(0o600)
        return path
