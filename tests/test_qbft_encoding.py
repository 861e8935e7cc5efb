"""QBFT extraData and header hashes (shared/QBFT.md checklist items 1 and 2)."""

from __future__ import annotations

import pytest
import rlp
from eth.abc import BlockHeaderAPI
from eth_keys import keys

from node.chain.genesis import dev_genesis
from node.qbftheader.extra_data import ExtraDataError, QbftExtraData, Vote, genesis_extra_data
from node.qbftheader.hashing import (
    commit_seal_hash,
    onchain_hash,
    recover_seal_signer,
    sign_commit_seal,
)
from node.storage.store import MemoryStore

ADDRESSES = [bytes([value]) * 20 for value in (0x44, 0x11, 0x33, 0x22)]


def test_genesis_extra_data_matches_the_documented_layout() -> None:
    encoded = genesis_extra_data(ADDRESSES)
    # f87a a0<32 zero bytes> f854 <4 x (94 + addr)> c0 80 c0
    expected = (
        bytes.fromhex("f87aa0")
        + b"\x00" * 32
        + bytes.fromhex("f854")
        + b"".join(b"\x94" + a for a in sorted(ADDRESSES))
        + bytes.fromhex("c080c0")
    )
    assert encoded == expected
    decoded = QbftExtraData.decode(encoded)
    assert decoded.validators == tuple(sorted(ADDRESSES))
    assert decoded.vote is None and decoded.round == 0 and decoded.seals == ()


@pytest.mark.parametrize(
    ("vote", "wire"),
    [(Vote(ADDRESSES[0], add=True), b"\x81\xff"), (Vote(ADDRESSES[0], add=False), b"\x80")],
)
def test_votes_round_trip_with_besu_type_bytes(vote: Vote, wire: bytes) -> None:
    extra = QbftExtraData(b"\x00" * 32, tuple(ADDRESSES), vote, 3, ())
    encoded = extra.encode()
    assert wire in encoded
    assert QbftExtraData.decode(encoded) == extra


def test_unknown_vote_type_and_bad_shapes_are_rejected() -> None:
    bad_vote = rlp.encode([b"\x00" * 32, [], [ADDRESSES[0], b"\x01"], 0, []])
    with pytest.raises(ExtraDataError, match="unknown vote type"):
        QbftExtraData.decode(bad_vote)
    with pytest.raises(ExtraDataError, match="five items"):
        QbftExtraData.decode(rlp.encode([b"\x00" * 32, [], []]))
    with pytest.raises(ExtraDataError, match="vanity"):
        QbftExtraData.decode(rlp.encode([b"\x00" * 31, [], [], 0, []]))
    with pytest.raises(ExtraDataError, match="seals"):
        QbftExtraData.decode(rlp.encode([b"\x00" * 32, [], [], 0, [b"\x01" * 64]]))


def _child_header(round_number: int, seals: tuple[bytes, ...] = ()) -> BlockHeaderAPI:
    genesis = dev_genesis(ADDRESSES[0]).header(MemoryStore())
    extra = QbftExtraData(b"\x00" * 32, (ADDRESSES[0],), None, round_number, seals)
    return genesis.copy(block_number=1, extra_data=extra.encode(), timestamp=5)


def test_onchain_hash_ignores_round_and_seals_commit_hash_keeps_round() -> None:
    base = _child_header(0)
    later_round = _child_header(2)
    sealed = _child_header(2, (b"\x01" * 65,))
    assert onchain_hash(base) == onchain_hash(later_round) == onchain_hash(sealed)
    assert commit_seal_hash(later_round, 2) == commit_seal_hash(sealed, 2)
    assert commit_seal_hash(base, 0) != commit_seal_hash(base, 1)
    assert (
        onchain_hash(base)
        != base.copy(extra_data=_child_header(0, (b"\x02" * 65,)).extra_data).hash
    )


def test_genesis_hashes_its_extra_data_unchanged() -> None:
    genesis = dev_genesis(ADDRESSES[0]).header(MemoryStore())
    assert onchain_hash(genesis) == genesis.hash


def test_commit_seal_recovers_to_the_signer_and_not_for_another_round() -> None:
    key = keys.PrivateKey(b"\x07" * 32)
    header = _child_header(1)
    seal = sign_commit_seal(header, 1, key)
    assert len(seal) == 65 and seal[64] in (0, 1)
    sealed_extra = QbftExtraData.decode(header.extra_data)
    sealed = header.copy(
        extra_data=QbftExtraData(
            sealed_extra.vanity, sealed_extra.validators, None, 1, (seal,)
        ).encode()
    )
    assert recover_seal_signer(sealed, seal) == key.public_key.to_canonical_address()
    wrong_round = header.copy(
        extra_data=QbftExtraData(
            sealed_extra.vanity, sealed_extra.validators, None, 2, (seal,)
        ).encode()
    )
    assert recover_seal_signer(wrong_round, seal) != key.public_key.to_canonical_address()
