"""Block 0's allocated state, built one trie at a time in one pass, is py-evm's.

`Genesis.header` writes the alloc with `apply_updates` (each trie built whole, every node
hashed once) instead of account by account through py-evm's `AccountDB`, which took minutes
for 100,000 WalletToken holders (issue 16). The reference here is that old path, kept in this
module: `AccountDB`'s setters, `persist`, then the same deployments run over it. A genesis with
funded accounts, nonces, code, storage (zero words and slot 0 included), an empty account and
WalletToken holders under the bank's deployments must reach the same block 0, and a node
started on it must read the balances, code and storage back from its LevelDB.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
from eth.abc import AtomicDatabaseAPI
from eth.constants import BLANK_ROOT_HASH
from eth.db.account import AccountDB
from eth_typing import Address, Hash32
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address
from trie import HexaryTrie

import node.chain.genesis as genesis_module
from node import localnet
from node.chain.genesis import AllocEntry, Genesis, GenesisError, dev_genesis
from node.domain.contracts import WALLET_TOKEN, ChainRole
from node.qbftheader.hashing import onchain_hash
from node.storage.store import MemoryStore

VALIDATOR = b"\x11" * 20
CODE = bytes.fromhex("6001600055600160005260206000f3")
HOLDERS_SLOT = 1  # WalletToken's `_holders` mapping (contracts/src/WalletToken.sol)
TOTAL_SUPPLY_SLOT = 258
BALANCE_OF = function_signature_to_4byte_selector("balanceOf(address)")


def account_db_alloc(db: AtomicDatabaseAPI, alloc: dict[bytes, AllocEntry]) -> Hash32:
    """The alloc written as `Genesis.header` wrote it before: py-evm's `AccountDB` setters."""
    state = AccountDB(db, BLANK_ROOT_HASH)
    for raw_address, entry in alloc.items():
        address = Address(raw_address)
        state.set_balance(address, entry.balance)
        state.set_nonce(address, entry.nonce)
        if entry.code:
            state.set_code(address, entry.code)
        for slot, value in entry.storage.items():
            state.set_storage(address, slot, value)
    state.persist()
    return state.state_root


def holder_slot(address: bytes) -> int:
    """The storage slot of `_holders[address]` (Solidity: keccak256(key . slot))."""
    return int.from_bytes(keccak(address.rjust(32, b"\0") + HOLDERS_SLOT.to_bytes(32, "big")))


def holder_word(balance: int) -> int:
    """An active tier-1 CUSTOMER holding `balance` cents (WalletToken.sol's holder layout)."""
    return balance | 1 << 136 | 1 << 147 | int(ChainRole.CUSTOMER) << 148


def mixed_genesis(holders: int = 300) -> Genesis:
    """The dev chain's genesis (the bank's contracts deployed) with every kind of alloc entry."""
    base = dev_genesis(VALIDATOR)
    rng = random.Random(16)
    alloc = dict(base.alloc)
    token_storage: dict[int, int] = {}
    for i in range(holders):
        address = keccak(b"holder" + i.to_bytes(4, "big"))[12:]
        alloc[address] = AllocEntry(balance=rng.randrange(1, 10**21), nonce=rng.choice((0, 0, 7)))
        token_storage[holder_slot(address)] = holder_word(rng.randrange(10**7))
    token_storage[TOTAL_SUPPLY_SLOT] = sum(word & (2**80 - 1) for word in token_storage.values())
    alloc[WALLET_TOKEN] = AllocEntry(storage=token_storage)
    alloc[b"\xc0" * 20] = AllocEntry(
        balance=5,
        nonce=1,
        code=CODE,
        storage={0: 42, 1: 0, 2**256 - 1: 2**256 - 1, **{s: s * 3 for s in range(3, 40)}},
    )
    alloc[b"\xc1" * 20] = AllocEntry(code=CODE)  # the same code again, no storage
    alloc[b"\xc2" * 20] = AllocEntry(storage={7: 8})  # storage without code
    alloc[b"\xe0" * 20] = AllocEntry()  # an empty account is still written
    return replace(base, alloc=alloc)


def reference_header(genesis: Genesis, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """Block 0 and its database as the `AccountDB` path builds them."""
    db = MemoryStore()
    with monkeypatch.context() as patch:
        patch.setattr(genesis_module, "_write_alloc", account_db_alloc)
        header = genesis.header(db)
    return header, db


def test_the_alloc_state_root_and_nodes_are_account_db_s() -> None:
    genesis = replace(mixed_genesis(), deployments=())
    ours, theirs = MemoryStore(), MemoryStore()
    root = genesis.header(ours).state_root
    assert root == account_db_alloc(theirs, genesis.alloc)
    # Every node written is one py-evm wrote (which also keeps nodes it later replaced).
    assert ours._data.items() <= theirs._data.items()
    trie = HexaryTrie(ours, root)
    for address in genesis.alloc:
        assert trie[keccak(address)] == HexaryTrie(theirs, root)[keccak(address)]


def test_block_0_with_deployments_over_alloc_storage_is_the_account_db_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    genesis = mixed_genesis()
    reference, _ = reference_header(genesis, monkeypatch)
    header = genesis.header(MemoryStore())
    assert header == reference
    assert onchain_hash(header) == onchain_hash(reference)
    dev = dev_genesis(VALIDATOR)
    assert dev.header(MemoryStore()) == reference_header(dev, monkeypatch)[0]


def test_alloc_words_out_of_range_are_refused() -> None:
    base = dev_genesis(VALIDATOR)
    for entry in (
        AllocEntry(balance=2**256),
        AllocEntry(nonce=-1),
        AllocEntry(storage={2**256: 1}),
        AllocEntry(storage={1: -5}),
    ):
        bad = replace(base, alloc={**base.alloc, b"\xaa" * 20: entry})
        with pytest.raises(GenesisError, match="out of range"):
            bad.header(MemoryStore())


def test_a_node_reads_the_genesis_state_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-validator localnet on the mixed genesis: block 0 is the `AccountDB` path's, and
    balances, nonces, code, storage and WalletToken balances come back over JSON-RPC."""
    directory = tmp_path / "net"
    localnet.create(directory, validators=1, members=0)
    path = directory / localnet.GENESIS_FILE
    written = Genesis.load(path)
    genesis = replace(written, alloc={**written.alloc, **mixed_genesis(holders=40).alloc})
    path.write_text(genesis.dumps())
    reference, _ = reference_header(genesis, monkeypatch)
    (node,) = localnet.launch(directory, 1, 0).nodes
    try:
        block_0 = localnet.rpc(node, "eth_getBlockByNumber", ["0x0", False])
        assert isinstance(block_0, dict)
        assert block_0["hash"] == "0x" + onchain_hash(reference).hex()
        assert block_0["stateRoot"] == "0x" + reference.state_root.hex()
        for address, entry in genesis.alloc.items():
            if address == WALLET_TOKEN or address in written.alloc:
                continue
            checksum = to_checksum_address(address)
            assert localnet.rpc(node, "eth_getBalance", [checksum, "0x0"]) == hex(entry.balance)
            assert localnet.rpc(node, "eth_getTransactionCount", [checksum, "0x0"]) == hex(
                entry.nonce
            )
            assert localnet.rpc(node, "eth_getCode", [checksum, "0x0"]) == "0x" + entry.code.hex()
            for slot, value in entry.storage.items():
                stored = localnet.rpc(node, "eth_getStorageAt", [checksum, hex(slot), "0x0"])
                assert stored == "0x" + value.to_bytes(32, "big").hex()
        token = to_checksum_address(WALLET_TOKEN)
        storage = genesis.alloc[WALLET_TOKEN].storage
        for i in range(0, 40, 7):
            holder = keccak(b"holder" + i.to_bytes(4, "big"))[12:]
            call = {"to": token, "data": "0x" + (BALANCE_OF + holder.rjust(32, b"\0")).hex()}
            got = localnet.rpc(node, "eth_call", [call, "0x0"])
            balance = storage[holder_slot(holder)] & (2**80 - 1)
            assert got == "0x" + balance.to_bytes(32, "big").hex()
    finally:
        localnet.down(directory)
