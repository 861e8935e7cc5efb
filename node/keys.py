"""The node key: the secp256k1 key that signs this node's commit seals and identifies it.

Kept in `<datadir>/nodekey` as hex, created on first start with owner-only permissions
(`write_private_file`, which the admin listener's token uses too).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from eth_keys.datatypes import PrivateKey

NODE_KEY_FILE = "nodekey"


def load_or_create_node_key(datadir: Path) -> PrivateKey:
    path = datadir / NODE_KEY_FILE
    if path.exists():
        return PrivateKey(bytes.fromhex(path.read_text().strip().removeprefix("0x")))
    datadir.mkdir(parents=True, exist_ok=True)
    key = PrivateKey(secrets.token_bytes(32))
    write_private_file(path, key.to_hex() + "\n")
    return key


def write_private_file(path: Path, text: str) -> None:
    """Write a secret only its owner may read (0600), whole or not at all: a temporary file,
    synced, renamed over `path`, so a crash never leaves an empty or half-written secret."""
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
