"""What a block changed in the state, and how a node that did not execute it checks and applies it.

A node that executes a block records every account, storage slot and code it writes
(`node.chain.evm.state_db.TallyAccountDB`). `apply_state_diff` takes such a record from a peer and
writes the same state on another node, without executing anything, accepting it only if it
reproduces the block's state root exactly: account changes are merged into the parent's
account trie; every account whose storage root changed must come with storage writes whose
merge into its previous storage (or an emptied one) gives that root; new code must hash to
the account's code hash. A diff that was tampered with, or that belongs to another block,
cannot reach the header's state root.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import rlp
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.rlp.accounts import Account
from eth_hash.auto import keccak

from node.chain.trie_updates import apply_updates

ADDRESS_LENGTH = 20
HASH_LENGTH = 32


class DiffRejected(Exception):
    """A state diff that is malformed or does not lead to the state root it should."""


@dataclass(slots=True)
class StorageChanges:
    """One account's storage writes (hashed slot -> RLP value, b"" deletes) over its previous
    storage, or over an empty one if `wiped` (the storage was cleared during the block)."""

    wiped: bool
    writes: dict[bytes, bytes]


@dataclass(slots=True)
class StateDiff:
    """Accounts (address -> account RLP, b"" deleted), storage and new code a block wrote."""

    accounts: dict[bytes, bytes] = field(default_factory=dict)
    storage: dict[bytes, StorageChanges] = field(default_factory=dict)
    code: dict[bytes, bytes] = field(default_factory=dict)

    def to_rlp(self) -> list:
        return [
            [[address, value] for address, value in self.accounts.items()],
            [
                [address, b"\x01" if change.wiped else b"", list(map(list, change.writes.items()))]
                for address, change in self.storage.items()
            ],
            list(self.code.values()),
        ]

    @classmethod
    def from_rlp(cls, item: object) -> StateDiff:
        """Parse `to_rlp`'s shape, checking every item's type and length."""
        try:
            accounts_item, storage_item, code_item = _list(item, 3)
            accounts = {}
            for entry in _list(accounts_item):
                address, value = _list(entry, 2)
                accounts[_bytes(address, ADDRESS_LENGTH)] = _bytes(value)
            storage = {}
            for entry in _list(storage_item):
                address, wiped, writes_item = _list(entry, 3)
                writes = {}
                for write in _list(writes_item):
                    slot, value = _list(write, 2)
                    writes[_bytes(slot, HASH_LENGTH)] = _bytes(value)
                storage[_bytes(address, ADDRESS_LENGTH)] = StorageChanges(
                    _bytes(wiped) == b"\x01", writes
                )
            code = {keccak(_bytes(blob)): blob for blob in _list(code_item)}
        except (TypeError, ValueError) as exc:
            raise DiffRejected(f"malformed state diff: {exc}") from exc
        return cls(accounts, storage, code)


def _list(item: object, length: int | None = None) -> list:
    if not isinstance(item, list) or (length is not None and len(item) != length):
        raise ValueError("unexpected shape")
    return item


def _bytes(item: object, length: int | None = None) -> bytes:
    if not isinstance(item, bytes) or (length is not None and len(item) != length):
        raise ValueError("unexpected item")
    return item


def apply_state_diff(
    load: Callable[[bytes], bytes],
    has_code: Callable[[bytes], bool],
    parent_root: bytes,
    diff: StateDiff,
    expected_root: bytes,
) -> dict[bytes, bytes]:
    """The database writes (trie nodes and code) that turn `parent_root` into `expected_root`
    by applying `diff`; raises `DiffRejected` unless the result is exactly that root."""
    writes: dict[bytes, bytes] = {}
    previous: dict[bytes, bytes] = {}
    updates = {keccak(address): value for address, value in diff.accounts.items()}
    root, nodes = apply_updates(load, parent_root, updates, previous)
    if root != expected_root:
        raise DiffRejected("the account changes do not lead to the block's state root")
    writes.update(nodes)
    storage = dict(diff.storage)
    for address, value in diff.accounts.items():
        if not value:
            storage.pop(address, None)
            continue
        try:
            account = rlp.decode(value, sedes=Account)
        except (rlp.DecodingError, rlp.DeserializationError) as exc:
            raise DiffRejected(f"account 0x{address.hex()}: {exc}") from exc
        old = previous.get(keccak(address))
        old_storage_root = rlp.decode(old, sedes=Account).storage_root if old else BLANK_ROOT_HASH
        change = storage.pop(address, None)
        if change is not None:
            base = BLANK_ROOT_HASH if change.wiped else old_storage_root
            storage_root, storage_nodes = apply_updates(load, base, change.writes)
            if storage_root != account.storage_root:
                raise DiffRejected(f"storage writes of 0x{address.hex()} miss its storage root")
            writes.update(storage_nodes)
        elif account.storage_root not in (old_storage_root, BLANK_ROOT_HASH):
            raise DiffRejected(f"storage of 0x{address.hex()} changed without its writes")
        if account.code_hash != EMPTY_SHA3 and not has_code(account.code_hash):
            code = diff.code.get(account.code_hash)
            if code is None:
                raise DiffRejected(f"code of 0x{address.hex()} is missing")
            writes[account.code_hash] = code
    if storage:
        raise DiffRejected("storage writes for accounts the diff does not change")
    return writes
