"""Parity/OpenEthereum-style flat traces (`trace_*`), as Besu, Erigon and anvil serve them.

Each frame becomes one entry, depth first, addressed by `traceAddress` (its path of child
indices from the top call); reward traces are not produced (Tally's validators earn none).
"""

from __future__ import annotations

from typing import Any

from eth.exceptions import (
    InsufficientStack,
    InvalidInstruction,
    InvalidJumpDestination,
    OutOfGas,
    Revert,
    StackDepthLimit,
    WriteProtection,
)

from node.chain.tracing.frames import FrameCollector
from node.chain.tracing.hooks import FrameRecord

_ERRORS: tuple[tuple[type[BaseException], str], ...] = (
    (Revert, "Reverted"),
    (OutOfGas, "Out of gas"),
    (InvalidJumpDestination, "Bad jump destination"),
    (InvalidInstruction, "Bad instruction"),
    (InsufficientStack, "Stack underflow"),
    (StackDepthLimit, "Out of stack"),
    (WriteProtection, "Mutable call in static context"),
)


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def parity_error(error: BaseException) -> str:
    for kind, text in _ERRORS:
        if isinstance(error, kind):
            return text
    return str(error) or type(error).__name__


class ParityTracer(FrameCollector):
    """The flat trace list of one transaction (without the block fields; see `located`)."""

    def result(self) -> Any:
        if self.root is None:
            return []
        traces: list[dict[str, Any]] = []
        _flatten(self.root, [], traces)
        return traces

    def output(self) -> bytes:
        return b"" if self.root is None else self.root.output


def located(
    traces: list[dict[str, Any]],
    block_hash: bytes,
    block_number: int,
    tx_hash: bytes,
    position: int,
) -> list[dict[str, Any]]:
    """`traces` with the block and transaction fields `trace_block`/`trace_transaction` add."""
    for trace in traces:
        trace["blockHash"] = _hex(block_hash)
        trace["blockNumber"] = block_number
        trace["transactionHash"] = _hex(tx_hash)
        trace["transactionPosition"] = position
    return traces


def _flatten(record: FrameRecord, address: list[int], out: list[dict[str, Any]]) -> None:
    out.append(_entry(record, address))
    for index, call in enumerate(record.calls):
        _flatten(call, [*address, index], out)


def _entry(record: FrameRecord, address: list[int]) -> dict[str, Any]:
    frame = record.frame
    entry: dict[str, Any]
    if record.selfdestruct is not None:
        beneficiary, balance = record.selfdestruct
        entry = {
            "action": {
                "address": _hex(frame.sender),
                "refundAddress": _hex(beneficiary),
                "balance": hex(balance),
            },
            "result": None,
            "type": "suicide",
        }
    elif frame.kind in ("CREATE", "CREATE2"):
        entry = {
            "action": {
                "from": _hex(frame.sender),
                "gas": hex(frame.gas),
                "init": _hex(frame.input),
                "value": hex(frame.value),
                "creationMethod": frame.kind.lower(),
            },
            "result": {
                "address": _hex(frame.to),
                "code": _hex(record.output),
                "gasUsed": hex(record.gas_used),
            },
            "type": "create",
        }
    else:
        entry = {
            "action": {
                "from": _hex(frame.sender),
                "callType": frame.kind.lower(),
                "gas": hex(frame.gas),
                "input": _hex(frame.input),
                "to": _hex(frame.to),
                "value": hex(frame.value),
            },
            "result": {"gasUsed": hex(record.gas_used), "output": _hex(record.output)},
            "type": "call",
        }
    if record.error is not None:
        entry["error"] = parity_error(record.error)
        if not isinstance(record.error, Revert):  # a revert keeps its gas used and output
            entry["result"] = None
    entry["subtraces"] = len(record.calls)
    entry["traceAddress"] = address
    return entry
