"""Decoding logs into named events: the bank's contracts at their genesis addresses by their
own ABIs (from `contracts/artifacts`), any other contract's ERC-20 Transfer and Approval by the
standard signatures, and anything else left raw.

Decoding by address rather than by topic alone means a look-alike event from some other
contract is never presented as the bank's.
"""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address

from contracts import load_artifact
from node.chain.event_abi import event_table
from node.domain.contracts import (
    ACCOUNT_RULES,
    ADMIN_GROUP,
    BATCH_PAYOUT,
    ESCROW,
    NETTING,
    NODE_RULES,
    POINTS,
    WALLET_TOKEN,
)
from node.storage.records import LogRecord

BANK_CONTRACTS: dict[bytes, str] = {
    ADMIN_GROUP: "AdminGroup",
    ACCOUNT_RULES: "AccountRules",
    NODE_RULES: "NodeRules",
    POINTS: "Points",
    WALLET_TOKEN: "WalletToken",
    ESCROW: "Escrow",
    BATCH_PAYOUT: "BatchPayout",
    NETTING: "Netting",
}

_ERC20_EVENTS = [
    {
        "type": "event",
        "name": name,
        "inputs": [
            {"name": first, "type": "address", "indexed": True},
            {"name": second, "type": "address", "indexed": True},
            {"name": "value", "type": "uint256", "indexed": False},
        ],
    }
    for name, first, second in (("Transfer", "from", "to"), ("Approval", "owner", "spender"))
]


def json_value(value: Any) -> Any:
    """ABI values as JSON: addresses checksummed, integers as decimal strings, bytes as hex."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        return to_checksum_address(value)
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    return value


class EventDecoder:
    """Logs -> {address, contract, event, args} (or raw topics and data when unknown)."""

    def __init__(self) -> None:
        self._bank = {
            address: event_table(load_artifact(name)["abi"])
            for address, name in BANK_CONTRACTS.items()
        }
        self._erc20 = event_table(_ERC20_EVENTS)

    def topics_named(self, name: str) -> set[bytes]:
        """topic0 of every known event called `name` (the bank's contracts' and ERC-20's)."""
        return {
            topic
            for table in (*self._bank.values(), self._erc20)
            for topic, event in table.items()
            if event.name == name
        }

    def decode(self, log: LogRecord, log_index: int) -> dict[str, Any]:
        contract = BANK_CONTRACTS.get(log.address)
        table = self._bank.get(log.address, self._erc20)
        event = table.get(log.topics[0]) if log.topics else None
        if event is None and contract is not None:
            event = self._erc20.get(log.topics[0]) if log.topics else None
        base: dict[str, Any] = {
            "address": to_checksum_address(log.address),
            "log_index": log_index,
            "contract": contract,
        }
        if event is not None:
            try:
                args = {name: json_value(value) for name, value in event.decode(log).items()}
                return {**base, "event": event.name, "args": args, "raw": None}
            except Exception:  # wrong shape for the signature: show it raw
                pass
        return {
            **base,
            "event": None,
            "args": None,
            "raw": {"topics": ["0x" + t.hex() for t in log.topics], "data": "0x" + log.data.hex()},
        }
