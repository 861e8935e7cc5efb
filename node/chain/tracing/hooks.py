"""Where py-evm execution reports to a tracer: frames entered and left, opcode steps.

`node.chain.evm.tracing.TracingComputation` reports every call frame and every opcode step to
the `Session` its state carries, which hands them to the `Tracer` (and checks the deadline).
Blocks and calls never run it; only a trace does, on a throw-away state
(`node.chain.tracing.replay`).

Struct-log `gasCost` of a CALL or CREATE is what the opcode took from its frame before the
child started (its own cost plus the gas handed to the child), as geth reports it: `Session`
notes the parent's remaining gas when a child frame is entered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth.abc import ComputationAPI, MessageAPI, StateAPI
from eth.exceptions import (
    ContractCreationCollision,
    FullStack,
    InsufficientFunds,
    InsufficientStack,
    InvalidInstruction,
    InvalidJumpDestination,
    OutOfBoundsRead,
    OutOfGas,
    ReservedBytesInCode,
    Revert,
    StackDepthLimit,
    VMError,
    WriteProtection,
)
from eth.vm.forks.shanghai.constants import INITCODE_WORD_COST
from eth.vm.opcode_values import (
    CALL,
    CALLCODE,
    CREATE,
    CREATE2,
    DELEGATECALL,
    JUMP,
    JUMPI,
    STATICCALL,
)

from node.chain.deadline import Deadline
from node.chain.evm.internals import ceil32

_FRAME_KINDS = {
    CALL: "CALL",
    CALLCODE: "CALLCODE",
    DELEGATECALL: "DELEGATECALL",
    STATICCALL: "STATICCALL",
    CREATE: "CREATE",
    CREATE2: "CREATE2",
}
_UNLOGGED_FAULTS = (OutOfGas, InsufficientStack, FullStack, InvalidInstruction)
"""Faults geth finds before it logs an opcode (gas, stack bounds, undefined opcode): that
step is absent from its struct logs, so it is here too."""
_DEADLINE_EVERY = 1024
"""Steps between deadline checks, besides every JUMP/JUMPI and frame."""


MAX_TRACE_BYTES = 64 * 1024 * 1024
"""About the most JSON one trace may build (struct logs with memory, huge call trees): beyond
it the trace fails with `TraceTooLarge` rather than hold the node's memory."""


class TraceTooLarge(Exception):
    """A trace grew past the node's bounds (steps, or bytes of answer)."""


@dataclass(slots=True)
class Frame:
    """One call frame as tracers see it: geth's `OnEnter` arguments."""

    kind: str
    sender: bytes
    to: bytes
    value: int
    gas: int
    input: bytes
    depth: int
    message: MessageAPI


@dataclass(slots=True)
class TxInfo:
    """The transaction being traced and where it sits."""

    sender: bytes
    to: bytes
    is_create: bool
    gas: int
    gas_price: int
    coinbase: bytes
    tx_hash: bytes | None = None
    index: int | None = None


@dataclass(slots=True)
class Outcome:
    """How the traced transaction ended: the receipt's gas used and the top computation."""

    gas_used: int
    computation: ComputationAPI


class Tracer:
    """Hooks a tracer may override; all do nothing here."""

    def start(self, tx: TxInfo, state: StateAPI) -> None:
        """Before the transaction touches anything: `state` is the state it starts from."""

    def enter(self, frame: Frame, parent: ComputationAPI | None) -> None:
        """A frame starts (after its value moved, before its code runs)."""

    def exit(self, frame: Frame, computation: ComputationAPI) -> None:
        """A frame ended: `computation` has its output, error, gas and logs."""

    def step(self, computation: ComputationAPI, pc: int, opcode: int) -> None:
        """Before an opcode runs."""

    def stepped(self, computation: ComputationAPI, opcode: int) -> None:
        """After an opcode ran (or halted the frame), not when it faulted."""

    def faulted(self, computation: ComputationAPI, opcode: int, error: VMError) -> None:
        """An opcode raised `error`: the frame ends failed."""

    def finish(self, outcome: Outcome, state: StateAPI) -> None:
        """The transaction ended: `state` is the state it leaves."""

    def result(self) -> Any:
        """The JSON the RPC answers with."""
        return None


class Session:
    """One traced transaction: its tracer, its deadline, and the opcode running now."""

    __slots__ = ("count", "deadline", "op", "tracer")

    def __init__(self, tracer: Tracer, deadline: Deadline) -> None:
        self.tracer = tracer
        self.deadline = deadline
        self.op = -1
        self.count = 0

    def enter(self, message: MessageAPI, parent: ComputationAPI | None) -> Frame:
        frame = self.frame(message, parent)
        self.tracer.enter(frame, parent)
        return frame

    def exit(self, frame: Frame, computation: ComputationAPI) -> None:
        self.tracer.exit(frame, computation)

    def step(self, computation: ComputationAPI, pc: int, opcode: int) -> None:
        self.op = opcode
        self.count += 1
        if opcode in (JUMP, JUMPI) or not self.count % _DEADLINE_EVERY:
            self.deadline.check()
        self.tracer.step(computation, pc, opcode)

    def stepped(self, computation: ComputationAPI, opcode: int) -> None:
        self.tracer.stepped(computation, opcode)

    def faulted(self, computation: ComputationAPI, opcode: int, error: VMError) -> None:
        self.tracer.faulted(computation, opcode, error)

    def frame(self, message: MessageAPI, parent: ComputationAPI | None) -> Frame:
        if parent is None:
            kind = "CREATE" if message.is_create else "CALL"
            sender = message.sender
        else:
            kind = _FRAME_KINDS.get(self.op, "CALL")
            sender = parent.msg.storage_address
        to = message.storage_address if message.is_create else message.code_address
        payload = message.code if message.is_create else message.data
        gas = message.gas
        if parent is None and message.is_create:  # py-evm charges EIP-3860's initcode gas
            gas -= INITCODE_WORD_COST * ceil32(len(payload)) // 32  # in the frame, geth before
        return Frame(kind, sender, to, message.value, gas, bytes(payload), message.depth, message)


def unlogged_fault(error: VMError) -> bool:
    """Whether geth would have refused `error`'s opcode before logging it."""
    return isinstance(error, _UNLOGGED_FAULTS)


def geth_error(error: BaseException | None) -> str | None:
    """The error text geth's tracers give for a py-evm error (None: no error)."""
    if error is None:
        return None
    for kind, text in _GETH_ERRORS:
        if isinstance(error, kind):
            return text
    if isinstance(error, InvalidInstruction):
        return f"invalid opcode: {_opcode_of(error)}"
    return str(error) or type(error).__name__


def _opcode_of(error: InvalidInstruction) -> str:
    text = str(error)
    for token in text.replace(":", " ").split():
        if token.startswith("0x"):
            value = int(token, 16)
            return "INVALID" if value == 0xFE else f"opcode 0x{value:x} not defined"
    return text


_GETH_ERRORS: tuple[tuple[type[BaseException], str], ...] = (
    (Revert, "execution reverted"),
    (OutOfGas, "out of gas"),
    (InvalidJumpDestination, "invalid jump destination"),
    (InsufficientStack, "stack underflow"),
    (FullStack, "stack limit reached 1024 (1023)"),
    (WriteProtection, "write protection"),
    (StackDepthLimit, "max call depth exceeded"),
    (InsufficientFunds, "insufficient balance for transfer"),
    (ContractCreationCollision, "contract address collision"),
    (OutOfBoundsRead, "return data out of bounds"),
    (ReservedBytesInCode, "invalid code: must not begin with 0xef"),
)


@dataclass(slots=True)
class FrameRecord:
    """A frame as the call-shaped tracers keep it (callTracer, Parity traces)."""

    frame: Frame
    gas_used: int = 0
    output: bytes = b""
    error: BaseException | None = None
    calls: list[FrameRecord] = field(default_factory=list)
    logs: list[tuple[bytes, tuple[int, ...], bytes, int, int]] = field(default_factory=list)
    """(address, topics, data, position among `calls`, index in the transaction)"""
    selfdestruct: tuple[bytes, int] | None = None
    """(beneficiary, balance) of a SELFDESTRUCT pseudo-frame."""


class Fanout(Tracer):
    """Several tracers over one execution (`trace_replayBlockTransactions` asks for more than
    one kind of trace of each transaction)."""

    def __init__(self, *tracers: Tracer) -> None:
        self.tracers = tracers

    def start(self, tx: TxInfo, state: StateAPI) -> None:
        for tracer in self.tracers:
            tracer.start(tx, state)

    def enter(self, frame: Frame, parent: ComputationAPI | None) -> None:
        for tracer in self.tracers:
            tracer.enter(frame, parent)

    def exit(self, frame: Frame, computation: ComputationAPI) -> None:
        for tracer in self.tracers:
            tracer.exit(frame, computation)

    def step(self, computation: ComputationAPI, pc: int, opcode: int) -> None:
        for tracer in self.tracers:
            tracer.step(computation, pc, opcode)

    def stepped(self, computation: ComputationAPI, opcode: int) -> None:
        for tracer in self.tracers:
            tracer.stepped(computation, opcode)

    def faulted(self, computation: ComputationAPI, opcode: int, error: VMError) -> None:
        for tracer in self.tracers:
            tracer.faulted(computation, opcode, error)

    def finish(self, outcome: Outcome, state: StateAPI) -> None:
        for tracer in self.tracers:
            tracer.finish(outcome, state)
