"""py-evm's account database with contract storage written to its trie once per block, and
the state read through `node.chain.trie_updates.lookup`.

py-evm's `StorageLookup` applies each storage write to a `HexaryTrie` as it is flushed, which
re-reads, re-encodes and re-hashes the path from the root for every slot: a block of ERC-20
transfers rebuilds the token's storage root node once per balance written. Here the writes are
kept (reads see them) until the root is asked for, then merged into the trie in one pass
(`node.chain.trie_updates`). Account and storage reads walk the trie there too, over decoded
nodes kept by hash, rather than through `HexaryTrie`. Everything else is py-evm's: the
journals, checkpoints, reverts, storage wipes (EIP-6780, CREATE2 re-creation) and the rules
for when a root has changed.
`tests/test_stock_equivalence.py` runs blocks through both and compares their state roots.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from eth._utils.padding import pad32
from eth.abc import AccountStorageDatabaseAPI, AtomicDatabaseAPI, DatabaseAPI
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.db.account import AccountDB
from eth.db.backends.base import BaseDB
from eth.db.backends.memory import MemoryDB
from eth.db.cache import CacheDB
from eth.db.journal import JournalDB
from eth.db.storage import CLEAR_COUNT_KEY_NAME, AccountStorageDB
from eth.rlp.accounts import Account
from eth.validation import validate_canonical_address, validate_uint64, validate_uint256
from eth.vm.interrupt import MissingStorageTrieNode
from eth_hash.auto import keccak
from eth_typing import Address, Hash32
from eth_utils import ValidationError, encode_hex, to_bytes
from rlp.codec import encode_raw
from rlp.sedes import big_endian_int
from trie import exceptions as trie_exceptions

from node.chain.evm.bounded_cache import ENTRY_OVERHEAD, BoundedCache
from node.chain.state_diff import StateDiff, StorageChanges
from node.chain.trie_updates import apply_updates, lookup

CODE_CACHE_BYTES = 16 * 1024 * 1024
"""Contract code kept in memory by its hash: some 650 of the largest deployable contracts."""

_code_by_hash: BoundedCache[bytes, bytes] = BoundedCache(
    CODE_CACHE_BYTES, lambda code_hash, code: len(code) + ENTRY_OVERHEAD
)

_Pending = dict[bytes, bytes]
"""Hashed slot -> new encoded value (b"": deleted) since the starting root."""


class BufferedStorageLookup(BaseDB):
    """`eth.db.storage.StorageLookup` with writes buffered and applied in one pass.

    Same interface and rules: reads see the writes; `has_changed_root` once any write (or a
    rollback to a trie that had one) happened since the last commit; `new_trie` starts an empty
    storage keeping the old one for `rollback_trie`, as py-evm does for a wipe that a revert
    may undo.
    """

    def __init__(self, db: DatabaseAPI, storage_root: Hash32, address: Address) -> None:
        self._db = db
        self._address = address
        self._initialize_to_root_hash(storage_root)

    def _initialize_to_root_hash(self, root_hash: Hash32) -> None:
        self._starting_root_hash = root_hash
        self._pending: _Pending | None = None
        self._result: tuple[Hash32, dict[bytes, bytes]] | None = None
        self._history: list[tuple[_Pending, Hash32]] = []

    def __getitem__(self, key: bytes) -> bytes:
        hashed_slot = keccak(pad32(key))
        if self._pending is not None and hashed_slot in self._pending:
            return self._pending[hashed_slot]
        try:
            return lookup(self._db.__getitem__, self._starting_root_hash, hashed_slot)
        except trie_exceptions.MissingTrieNode as exc:
            raise MissingStorageTrieNode(
                Hash32(exc.missing_node_hash),
                self._starting_root_hash,
                Hash32(exc.requested_key),
                exc.prefix,
                self._address,
            ) from exc

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._write(keccak(pad32(key)), value)

    def __delitem__(self, key: bytes) -> None:
        self._write(keccak(pad32(key)), b"")

    def _write(self, hashed_slot: bytes, value: bytes) -> None:
        if self._pending is None:
            self._pending = {}
        self._pending[hashed_slot] = value
        self._result = None

    def _exists(self, key: bytes) -> bool:
        return self[key] != b""

    def changes(self) -> StorageChanges:
        """The writes since the starting root, and whether that root is an emptied storage."""
        return StorageChanges(
            self._starting_root_hash == BLANK_ROOT_HASH, dict(self._pending or {})
        )

    @property
    def has_changed_root(self) -> bool:
        return self._pending is not None

    def _apply(self) -> tuple[Hash32, dict[bytes, bytes]]:
        if self._pending is None:
            raise ValidationError("Asked for changed root when no writes have been made")
        if self._result is None:
            root, nodes = apply_updates(
                self._db.__getitem__, self._starting_root_hash, self._pending
            )
            self._result = (Hash32(root), nodes)
        return self._result

    def get_changed_root(self) -> Hash32:
        return self._apply()[0]

    def commit_to(self, db: DatabaseAPI) -> None:
        if self._pending is None:
            raise ValidationError(
                "It is invalid to commit an account's storage if it has no pending "
                "changes. Always check storage_lookup.has_changed_root before "
                f"attempting to commit. Write tries on stack = {len(self._history)}; "
                f"Root hash = {encode_hex(self._starting_root_hash)}"
            )
        root, nodes = self._apply()
        for node_hash, encoded in nodes.items():
            db[node_hash] = encoded
        self._initialize_to_root_hash(root)

    def new_trie(self) -> int:
        """Switch to an empty storage; returns the index `rollback_trie` restores from."""
        self._history.append((self._pending or {}, self._starting_root_hash))
        self._starting_root_hash = BLANK_ROOT_HASH
        self._pending = None
        self._result = None
        return len(self._history)

    def rollback_trie(self, trie_index: int) -> None:
        if trie_index >= len(self._history):
            raise ValidationError(
                f"Trying to roll back a delete to index {trie_index}, but there are "
                f"only {len(self._history)} indices available."
            )
        self._pending, self._starting_root_hash = self._history[trie_index]
        self._result = None
        del self._history[trie_index:]


class BufferedAccountStorageDB(AccountStorageDB):
    """py-evm's `AccountStorageDB` over a `BufferedStorageLookup` (its layers unchanged)."""

    # Stands in for py-evm's `StorageLookup`: the same interface, not a subclass of it.
    _storage_lookup: BufferedStorageLookup  # type: ignore[assignment]

    def __init__(self, db: AtomicDatabaseAPI, storage_root: Hash32, address: Address) -> None:
        self._address = address
        self._storage_lookup = BufferedStorageLookup(db, storage_root, address)
        self._storage_cache = CacheDB(self._storage_lookup)
        self._locked_changes = JournalDB(self._storage_cache)
        self._journal_storage = JournalDB(self._locked_changes)
        self._accessed_slots: set[int] = set()
        self._clear_count = JournalDB(MemoryDB({CLEAR_COUNT_KEY_NAME: to_bytes(0)}))


class AccountReads(BaseDB):
    """The account trie as py-evm's account database reads it (address -> encoded account,
    b"" if none), walked by `lookup` at the database's current root; never written through,
    since `TallyAccountDB.make_state_root` applies the block's changes itself."""

    def __init__(self, accounts: AccountDB, nodes: DatabaseAPI) -> None:
        self._accounts = accounts
        self._nodes = nodes

    def __getitem__(self, address: bytes) -> bytes:
        return lookup(self._nodes.__getitem__, self._accounts.state_root, keccak(address))

    def __setitem__(self, address: bytes, value: bytes) -> None:
        raise TypeError("the account trie is written by make_state_root, not key by key")

    def __delitem__(self, address: bytes) -> None:
        raise TypeError("the account trie is written by make_state_root, not key by key")

    def _exists(self, address: bytes) -> bool:
        return self[address] != b""


class TallyAccountDB(AccountDB):
    """py-evm's `AccountDB` with storage written as above, the account trie updated the same
    way, and every change it makes to the state recorded as a `StateDiff`.

    The diff is what a validator that does not re-execute a proposal checks it against
    (`node.chain.state_diff`): a node that executed a block can hand over exactly what the
    block changed, and the receiver proves it against the header's state root.
    """

    def __init__(self, db: AtomicDatabaseAPI, state_root: Hash32 = BLANK_ROOT_HASH) -> None:
        super().__init__(db, state_root)
        # Reads under the journal go to `AccountReads` instead of py-evm's HexaryTrie (and
        # its access log, which nothing here reads).
        self._trie_cache = CacheDB(AccountReads(self, self._batchtrie))
        self._journaltrie = JournalDB(self._trie_cache)
        self.state_diff = StateDiff()

    def get_code(self, address: Address) -> bytes:
        """`AccountDB.get_code`, from memory when this code was read before.

        Code is stored under its own hash, so what was read under a hash stays right for
        as long as anything names it. Every transaction to a contract reads its code: from
        LevelDB a fresh copy, whose hash the interpreter's analysis cache must then compute
        again; from here the same object, its hash already known.
        """
        code_hash = self.get_code_hash(address)
        if code_hash == EMPTY_SHA3:
            return b""
        code = _code_by_hash.get(code_hash)
        if code is None:
            code = super().get_code(address)
            _code_by_hash.put(code_hash, code)
        return code

    def set_balance(self, address: Address, balance: int) -> None:
        """`AccountDB.set_balance` without `Account.copy`, which deep-copies every field it
        keeps: a third of the cost of the three or four balance and nonce changes every
        transaction makes."""
        validate_canonical_address(address, title="Storage Address")
        validate_uint256(balance, title="Account Balance")
        account = self._get_account(address)
        self._set_account(
            address, Account(account.nonce, balance, account.storage_root, account.code_hash)
        )

    def set_nonce(self, address: Address, nonce: int) -> None:
        """`AccountDB.set_nonce` without `Account.copy` (see `set_balance`)."""
        validate_canonical_address(address, title="Storage Address")
        validate_uint64(nonce, title="Nonce")
        account = self._get_account(address)
        self._set_account(
            address, Account(nonce, account.balance, account.storage_root, account.code_hash)
        )

    def _set_account(self, address: Address, account: Account) -> None:
        """`AccountDB._set_account`, encoding the four fields straight: `rlp.encode` with the
        `Account` sedes walks rlp's generic serializers and takes three times as long for the
        same bytes."""
        self._account_cache[address] = account
        self._journaltrie[address] = encode_raw(
            [
                big_endian_int.serialize(account.nonce),
                big_endian_int.serialize(account.balance),
                account.storage_root,
                account.code_hash,
            ]
        )

    def _get_address_store(self, address: Address) -> AccountStorageDatabaseAPI:
        store = self._account_stores.get(address)
        if store is None:
            storage_root = self._get_storage_root(address)
            store = BufferedAccountStorageDB(self._raw_store_db, storage_root, address)
            self._account_stores[address] = store
        return store

    def make_state_root(self) -> Hash32:
        """`AccountDB.make_state_root`, applying the account changes in one pass (and
        recording them, with the storage and code changes, in `state_diff`)."""
        for _address, store in self._dirty_account_stores():
            store.make_storage_root()
        for address, storage_root in self._get_changed_roots():
            if self.account_exists(address) or storage_root != BLANK_ROOT_HASH:
                self._set_storage_root(address, storage_root)
        # `_get_address_store` makes every store one of ours; py-evm types them by the API.
        stores = cast(
            "Iterable[tuple[Address, BufferedAccountStorageDB]]", self._dirty_account_stores()
        )
        storage = {
            address: store._storage_lookup.changes()
            for address, store in stores
            if isinstance(store._storage_lookup, BufferedStorageLookup)
            and store._storage_lookup.has_changed_root
        }
        self.state_diff.code.update(self._journaldb.diff().pending_items())
        self._journaldb.persist()

        diff = self._journaltrie.diff()
        changes = dict(diff.pending_items())
        changes.update((address, b"") for address in diff.deleted_keys())
        if changes:
            self.state_diff.accounts.update(changes)
            updates = {keccak(address): value for address, value in changes.items()}
            root, nodes = apply_updates(self._batchtrie.__getitem__, self.state_root, updates)
            for node_hash, encoded in nodes.items():
                self._batchtrie[node_hash] = encoded
            self._trie.root_hash = root
        # Storage of an account whose record did not change (a failed creation) is garbage
        # py-evm writes but never references: not part of the state.
        self.state_diff.storage.update(
            (address, change)
            for address, change in storage.items()
            if address in self.state_diff.accounts
        )
        self._journaltrie.reset()
        self._trie_cache.reset_cache()
        return self.state_root
