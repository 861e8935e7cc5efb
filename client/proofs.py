"""Checking an `eth_getProof` (EIP-1186) answer on the client, against a block hash one trusts.

A node can say anything about a balance; a proof ties the answer to a block's `stateRoot`, and
the header ties that root to the block hash (QBFT's on-chain hash, `client.qbft.block_hash`).
So given a block hash from a source one trusts (an audit of the chain, a checkpoint, another
node), `verify_proof` shows the account and the storage slots are what that block holds,
without trusting the node that answered. The trie walk is `trie.HexaryTrie.get_from_proof`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import rlp
from eth.abc import BlockHeaderAPI
from eth_hash.auto import keccak
from eth_utils import to_bytes, to_canonical_address, to_int
from rlp.sedes import big_endian_int, binary
from trie import HexaryTrie
from trie.exceptions import BadTrieProof

from client.errors import (
    AccountProofInvalid,
    HeaderMismatch,
    ProofError,
    StorageProofInvalid,
)
from client.qbft import block_hash as qbft_block_hash
from client.qbft import header_from_json, header_from_rlp

BLANK_ROOT = bytes.fromhex("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421")
EMPTY_CODE_HASH = keccak(b"")


class _Account(rlp.Serializable):
    """An account as the state trie stores it (the yellow paper's order)."""

    fields = (
        ("nonce", big_endian_int),
        ("balance", big_endian_int),
        ("storage_root", binary),
        ("code_hash", binary),
    )


@dataclass(frozen=True, slots=True)
class ProvenAccount:
    """An account and storage slots as of one block, every value checked against its proof."""

    address: bytes
    block_number: int
    block_hash: bytes
    state_root: bytes
    exists: bool
    nonce: int
    balance: int
    code_hash: bytes
    storage_hash: bytes
    storage: Mapping[bytes, int]  # 32-byte slot -> value


def verify_proof(
    proof: Mapping[str, Any],
    header: Mapping[str, Any] | bytes | BlockHeaderAPI,
    block_hash: bytes | str | None = None,
    address: bytes | str | None = None,
) -> ProvenAccount:
    """Verify an `eth_getProof` result against the block it was asked at.

    `header` is that block as JSON-RPC returns it, its header RLP, or a py-evm header.
    `block_hash` is the hash to trust; when omitted, a JSON block's own `hash` field is used,
    which only shows the proof and header agree with each other. `address`, when given, must
    be the account the proof is about. Raises a `ProofError` subclass naming what failed.
    """
    parsed = _header(header)
    expected = _expected_hash(header, block_hash)
    actual = qbft_block_hash(parsed)
    if actual != expected:
        raise HeaderMismatch(
            f"header of block {parsed.block_number} hashes to 0x{actual.hex()}, "
            f"not 0x{expected.hex()}"
        )
    try:
        account_address = to_canonical_address(proof["address"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AccountProofInvalid(f"no usable address in the proof: {exc!r}") from exc
    if address is not None and to_canonical_address(address) != account_address:
        raise AccountProofInvalid(f"proof is for 0x{account_address.hex()}, not {address!r}")
    encoded = _walk(
        parsed.state_root, keccak(account_address), proof.get("accountProof"), AccountProofInvalid
    )
    account = (
        rlp.decode(encoded, sedes=_Account)
        if encoded
        else _Account(0, 0, BLANK_ROOT, EMPTY_CODE_HASH)
    )
    _claims_match(proof, account)
    storage: dict[bytes, int] = {}
    for item in proof.get("storageProof") or []:
        slot, value = _storage_slot(item, account.storage_root)
        storage[slot] = value
    return ProvenAccount(
        address=account_address,
        block_number=parsed.block_number,
        block_hash=actual,
        state_root=parsed.state_root,
        exists=bool(encoded),
        nonce=account.nonce,
        balance=account.balance,
        code_hash=account.code_hash,
        storage_hash=account.storage_root,
        storage=storage,
    )


def _header(header: Mapping[str, Any] | bytes | BlockHeaderAPI) -> BlockHeaderAPI:
    if isinstance(header, bytes):
        return header_from_rlp(header)
    if isinstance(header, Mapping):
        return header_from_json(header)
    return header


def _expected_hash(header: object, block_hash: bytes | str | None) -> bytes:
    if isinstance(block_hash, str):
        return to_bytes(hexstr=block_hash)
    if block_hash is not None:
        return block_hash
    if isinstance(header, Mapping) and isinstance(header.get("hash"), str):
        return to_bytes(hexstr=header["hash"])
    raise ProofError("no block hash to check the header against: pass block_hash")


def _walk(root: bytes, key: bytes, nodes: object, fail: Callable[[str], ProofError]) -> bytes:
    """The value under `key` in the trie at `root`, as far as the proof nodes show it.

    A node that was changed no longer hashes to the reference its parent holds, so the walk
    stops at it (`BadTrieProof`); a proof that ends early does the same.
    """
    if not isinstance(nodes, Sequence) or isinstance(nodes, str):
        raise fail("proof is not a list of nodes")
    try:
        decoded = [rlp.decode(to_bytes(hexstr=node)) for node in nodes]
    except (TypeError, ValueError, rlp.DecodingError) as exc:
        raise fail(f"proof node is not RLP hex: {exc}") from exc
    try:
        return bytes(HexaryTrie.get_from_proof(root, key, decoded))
    except BadTrieProof as exc:
        raise fail(f"proof does not lead from the root: {exc}") from exc
    except Exception as exc:  # a node of the wrong shape fails deep inside `trie`, untyped
        raise fail(f"proof nodes are not a trie path: {exc!r}") from exc


def _claims_match(proof: Mapping[str, Any], account: _Account) -> None:
    """The account fields the answer states must be the ones the proof proves."""
    proven = {
        "nonce": account.nonce,
        "balance": account.balance,
        "codeHash": account.code_hash,
        "storageHash": account.storage_root,
    }
    for name, value in proven.items():
        try:
            raw = proof[name]
            claimed = to_int(hexstr=raw) if isinstance(value, int) else to_bytes(hexstr=raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise AccountProofInvalid(f"{name} missing or not hex: {exc!r}") from exc
        if claimed != value:
            raise AccountProofInvalid(f"{name} is {raw} but the proof shows {_show(value)}")


def _storage_slot(item: object, storage_root: bytes) -> tuple[bytes, int]:
    if not isinstance(item, Mapping) or not isinstance(item.get("key"), str):
        raise StorageProofInvalid("entry has no key", "?")
    key = item["key"]
    try:
        slot = to_bytes(hexstr=key).rjust(32, b"\x00")
        claimed = to_int(hexstr=item["value"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StorageProofInvalid(f"key or value is not hex: {exc!r}", key) from exc
    if len(slot) != 32:
        raise StorageProofInvalid("key is longer than 32 bytes", key)
    encoded = _walk(
        storage_root, keccak(slot), item.get("proof"), lambda m: StorageProofInvalid(m, key)
    )
    value = rlp.decode(encoded, sedes=big_endian_int) if encoded else 0
    if claimed != value:
        raise StorageProofInvalid(f"value is {item['value']} but the proof shows {value:#x}", key)
    return slot, value


def _show(value: int | bytes) -> str:
    return hex(value) if isinstance(value, int) else "0x" + value.hex()
