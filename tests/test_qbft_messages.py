"""QBFT wire messages and validator arithmetic (shared/QBFT.md §2, §3; §6 items 3 and 4)."""

from __future__ import annotations

import pytest
import rlp
from eth_hash.auto import keccak
from eth_keys import keys
from eth_keys.datatypes import PrivateKey

from node.chain.chain import Chain
from node.chain.evm.vm import TallyVM
from node.chain.genesis import dev_accounts, dev_genesis
from node.chain.vm import decode_transaction
from node.consensus.block_codec import PRAGUE_BLOCKS, decode_message
from node.consensus.qbft.messages import (
    COMMIT,
    PREPARE,
    PROPOSAL,
    ROUND_CHANGE,
    Commit,
    MessageError,
    Prepare,
    PreparedRoundMetadata,
    PreparePayload,
    Proposal,
    QbftBlock,
    RoundChange,
    RoundChangePayload,
    signing_hash,
)
from node.consensus.qbft.validators import max_faulty, proposer, round_timeout
from node.qbftheader.extra_data import QbftExtraData
from node.qbftheader.quorum import quorum
from node.storage.chainstore import ChainStore
from node.storage.store import MemoryStore
from tests.test_chain import transfers

KEYS = [keys.PrivateKey(keccak(b"tally-qbft-message-%d" % i)) for i in range(4)]
ADDRESSES = sorted(k.public_key.to_canonical_address() for k in KEYS)
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
DIGEST = b"\x11" * 32


def address(key: PrivateKey) -> bytes:
    return key.public_key.to_canonical_address()


def sample_block(with_typed: bool = True) -> QbftBlock:
    base = dev_genesis(ADDRESSES[0])
    chain = Chain(ChainStore(MemoryStore()), base)
    txs = transfers(2)
    if with_typed:
        raw = (
            dev_accounts()[5]
            .sign_transaction(
                {
                    "type": 2,
                    "nonce": 0,
                    "gas": 21000,
                    "maxFeePerGas": 0,
                    "maxPriorityFeePerGas": 0,
                    "to": "0x" + "22" * 20,
                    "value": 1,
                    "chainId": base.chain_id,
                }
            )
            .raw_transaction
        )
        txs.append(decode_transaction(bytes(raw)))
    extra = QbftExtraData(b"\x00" * 32, (ADDRESSES[0],), None, 3, ())
    pending = chain.build(txs, timestamp=1, coinbase=ADDRESSES[0], extra_data=extra.encode())
    return QbftBlock(pending.header, tuple(item.tx for item in pending.executed.transactions))


# ---------------------------------------------------------------------------------------------
# Blocks


def test_blocks_encode_as_standard_ethereum_block_rlp() -> None:
    block = sample_block()
    assert [tx.type_id for tx in block.transactions] == [None, None, 2]
    expected = rlp.encode(
        TallyVM.get_block_class()(
            block.header, transactions=list(block.transactions), uncles=[], withdrawals=[]
        )
    )
    assert block.encode() == expected
    decoded = QbftBlock.decode(expected, PRAGUE_BLOCKS)
    assert decoded.header == block.header
    assert [tx.hash for tx in decoded.transactions] == [tx.hash for tx in block.transactions]
    items = rlp.decode(expected)
    assert isinstance(items[1][0], list) and isinstance(items[1][2], bytes)  # legacy vs typed


def test_blocks_with_uncles_or_withdrawals_are_rejected() -> None:
    items = rlp.decode(sample_block(with_typed=False).encode())
    for bad in ([items[0], items[1], [items[0]], []], [items[0], items[1], [], [[b"\x01"]]]):
        with pytest.raises(MessageError, match="no uncles and no withdrawals"):
            QbftBlock.decode(rlp.encode(bad), PRAGUE_BLOCKS)
    with pytest.raises(MessageError):
        QbftBlock.decode(rlp.encode([items[0][:-1], [], [], []]), PRAGUE_BLOCKS)


# ---------------------------------------------------------------------------------------------
# Layout vectors


def test_prepare_layout_and_signing_preimage() -> None:
    payload = PreparePayload(1, 0, DIGEST)
    # [height=1, round=0 (0x80), digest]
    assert rlp.encode(payload.to_rlp()) == bytes.fromhex("e30180a0" + "11" * 32)
    # keccak(rlp([0x13, payload]))
    preimage = bytes.fromhex("e513e30180a0" + "11" * 32)
    assert signing_hash(PREPARE, payload.to_rlp()) == keccak(preimage)
    message = Prepare.create(KEYS[0], 1, 0, DIGEST)
    wire = rlp.decode(message.encode())
    assert wire == [[b"\x01", b"", DIGEST], message.signed.signature]
    assert keys.Signature(message.signed.signature).recover_public_key_from_msg_hash(
        keccak(preimage)
    ).to_canonical_address() == address(KEYS[0])


def test_round_change_payload_layouts() -> None:
    empty = RoundChangePayload(1, 1, None)
    assert rlp.encode(empty.to_rlp()) == bytes.fromhex("c30101c0")
    prepared = RoundChangePayload(1, 2, PreparedRoundMetadata(0, DIGEST))
    assert rlp.encode(prepared.to_rlp()) == bytes.fromhex("e50102e280a0" + "11" * 32)


def test_every_message_round_trips_with_its_author() -> None:
    block = sample_block()
    prepares = [Prepare.create(k, 5, 1, DIGEST).signed for k in KEYS[:3]]
    messages = [
        Prepare.create(KEYS[0], 5, 2, DIGEST),
        Commit.create(KEYS[1], 5, 2, DIGEST, KEYS[1].sign_msg_hash(DIGEST).to_bytes()),
        RoundChange.create(KEYS[2], 5, 3),
        RoundChange.create(KEYS[2], 5, 3, PreparedRoundMetadata(1, DIGEST), block, prepares),
        Proposal.create(KEYS[3], 5, 0, block),
        Proposal.create(
            KEYS[3],
            5,
            3,
            block,
            [RoundChange.create(k, 5, 3).signed for k in KEYS[:3]],
            prepares,
        ),
    ]
    for message in messages:
        decoded = decode_message(message.code, message.encode())
        assert type(decoded) is type(message)
        assert decoded.author == message.author
        assert (decoded.height, decoded.round) == (message.height, message.round)
        assert decoded.encode() == message.encode()
        assert decoded.key == message.key
        if isinstance(decoded, RoundChange | Proposal):
            assert isinstance(message, RoundChange | Proposal)  # same type, asserted above
            assert [p.author for p in decoded.prepares] == [p.author for p in message.prepares]
    rc = decode_message(ROUND_CHANGE, messages[3].encode())
    assert isinstance(rc, RoundChange) and rc.block is not None
    assert rc.block.header == block.header and rc.prepared == PreparedRoundMetadata(1, DIGEST)
    proposal = decode_message(PROPOSAL, messages[5].encode())
    assert isinstance(proposal, Proposal)
    assert [rc.author for rc in proposal.round_changes] == [address(k) for k in KEYS[:3]]
    commit = decode_message(COMMIT, messages[1].encode())
    assert isinstance(commit, Commit) and len(commit.seal) == 65


def test_block_access_list_items_from_newer_besu_are_accepted_and_ignored() -> None:
    block = sample_block(with_typed=False)
    prepares = [Prepare.create(k, 5, 1, DIGEST).signed for k in KEYS[:3]]
    rc = RoundChange.create(KEYS[0], 5, 2, PreparedRoundMetadata(1, DIGEST), block, prepares)
    items = rc.to_rlp()
    with_bal = rlp.encode([items[0], items[1], b"", items[2]])
    decoded = decode_message(ROUND_CHANGE, with_bal)
    assert isinstance(decoded, RoundChange) and decoded.block is not None
    assert len(decoded.prepares) == 3 and decoded.author == address(KEYS[0])
    # A proposal payload may carry the item too; the signature covers it as sent.
    raw_payload = [5, 0, block.to_rlp(), b""]
    signature = KEYS[1].sign_msg_hash(signing_hash(PROPOSAL, raw_payload)).to_bytes()
    data = rlp.encode([[raw_payload, signature], [[], []]])
    proposal = decode_message(PROPOSAL, data)
    assert isinstance(proposal, Proposal)
    assert proposal.author == address(KEYS[1]) and proposal.block.header == block.header
    assert proposal.encode() == data


# ---------------------------------------------------------------------------------------------
# Signatures (§6 item 3)


def test_a_high_s_twin_signature_is_rejected() -> None:
    message = Prepare.create(KEYS[0], 1, 0, DIGEST)
    sig = message.signed.signature
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    twin = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([1 - v])
    # The twin is a valid signature by the same key (that is the malleability)...
    msg_hash = signing_hash(PREPARE, message.signed.raw)
    recovered = keys.Signature(twin).recover_public_key_from_msg_hash(msg_hash)
    assert recovered.to_canonical_address() == address(KEYS[0])
    # ...and is refused on the wire.
    with pytest.raises(MessageError, match="upper half"):
        Prepare.decode(rlp.encode([message.signed.raw, twin]))


def test_a_payload_signed_under_another_message_code_has_another_author() -> None:
    payload = PreparePayload(1, 0, DIGEST).to_rlp()
    signature = KEYS[0].sign_msg_hash(signing_hash(COMMIT, payload)).to_bytes()
    decoded = Prepare.decode(rlp.encode([payload, signature]))
    assert decoded.author != address(KEYS[0])


@pytest.mark.parametrize(
    ("code", "data", "match"),
    [
        (PREPARE, b"\xff\x00", "not RLP"),
        (PREPARE, rlp.encode([[1, 0], b"\x00" * 65]), "3 items"),
        (PREPARE, rlp.encode([[b"\x00\x01", 0, DIGEST], b"\x00" * 65]), "leading zero"),
        (PREPARE, rlp.encode([[1, 0, DIGEST[:31]], b"\x00" * 65]), "32 bytes"),
        (PREPARE, rlp.encode([[1, 0, DIGEST], b"\x00" * 64]), "65 bytes"),
        (COMMIT, rlp.encode([[1, 0, DIGEST, b"\x00" * 64], b"\x00" * 65]), "65 bytes"),
        (ROUND_CHANGE, rlp.encode([[[1, 1, [0]], b"\x00" * 65], [], []]), "0 or 2 items"),
        (ROUND_CHANGE, rlp.encode([[[1, 1, []], b"\x00" * 65], []]), "3 or 4 items"),
        (PROPOSAL, rlp.encode([[[1, 0, []], b"\x00" * 65], [[], []]]), "4 items"),
        (0x16, b"", "unknown QBFT message code"),
    ],
)
def test_malformed_messages_raise_message_error(code: int, data: bytes, match: str) -> None:
    with pytest.raises(MessageError, match=match):
        decode_message(code, data)


def test_recovery_id_must_be_zero_or_one() -> None:
    message = Prepare.create(KEYS[0], 1, 0, DIGEST)
    sig = message.signed.signature[:64] + bytes([27 + message.signed.signature[64]])
    with pytest.raises(MessageError, match="recovery id"):
        Prepare.decode(rlp.encode([message.signed.raw, sig]))


# ---------------------------------------------------------------------------------------------
# Validators (§3, §6 item 4)


def test_thresholds() -> None:
    table = {1: (1, 0), 2: (2, 0), 3: (2, 0), 4: (3, 1), 5: (4, 1), 7: (5, 2), 10: (7, 3)}
    for n, (q, f) in table.items():
        assert (quorum(n), max_faulty(n)) == (q, f)
        assert quorum(n) == (2 * n - 1) // 3 + 1  # the spec's formula


def test_proposer_rotates_after_the_previous_proposer_over_rounds() -> None:
    validators = tuple(ADDRESSES)
    n = len(validators)
    for index, previous in enumerate(validators):
        got = [proposer(validators, previous, r) for r in range(2 * n + 1)]
        assert got == [validators[(index + 1 + r) % n] for r in range(2 * n + 1)]
    # Genesis coinbase 0x0: the first validator proposes block 1's round 0.
    assert proposer(validators, b"\x00" * 20, 0) == validators[0]


def test_a_removed_previous_proposer_hands_over_to_the_next_higher_address() -> None:
    full = tuple(ADDRESSES)
    for removed in range(len(full)):
        remaining = full[:removed] + full[removed + 1 :]
        following = full[removed + 1] if removed + 1 < len(full) else full[0]
        start = remaining.index(following)
        got = [proposer(remaining, full[removed], r) for r in range(2 * len(remaining) + 1)]
        assert got == [remaining[(start + r) % len(remaining)] for r in range(len(got))]
    assert proposer(full, b"\xff" * 20, 0) == full[0]  # above every member: wraps


def test_round_timeouts_double_then_cap() -> None:
    assert [round_timeout(2, r, 30) for r in range(6)] == [2, 4, 8, 16, 30, 30]
    assert round_timeout(2, 10**9, 30) == 30  # a far-future round is cheap and bounded
    assert [round_timeout(1, r, None) for r in range(4)] == [1, 2, 4, 8]  # Besu's
    assert round_timeout(5, 0, 1) == 5  # a cap below the request timeout never shortens it
