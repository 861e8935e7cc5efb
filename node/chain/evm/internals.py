"""Public names for the py-evm internals the rest of the node reads.

py-evm keeps a frame's stack, memory, code bytes and logs in private attributes, and its
address derivations and padding helpers in the private `eth._utils`; tracers, access lists and
the executor need them. Reading them here keeps every private name in `node.chain.evm`, where
`tests/test_evm_fence.py` checks they still exist.
"""

from __future__ import annotations

from typing import Any, cast

from eth._utils.address import generate_contract_address, generate_safe_contract_address
from eth._utils.numeric import ceil32
from eth._utils.padding import pad32
from eth.abc import ComputationAPI

from node.chain.evm.interpreter import TallyComputation

__all__ = [
    "PRECOMPILE_ADDRESSES",
    "ceil32",
    "code_bytes",
    "generate_contract_address",
    "generate_safe_contract_address",
    "last_log_entry",
    "memory_bytes",
    "pad32",
    "stack_values",
]

PRECOMPILE_ADDRESSES = frozenset(TallyComputation._precompiles)
"""The addresses of the fork's precompiled contracts."""


def stack_values(computation: ComputationAPI) -> list[Any]:
    """The frame's stack, bottom first (ints or bytes, as py-evm keeps them)."""
    return cast(TallyComputation, computation)._stack.values


def memory_bytes(computation: ComputationAPI) -> bytes:
    """A copy of the frame's whole memory."""
    memory = cast(TallyComputation, computation)._memory
    return bytes(memory.read_bytes(0, len(memory)))


def code_bytes(computation: ComputationAPI) -> bytes:
    """The code the frame runs."""
    return cast(TallyComputation, computation).code._raw_code_bytes


def last_log_entry(computation: ComputationAPI) -> tuple[int, bytes, tuple[int, ...], bytes]:
    """The frame's latest log: (its order in the transaction, address, topics, data)."""
    return cast(TallyComputation, computation)._log_entries[-1]
