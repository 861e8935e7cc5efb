"""Fuzzing the decoders that take bytes from clients and peers: random and mutated RLP.

Each decoder documents what it raises for bad input, and its caller catches exactly that: the
pool's admission (`decode_checked`: a `TxPoolError`, answered as geth's -32000 text), sync's
STATUS / BLOCK_REQUEST / BLOCKS (`SyncMessageError`), QBFT messages (`MessageError`; the fast
PROPOSAL path returns None instead) and state diffs (`DiffRejected`). Anything else would
reach the p2p handler or the RPC dispatcher as an unexpected error: a traceback in the log, a
-32603, or a relay decision made by accident. Inputs are random bytes, random RLP structures,
and valid encodings (a signed transaction, a block, every QBFT message) with bytes flipped,
inserted, deleted or truncated.
"""

from __future__ import annotations

import contextlib

import rlp
from hypothesis import given, settings
from hypothesis import strategies as st

from node.chain.diff_import import decode_diff_message
from node.chain.evm.vm import TallyVM
from node.chain.state_diff import DiffRejected
from node.consensus.block_codec import decode_message, decode_proposal
from node.consensus.qbft.messages import (
    COMMIT,
    PREPARE,
    PROPOSAL,
    ROUND_CHANGE,
    Commit,
    MessageError,
    Prepare,
    PreparedRoundMetadata,
    Proposal,
    RoundChange,
)
from node.consensus.sync import BlockRequest, Blocks, Status, SyncMessageError, decode_sync_message
from node.txpool.admission import AdmissionRules, decode_checked
from node.txpool.errors import TxPoolError
from tests.test_qbft_messages import DIGEST, KEYS, sample_block

RULES = AdmissionRules(chain_id=1337, block_gas_limit=60_000_000)
BLOCK = sample_block()
SIGNED_TXS = [tx.encode() for tx in BLOCK.transactions]
BLOCKS_PAYLOAD = rlp.encode(
    Blocks(
        [
            TallyVM.get_block_class()(
                BLOCK.header, transactions=list(BLOCK.transactions), uncles=[], withdrawals=[]
            )
        ]
    )
)
PREPARES = [Prepare.create(key, 5, 1, DIGEST).signed for key in KEYS[:3]]
QBFT_MESSAGES = [
    (PREPARE, Prepare.create(KEYS[0], 5, 2, DIGEST).encode()),
    (
        COMMIT,
        Commit.create(KEYS[1], 5, 2, DIGEST, KEYS[1].sign_msg_hash(DIGEST).to_bytes()).encode(),
    ),
    (ROUND_CHANGE, RoundChange.create(KEYS[2], 5, 3).encode()),
    (
        ROUND_CHANGE,
        RoundChange.create(
            KEYS[2], 5, 3, PreparedRoundMetadata(1, DIGEST), BLOCK, PREPARES
        ).encode(),
    ),
    (PROPOSAL, Proposal.create(KEYS[3], 5, 0, BLOCK).encode()),
]
SEEDS = [
    *SIGNED_TXS,
    BLOCKS_PAYLOAD,
    rlp.encode(Status(7, DIGEST)),
    rlp.encode(BlockRequest(1, 64)),
    *(message for _, message in QBFT_MESSAGES),
]

rlp_items = st.recursive(
    st.binary(max_size=40) | st.integers(min_value=0, max_value=2**300).map(rlp.encode),
    lambda inner: st.lists(inner, max_size=6),
    max_leaves=20,
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid encoding with a few bytes flipped, inserted, deleted, or cut off."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        position = draw(st.integers(min_value=0, max_value=max(len(data) - 1, 0)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if action == "flip" and data:
            data[position] ^= draw(st.integers(min_value=1, max_value=255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[position : position + draw(st.integers(min_value=1, max_value=8))]
        else:
            del data[position:]
    return bytes(data)


inputs = st.one_of(st.binary(max_size=300), rlp_items.map(lambda item: rlp.encode(item)), mutated())
FUZZ = settings(max_examples=400, deadline=None, derandomize=True)


@FUZZ
@given(raw=inputs)
def test_admission_raises_only_pool_errors(raw: bytes) -> None:
    with contextlib.suppress(TxPoolError):
        decode_checked(raw, RULES)


@FUZZ
@given(payload=inputs)
def test_sync_decoders_raise_only_sync_message_error(payload: bytes) -> None:
    for sedes in (Status, BlockRequest, Blocks):
        with contextlib.suppress(SyncMessageError):
            decode_sync_message(payload, sedes)


@FUZZ
@given(code=st.sampled_from([PREPARE, COMMIT, ROUND_CHANGE, PROPOSAL, 0x99]), data=inputs)
def test_qbft_decoders_raise_only_message_error(code: int, data: bytes) -> None:
    if code == PROPOSAL:
        decode_proposal(data, lambda tx_hash: None)  # never raises: None hands over
    with contextlib.suppress(MessageError):
        decode_message(code, data)


@FUZZ
@given(hash_prefix=st.binary(min_size=0, max_size=32), body=inputs)
def test_state_diff_decoder_raises_only_diff_rejected(hash_prefix: bytes, body: bytes) -> None:
    with contextlib.suppress(DiffRejected):
        decode_diff_message(hash_prefix + body)


def test_the_seeds_are_valid() -> None:
    """Mutations start from encodings that do decode, so they probe deep, not at the door."""
    for raw in SIGNED_TXS:
        assert decode_checked(raw, RULES).sender
    assert decode_sync_message(BLOCKS_PAYLOAD, Blocks).blocks[0].hash
    for code, data in QBFT_MESSAGES:
        assert decode_message(code, data).height == 5


def test_well_formed_rlp_of_the_wrong_shape_is_a_sync_message_error() -> None:
    """Found by the fuzzer: pyrlp raises DeserializationError or TypeError (not DecodingError)
    for a STATUS or BLOCK_REQUEST of the wrong shape, which sync let through to the p2p
    handler, where it was logged with a traceback."""
    for payload in (rlp.encode([1]), rlp.encode([[1], [2]]), rlp.encode([1, 2, 3])):
        for sedes in (Status, BlockRequest, Blocks):
            try:
                decode_sync_message(payload, sedes)
            except SyncMessageError:
                continue
            raise AssertionError(f"{sedes.__name__} accepted {payload.hex()}")
