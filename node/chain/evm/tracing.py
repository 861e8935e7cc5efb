"""A computation that reports its frames and opcode steps to an observer its state carries.

`TracingComputation` is `BoundedComputation` (same gas, same errors, same deadline) with
py-evm's `FrontierComputation.apply_message` and `SpuriousDragonComputation.
apply_create_message` overridden to wrap every call frame (the top one and every CALL/CREATE a
contract makes, precompiles included) in `Observer.enter`/`Observer.exit`, both still running
py-evm's own; and the frame's code run one opcode at a time through py-evm's opcode functions
(the loop of `BaseComputation.apply_computation`), with `Observer.step` before each and
`Observer.stepped` after. Only traces run it (`node.chain.tracing`), on a throw-away state.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from eth.abc import ComputationAPI, MessageAPI, StateAPI, TransactionContextAPI
from eth.exceptions import Halt, VMError
from eth.vm.logic.invalid import InvalidOpcode
from eth.vm.opcode_values import STOP

from node.chain.evm.interpreter import BoundedComputation, TallyComputation


class Observer(Protocol):
    """What a traced execution reports to (`node.chain.tracing.hooks.Session`)."""

    def enter(self, message: MessageAPI, parent: ComputationAPI | None) -> Any:
        """A frame starts; the value returned is handed back to `exit`."""

    def exit(self, entered: Any, computation: ComputationAPI) -> None:
        """The frame `enter` returned `entered` for ended."""

    def step(self, computation: ComputationAPI, pc: int, opcode: int) -> None:
        """Before an opcode runs (may raise to stop the execution)."""

    def stepped(self, computation: ComputationAPI, opcode: int) -> None:
        """After an opcode ran (or halted the frame), not when it faulted."""

    def faulted(self, computation: ComputationAPI, opcode: int, error: VMError) -> None:
        """An opcode raised `error`: the frame ends failed."""


class _ObservedState(Protocol):
    trace: Observer


def observer_of(state: StateAPI) -> Observer:
    return cast(_ObservedState, state).trace


class TracingComputation(BoundedComputation):
    """`BoundedComputation` reporting to the `Observer` its state carries (`state.trace`)."""

    @classmethod
    def apply_message(
        cls,
        state: StateAPI,
        message: MessageAPI,
        transaction_context: TransactionContextAPI,
        parent_computation: ComputationAPI | None = None,
    ) -> ComputationAPI:
        apply = super().apply_message
        if message.is_create:  # framed by `apply_create_message`, which calls this
            return apply(state, message, transaction_context, parent_computation)
        return _framed(apply, state, message, transaction_context, parent_computation)

    @classmethod
    def apply_create_message(
        cls,
        state: StateAPI,
        message: MessageAPI,
        transaction_context: TransactionContextAPI,
        parent_computation: ComputationAPI | None = None,
    ) -> ComputationAPI:
        apply = super().apply_create_message
        return _framed(apply, state, message, transaction_context, parent_computation)

    @classmethod
    def _interpret(cls, computation: TallyComputation) -> None:
        if computation.code._raw_code_bytes:  # geth logs no step for a frame without code
            _traced_run(computation, observer_of(computation.state))


def _framed(
    apply: Any,
    state: StateAPI,
    message: MessageAPI,
    transaction_context: TransactionContextAPI,
    parent: ComputationAPI | None,
) -> ComputationAPI:
    observer = observer_of(state)
    entered = observer.enter(message, parent)
    computation: ComputationAPI = apply(state, message, transaction_context, parent)
    observer.exit(entered, computation)
    return computation


def _opcode_function(computation: ComputationAPI, opcode: int) -> Any:
    function = computation.opcodes.get(opcode)
    return InvalidOpcode(opcode) if function is None else function


def _traced_run(computation: TallyComputation, observer: Observer) -> None:
    """The frame's code with `step`/`stepped`/`faulted` around every opcode."""
    code = computation.code
    raw = code._raw_code_bytes
    while True:
        pc = code.program_counter
        opcode = raw[pc] if pc < len(raw) else STOP
        observer.step(computation, pc, opcode)
        code.program_counter = pc + 1
        try:
            _opcode_function(computation, opcode)(computation=computation)
        except Halt:
            observer.stepped(computation, opcode)
            return
        except VMError as error:
            observer.faulted(computation, opcode, error)
            raise
        observer.stepped(computation, opcode)
