"""Blocks whose internal-call index is provably empty, so that no replay has to build it.

A validator that accepts a round-0 proposal from its proposer's state diff
(`node.chain.diff_import`) executes nothing, so it marks the block for the backfill
(`node.chain.backfill`), which replays it only to index its internal transactions and why a
failed transaction failed. On four validators that replay is one execution of every block in
four. A wallet chain's blocks mostly need none: the index has an entry only for a transaction
that failed or opened a frame that creates a contract or moves value
(`node.chain.internal_calls`, `BlockIndexer.index_internal_calls`). When every transaction of a
block succeeded and ran code that cannot open such a frame, the replay would write nothing, so
the block is not marked.

Which code cannot: only CALL, CALLCODE, DELEGATECALL, CREATE and CREATE2 open a frame that is
recorded or runs other code that might. STATICCALL's frames, and everything below them, can
neither move value nor create. A code qualifies when none of the five is reachable: execution
starts at 0 and runs on past an instruction unless it halts or jumps, and a jump lands only on
a JUMPDEST at an instruction start, so bytes reached neither way (Solidity's constants and
metadata after the code) never run. An account without code (a precompile too) qualifies; an
EIP-7702 delegated account runs its delegate's code.

Which code ran: a transaction runs the code its recipient had at that moment, which within the
block is either its parent's or its final one. Code appears inside a block only by a contract
creation (a creation transaction, or CREATE in code that ran, which is refused above) or by an
EIP-7702 authorization (a set-code transaction, refused too), so both states are checked. The
receipts and the final state are those the header's roots commit to (checked on import), so a
block that reaches a quorum carries them as its execution produced them.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth.abc import ReceiptAPI, SignedTransactionAPI
from eth.constants import EMPTY_SHA3
from eth.db.account import AccountDB
from eth.vm.forks.prague.constants import DELEGATION_DESIGNATION_PREFIX
from eth.vm.opcode_values import (
    CALL,
    CALLCODE,
    CREATE,
    CREATE2,
    DELEGATECALL,
    JUMP,
    JUMPDEST,
    PUSH1,
    PUSH32,
    RETURN,
    REVERT,
    SELFDESTRUCT,
    STOP,
)
from eth_typing import Address

from node.chain.evm.bounded_cache import ENTRY_OVERHEAD, BoundedCache
from node.chain.setcode import SET_CODE_TRANSACTION_TYPE

INVALID = 0xFE
"""EIP-141's designated invalid instruction (py-evm names no constant for it)."""
_RECORDED_FRAMES = frozenset({CALL, CALLCODE, DELEGATECALL, CREATE, CREATE2})
_ENDS_STRAIGHT_LINE = frozenset({STOP, JUMP, RETURN, REVERT, INVALID, SELFDESTRUCT})
_SUCCESS = b"\x01"
_DESIGNATOR_LENGTH = len(DELEGATION_DESIGNATION_PREFIX) + 20
VERDICTS_BYTES = 1024 * 1024
"""The verdict cache's budget (`ENTRY_OVERHEAD` an entry: about 2,000 codes)."""


def can_open_recorded_frames(code: bytes) -> bool:
    """Whether CALL, CALLCODE, DELEGATECALL, CREATE or CREATE2 is reachable in `code`."""
    reachable = True
    position = 0
    length = len(code)
    while position < length:
        opcode = code[position]
        if opcode == JUMPDEST:
            reachable = True
        if reachable:
            if opcode in _RECORDED_FRAMES:
                return True
            if opcode in _ENDS_STRAIGHT_LINE:
                reachable = False
        position += opcode - PUSH1 + 2 if PUSH1 <= opcode <= PUSH32 else 1
    return False


_verdicts: BoundedCache[bytes, bool] = BoundedCache(
    VERDICTS_BYTES, lambda _hash, _verdict: ENTRY_OVERHEAD
)


def _code_can_open_frames(code_hash: bytes, code: bytes) -> bool:
    verdict = _verdicts.get(code_hash)
    if verdict is None:
        verdict = can_open_recorded_frames(code)
        _verdicts.put(code_hash, verdict)
    return verdict


def _account_can_open_frames(state: AccountDB, address: Address) -> bool:
    """What a call to `address` runs, judged by code hash (a delegate's, for a delegated
    account: the designator is not cached, since its delegate's code may change)."""
    code_hash = state.get_code_hash(address)
    if code_hash == EMPTY_SHA3:
        return False
    code = state.get_code(address)
    if _is_designator(code):
        delegate = Address(code[len(DELEGATION_DESIGNATION_PREFIX) :])
        code_hash = state.get_code_hash(delegate)
        if code_hash == EMPTY_SHA3:
            return False
        code = state.get_code(delegate)
        if _is_designator(code):
            return True  # py-evm runs a delegate's own designator as code: left to the replay
    return _code_can_open_frames(code_hash, code)


def _is_designator(code: bytes) -> bool:
    return len(code) == _DESIGNATOR_LENGTH and code.startswith(DELEGATION_DESIGNATION_PREFIX)


def index_is_empty(
    parent: AccountDB,
    final: AccountDB,
    transactions: Sequence[SignedTransactionAPI],
    receipts: Sequence[ReceiptAPI],
) -> bool:
    """True when the block's internal-call index has no entry: every transaction succeeded,
    none sets code, and none ran code that can open a recorded frame (in the state before
    the block or after it)."""
    recipients: set[Address] = set()
    for tx, receipt in zip(transactions, receipts, strict=True):
        if receipt.state_root != _SUCCESS or tx.type_id == SET_CODE_TRANSACTION_TYPE:
            return False
        if tx.to:
            recipients.add(Address(tx.to))
        elif can_open_recorded_frames(tx.data):
            return False
    return not any(
        _account_can_open_frames(state, address)
        for address in recipients
        for state in (parent, final)
    )
