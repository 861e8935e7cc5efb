"""A block accepted from its proposer's state diff ends with the internal-call index entries
execution writes, byte for byte, after the backfill (`node.chain.backfill`), across a crash,
and never while the chain does block work."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import rlp
from eth.abc import SignedTransactionAPI
from eth_account import Account as EthAccount
from eth_keys import keys
from eth_keys.datatypes import PublicKey, Signature
from eth_utils import keccak, to_checksum_address

from node.chain.backfill import InternalCallBackfill, pending_blocks
from node.chain.chain import Chain
from node.chain.diff_import import import_with_diff
from node.chain.genesis import dev_accounts, dev_genesis
from node.chain.notifications import ChainEvents, CommittedBlock
from node.chain.vm import decode_transaction
from node.domain.indexes import ChainIndex
from node.qbftheader.extra_data import QbftExtraData
from node.storage import schema
from node.storage.chainstore import ChainStore
from node.storage.store import KeyValueStore, LevelDBStore, MemoryStore
from tests.test_api_etherscan import FACTORY, FORWARDER, deployer

VALIDATOR = b"\x11" * 20
EXTRA = QbftExtraData(b"\x00" * 32, (VALIDATOR,), None, 0, ()).encode()
REVERTER = deployer(bytes.fromhex("60006000fd"))  # REVERT(0, 0)
SPINNER = deployer(bytes.fromhex("5b600056"))  # JUMPDEST, JUMP back: runs out of gas
SENDER = dev_accounts()[0]
SENDER_ADDRESS = bytes.fromhex(SENDER.address[2:])
BOB = bytes.fromhex(EthAccount.create().address[2:])


def signed(
    nonce: int, to: bytes | None, value: int = 0, data: bytes = b"", gas: int = 300_000
) -> SignedTransactionAPI:
    tx = {"nonce": nonce, "gas": gas, "gasPrice": 0, "value": value, "data": data, "chainId": 1337}
    if to is not None:
        tx["to"] = to_checksum_address(to)
    return decode_transaction(bytes(SENDER.sign_transaction(tx).raw_transaction))


def created(nonce: int) -> bytes:
    return keccak(rlp.encode([SENDER_ADDRESS, nonce]))[12:]


def word(address: bytes) -> bytes:
    return address.rjust(32, b"\x00")


def internal_entries(store: KeyValueStore) -> dict[bytes, bytes]:
    """Every `i` and `I` key of the store, with its value (not trie nodes, whose 32-byte hash
    keys may start with either byte)."""
    return {
        key: store[key]
        for prefix in (b"i", b"I")
        for key in list(store.iterate_prefix(prefix))
        if len(key) != 32
    }


@dataclass
class Diverged:
    """The same block 2 executed on `leader` and accepted from its diff on the follower,
    whose LevelDB at `path` is closed (as after a kill -9 once the block committed)."""

    leader: Chain
    path: Path
    block_hash: bytes
    tx_hashes: list[bytes]


@pytest.fixture
def diverged(tmp_path: Path) -> Diverged:
    leader = Chain(ChainStore(MemoryStore()), dev_genesis(VALIDATOR))
    store = LevelDBStore(tmp_path / "chaindata")
    follower = Chain(ChainStore(store), dev_genesis(VALIDATOR))
    deploys = [
        signed(n, None, data=code, gas=1_000_000)
        for n, code in enumerate((FORWARDER, FORWARDER, FACTORY, REVERTER, SPINNER))
    ]
    for chain in (leader, follower):
        first = chain.build(deploys, timestamp=5, coinbase=VALIDATOR, extra_data=EXTRA)
        chain.commit(first, first.header)
    forwarder, forwarder2, factory, reverter, spinner = (created(n) for n in range(5))
    calls = [
        signed(5, BOB, value=1),
        signed(6, forwarder, value=5, data=word(forwarder2) + word(BOB)),
        signed(7, forwarder, value=3, data=word(reverter)),
        signed(8, factory, value=9, data=FORWARDER, gas=600_000),
        signed(9, reverter),
        signed(10, spinner, gas=60_000),
    ]
    pending = leader.build(calls, timestamp=6, coinbase=VALIDATOR, extra_data=EXTRA)
    assert len(pending.executed.transactions) == len(calls)
    receipts = [item.receipt.encode() for item in pending.executed.transactions]
    assert pending.executed.state_diff is not None
    imported = import_with_diff(
        follower, pending.header, calls, pending.executed.state_diff, receipts
    )
    block_hash = leader.commit(pending, pending.header)
    assert follower.commit(imported, pending.header) == block_hash
    # The diff path indexed nothing of the block's internal transactions, but marked it.
    assert internal_entries(store) == {}
    assert pending_blocks(follower) == [(2, block_hash)]
    assert pending_blocks(leader) == []
    assert len(internal_entries(leader.store.store)) > 8
    store.close()
    return Diverged(
        leader,
        tmp_path / "chaindata",
        block_hash,
        [t.tx_hash for t in pending.executed.transactions],
    )


@pytest.fixture
def reopened(diverged: Diverged) -> Iterator[Chain]:
    store = LevelDBStore(diverged.path)
    try:
        yield Chain(ChainStore(store), dev_genesis(VALIDATOR))
    finally:
        store.close()


def test_backfill_after_a_restart_writes_what_execution_wrote(
    diverged: Diverged, reopened: Chain
) -> None:
    assert pending_blocks(reopened) == [(2, diverged.block_hash)]
    events = ChainEvents()
    backfill = InternalCallBackfill(reopened, events)
    expected = internal_entries(diverged.leader.store.store)

    async def drained() -> None:
        give_up = time.monotonic() + 30
        while pending_blocks(reopened) and time.monotonic() < give_up:
            await asyncio.sleep(0.02)
        assert pending_blocks(reopened) == []

    async def backfilling() -> None:
        task = asyncio.create_task(backfill.run())
        await drained()  # the marker the scan at start found
        assert internal_entries(reopened.store.store) == expected
        # Parked until a block commits; a block marked again (as if replayed twice) is taken
        # up on the next block and rewrites the very same keys and bytes.
        while not backfill._wake._waiters:
            await asyncio.sleep(0.005)
        batch = reopened.store.new_batch()
        batch[schema.internals_pending_key(2)] = diverged.block_hash
        reopened.store.commit(batch)
        await asyncio.sleep(0.05)
        assert pending_blocks(reopened) == [(2, diverged.block_hash)]
        events.publish_block(CommittedBlock(diverged.block_hash, reopened.head, (), False))
        await drained()
        task.cancel()

    try:
        asyncio.run(backfilling())
    finally:
        backfill.close()
    assert internal_entries(reopened.store.store) == expected
    # What auditors read: the nested forwarding, the reverted inner call, both creations,
    # and why the failed transactions failed.
    index = ChainIndex(reopened.store.store)
    found = [index.tx_internals(tx_hash, 2, n) for n, tx_hash in enumerate(diverged.tx_hashes)]
    assert [error for error, _ in found] == ["", "", "", "", "Reverted", "Out of gas"]
    assert [(c.value, c.is_error) for c in found[1][1]] == [(5, False), (5, False)]
    assert [(c.value, c.is_error, c.error) for c in found[2][1]] == [(3, True, "Reverted")]
    creations = [(c.value, c.recipient, len(c.created)) for c in found[3][1]]
    assert creations == [(9, b"", 20), (0, b"", 20)]


def test_backfill_waits_while_the_chain_does_block_work(
    diverged: Diverged, reopened: Chain
) -> None:
    backfill = InternalCallBackfill(reopened, ChainEvents())
    idle = reopened.block_work.idle
    try:
        with reopened.block_work.running():
            worker = threading.Thread(target=backfill.backfill_next)
            worker.start()
            # The backfill is parked on the block-work event itself, having written nothing.
            give_up = time.monotonic() + 30
            while not idle._cond._waiters and time.monotonic() < give_up:  # type: ignore[attr-defined]
                time.sleep(0.005)
            assert idle._cond._waiters  # type: ignore[attr-defined]
            assert worker.is_alive()
            assert pending_blocks(reopened) == [(2, diverged.block_hash)]
            assert internal_entries(reopened.store.store) == {}
        worker.join(30)
        assert not worker.is_alive()
    finally:
        backfill.close()
    assert pending_blocks(reopened) == []
    assert internal_entries(reopened.store.store) == internal_entries(diverged.leader.store.store)


def test_a_trie_node_whose_hash_starts_with_q_is_no_marker() -> None:
    """State-trie nodes live under bare 32-byte hashes; one starting with the marker's prefix
    byte must not be read as a block waiting for the backfill."""
    chain = Chain(ChainStore(MemoryStore()), dev_genesis(b"\x11" * 20))
    inside_the_scan = schema.internals_pending_key(0) + b"\x07" * 23  # 32 bytes, as a node's
    chain.store.store.commit({inside_the_scan: b"trie node", b"q" + b"\x07" * 31: b"trie node"})
    assert pending_blocks(chain) == []


def test_the_backfill_replays_with_the_recorded_senders_and_recovers_no_signature(
    diverged: Diverged, reopened: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stored transaction was checked when its block was accepted, and its record holds
    the sender recovered then: the replay recovers no signature (py-evm's full validation
    recovered each twice, 43 % of a block's replay with the check that follows)."""
    recoveries: list[bytes] = []
    recover = keys.Signature.recover_public_key_from_msg_hash

    def counted(signature: Signature, message_hash: bytes) -> PublicKey:
        recoveries.append(message_hash)
        return recover(signature, message_hash)

    monkeypatch.setattr(keys.Signature, "recover_public_key_from_msg_hash", counted)
    assert signed(0, BOB).sender == SENDER_ADDRESS and len(recoveries) == 1  # the spy works
    backfill = InternalCallBackfill(reopened, ChainEvents())
    try:
        assert backfill.backfill_next()
    finally:
        backfill.close()
    assert len(recoveries) == 1
    assert pending_blocks(reopened) == []
    assert internal_entries(reopened.store.store) == internal_entries(diverged.leader.store.store)
