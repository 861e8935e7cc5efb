"""`client.proofs.verify_proof` on real `eth_getProof` answers from a `tally dev` node.

Proofs of a funded account, a contract's storage slots and an absent account verify against
the block's QBFT hash, given as JSON or as header RLP; a changed balance, a changed proof node,
a changed storage value, a header from another block (or with another state root) and a proof
about another address are each refused with their own error.
"""

from __future__ import annotations

import copy
from typing import Any

import eth_abi
import pytest
import rlp
from eth_account import Account
from eth_utils import keccak, to_canonical_address, to_checksum_address
from web3 import Web3

from client.errors import (
    AccountProofInvalid,
    HeaderMismatch,
    ProofError,
    StorageProofInvalid,
    TallyClientError,
)
from client.proofs import ProvenAccount, verify_proof
from client.qbft import header_from_json
from contracts import load_artifact
from tests.conftest import NodeProcess

POKED = 0xC0FFEE


@pytest.fixture(scope="module")
def state(shared_node: NodeProcess, w3: Web3, dev_accounts: list) -> dict[str, Any]:
    """A payee funded by a transfer and a Probe whose slot 0 was poked, at one block."""
    sender = dev_accounts[4]
    payee = Account.create().address
    nonce = w3.eth.get_transaction_count(sender.address)
    probe = to_checksum_address(
        keccak(rlp.encode([to_canonical_address(sender.address), nonce + 1]))[12:]
    )
    poke = keccak(text="poke(uint256)")[:4] + eth_abi.encode(["uint256"], [POKED])
    common = {"gasPrice": 0, "chainId": 1337}
    txs = [
        {"to": payee, "value": 12345, "gas": 21000},
        {"data": load_artifact("Probe")["bytecode"], "gas": 2_000_000},
        {"to": probe, "data": poke, "gas": 100_000},
    ]
    hashes = [
        w3.eth.send_raw_transaction(
            sender.sign_transaction({"nonce": nonce + i, **common, **tx}).raw_transaction
        )
        for i, tx in enumerate(txs)
    ]
    receipts = [w3.eth.wait_for_transaction_receipt(h, timeout=30) for h in hashes]
    assert [r["status"] for r in receipts] == [1, 1, 1]
    number = max(r["blockNumber"] for r in receipts)
    block = shared_node.rpc("eth_getBlockByNumber", [hex(number), False])
    return {"node": shared_node, "payee": payee, "probe": probe, "block": block}


def get_proof(state: dict[str, Any], address: str, slots: list[str]) -> dict[str, Any]:
    return state["node"].rpc("eth_getProof", [address, slots, state["block"]["number"]])


def test_an_account_proof_verifies_against_the_block_hash(state: dict[str, Any]) -> None:
    proof = get_proof(state, state["payee"], [])
    proven = verify_proof(proof, state["block"], state["block"]["hash"], address=state["payee"])
    assert isinstance(proven, ProvenAccount)
    assert proven.exists and proven.balance == 12345 and proven.nonce == 0
    assert proven.block_number == int(state["block"]["number"], 16)
    assert "0x" + proven.block_hash.hex() == state["block"]["hash"]
    assert "0x" + proven.state_root.hex() == state["block"]["stateRoot"]


def test_storage_proofs_verify_and_the_header_may_be_rlp(state: dict[str, Any]) -> None:
    proof = get_proof(state, state["probe"], ["0x0", "0x" + "00" * 31 + "07"])
    header_rlp = rlp.encode(header_from_json(state["block"]))
    proven = verify_proof(proof, header_rlp, bytes.fromhex(state["block"]["hash"][2:]))
    assert proven.storage == {b"\0" * 32: POKED, b"\0" * 31 + b"\x07": 0}
    assert proven.code_hash != keccak(b"") and proven.nonce == 1


def test_an_absent_account_is_proven_absent(state: dict[str, Any]) -> None:
    proven = verify_proof(get_proof(state, Account.create().address, ["0x1"]), state["block"])
    assert not proven.exists and proven.balance == 0 and proven.storage == {b"\0" * 31 + b"\1": 0}


def test_a_changed_balance_is_refused(state: dict[str, Any]) -> None:
    proof = get_proof(state, state["payee"], [])
    proof["balance"] = hex(12345 * 1000)
    with pytest.raises(AccountProofInvalid, match="balance"):
        verify_proof(proof, state["block"])


def test_a_changed_proof_node_is_refused(state: dict[str, Any]) -> None:
    proof = get_proof(state, state["payee"], [])
    for index in (0, len(proof["accountProof"]) - 1):  # the root, and the leaf's node
        tampered = copy.deepcopy(proof)
        node = bytearray(bytes.fromhex(tampered["accountProof"][index][2:]))
        node[-1] ^= 0x01
        tampered["accountProof"][index] = "0x" + node.hex()
        with pytest.raises(AccountProofInvalid, match="proof"):
            verify_proof(tampered, state["block"])
    shortened = copy.deepcopy(proof)
    shortened["accountProof"] = proof["accountProof"][:-1]
    with pytest.raises(AccountProofInvalid):
        verify_proof(shortened, state["block"])


def test_changed_storage_is_refused(state: dict[str, Any]) -> None:
    proof = get_proof(state, state["probe"], ["0x0"])
    lied = copy.deepcopy(proof)
    lied["storageProof"][0]["value"] = hex(POKED + 1)
    with pytest.raises(StorageProofInvalid, match="value") as raised:
        verify_proof(lied, state["block"])
    assert raised.value.key == "0x0"
    broken = copy.deepcopy(proof)
    leaf = bytearray(bytes.fromhex(broken["storageProof"][0]["proof"][-1][2:]))
    leaf[-1] ^= 0x01
    broken["storageProof"][0]["proof"][-1] = "0x" + leaf.hex()
    with pytest.raises(StorageProofInvalid):
        verify_proof(broken, state["block"])


def test_a_wrong_header_is_refused(state: dict[str, Any]) -> None:
    proof = get_proof(state, state["payee"], [])
    block = state["block"]
    parent = state["node"].rpc("eth_getBlockByNumber", [hex(int(block["number"], 16) - 1), False])
    with pytest.raises(HeaderMismatch):
        verify_proof(proof, parent, block["hash"])  # another block's header
    forged = {**block, "stateRoot": "0x" + "11" * 32}
    with pytest.raises(HeaderMismatch):
        verify_proof(proof, forged, block["hash"])  # a header claiming another state root
    with pytest.raises(HeaderMismatch):
        verify_proof(proof, block, parent["hash"])  # a hash to trust that is not this block's
    with pytest.raises(ProofError, match="block_hash"):
        verify_proof(proof, rlp.encode(header_from_json(block)))  # RLP carries no hash


def test_a_proof_about_another_account_is_refused(state: dict[str, Any]) -> None:
    proof = get_proof(state, state["payee"], [])
    with pytest.raises(AccountProofInvalid, match="proof is for"):
        verify_proof(proof, state["block"], address=state["probe"])
    assert issubclass(AccountProofInvalid, TallyClientError)
