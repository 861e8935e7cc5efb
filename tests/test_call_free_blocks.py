"""A block accepted from its proposer's state diff is left out of the internal-call backfill
only when its index is provably empty (`node.chain.call_free`); either way the follower's
index ends equal to that of the leader, which executed every block."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth.abc import SignedTransactionAPI
from eth_account import Account as EthAccount
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from contracts import load_artifact
from node.chain.backfill import InternalCallBackfill, pending_blocks
from node.chain.call_free import can_open_recorded_frames
from node.chain.chain import Chain
from node.chain.diff_import import import_with_diff
from node.chain.genesis import dev_genesis
from node.chain.notifications import ChainEvents
from node.chain.vm import decode_transaction
from node.storage.chainstore import ChainStore
from node.storage.store import LevelDBStore, MemoryStore
from tests.test_api_etherscan import FORWARDER, deployer
from tests.test_internal_backfill import (
    BOB,
    EXTRA,
    SENDER,
    VALIDATOR,
    created,
    internal_entries,
    signed,
    word,
)

QUIET_RUNTIME = bytes.fromhex(
    "6001 6000 55"  # SSTORE(0, 1)
    "6000 6000 6000 6000 6004 5a fa 50"  # STATICCALL(GAS, identity, 0, 0, 0, 0), POP
    "00"  # STOP
    "f1 f0 f4"  # data after the code: never runs
)
"""Writes storage and makes a static call: nothing the internal-call index records."""
QUIET = deployer(QUIET_RUNTIME)


@pytest.mark.parametrize(
    ("code", "can_open"),
    [
        ("", False),
        ("6000600060006000600060005af1", True),  # CALL
        ("f2", True),  # CALLCODE
        ("f4", True),  # DELEGATECALL
        ("f0", True),  # CREATE
        ("f5", True),  # CREATE2
        ("fa", False),  # STATICCALL
        ("62f1f0f400", False),  # the opcodes as PUSH3 data
        ("00f1", False),  # after STOP, not a jump target
        ("fef0", False),  # after INVALID
        ("56f1", False),  # after JUMP
        ("f3f4", False),  # after RETURN
        ("fdf5", False),  # after REVERT
        ("fff1", False),  # after SELFDESTRUCT
        ("005bf1", True),  # a JUMPDEST makes it reachable again
        ("57f1", True),  # JUMPI falls through
        ("00605bf1", False),  # a 0x5b inside PUSH data is no JUMPDEST
    ],
)
def test_which_code_can_open_a_recorded_frame(code: str, can_open: bool) -> None:
    assert can_open_recorded_frames(bytes.fromhex(code)) is can_open


def test_the_bank_tokens_cannot_and_the_payout_contracts_can() -> None:
    def runtime(name: str) -> bytes:
        return bytes.fromhex(load_artifact(name)["deployedBytecode"][2:])

    # WalletToken's bytes hold CALL, CALLCODE and CREATE2 only as data after its code.
    assert not can_open_recorded_frames(runtime("WalletToken"))
    assert not can_open_recorded_frames(runtime("DevToken"))
    for name in ("BatchPayout", "Escrow", "Netting", "Points"):
        assert can_open_recorded_frames(runtime(name)), name


def set_code(
    nonce: int, authority: LocalAccount, delegate: bytes, authority_nonce: int
) -> SignedTransactionAPI:
    authorization = authority.sign_authorization(
        {"chainId": 1337, "address": to_checksum_address(delegate), "nonce": authority_nonce}
    )
    tx = {
        "type": 4,
        "chainId": 1337,
        "nonce": nonce,
        "maxFeePerGas": 0,
        "maxPriorityFeePerGas": 0,
        "gas": 200_000,
        "to": authority.address,
        "value": 0,
        "data": b"",
        "accessList": [],
        "authorizationList": [authorization],
    }
    return decode_transaction(bytes(SENDER.sign_transaction(tx).raw_transaction))


def test_only_blocks_with_an_empty_index_skip_the_backfill(tmp_path: Path) -> None:
    leader = Chain(ChainStore(MemoryStore()), dev_genesis(VALIDATOR))
    store = LevelDBStore(tmp_path / "chaindata")
    follower = Chain(ChainStore(store), dev_genesis(VALIDATOR))
    authority = EthAccount.create()
    delegated = bytes.fromhex(authority.address[2:])
    quiet, forwarder, loud, quiet2 = created(0), created(1), created(7), created(9)

    blocks = [
        # creations run only their init code, which opens no frame
        ([signed(0, None, data=QUIET), signed(1, None, data=FORWARDER)], False),
        ([signed(2, BOB, value=1), signed(3, quiet), signed(4, quiet)], False),
        ([signed(5, quiet, gas=21_100)], True),  # out of gas: the failure is indexed
        ([signed(6, forwarder, value=5, data=word(BOB))], True),  # a call moving value
        # created in the block and called in it: its code is only in the block's final state
        ([signed(7, None, data=FORWARDER), signed(8, loud, value=2, data=word(BOB))], True),
        ([signed(9, None, data=QUIET), signed(10, quiet2)], False),
        ([set_code(11, authority, quiet, 0)], True),  # EIP-7702 sets code
        ([signed(12, delegated)], False),  # runs the quiet contract
        # only the set-code rule sees that the forwarder ran: before and after, it is quiet
        (
            [
                set_code(13, authority, forwarder, 1),
                signed(14, delegated, value=3, data=word(BOB)),
                set_code(15, authority, quiet, 2),
            ],
            True,
        ),
        ([set_code(16, authority, forwarder, 3)], True),
        ([signed(17, delegated, value=3, data=word(BOB))], True),  # runs the forwarder
    ]
    marked = []
    for number, (transactions, needs_replay) in enumerate(blocks, start=1):
        pending = leader.build(
            transactions, timestamp=10 + number, coinbase=VALIDATOR, extra_data=EXTRA
        )
        assert len(pending.executed.transactions) == len(transactions), number
        receipts = [item.receipt.encode() for item in pending.executed.transactions]
        assert pending.executed.state_diff is not None
        imported = import_with_diff(
            follower, pending.header, transactions, pending.executed.state_diff, receipts
        )
        block_hash = leader.commit(pending, pending.header)
        assert follower.commit(imported, pending.header) == block_hash
        if needs_replay:
            marked.append((number, block_hash))
        assert pending_blocks(follower) == marked, number

    executed = internal_entries(leader.store.store)
    assert len(executed) > 6  # the marked blocks do have entries to backfill
    backfill = InternalCallBackfill(follower, ChainEvents())
    try:
        while backfill.backfill_next():
            pass
    finally:
        backfill.close()
    assert pending_blocks(follower) == []
    assert internal_entries(store) == executed
    store.close()
