"""`eth_getProof` (EIP-1186): an account and storage slots with their Merkle-Patricia proofs,
read by `node.query.proofs` (which REST's `/proofs` shares); this module parses the params
and answers with JSON-RPC's codes."""

from __future__ import annotations

from typing import Any

from node.chain.chain import Chain
from node.query.proofs import MAX_STORAGE_KEYS, eip1186_json
from node.query.proofs import storage_key as parse_storage_key
from node.rpc import params as p
from node.rpc.dispatch import rpc_method
from node.rpc.errors import InvalidParams
from node.rpc.eth import BlockResolver


class ProofsApi:
    """`eth_getProof` at any committed block: nothing is pruned, so history is provable."""

    def __init__(self, chain: Chain) -> None:
        self.blocks = BlockResolver(chain)

    @rpc_method("eth_getProof", 2, 3)
    def get_proof(self, address: Any, storage_keys: Any, block: Any) -> dict[str, Any]:
        account_address = p.address(address)
        if not isinstance(storage_keys, list):
            raise InvalidParams("invalid storageKeys: expected a list")
        if len(storage_keys) > MAX_STORAGE_KEYS:
            raise InvalidParams(f"too many storage keys (max {MAX_STORAGE_KEYS})")
        slots = [storage_key(key) for key in storage_keys]
        header = self.blocks.header(block)
        proof = self.blocks.reader.proof(header, account_address, slots)
        return eip1186_json(proof, storage_keys)


def storage_key(value: Any) -> bytes:
    """A slot as 32 bytes (see `node.query.proofs.storage_key`); bad ones are -32602."""
    if not isinstance(value, str):
        raise InvalidParams("invalid storage key: expected 0x-prefixed hex")
    try:
        return parse_storage_key(value)
    except ValueError as exc:
        raise InvalidParams(str(exc)) from exc
