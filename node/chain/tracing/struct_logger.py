"""geth's default tracer, the struct logger: one entry per opcode executed.

Options as geth names them: `disableStack`, `enableMemory`, `disableStorage`,
`enableReturnData`, and `limit` (record at most that many steps, then stop recording). Beyond
`max_steps` entries (the node's bound, `DEFAULT_MAX_STEPS`) without a `limit`, or past
`MAX_TRACE_BYTES` of answer (memory copies add up fast), the trace fails with `TraceTooLarge`
rather than building an answer of unbounded size.
"""

from __future__ import annotations

from typing import Any

from eth.abc import ComputationAPI, StateAPI
from eth.exceptions import Revert, VMError
from eth.vm import opcode_values
from eth.vm.opcode_values import SLOAD, SSTORE
from eth.vm.stack import to_int

from node.chain.evm.internals import memory_bytes, stack_values
from node.chain.tracing.hooks import (
    MAX_TRACE_BYTES,
    Frame,
    Outcome,
    Tracer,
    TraceTooLarge,
    unlogged_fault,
)

DEFAULT_MAX_STEPS = 100_000
"""About 30 MB of JSON with stacks: what one default trace may return."""


def _names() -> dict[int, str]:
    """Opcode names as geth prints them (py-evm's SHA3 is KECCAK256, 0x44 is PREVRANDAO)."""
    names = {
        value: name
        for name, value in vars(opcode_values).items()
        if name.isupper() and isinstance(value, int) and name != "DIFFICULTY"
    }
    names[opcode_values.SHA3] = "KECCAK256"
    return names


_NAMES = _names()


def opcode_name(opcode: int) -> str:
    name = _NAMES.get(opcode)
    if name is not None:
        return name
    return "INVALID" if opcode == 0xFE else f"opcode 0x{opcode:x} not defined"


class StructLogger(Tracer):
    def __init__(
        self,
        *,
        disable_stack: bool = False,
        enable_memory: bool = False,
        disable_storage: bool = False,
        enable_return_data: bool = False,
        limit: int = 0,
        max_steps: int = DEFAULT_MAX_STEPS,
    ) -> None:
        self.disable_stack = disable_stack
        self.enable_memory = enable_memory
        self.disable_storage = disable_storage
        self.enable_return_data = enable_return_data
        self.limit = limit
        self.max_steps = max_steps
        self.logs: list[dict[str, Any]] = []
        self._size = 0
        """Roughly the bytes of JSON `logs` makes."""
        self._storage: dict[bytes, dict[int, int]] = {}
        # The step each running frame is in: its entry (None: not recorded), gas before it,
        # and whether a child frame already fixed its cost.
        self._open: list[list[Any]] = []
        self._outcome: Outcome | None = None
        self._frames: list[ComputationAPI] = []
        """The running frames, outermost first: the refund counter is theirs summed."""

    def enter(self, frame: Frame, parent: ComputationAPI | None) -> None:
        if parent is not None and self._open:
            step = self._open[-1]
            if step[0] is not None and not step[2]:
                step[0]["gasCost"] = step[1] - parent.get_gas_remaining()
                step[2] = True

    def exit(self, frame: Frame, computation: ComputationAPI) -> None:
        if self._frames and self._frames[-1] is computation:
            self._frames.pop()

    def step(self, computation: ComputationAPI, pc: int, opcode: int) -> None:
        gas = computation.get_gas_remaining()
        if not self._frames or self._frames[-1] is not computation:
            self._frames.append(computation)
        if self.limit and len(self.logs) >= self.limit:
            self._open.append([None, gas, True])
            return
        if len(self.logs) >= self.max_steps:
            raise TraceTooLarge(
                f'trace has more than {self.max_steps} steps; ask for fewer with the "limit" option'
            )
        entry: dict[str, Any] = {
            "pc": pc,
            "op": opcode_name(opcode),
            "gas": gas,
            "gasCost": 0,
            "depth": computation.msg.depth + 1,
        }
        values = stack_values(computation)
        if not self.disable_stack:
            entry["stack"] = [hex(to_int(value)) for value in values]
        if self.enable_return_data and computation.return_data:
            entry["returnData"] = "0x" + computation.return_data.hex()
        if self.enable_memory:
            memory = memory_bytes(computation)
            if memory:
                entry["memory"] = [memory[i : i + 32].hex() for i in range(0, len(memory), 32)]
        if not self.disable_storage and opcode in (SLOAD, SSTORE):
            self._storage_entry(computation, opcode, values, entry)
        self._size += 100 + 70 * len(entry.get("stack", ())) + 66 * len(entry.get("memory", ()))
        if self._size > MAX_TRACE_BYTES:
            raise TraceTooLarge(
                f"trace exceeds {MAX_TRACE_BYTES // 2**20} MiB; ask for fewer steps with the "
                '"limit" option, or leave enableMemory off'
            )
        refund = sum(frame.get_gas_refund() for frame in self._frames)
        if refund:
            entry["refund"] = refund
        self.logs.append(entry)
        self._open.append([entry, gas, False])

    def _storage_entry(
        self, computation: ComputationAPI, opcode: int, values: list[Any], entry: dict[str, Any]
    ) -> None:
        address = computation.msg.storage_address
        seen = self._storage.setdefault(address, {})
        if opcode == SLOAD and values:
            slot = to_int(values[-1])
            seen[slot] = computation.state.get_storage(address, slot)
        elif opcode == SSTORE and len(values) >= 2:
            seen[to_int(values[-1])] = to_int(values[-2])
        else:
            return
        entry["storage"] = {f"{slot:064x}": f"{value:064x}" for slot, value in seen.items()}

    def stepped(self, computation: ComputationAPI, opcode: int) -> None:
        entry, gas, fixed = self._open.pop()
        if entry is not None and not fixed:
            entry["gasCost"] = gas - computation.get_gas_remaining()

    def faulted(self, computation: ComputationAPI, opcode: int, error: VMError) -> None:
        entry, gas, fixed = self._open.pop()
        if entry is None:
            return
        if unlogged_fault(error) and not fixed:
            self.logs.pop()
        elif not fixed:
            entry["gasCost"] = gas - computation.get_gas_remaining()

    def finish(self, outcome: Outcome, state: StateAPI) -> None:
        self._outcome = outcome

    def result(self) -> Any:
        if self._outcome is None:
            return None
        computation = self._outcome.computation
        failed = computation.is_error
        output = computation.output
        if failed and not isinstance(computation.error, Revert):
            output = b""
        return {
            "gas": self._outcome.gas_used,
            "failed": failed,
            "returnValue": "0x" + output.hex(),
            "structLogs": self.logs,
        }
