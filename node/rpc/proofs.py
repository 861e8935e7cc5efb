"""`eth_getProof` (EIP-1186): an account and storage slots with their Merkle-Patricia proofs.

Auditors use it to check a balance or a contract slot against a block's `stateRoot` without
trusting the node. The proofs come from `trie.HexaryTrie.get_proof` over the very trie nodes
py-evm persisted (keyed by their keccak in the node's store): the account under
keccak(address) in the state trie, each slot under keccak(slot as 32 bytes) in the account's
storage trie. As geth does, a proof lists the root and every node referenced by hash; nodes
shorter than 32 bytes are embedded in their parent and are not repeated.
"""

from __future__ import annotations

from typing import Any

import rlp
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.rlp.accounts import Account
from eth_hash.auto import keccak
from rlp.sedes import big_endian_int
from trie import HexaryTrie

from node.chain.chain import Chain
from node.hexcodec import decode_data
from node.rpc import params as p
from node.rpc import views
from node.rpc.dispatch import rpc_method
from node.rpc.errors import InvalidParams
from node.rpc.eth import BlockResolver

MAX_STORAGE_KEYS = 1_024


class ProofsApi:
    """`eth_getProof` at any committed block: nothing is pruned, so history is provable."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.blocks = BlockResolver(chain)

    @rpc_method("eth_getProof", 2, 3)
    def get_proof(self, address: Any, storage_keys: Any, block: Any) -> dict[str, Any]:
        account_address = p.address(address)
        if not isinstance(storage_keys, list):
            raise InvalidParams("invalid storageKeys: expected a list")
        if len(storage_keys) > MAX_STORAGE_KEYS:
            raise InvalidParams(f"too many storage keys (max {MAX_STORAGE_KEYS})")
        slots = [(key, storage_key(key)) for key in storage_keys]
        header = self.blocks.header(block)
        db = self.chain.store.store
        state = HexaryTrie(db, header.state_root)
        account_key = keccak(account_address)
        encoded = state.get(account_key)
        account = rlp.decode(encoded, sedes=Account) if encoded else None
        storage_root = account.storage_root if account is not None else BLANK_ROOT_HASH
        storage = HexaryTrie(db, storage_root)
        return {
            "address": views.hexd(account_address),
            "accountProof": encode_proof(state.get_proof(account_key)),
            "balance": views.hexq(account.balance if account is not None else 0),
            "codeHash": views.hexd(account.code_hash if account is not None else EMPTY_SHA3),
            "nonce": views.hexq(account.nonce if account is not None else 0),
            "storageHash": views.hexd(storage_root),
            "storageProof": [_slot_proof(storage, requested, slot) for requested, slot in slots],
        }


def storage_key(value: Any) -> bytes:
    """A slot as 32 bytes; like geth, shorter (even odd-length) hex is left-padded."""
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        raise InvalidParams("invalid storage key: expected 0x-prefixed hex")
    digits = value[2:]
    if len(digits) > 64:
        raise InvalidParams("invalid storage key: longer than 32 bytes")
    try:
        return decode_data("0x" + digits.rjust(64, "0"))
    except ValueError as exc:
        raise InvalidParams(f"invalid storage key: {exc}") from exc


def encode_proof(nodes: tuple[Any, ...]) -> list[str]:
    """RLP of the proof's root and hash-referenced nodes, root first."""
    encoded = [rlp.encode(node) for node in nodes]
    return [views.hexd(node) for index, node in enumerate(encoded) if index == 0 or len(node) >= 32]


def _slot_proof(storage: HexaryTrie, requested: str, slot: bytes) -> dict[str, Any]:
    key = keccak(slot)
    raw = storage.get(key)
    return {
        "key": requested,
        "value": views.hexq(rlp.decode(raw, sedes=big_endian_int) if raw else 0),
        "proof": encode_proof(storage.get_proof(key)),
    }
