"""Sealed-block import (QBFT header validation) with real keys, headers and execution."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from eth.abc import BlockHeaderAPI
from eth_keys import keys
from eth_keys.datatypes import PrivateKey

from node.chain.chain import Chain, PendingBlock
from node.chain.executor import BlockRejected
from node.chain.genesis import Genesis, dev_genesis
from node.chain.importer import import_block, verify_seals
from node.chain.vm import decode_transaction
from node.qbftheader.extra_data import QbftExtraData
from node.qbftheader.hashing import onchain_hash, sign_commit_seal
from node.qbftheader.quorum import quorum
from node.storage.chainstore import ChainStore
from node.storage.store import MemoryStore
from tests.test_chain import transfers

KEYS = [keys.PrivateKey(bytes([index]) * 32) for index in range(1, 5)]
VALIDATORS = tuple(sorted(key.public_key.to_canonical_address() for key in KEYS))
OUTSIDER = keys.PrivateKey(b"\x09" * 32)


def genesis() -> Genesis:
    base = dev_genesis(VALIDATORS[0])
    return Genesis(chain_id=base.chain_id, validators=VALIDATORS, alloc=base.alloc)


def proposal(chain: Chain, txs: list, round_number: int = 0) -> PendingBlock:
    extra = QbftExtraData(b"\x00" * 32, VALIDATORS, None, round_number, ())
    return chain.build(
        txs, timestamp=chain.head.timestamp + 1, coinbase=VALIDATORS[1], extra_data=extra.encode()
    )


def sealed(
    header: BlockHeaderAPI,
    signers: Sequence[PrivateKey],
    round_number: int = 0,
    seals: Sequence[bytes] | None = None,
) -> BlockHeaderAPI:
    extra = QbftExtraData.decode(header.extra_data)
    seals = (
        seals
        if seals is not None
        else tuple(sign_commit_seal(header, round_number, key) for key in signers)
    )
    return header.copy(
        extra_data=QbftExtraData(
            extra.vanity, extra.validators, None, round_number, tuple(seals)
        ).encode()
    )


def test_quorum_thresholds() -> None:
    assert [quorum(n) for n in (1, 2, 3, 4, 5, 7, 10)] == [1, 2, 2, 3, 4, 5, 7]


def test_a_quorum_sealed_block_imports_with_the_same_hash() -> None:
    builder = Chain(ChainStore(MemoryStore()), genesis())
    follower = Chain(ChainStore(MemoryStore()), genesis())
    txs = transfers(5)
    pending = proposal(builder, txs)
    header = sealed(pending.header, KEYS[:3])
    builder.commit(pending, header)
    block_hash = import_block(follower, header, [decode_transaction(t.encode()) for t in txs])
    assert block_hash == builder.head_hash == onchain_hash(header)


@pytest.mark.parametrize(
    ("signers", "message"),
    [
        (KEYS[:2], "2 commit seals, 3 required"),
        ([*KEYS[:2], OUTSIDER], "non-validator"),
        ([KEYS[0], KEYS[0], KEYS[1]], "duplicate commit seal"),
    ],
)
def test_insufficient_or_foreign_seals_are_rejected(
    signers: list[PrivateKey], message: str
) -> None:
    builder = Chain(ChainStore(MemoryStore()), genesis())
    follower = Chain(ChainStore(MemoryStore()), genesis())
    header = sealed(proposal(builder, []).header, signers)
    with pytest.raises(BlockRejected, match=message):
        verify_seals(follower, header)
    assert follower.head.block_number == 0


def test_a_seal_for_another_round_does_not_count() -> None:
    builder = Chain(ChainStore(MemoryStore()), genesis())
    follower = Chain(ChainStore(MemoryStore()), genesis())
    unsealed = proposal(builder, [], round_number=1).header
    wrong = [sign_commit_seal(unsealed, 0, key) for key in KEYS[:3]]
    with pytest.raises(BlockRejected):
        verify_seals(follower, sealed(unsealed, [], round_number=1, seals=wrong))


def test_wrong_validator_list_parent_and_coinbase_are_rejected() -> None:
    builder = Chain(ChainStore(MemoryStore()), genesis())
    follower = Chain(ChainStore(MemoryStore()), genesis())
    header = sealed(proposal(builder, []).header, KEYS[:3])
    short_list = QbftExtraData(b"\x00" * 32, VALIDATORS[:3], None, 0, ()).encode()
    with pytest.raises(BlockRejected, match="validators"):
        verify_seals(follower, header.copy(extra_data=short_list))
    with pytest.raises(BlockRejected, match="extend"):
        verify_seals(follower, header.copy(parent_hash=b"\x01" * 32))
    outsider = OUTSIDER.public_key.to_canonical_address()
    with pytest.raises(BlockRejected, match="coinbase"):
        verify_seals(follower, sealed(header.copy(coinbase=outsider), KEYS[:3]))


def test_tampered_transactions_fail_re_execution_after_valid_seals() -> None:
    builder = Chain(ChainStore(MemoryStore()), genesis())
    follower = Chain(ChainStore(MemoryStore()), genesis())
    txs = transfers(3)
    pending = proposal(builder, txs)
    header = sealed(pending.header, KEYS[:3])
    with pytest.raises(BlockRejected):
        import_block(follower, header, [decode_transaction(t.encode()) for t in txs[:2]])
    assert follower.head.block_number == 0
