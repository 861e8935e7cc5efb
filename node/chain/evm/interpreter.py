"""py-evm's Prague interpreter with a leaner dispatch loop and cached jump-destination analysis.

Every validator executes every block, so the EVM's per-opcode overhead is paid four times on
a four-validator network. py-evm's loop (`BaseComputation.apply_computation`) spends more on
dispatch than many opcodes cost: a generator step for each opcode, then `_FastOpcode.__call__`
-> `computation.consume_gas` -> `GasMeter.consume_gas` (three Python calls) before the opcode's
own function runs. `TallyComputation` runs the same opcode functions over the same code with
the same gas rules, charging an opcode's constant gas inline; and the opcodes a Solidity
contract runs most (the stack opcodes, the jumps, MLOAD, MSTORE, ISZERO and the two-operand
integer opcodes of `_BINARY`) it executes itself, with py-evm's checks and errors, instead of
calling their functions, which pop and push through three more calls and validate each item.

Jump destinations: py-evm's `CodeStream` works out lazily, per message, whether a JUMP target
is an instruction rather than PUSH data, and forgets it when the message ends, so a contract
called by every transaction of a block is analysed again for each. Here the instruction
boundaries of a code are computed once, in one pass, and kept (`AnalysisCache`: one byte per
code byte, least recently used out first, bounded in bytes) while the code is in use.

Client calls (`eth_call`, `eth_estimateGas`) run `BoundedComputation`: the same loop, plus a
deadline checked at every frame and every JUMP/JUMPI, so an endless loop ends when the node's
call timeout says so, not when the gas cap does. Blocks never run it: a block's outcome must
not depend on how fast a node is.

Everything observable (gas, errors, state) is py-evm's: `tests/test_roots.py` checks blocks
executed here against an unmodified py-evm.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any, Final, Protocol, Self, cast

from eth.abc import ComputationAPI, MessageAPI, StateAPI, TransactionContextAPI
from eth.exceptions import (
    FullStack,
    Halt,
    InsufficientStack,
    InvalidInstruction,
    InvalidJumpDestination,
    OutOfGas,
)
from eth.vm.code_stream import CodeStream
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.logic.invalid import InvalidOpcode
from eth.vm.memory import Memory
from eth.vm.opcode import _FastOpcode
from eth.vm.opcode_values import (
    ADD,
    AND,
    DUP1,
    DUP16,
    EQ,
    GT,
    ISZERO,
    JUMP,
    JUMPDEST,
    JUMPI,
    LT,
    MLOAD,
    MSTORE,
    MUL,
    OR,
    POP,
    PUSH0,
    PUSH1,
    PUSH32,
    SHL,
    SHR,
    STOP,
    SUB,
    SWAP1,
    SWAP16,
    XOR,
)
from eth.vm.stack import Stack, to_int

from node.chain.deadline import Deadline
from node.chain.evm.bounded_cache import ENTRY_OVERHEAD, BoundedCache


class _Missing(Enum):
    """A sentinel type, so that `is not _NO_RESULT` narrows for the type checker."""

    NO_RESULT = 0


_NO_RESULT: Final = _Missing.NO_RESULT

ANALYSIS_CACHE_BYTES = 32 * 1024 * 1024
"""What the analysis cache may hold: code plus its map (two bytes per code byte), so about
16 MiB of distinct code, some 700 of the largest deployable contracts (EIP-170: 24,576 bytes)."""


def instruction_starts(code: bytes) -> bytes:
    """One byte per byte of `code`: 1 where an instruction begins, 0 inside PUSH data.

    A byte map rather than a set of offsets: a set costs some 70 bytes per instruction, which
    made a 7 MB code override cost half a gigabyte (issue 12).
    """
    starts = bytearray(len(code))
    position = 0
    length = len(code)
    while position < length:
        starts[position] = 1
        opcode = code[position]
        position += opcode - PUSH1 + 2 if PUSH1 <= opcode <= PUSH32 else 1
    return bytes(starts)


def analysis_cost(code: bytes) -> int:
    """The bytes a cache entry for `code` is accounted at (code, its map, overhead)."""
    return 2 * len(code) + ENTRY_OVERHEAD


class AnalysisCache:
    """Instruction-start maps by code, least recently used out first, at most `max_bytes`
    (accounted by `analysis_cost`). The analysis itself runs outside the cache's lock."""

    def __init__(self, max_bytes: int = ANALYSIS_CACHE_BYTES) -> None:
        self.entries: BoundedCache[bytes, bytes] = BoundedCache(
            max_bytes, lambda code, _starts: analysis_cost(code)
        )

    def starts(self, code: bytes) -> bytes:
        starts = self.entries.get(code)
        if starts is None:
            starts = instruction_starts(code)
            self.entries.put(code, starts)
        return starts


_analysis = AnalysisCache()


class AnalysedCodeStream(CodeStream):
    """A `CodeStream` whose instruction boundaries are known up front (shared per code)."""

    __slots__ = ("_starts",)

    def __init__(self, code_bytes: bytes) -> None:
        super().__init__(code_bytes)
        self._starts = _analysis.starts(code_bytes)

    def is_valid_opcode(self, position: int) -> bool:
        return 0 <= position < len(self._starts) and self._starts[position] == 1


_Entry = tuple[int, Any, str]
OpcodeFunction = Callable[[ComputationAPI], None]
"""An opcode's logic as the dispatch loop calls it (`function(computation)`)."""
OpcodeWrapper = Callable[[int, OpcodeFunction], OpcodeFunction]
"""(opcode, its function) -> the function to run in its place."""

_UINT256 = 2**256 - 1


def _shl(shift: int, value: int) -> int:
    return 0 if shift >= 256 else (value << shift) & _UINT256


def _shr(shift: int, value: int) -> int:
    return 0 if shift >= 256 else value >> shift


_BINARY: dict[int, tuple[str, Callable[[int, int], int]]] = {
    ADD: ("ADD", lambda a, b: (a + b) & _UINT256),
    SUB: ("SUB", lambda a, b: (a - b) & _UINT256),
    MUL: ("MUL", lambda a, b: (a * b) & _UINT256),
    LT: ("LT", lambda a, b: 1 if a < b else 0),
    GT: ("GT", lambda a, b: 1 if a > b else 0),
    EQ: ("EQ", lambda a, b: 1 if a == b else 0),
    AND: ("AND", lambda a, b: a & b),
    OR: ("OR", lambda a, b: a | b),
    XOR: ("XOR", lambda a, b: a ^ b),
    SHL: ("SHL", _shl),
    SHR: ("SHR", _shr),
}
"""Two-operand integer opcodes `_run` executes inline: mnemonic, and the result of py-evm's
function (`eth.vm.logic.arithmetic`, `.comparison`) from the first and second item popped."""

_binary: list[Callable[[int, int], int] | None] = [
    _BINARY[value][1] if value in _BINARY else None for value in range(256)
]

_INLINE: dict[str, Iterable[int]] = {
    "PUSH": range(PUSH0, PUSH32 + 1),
    "DUP": range(DUP1, DUP16 + 1),
    "SWAP": range(SWAP1, SWAP16 + 1),
}
"""Families of opcodes `_run` executes inline, by mnemonic prefix."""
_INLINE_SINGLE: dict[str, int] = {
    "POP": POP,
    "JUMPDEST": JUMPDEST,
    "ISZERO": ISZERO,
    "JUMP": JUMP,
    "JUMPI": JUMPI,
    "MLOAD": MLOAD,
    "MSTORE": MSTORE,
    **{mnemonic: value for value, (mnemonic, _) in _BINARY.items()},
}
"""Single opcodes `_run` executes inline, by mnemonic."""


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
    """Constant gas of the opcodes `_run` executes inline (the stack opcodes, the jumps,
    MLOAD and MSTORE, and the integer opcodes of `_BINARY`), indexed by opcode; -1 for every
    other opcode.

    Taken from the fork's table, and checked to be the plain opcodes `_run` reproduces.
    """
    expected = [
        *((prefix, value) for prefix, values in _INLINE.items() for value in values),
        *((mnemonic, value) for mnemonic, value in _INLINE_SINGLE.items()),
    ]
    gas = [-1] * 256
    for name, value in expected:
        opcode = opcodes[value]
        mnemonic = getattr(opcode, "mnemonic", "")
        plain = mnemonic.startswith(name) if name in _INLINE else mnemonic == name
        if type(opcode) is not _FastOpcode or not plain:
            raise TypeError(f"opcode 0x{value:02x} is not the plain {name} `_run` inlines")
        gas[value] = opcode.gas_cost
    return gas


def _not_inline(inline: list[int], opcodes: Iterable[int]) -> list[int]:
    """`inline` with `opcodes` left to the dispatch table (whose entries a subclass wraps)."""
    table = list(inline)
    for opcode in opcodes:
        table[opcode] = -1
    return table


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
            cls._interpret(cast(TallyComputation, computation))
        return computation

    @classmethod
    def _interpret(cls, computation: TallyComputation) -> None:
        """Run the frame's code (the one place a tracer swaps the loop: `.tracing`)."""
        _run(computation, cls._dispatch, cls._inline)

    @classmethod
    def wrapping(cls, opcodes: Iterable[int], wrap: OpcodeWrapper) -> type[Self]:
        """A subclass whose `opcodes` run `wrap(opcode, function)` in place of `function`
        (same constant gas, charged first)."""
        wrapped = tuple(opcodes)
        table = _wrapped(cls._dispatch, wrapped, wrap)
        inline = _not_inline(cls._inline, wrapped)
        return type(cls.__name__, (cls,), {"_dispatch": table, "_inline": inline})


class _BoundedState(Protocol):
    deadline: Deadline


def _checking_deadline(opcode: int, function: OpcodeFunction) -> OpcodeFunction:
    def checked(computation: ComputationAPI) -> None:
        cast(_BoundedState, computation.state).deadline.check()
        function(computation)

    return checked


def _wrapped(
    dispatch: dict[int, _Entry], opcodes: Iterable[int], wrap: OpcodeWrapper
) -> dict[int, _Entry]:
    table = dict(dispatch)
    for opcode in opcodes:
        gas, function, mnemonic = table[opcode]
        table[opcode] = (gas, wrap(opcode, function), mnemonic)
    return table


class BoundedComputation(TallyComputation):
    """`TallyComputation` under a deadline, for client calls; its state carries a `deadline`.

    The deadline is checked when a frame starts and at every JUMP and JUMPI. Code without a
    jump runs at most its own length (and a code override is capped, `node.chain.calls`), and
    every other way to spend time again is a new frame, so time between checks stays small.
    """

    # JUMP and JUMPI check the deadline first: every loop passes one.
    _dispatch = _wrapped(TallyComputation._dispatch, (JUMP, JUMPI), _checking_deadline)
    _inline = _not_inline(TallyComputation._inline, (JUMP, JUMPI))

    @classmethod
    def apply_computation(
        cls,
        state: StateAPI,
        message: MessageAPI,
        transaction_context: TransactionContextAPI,
        parent_computation: ComputationAPI | None = None,
    ) -> ComputationAPI:
        cast(_BoundedState, state).deadline.check()
        return super().apply_computation(state, message, transaction_context, parent_computation)


def _out_of_gas(needed: int, remaining: int, mnemonic: str) -> OutOfGas:
    return OutOfGas(f"Out of gas: Needed {needed} - Remaining {remaining} - Reason: {mnemonic}")


def _run(computation: TallyComputation, dispatch: dict[int, _Entry], inline: list[int]) -> None:
    """Execute opcodes until one halts; past the end of the code is STOP, as in py-evm.

    The opcodes `inline` gives a gas for (the stack opcodes, the jumps, MLOAD, MSTORE and the
    integer opcodes of `_BINARY`: most of what a Solidity contract executes) run here, with
    py-evm's checks, errors and gas; the rest call py-evm's functions.

    The program counter and the gas left live in locals, written back before anything else
    reads them (a dispatched opcode, memory growth) and read back after. An error raised
    inline leaves them stale, which nothing observes: the frame ends and burns all its gas
    whatever the meter says, and the tracer runs its own loop (`.tracing`).
    """
    code = computation.code
    raw = code._raw_code_bytes
    starts = code._starts
    length = len(raw)
    meter = computation._gas_meter
    values = computation._stack.values
    memory = cast(Memory, computation._memory)
    pc = code.program_counter
    remaining = meter.gas_remaining
    while True:
        try:
            opcode = raw[pc]
        except IndexError:
            opcode = STOP
        pc += 1
        gas = inline[opcode]
        if gas >= 0:
            if gas > remaining:
                raise _out_of_gas(gas, remaining, dispatch[opcode][2])
            remaining -= gas
            if opcode >= PUSH0:
                if opcode <= PUSH32:
                    end = pc + opcode - PUSH0
                    data = raw[pc:end]
                    if len(data) != end - pc:
                        data = data.ljust(end - pc, b"\x00")
                    pc = end
                    if len(values) > 1023:
                        raise FullStack("Stack limit reached")
                    values.append(data)
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
            elif opcode == JUMPDEST:
                pass
            elif opcode == POP:
                if not values:
                    raise InsufficientStack("Wanted 1 stack item, had none")
                values.pop()
            elif (binary := _binary[opcode]) is not None:
                if len(values) < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {len(values)}")
                first = values.pop()
                second = values.pop()
                values.append(
                    binary(
                        first if isinstance(first, int) else int.from_bytes(first, "big"),
                        second if isinstance(second, int) else int.from_bytes(second, "big"),
                    )
                )
            elif opcode == ISZERO:
                if not values:
                    raise InsufficientStack("Wanted 1 stack item, had none")
                top = values[-1]
                values[-1] = 0 if (top if isinstance(top, int) else any(top)) else 1
            elif opcode in (JUMPI, JUMP):
                if opcode == JUMP:
                    if not values:
                        raise InsufficientStack("Wanted 1 stack item, had none")
                    destination = values.pop()
                else:
                    if len(values) < 2:
                        raise InsufficientStack(f"Wanted 2 stack items, only had {len(values)}")
                    destination = values.pop()
                    condition = values.pop()
                    if not (condition if isinstance(condition, int) else any(condition)):
                        continue
                if not isinstance(destination, int):
                    destination = int.from_bytes(destination, "big")
                if destination >= length or raw[destination] != JUMPDEST:
                    code.program_counter = destination
                    raise InvalidJumpDestination("Invalid Jump Destination")
                if not starts[destination]:
                    code.program_counter = destination
                    raise InvalidInstruction("Jump resulted in invalid instruction")
                pc = destination
            elif opcode in (MLOAD, MSTORE):
                if not values:
                    raise InsufficientStack("Wanted 1 stack item, had none")
                start = values.pop()
                if opcode == MSTORE:
                    if not values:
                        raise InsufficientStack("Wanted 1 stack item, had none")
                    value = values.pop()
                if not isinstance(start, int):
                    start = int.from_bytes(start, "big")
                if start + 32 > len(memory._bytes):
                    meter.gas_remaining = remaining
                    computation.extend_memory(start, 32)
                    remaining = meter.gas_remaining
                if opcode == MLOAD:
                    values.append(bytes(memory._bytes[start : start + 32]))
                else:
                    memory._bytes[start : start + 32] = (
                        value.to_bytes(32, "big")
                        if isinstance(value, int)
                        else value.rjust(32, b"\x00")
                    )
            continue
        code.program_counter = pc
        meter.gas_remaining = remaining
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
        pc = code.program_counter
        remaining = meter.gas_remaining
