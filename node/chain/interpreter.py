"""py-evm's Prague interpreter with a leaner dispatch loop and cached jump-destination analysis.

Every validator executes every block, so the EVM's per-opcode overhead is paid four times on
a four-validator network. py-evm's loop (`BaseComputation.apply_computation`) spends more on
dispatch than many opcodes cost: a generator step for each opcode, then `_FastOpcode.__call__`
-> `computation.consume_gas` -> `GasMeter.consume_gas` (three Python calls) before the opcode's
own function runs. `TallyComputation` runs the same opcode functions over the same code with
the same gas rules, charging an opcode's constant gas inline.

Jump destinations: py-evm's `CodeStream` works out lazily, per message, whether a JUMP target
is an instruction rather than PUSH data, and forgets it when the message ends, so a contract
called by every transaction of a block is analysed again for each. Here the instruction
boundaries of a code are computed once, in one pass, and kept while the code is in use.

Everything observable (gas, errors, state) is py-evm's: `tests/test_roots.py` checks blocks
executed here against an unmodified py-evm.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Final, cast

from eth.abc import ComputationAPI, MessageAPI, StateAPI, TransactionContextAPI
from eth.exceptions import FullStack, Halt, InsufficientStack, OutOfGas
from eth.vm.code_stream import CodeStream
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.logic.invalid import InvalidOpcode
from eth.vm.opcode import _FastOpcode
from eth.vm.opcode_values import (
    DUP1,
    DUP16,
    JUMPDEST,
    POP,
    PUSH0,
    PUSH1,
    PUSH32,
    STOP,
    SWAP1,
    SWAP16,
)
from eth.vm.stack import Stack, to_int


class _Missing(Enum):
    """A sentinel type, so that `is not _NO_RESULT` narrows for the type checker."""

    NO_RESULT = 0


_NO_RESULT: Final = _Missing.NO_RESULT
_ANALYSIS_CACHE_SIZE = 1024


def instruction_starts(code: bytes) -> frozenset[int]:
    """Offsets in `code` that begin an instruction (every offset that is not PUSH data)."""
    starts = []
    position = 0
    length = len(code)
    while position < length:
        starts.append(position)
        opcode = code[position]
        position += opcode - PUSH1 + 2 if PUSH1 <= opcode <= PUSH32 else 1
    return frozenset(starts)


_analysed: dict[bytes, frozenset[int]] = {}


def _starts_of(code: bytes) -> frozenset[int]:
    starts = _analysed.get(code)
    if starts is None:
        if len(_analysed) >= _ANALYSIS_CACHE_SIZE:
            _analysed.clear()
        starts = _analysed[code] = instruction_starts(code)
    return starts


class AnalysedCodeStream(CodeStream):
    """A `CodeStream` whose instruction boundaries are known up front (shared per code)."""

    __slots__ = ("_starts",)

    def __init__(self, code_bytes: bytes) -> None:
        super().__init__(code_bytes)
        self._starts = _starts_of(code_bytes)

    def is_valid_opcode(self, position: int) -> bool:
        return position in self._starts


_Entry = tuple[int, Any, str]

_INLINE = {"PUSH": range(PUSH0, PUSH32 + 1), "DUP": range(DUP1, DUP16 + 1)}
_INLINE["SWAP"] = range(SWAP1, SWAP16 + 1)


def _dispatch_table(opcodes: dict[int, Any]) -> dict[int, _Entry]:
    """opcode -> (constant gas, function, mnemonic); gas -1: call the opcode object itself."""
    table = {}
    for value, opcode in opcodes.items():
        if type(opcode) is _FastOpcode:
            table[value] = (opcode.gas_cost, opcode.logic_fn, opcode.mnemonic)
        else:
            table[value] = (-1, opcode, "")
    return table


def _inline_gas(opcodes: dict[int, Any]) -> list[int]:
    """Gas of the stack opcodes `_run` executes inline (PUSH0-32, DUP1-16, SWAP1-16, POP,
    JUMPDEST), indexed by opcode; -1 for every other opcode.

    Taken from the fork's table, and checked to be the plain opcodes `_run` reproduces.
    """
    gas = [-1] * 256
    for prefix, values in (*_INLINE.items(), ("POP", (POP,)), ("JUMPDEST", (JUMPDEST,))):
        for value in values:
            opcode = opcodes[value]
            if type(opcode) is not _FastOpcode or not opcode.mnemonic.startswith(prefix):
                raise TypeError(f"opcode 0x{value:02x} is not the plain {prefix} `_run` inlines")
            gas[value] = opcode.gas_cost
    return gas


class _Stack(Stack):
    """py-evm's stack with the common two- and three-item integer pops done without a
    generator (the arithmetic and comparison opcodes all pop through `pop_ints`)."""

    def pop_ints(self, num_items: int) -> tuple[int, ...]:
        values = self.values
        if num_items == 2 and len(values) >= 2:
            first = values.pop()
            second = values.pop()
            return (
                first if first.__class__ is int else to_int(first),
                second if second.__class__ is int else to_int(second),
            )
        if num_items == 3 and len(values) >= 3:
            first = values.pop()
            second = values.pop()
            third = values.pop()
            return (
                first if first.__class__ is int else to_int(first),
                second if second.__class__ is int else to_int(second),
                third if third.__class__ is int else to_int(third),
            )
        return super().pop_ints(num_items)


class TallyComputation(PragueComputation):
    """Prague's computation with the dispatch loop and code analysis described above."""

    # Set in `__init__`; py-evm types them by their APIs.
    code: AnalysedCodeStream
    _stack: _Stack
    _dispatch: dict[int, _Entry] = _dispatch_table(PragueComputation.opcodes)
    _inline: list[int] = _inline_gas(PragueComputation.opcodes)

    def __init__(
        self,
        state: StateAPI,
        message: MessageAPI,
        transaction_context: TransactionContextAPI,
    ) -> None:
        super().__init__(state, message, transaction_context)
        self.code = AnalysedCodeStream(message.code)
        self._stack = _Stack()

    def extend_memory(self, start_position: int, size: int) -> None:
        """Nothing to charge or grow when the range is already inside memory (most calls)."""
        if size and start_position >= 0 and start_position + size <= len(self._memory):
            return
        super().extend_memory(start_position, size)

    @classmethod
    def apply_computation(
        cls,
        state: StateAPI,
        message: MessageAPI,
        transaction_context: TransactionContextAPI,
        parent_computation: ComputationAPI | None = None,
    ) -> ComputationAPI:
        """`BaseComputation.apply_computation`, step for step, with the loop inlined."""
        with cls(state, message, transaction_context) as computation:
            if computation.is_origin_computation:
                computation.contracts_created = []
                if message.is_create:
                    cls.consume_initcode_gas_cost(computation)
            if parent_computation is not None:
                computation.contracts_created = parent_computation.contracts_created
            if message.is_create:
                computation.contracts_created.append(message.storage_address)

            precompile = computation.precompiles.get(message.code_address, _NO_RESULT)
            if precompile is not _NO_RESULT:
                if not message.is_delegation:
                    precompile(computation)
                return computation

            # py-evm types `__enter__` as returning ComputationAPI; it returns the instance.
            _run(cast(TallyComputation, computation), cls._dispatch, cls._inline)
        return computation


def _out_of_gas(needed: int, remaining: int, mnemonic: str) -> OutOfGas:
    return OutOfGas(f"Out of gas: Needed {needed} - Remaining {remaining} - Reason: {mnemonic}")


def _run(computation: TallyComputation, dispatch: dict[int, _Entry], inline: list[int]) -> None:
    """Execute opcodes until one halts; past the end of the code is STOP, as in py-evm.

    PUSH, DUP, SWAP, POP and JUMPDEST (two thirds of the opcodes a Solidity contract
    executes) run inline, with py-evm's checks and errors; the rest call py-evm's functions.
    """
    code = computation.code
    raw = code._raw_code_bytes
    meter = computation._gas_meter
    values = computation._stack.values
    while True:
        pc = code.program_counter
        try:
            opcode = raw[pc]
        except IndexError:
            opcode = STOP
        pc += 1
        gas = inline[opcode]
        if gas >= 0:
            if gas > meter.gas_remaining:
                raise _out_of_gas(gas, meter.gas_remaining, dispatch[opcode][2])
            meter.gas_remaining -= gas
            if opcode <= PUSH32:
                if opcode >= PUSH0:
                    end = pc + opcode - PUSH0
                    data = raw[pc:end]
                    if len(data) != end - pc:
                        data = data.ljust(end - pc, b"\x00")
                    pc = end
                    if len(values) > 1023:
                        raise FullStack("Stack limit reached")
                    values.append(data)
                elif opcode == POP:
                    if not values:
                        raise InsufficientStack("Wanted 1 stack item, had none")
                    values.pop()
            elif opcode <= DUP16:
                position = opcode - DUP1 + 1
                if len(values) > 1023:
                    raise FullStack("Stack limit reached")
                if position > len(values):
                    raise InsufficientStack(f"Insufficient stack items for DUP{position}")
                values.append(values[-position])
            else:
                position = opcode - SWAP1 + 1
                if position >= len(values):
                    raise InsufficientStack(f"Insufficient stack items for SWAP{position}")
                values[-1], values[-position - 1] = values[-position - 1], values[-1]
            code.program_counter = pc
            continue
        code.program_counter = pc
        entry = dispatch.get(opcode)
        try:
            if entry is None:
                InvalidOpcode(opcode)(computation=computation)
            else:
                gas, function, mnemonic = entry
                if gas < 0:
                    function(computation=computation)
                else:
                    if gas > meter.gas_remaining:
                        raise _out_of_gas(gas, meter.gas_remaining, mnemonic)
                    meter.gas_remaining -= gas
                    function(computation)
        except Halt:
            break
