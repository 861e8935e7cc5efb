"""Account and storage proofs (EIP-1186) read from the persisted state trie.

Auditors use them to check a balance or a contract slot against a block's `stateRoot` without
trusting the node. The proofs come from `trie.HexaryTrie.get_proof` over the very trie nodes
py-evm persisted (keyed by their keccak in the node's store): the account under
keccak(address) in the state trie, each slot under keccak(slot as 32 bytes) in the account's
storage trie. As geth does, a proof lists the root and every node referenced by hash; nodes
shorter than 32 bytes are embedded in their parent and are not repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import rlp
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.rlp.accounts import Account
from eth_hash.auto import keccak
from rlp.sedes import big_endian_int
from trie import HexaryTrie

from node.hexcodec import decode_data
from node.storage.store import KeyValueStore

MAX_STORAGE_KEYS = 1_024
"""Slots one proof request may name."""


@dataclass(frozen=True, slots=True)
class SlotProof:
    slot: bytes
    value: int
    proof: tuple[bytes, ...]
    """RLP of the storage trie's root and hash-referenced nodes, root first."""


@dataclass(frozen=True, slots=True)
class AccountProof:
    address: bytes
    balance: int
    nonce: int
    code_hash: bytes
    storage_root: bytes
    proof: tuple[bytes, ...]
    """RLP of the state trie's root and hash-referenced nodes, root first."""
    storage: tuple[SlotProof, ...]


def storage_key(text: str) -> bytes:
    """A slot as 32 bytes; like geth, shorter (even odd-length) hex is left-padded.
    Raises `ValueError` with the reason an edge reports."""
    if not text.startswith(("0x", "0X")):
        raise ValueError("invalid storage key: expected 0x-prefixed hex")
    digits = text[2:]
    if len(digits) > 64:
        raise ValueError("invalid storage key: longer than 32 bytes")
    try:
        return decode_data("0x" + digits.rjust(64, "0"))
    except ValueError as exc:
        raise ValueError(f"invalid storage key: {exc}") from exc


def prove(
    db: KeyValueStore, state_root: bytes, address: bytes, slots: Sequence[bytes]
) -> AccountProof:
    """`address` and its `slots` (32 bytes each) in the state under `state_root`."""
    state = HexaryTrie(db, state_root)
    account_key = keccak(address)
    encoded = state.get(account_key)
    account = rlp.decode(encoded, sedes=Account) if encoded else None
    storage_root = account.storage_root if account is not None else BLANK_ROOT_HASH
    storage = HexaryTrie(db, storage_root)
    return AccountProof(
        address=address,
        balance=account.balance if account is not None else 0,
        nonce=account.nonce if account is not None else 0,
        code_hash=account.code_hash if account is not None else EMPTY_SHA3,
        storage_root=storage_root,
        proof=_encode(state.get_proof(account_key)),
        storage=tuple(_slot_proof(storage, slot) for slot in slots),
    )


def _slot_proof(storage: HexaryTrie, slot: bytes) -> SlotProof:
    key = keccak(slot)
    raw = storage.get(key)
    value = rlp.decode(raw, sedes=big_endian_int) if raw else 0
    return SlotProof(slot, value, _encode(storage.get_proof(key)))


def _encode(nodes: tuple[Any, ...]) -> tuple[bytes, ...]:
    encoded = [rlp.encode(node) for node in nodes]
    return tuple(node for index, node in enumerate(encoded) if index == 0 or len(node) >= 32)


def eip1186_json(proof: AccountProof, keys: Sequence[str]) -> dict[str, Any]:
    """EIP-1186's answer, each slot under the key as the client wrote it (geth echoes it).

    This is the standard's own shape, which JSON-RPC answers and the REST API publishes as-is.
    """
    return {
        "address": _hexd(proof.address),
        "accountProof": [_hexd(node) for node in proof.proof],
        "balance": hex(proof.balance),
        "codeHash": _hexd(proof.code_hash),
        "nonce": hex(proof.nonce),
        "storageHash": _hexd(proof.storage_root),
        "storageProof": [
            {"key": key, "value": hex(slot.value), "proof": [_hexd(node) for node in slot.proof]}
            for key, slot in zip(keys, proof.storage, strict=True)
        ],
    }


def _hexd(value: bytes) -> str:
    return "0x" + value.hex()
