"""Internal transactions: the calls inside a transaction that moved value, and contract
creations by contracts, as Etherscan's `txlistinternal` lists them.

Collected from py-evm's computation tree right after each transaction executes, so no second
execution is needed; a transaction whose computation has no children (a plain transfer, most
ERC-20 transfers) costs one attribute read. A call whose frame, or any frame above it, failed
is kept with `is_error`: its value never moved, but explorers list it (marked failed), as
Etherscan does. DELEGATECALL and CALLCODE frames never move value to another account, so they
are left out; so are SELFDESTRUCT payouts (no frame of their own).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth.abc import ComputationAPI
from eth.exceptions import InvalidInstruction, InvalidJumpDestination, OutOfGas, Revert


@dataclass(frozen=True, slots=True)
class InternalCall:
    """One internal transaction; `trace_id` is the frame's path in the call tree ("0_1": the
    second child of the first child of the top frame), as Etherscan's `traceId`."""

    sender: bytes
    recipient: bytes
    """The callee, or b"" for a creation (then `created` holds the new contract)."""
    created: bytes
    value: int
    gas: int
    gas_used: int
    trace_id: str
    is_error: bool
    error: str


def error_description(computation: ComputationAPI) -> str:
    """A failed frame's reason in Etherscan's words ("" when the frame succeeded)."""
    if computation.is_success:
        return ""
    error = computation.error
    if isinstance(error, Revert):
        return "Reverted"
    if isinstance(error, OutOfGas):
        return "Out of gas"
    if isinstance(error, InvalidJumpDestination):
        return "Bad jump destination"
    if isinstance(error, InvalidInstruction):
        return "Bad instruction"
    return str(error) or type(error).__name__


def collect(computation: ComputationAPI) -> tuple[InternalCall, ...]:
    """The internal transactions of one executed transaction (its top computation)."""
    if not computation.children:
        return ()
    found: list[InternalCall] = []
    _walk(computation, "", computation.is_error, found)
    return tuple(found)


def _walk(parent: ComputationAPI, path: str, failed: bool, found: list[InternalCall]) -> None:
    for position, child in enumerate(parent.children):
        msg = child.msg
        trace_id = f"{path}_{position}" if path else str(position)
        child_failed = failed or child.is_error
        creates = msg.is_create
        if creates or (msg.value and msg.should_transfer_value and msg.sender != msg.to):
            found.append(
                InternalCall(
                    sender=msg.sender,
                    recipient=b"" if creates else msg.to,
                    created=msg.storage_address if creates else b"",
                    value=msg.value,
                    gas=msg.gas,
                    gas_used=child.get_gas_used(),
                    trace_id=trace_id,
                    is_error=child_failed,
                    error=error_description(child) if child.is_error else "",
                )
            )
        if child.children:
            _walk(child, trace_id, child_failed, found)
