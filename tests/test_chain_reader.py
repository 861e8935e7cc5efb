"""The read side (`node.query`) and the head as one value, on real blocks in a real store."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from node.chain.chain import Chain
from node.chain.genesis import dev_genesis
from node.chain.head import ChainHead
from node.qbftheader.hashing import onchain_hash
from node.query.proofs import storage_key
from node.query.reader import ChainReader
from node.storage.chainstore import ChainStore
from node.storage.store import MemoryStore, StoreBatch
from tests.test_chain import EXTRA, VALIDATOR, transfers


class ObservedStore(ChainStore):
    """The real block store, with a probe run right after each batch is written (the moment
    a reader on the event loop may run while `commit` is still in its worker thread)."""

    probe: Callable[[], None] | None = None

    def commit(self, batch: StoreBatch) -> None:
        super().commit(batch)
        if self.probe is not None:
            self.probe()


def test_readers_see_the_committed_block_before_the_tip_moves() -> None:
    store = ObservedStore(MemoryStore())
    chain = Chain(store, dev_genesis(VALIDATOR))
    reader = ChainReader(chain)
    genesis = chain.tip
    pending = chain.build(transfers(3), timestamp=10, coinbase=VALIDATOR, extra_data=EXTRA)
    tx_hash = pending.executed.transactions[0].tx_hash
    seen: list[ChainHead] = []

    def probe() -> None:
        assert chain.tip is genesis  # the in-memory head has not moved yet
        assert reader.receipt(tx_hash) is not None  # ... but the block is findable
        seen.append(reader.head())

    store.probe = probe
    block_hash = chain.commit(pending, pending.header)
    assert [(head.number, head.hash) for head in seen] == [(1, block_hash)]
    assert chain.tip == ChainHead(pending.header, block_hash) == reader.head()
    assert reader.head() is chain.tip


def test_the_head_is_one_frozen_value() -> None:
    chain = Chain(ChainStore(MemoryStore()), dev_genesis(VALIDATOR))
    for timestamp in (10, 20):
        pending = chain.build([], timestamp=timestamp, coinbase=VALIDATOR, extra_data=EXTRA)
        chain.commit(pending, pending.header)
        tip = chain.tip
        assert onchain_hash(tip.header) == tip.hash == chain.head_hash
        assert tip.header is chain.head and tip.number == timestamp // 10
    with pytest.raises(dataclasses.FrozenInstanceError):
        chain.tip.hash = b"\x00" * 32  # type: ignore[misc]
    with pytest.raises(AttributeError):
        chain.head_hash = b"\x00" * 32  # type: ignore[misc]


def test_blocks_and_their_transactions_by_tag_number_and_hash() -> None:
    chain = Chain(ChainStore(MemoryStore()), dev_genesis(VALIDATOR))
    reader = ChainReader(chain)
    pending = chain.build(transfers(5), timestamp=10, coinbase=VALIDATOR, extra_data=EXTRA)
    block_hash = chain.commit(pending, pending.header)
    genesis = reader.canonical(0)
    assert genesis is not None and genesis[0].block_number == 0
    assert reader.canonical(1) == (pending.header, block_hash)
    assert reader.canonical(2) is None
    assert reader.block("latest") is reader.block("pending") is pending.header
    assert reader.block("earliest") == genesis[0]
    assert reader.block(block_hash) == reader.block(1) == pending.header
    assert reader.is_canonical(block_hash, 1) and not reader.is_canonical(block_hash, 0)
    assert reader.validators_after(block_hash) == (VALIDATOR,)
    hashes = reader.tx_hashes(block_hash)
    expected = [item.tx_hash for item in pending.executed.transactions]
    assert len(hashes) == 5 and list(hashes) == expected == chain.store.block_tx_hashes(block_hash)
    assert hashes[-1] == expected[-1] and list(hashes[1:3]) == expected[1:3]
    with pytest.raises(IndexError):
        hashes[5]
    assert len(reader.tx_hashes(b"\x01" * 32)) == 0
    record = reader.transaction(expected[2])
    assert record is not None and (record.block_hash, record.index) == (block_hash, 2)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("12", "expected 0x-prefixed hex"),
        ("0x" + "1" * 65, "longer than 32 bytes"),
        ("0xzz", "invalid storage key: expected 0x-prefixed hex of even length"),
    ],
)
def test_storage_keys_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        storage_key(text)


def test_short_storage_keys_are_left_padded_as_geth_does() -> None:
    assert storage_key("0x1") == (1).to_bytes(32, "big")
    assert storage_key("0X") == bytes(32)
