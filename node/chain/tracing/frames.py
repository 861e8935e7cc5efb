"""The call tree of a transaction, as the call-shaped tracers (callTracer, Parity) need it."""

from __future__ import annotations

from eth.abc import ComputationAPI, StateAPI
from eth.exceptions import VMError
from eth.vm.opcode_values import LOG0, LOG4, SELFDESTRUCT

from node.chain.evm.internals import last_log_entry, stack_values
from node.chain.tracing.hooks import (
    MAX_TRACE_BYTES,
    Frame,
    FrameRecord,
    Outcome,
    Tracer,
    TraceTooLarge,
    TxInfo,
)


class FrameCollector(Tracer):
    """Builds the `FrameRecord` tree: frames, SELFDESTRUCT pseudo-frames and logs in order."""

    def __init__(self) -> None:
        self.root: FrameRecord | None = None
        self.tx: TxInfo | None = None
        self.outcome: Outcome | None = None
        self._stack: list[FrameRecord] = []
        self._destruct: tuple[bytes, int] | None = None
        self._log_index = 0
        self._size = 0
        """Roughly the bytes of JSON the frames make (their inputs dominate)."""

    def start(self, tx: TxInfo, state: StateAPI) -> None:
        self.tx = tx

    def enter(self, frame: Frame, parent: ComputationAPI | None) -> None:
        self._size += 300 + 2 * len(frame.input)
        if self._size > MAX_TRACE_BYTES:
            raise TraceTooLarge(f"trace exceeds {MAX_TRACE_BYTES // 2**20} MiB of call frames")
        record = FrameRecord(frame)
        if self._stack:
            self._stack[-1].calls.append(record)
        else:
            self.root = record
        self._stack.append(record)

    def exit(self, frame: Frame, computation: ComputationAPI) -> None:
        record = self._stack.pop()
        record.gas_used = frame.gas - computation.get_gas_remaining()
        record.output = computation.output
        record.error = computation.error if computation.is_error else None

    def step(self, computation: ComputationAPI, pc: int, opcode: int) -> None:
        if opcode == SELFDESTRUCT and stack_values(computation):
            beneficiary = computation.stack_pop1_bytes()
            computation.stack_push_bytes(beneficiary)
            address = computation.msg.storage_address
            balance = computation.state.get_balance(address)
            self._destruct = (beneficiary[-20:].rjust(20, b"\x00"), balance)

    def stepped(self, computation: ComputationAPI, opcode: int) -> None:
        if LOG0 <= opcode <= LOG4 and self._stack:
            _, address, topics, data = last_log_entry(computation)
            current = self._stack[-1]
            current.logs.append((address, topics, data, len(current.calls), self._log_index))
            self._log_index += 1
        elif opcode == SELFDESTRUCT and self._destruct is not None and self._stack:
            beneficiary, balance = self._destruct
            self._destruct = None
            message = computation.msg
            frame = Frame(
                "SELFDESTRUCT",
                message.storage_address,
                beneficiary,
                balance,
                0,
                b"",
                message.depth + 1,
                message,
            )
            self._stack[-1].calls.append(FrameRecord(frame, selfdestruct=(beneficiary, balance)))

    def faulted(self, computation: ComputationAPI, opcode: int, error: VMError) -> None:
        self._destruct = None

    def finish(self, outcome: Outcome, state: StateAPI) -> None:
        self.outcome = outcome
