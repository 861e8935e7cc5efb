"""What `eth_createAccessList` records: the addresses and slots a call touches, as geth does.

geth's `AccessListTracer` watches opcodes, not the EVM's warm sets: SLOAD/SSTORE add
(executing address, slot); BALANCE, EXTCODESIZE, EXTCODECOPY, EXTCODEHASH and SELFDESTRUCT add
their address operand, the CALL family its target. Addresses that are warm anyway (sender,
recipient, precompiles, authorities of the call's authorizations) are left out unless a slot of
theirs was touched. `RecordingComputation` is the client call's bounded computation with those
opcodes wrapped to tell the state's `AccessRecorder` before they run; a block never runs it.
"""

from __future__ import annotations

from typing import Protocol, cast

from eth.abc import ComputationAPI
from eth.vm.forks.prague.computation import PRAGUE_PRECOMPILES
from eth.vm.opcode_values import (
    BALANCE,
    CALL,
    CALLCODE,
    DELEGATECALL,
    EXTCODECOPY,
    EXTCODEHASH,
    EXTCODESIZE,
    SELFDESTRUCT,
    SLOAD,
    SSTORE,
    STATICCALL,
)
from eth.vm.stack import to_int

from node.chain.evm.internals import stack_values
from node.chain.evm.interpreter import BoundedComputation, OpcodeFunction

AccessList = tuple[tuple[bytes, tuple[int, ...]], ...]
"""(address, storage slots) pairs, as py-evm's typed transactions take them."""

PRECOMPILES = frozenset(bytes(address) for address in PRAGUE_PRECOMPILES)
_ADDRESS_MASK = 2**160 - 1
_SLOT_OPS = (SLOAD, SSTORE)
_ADDRESS_OPS = (BALANCE, EXTCODESIZE, EXTCODECOPY, EXTCODEHASH, SELFDESTRUCT)
_CALL_OPS = (CALL, CALLCODE, DELEGATECALL, STATICCALL)


class AccessRecorder:
    """An access list being grown: starts from a given list, less excluded address-only
    entries (geth's `NewAccessListTracer`), and adds what the opcodes touch."""

    def __init__(self, initial: AccessList, excluded: frozenset[bytes]) -> None:
        self.excluded = excluded
        self.entries: dict[bytes, set[int]] = {}
        for address, slots in initial:
            if slots or address not in excluded:
                self.entries.setdefault(address, set()).update(slots)

    def add_address(self, address: bytes) -> None:
        if address not in self.excluded:
            self.entries.setdefault(address, set())

    def add_slot(self, address: bytes, slot: int) -> None:
        self.entries.setdefault(address, set()).add(slot)

    def access_list(self) -> AccessList:
        """Sorted by address, then slot: geth's order, so equal lists compare equal."""
        return tuple(
            (address, tuple(sorted(slots))) for address, slots in sorted(self.entries.items())
        )


class _RecordingState(Protocol):
    recorder: AccessRecorder


def _word(computation: ComputationAPI, depth: int) -> int | None:
    """The stack item `depth` from the top (1 = top), or None if the stack is shallower."""
    values = stack_values(computation)
    if len(values) < depth:
        return None
    item = values[-depth]
    return item if item.__class__ is int else to_int(item)


def _recording(opcode: int, function: OpcodeFunction) -> OpcodeFunction:
    def recorded(computation: ComputationAPI) -> None:
        recorder = cast(_RecordingState, computation.state).recorder
        depth = 2 if opcode in _CALL_OPS else 1
        word = _word(computation, depth)
        if word is not None:
            if opcode in _SLOT_OPS:
                recorder.add_slot(bytes(computation.msg.storage_address), word)
            else:
                recorder.add_address((word & _ADDRESS_MASK).to_bytes(20, "big"))
        function(computation)

    return recorded


RecordingComputation = BoundedComputation.wrapping(
    (*_SLOT_OPS, *_ADDRESS_OPS, *_CALL_OPS), _recording
)
"""`BoundedComputation` telling its state's `recorder` what each access opcode touches."""
