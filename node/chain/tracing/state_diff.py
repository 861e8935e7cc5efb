"""OpenEthereum's `stateDiff` (for `trace_replayBlockTransactions`): per changed account, each
of balance, nonce and code as "=" (same), {"*": {from, to}} (changed), {"+": value} (created)
or {"-": value} (destroyed), and the changed storage slots, built on prestateTracer's diff."""

from __future__ import annotations

from typing import Any

from node.chain.tracing.prestate import Account, PrestateTracer


def _word(value: int) -> str:
    return f"0x{value:064x}"


def _changed(before: str, after: str | None) -> Any:
    return "=" if after is None or after == before else {"*": {"from": before, "to": after}}


class StateDiffTracer(PrestateTracer):
    def __init__(self) -> None:
        super().__init__(diff_mode=True)

    def result(self) -> Any:
        diff: dict[str, Any] = {}
        for address in sorted(set(self.pre) | set(self.post)):
            before = self.pre.get(address)
            after = self.post.get(address)
            key = "0x" + address.hex()
            if before is None:
                diff[key] = _created(after or {})
            elif after is None:
                diff[key] = _destroyed(before)
            else:
                diff[key] = _modified(before, after)
        return diff


def _created(after: dict[str, Any]) -> dict[str, Any]:
    return {
        "balance": {"+": after.get("balance", "0x0")},
        "code": {"+": after.get("code", "0x")},
        "nonce": {"+": hex(after.get("nonce", 0))},
        "storage": {slot: {"+": value} for slot, value in after.get("storage", {}).items()},
    }


def _destroyed(before: Account) -> dict[str, Any]:
    return {
        "balance": {"-": hex(before.balance)},
        "code": {"-": "0x" + before.code.hex()},
        "nonce": {"-": hex(before.nonce)},
        "storage": {_word(slot): {"-": _word(value)} for slot, value in before.storage.items()},
    }


def _modified(before: Account, after: dict[str, Any]) -> dict[str, Any]:
    nonce = after.get("nonce")
    storage: dict[str, Any] = {}
    new_slots: dict[str, str] = after.get("storage", {})
    for slot, value in before.storage.items():
        storage[_word(slot)] = {
            "*": {"from": _word(value), "to": new_slots.get(_word(slot), _word(0))}
        }
    for word, new in new_slots.items():
        storage.setdefault(word, {"*": {"from": _word(0), "to": new}})
    return {
        "balance": _changed(hex(before.balance), after.get("balance")),
        "code": _changed("0x" + before.code.hex(), after.get("code")),
        "nonce": _changed(hex(before.nonce), None if nonce is None else hex(nonce)),
        "storage": storage,
    }
