"""geth's `prestateTracer`: the accounts a transaction touched as they were before it, or
(`diffMode`) what it changed, before and after.

Accounts and slots are looked up when first touched, geth's way: the sender, recipient (or
created address) and coinbase before the transaction starts; then the slots of SLOAD/SSTORE,
the targets of BALANCE, EXTCODE*, SELFDESTRUCT and of every CALL kind, and the addresses
CREATE/CREATE2 will use, each before its opcode runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth.abc import ComputationAPI, StateAPI
from eth.vm.opcode_values import (
    BALANCE,
    CALL,
    CALLCODE,
    CREATE,
    CREATE2,
    DELEGATECALL,
    EXTCODECOPY,
    EXTCODEHASH,
    EXTCODESIZE,
    SELFDESTRUCT,
    SLOAD,
    SSTORE,
    STATICCALL,
)
from eth.vm.stack import to_int
from eth_typing import Address

from node.chain.evm.internals import (
    generate_contract_address,
    generate_safe_contract_address,
    memory_bytes,
    stack_values,
)
from node.chain.tracing.hooks import Outcome, Tracer, TxInfo

_ADDRESS_OPS = frozenset({BALANCE, EXTCODECOPY, EXTCODEHASH, EXTCODESIZE, SELFDESTRUCT})
_CALL_OPS = frozenset({CALL, CALLCODE, DELEGATECALL, STATICCALL})


@dataclass(slots=True)
class Account:
    balance: int
    nonce: int
    code: bytes
    storage: dict[int, int] = field(default_factory=dict)

    def exists(self) -> bool:
        return bool(self.balance or self.nonce or self.code or self.storage)


def _read(state: StateAPI, address: bytes) -> Account:
    account = Address(address)
    return Account(state.get_balance(account), state.get_nonce(account), state.get_code(account))


def _word(value: int) -> str:
    return f"0x{value:064x}"


def _account_json(account: Account) -> dict[str, Any]:
    out: dict[str, Any] = {"balance": hex(account.balance)}
    if account.code:
        out["code"] = "0x" + account.code.hex()
    if account.nonce:
        out["nonce"] = account.nonce
    if account.storage:
        out["storage"] = {_word(slot): _word(value) for slot, value in account.storage.items()}
    return out


class PrestateTracer(Tracer):
    def __init__(self, *, diff_mode: bool = False) -> None:
        self.diff_mode = diff_mode
        self.pre: dict[bytes, Account] = {}
        self.post: dict[bytes, dict[str, Any]] = {}
        self.created: set[bytes] = set()
        self.destructed: set[bytes] = set()
        self._state: StateAPI | None = None

    def _lookup(self, address: bytes) -> None:
        if address not in self.pre and self._state is not None:
            self.pre[address] = _read(self._state, address)

    def _lookup_slot(self, address: bytes, slot: int) -> None:
        self._lookup(address)
        storage = self.pre[address].storage
        if slot not in storage and self._state is not None:
            storage[slot] = self._state.get_storage(Address(address), slot)

    def start(self, tx: TxInfo, state: StateAPI) -> None:
        self._state = state
        if tx.is_create:
            self.created.add(tx.to)
        self._lookup(tx.sender)
        self._lookup(tx.to)
        self._lookup(tx.coinbase)

    def step(self, computation: ComputationAPI, pc: int, opcode: int) -> None:
        values = stack_values(computation)
        here = computation.msg.storage_address
        if opcode in (SLOAD, SSTORE) and values:
            self._lookup_slot(here, to_int(values[-1]))
        elif opcode in _ADDRESS_OPS and values:
            self._lookup(to_int(values[-1]).to_bytes(32, "big")[-20:])
            if opcode == SELFDESTRUCT:
                self.destructed.add(here)
        elif opcode in _CALL_OPS and len(values) >= 5:
            self._lookup(to_int(values[-2]).to_bytes(32, "big")[-20:])
        elif opcode == CREATE:
            nonce = computation.state.get_nonce(Address(here))
            address = generate_contract_address(Address(here), nonce)
            self._lookup(address)
            self.created.add(address)
        elif opcode == CREATE2 and len(values) >= 4:
            offset, size, salt = (to_int(values[-2]), to_int(values[-3]), to_int(values[-4]))
            memory = memory_bytes(computation)
            init = memory[offset : offset + size].ljust(size, b"\x00") if size < 2**24 else b""
            address = generate_safe_contract_address(Address(here), salt, init)
            self._lookup(address)
            self.created.add(address)

    def finish(self, outcome: Outcome, state: StateAPI) -> None:
        if self.diff_mode:
            self._diff(state)
        for address in self.created:
            account = self.pre.get(address)
            if account is not None and not account.exists():
                del self.pre[address]

    def _diff(self, state: StateAPI) -> None:
        """geth's `processDiffState`: `post` gets what changed (storage slots that end zero
        are left out of it), `pre` keeps only accounts and slots that changed."""
        for address, before in list(self.pre.items()):
            if address in self.destructed and not state.account_exists(Address(address)):
                continue  # destroyed: in `pre` only
            after = _read(state, address)
            changed: dict[str, Any] = {}
            if after.balance != before.balance:
                changed["balance"] = hex(after.balance)
            if after.nonce != before.nonce:
                changed["nonce"] = after.nonce
            if after.code != before.code:
                changed["code"] = "0x" + after.code.hex()
            storage: dict[str, str] = {}
            slots_changed = False
            for slot, value in list(before.storage.items()):
                new = state.get_storage(Address(address), slot)
                if new == value or not value:
                    del before.storage[slot]
                if new != value:
                    slots_changed = True
                    if new:
                        storage[_word(slot)] = _word(new)
            if storage:
                changed["storage"] = storage
            if changed or slots_changed:
                self.post[address] = changed
            else:
                del self.pre[address]

    def result(self) -> Any:
        pre = {
            "0x" + address.hex(): _account_json(account) for address, account in self.pre.items()
        }
        if not self.diff_mode:
            return pre
        post = {"0x" + address.hex(): changed for address, changed in self.post.items()}
        return {"post": post, "pre": pre}
