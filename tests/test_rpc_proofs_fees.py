"""`eth_getProof` checked the way an auditor would (against the block's stateRoot, with `trie`'s
proof verification, trusting nothing else the node said) and `eth_feeHistory`'s shape and tips.
"""

from __future__ import annotations

import pytest
import rlp
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.rlp.accounts import Account as AccountRlp
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from rlp.sedes import big_endian_int
from trie import HexaryTrie
from trie.exceptions import BadTrieProof
from web3 import Web3

from tests.conftest import NodeProcess, RpcFailure, fresh_funded_account
from tests.rpc_txs import deploy, poke_tx, send

FUNDING = 10**20


def raw(hex_string: str) -> bytes:
    return bytes.fromhex(hex_string[2:])


def proven(root: bytes, key: bytes, proof: list[str]) -> bytes:
    """The value `proof` proves under `key` in the trie with `root` (b"" if absent)."""
    return HexaryTrie.get_from_proof(root, key, [rlp.decode(raw(node)) for node in proof])


def state_root(node: NodeProcess, block: str) -> bytes:
    header = node.rpc("eth_getBlockByNumber", [block, False])
    return raw(header["stateRoot"])


def proven_account(node: NodeProcess, address: str, answer: dict, block: str) -> AccountRlp:
    encoded = proven(state_root(node, block), keccak(raw(address)), answer["accountProof"])
    assert encoded, "the proof shows no account"
    return rlp.decode(encoded, sedes=AccountRlp)


@pytest.fixture(scope="module")
def owner(w3: Web3, dev_accounts: list[LocalAccount]) -> LocalAccount:
    return fresh_funded_account(w3, dev_accounts[0], FUNDING)


@pytest.fixture(scope="module")
def poked(w3: Web3, owner: LocalAccount) -> dict:
    """A Probe whose slot 0 holds 12345 since block `after`; `before` is the block before."""
    probe = deploy(w3, owner, "Probe")
    receipt = send(w3, owner, poke_tx(probe, 12345))
    after = receipt["blockNumber"]
    return {"probe": probe, "after": hex(after), "before": hex(after - 1)}


# --- eth_getProof --------------------------------------------------------------------------------


def test_eoa_proof_verifies_against_state_root(
    shared_node: NodeProcess, owner: LocalAccount
) -> None:
    block = shared_node.rpc("eth_blockNumber")
    answer = shared_node.rpc("eth_getProof", [owner.address, [], block])
    assert answer["address"] == owner.address.lower()
    assert int(answer["balance"], 16) == FUNDING
    assert int(answer["nonce"], 16) == 0
    assert answer["codeHash"] == "0x" + EMPTY_SHA3.hex()
    assert answer["storageHash"] == "0x" + BLANK_ROOT_HASH.hex()
    assert answer["storageProof"] == []
    account = proven_account(shared_node, owner.address, answer, block)
    assert (account.balance, account.nonce) == (FUNDING, 0)
    assert (account.code_hash, account.storage_root) == (EMPTY_SHA3, BLANK_ROOT_HASH)


def test_contract_slot_proof_verifies_against_state_root(
    w3: Web3, shared_node: NodeProcess, poked: dict
) -> None:
    probe = poked["probe"]
    answer = shared_node.rpc("eth_getProof", [probe.address, ["0x0", "0x1"], poked["after"]])
    account = proven_account(shared_node, probe.address, answer, poked["after"])
    assert (
        "0x" + account.storage_root.hex() == answer["storageHash"] != "0x" + BLANK_ROOT_HASH.hex()
    )
    assert account.code_hash == keccak(bytes(w3.eth.get_code(probe.address)))
    assert "0x" + account.code_hash.hex() == answer["codeHash"]
    assert int(answer["nonce"], 16) == account.nonce == 1  # EIP-161: contracts start at 1
    slot0, slot1 = answer["storageProof"]
    assert (slot0["key"], slot0["value"]) == ("0x0", hex(12345))
    assert (slot1["key"], slot1["value"]) == ("0x1", "0x0")
    stored = proven(account.storage_root, keccak((0).to_bytes(32, "big")), slot0["proof"])
    assert rlp.decode(stored, sedes=big_endian_int) == 12345
    assert proven(account.storage_root, keccak((1).to_bytes(32, "big")), slot1["proof"]) == b""


def test_proof_at_an_older_block_shows_the_older_value(
    shared_node: NodeProcess, poked: dict
) -> None:
    probe = poked["probe"]
    answer = shared_node.rpc("eth_getProof", [probe.address, ["0x00"], poked["before"]])
    assert answer["storageProof"][0]["value"] == "0x0"
    account = proven_account(shared_node, probe.address, answer, poked["before"])
    slot = keccak((0).to_bytes(32, "big"))
    assert proven(account.storage_root, slot, answer["storageProof"][0]["proof"]) == b""


def test_absent_account_has_an_exclusion_proof(shared_node: NodeProcess) -> None:
    nobody = Account.create().address
    answer = shared_node.rpc("eth_getProof", [nobody, ["0x0"], "latest"])
    assert (answer["balance"], answer["nonce"]) == ("0x0", "0x0")
    assert answer["storageProof"] == [{"key": "0x0", "value": "0x0", "proof": []}]
    assert answer["accountProof"]
    assert (
        proven(state_root(shared_node, "latest"), keccak(raw(nobody)), answer["accountProof"])
        == b""
    )


def test_tampered_proofs_fail_verification(
    shared_node: NodeProcess, owner: LocalAccount, poked: dict
) -> None:
    block = poked["after"]
    answer = shared_node.rpc("eth_getProof", [owner.address, [], block])
    root, key = state_root(shared_node, block), keccak(raw(owner.address))
    proof = answer["accountProof"]
    leaf = raw(proof[-1])
    richer = leaf.replace(FUNDING.to_bytes(9, "big"), (FUNDING * 2).to_bytes(9, "big"))
    assert richer != leaf
    with pytest.raises(BadTrieProof):
        proven(root, key, [*proof[:-1], "0x" + richer.hex()])
    with pytest.raises(BadTrieProof):
        proven(root, key, proof[1:])  # the root node left out
    with pytest.raises(BadTrieProof):
        proven(state_root(shared_node, "0x0"), key, proof)  # another block's root


def test_web3_reads_the_proof(w3: Web3, owner: LocalAccount) -> None:
    # web3.py types `get_proof` as taking its munger's output tuple, not the munger's arguments
    proof = w3.eth.get_proof(owner.address, [0], "latest")  # type: ignore[call-arg, arg-type]
    assert proof["balance"] == FUNDING
    assert int.from_bytes(proof["storageProof"][0]["value"], "big") == 0


@pytest.mark.parametrize(
    "params",
    [
        ["0x1234", [], "latest"],
        ["0x" + "11" * 20, "0x0", "latest"],
        ["0x" + "11" * 20, ["0x" + "00" * 33], "latest"],
        ["0x" + "11" * 20, ["zz"], "latest"],
    ],
)
def test_get_proof_invalid_params(shared_node: NodeProcess, params: list) -> None:
    with pytest.raises(RpcFailure) as failure:
        shared_node.rpc("eth_getProof", params)
    assert failure.value.code == -32602


def test_get_proof_unknown_block(shared_node: NodeProcess) -> None:
    with pytest.raises(RpcFailure) as failure:
        shared_node.rpc("eth_getProof", ["0x" + "11" * 20, [], "0xffffff"])
    assert (failure.value.code, failure.value.message) == (-32000, "header not found")


# --- eth_feeHistory ------------------------------------------------------------------------------


def test_fee_history_shape(shared_node: NodeProcess, poked: dict) -> None:
    head = int(shared_node.rpc("eth_blockNumber"), 16)
    assert head >= 3  # funding, deploy, poke: each its own block
    history = shared_node.rpc("eth_feeHistory", ["0x3", "latest", [10, 50, 90]])
    assert set(history) == {
        "oldestBlock", "baseFeePerGas", "gasUsedRatio", "baseFeePerBlobGas", "blobGasUsedRatio",
        "reward",
    }  # fmt: skip
    assert history["oldestBlock"] == hex(head - 2)
    assert history["baseFeePerGas"] == ["0x0"] * 4  # three blocks and the next one
    assert history["baseFeePerBlobGas"] == ["0x0"] * 4
    assert history["blobGasUsedRatio"] == [0.0] * 3
    blocks = [
        shared_node.rpc("eth_getBlockByNumber", [hex(n), False]) for n in range(head - 2, head + 1)
    ]
    assert history["gasUsedRatio"] == [
        int(b["gasUsed"], 16) / int(b["gasLimit"], 16) for b in blocks
    ]
    assert all(ratio > 0 for ratio in history["gasUsedRatio"])
    assert len(history["reward"]) == 3 and all(len(r) == 3 for r in history["reward"])
    # more blocks than the chain holds: from genesis; no percentiles: no reward field
    everything = shared_node.rpc("eth_feeHistory", [hex(head + 50), "latest"])
    assert everything["oldestBlock"] == "0x0"
    assert len(everything["gasUsedRatio"]) == head + 1
    assert "reward" not in everything


def test_fee_history_rewards_are_effective_tips(
    w3: Web3, shared_node: NodeProcess, owner: LocalAccount
) -> None:
    tip = 3 * 10**9
    receipt = send(
        w3,
        owner,
        {"to": Account.create().address, "value": 1, "gas": 21_000, "maxFeePerGas": tip,
         "maxPriorityFeePerGas": tip, "type": 2},
    )  # fmt: skip
    assert receipt["effectiveGasPrice"] == tip
    block = hex(receipt["blockNumber"])
    history = shared_node.rpc("eth_feeHistory", [1, block, [0, 50, 100]])
    assert history["oldestBlock"] == block
    assert history["reward"] == [[hex(tip)] * 3]
    genesis = shared_node.rpc("eth_feeHistory", ["0x1", "earliest", [25, 75]])
    assert genesis["reward"] == [["0x0", "0x0"]]
    assert genesis["gasUsedRatio"] == [0.0]


def test_web3_reads_fee_history(w3: Web3) -> None:
    history = w3.eth.fee_history(2, "latest", [50])
    assert history["baseFeePerGas"] == [0, 0, 0]
    assert len(history["reward"]) == 2


@pytest.mark.parametrize("percentiles", [[50, 10], [10, 10], [101], [-1], ["50"], [True], "50"])
def test_fee_history_rejects_bad_percentiles(shared_node: NodeProcess, percentiles: object) -> None:
    with pytest.raises(RpcFailure) as failure:
        shared_node.rpc("eth_feeHistory", ["0x2", "latest", percentiles])
    assert failure.value.code == -32602


def test_fee_history_beyond_head(shared_node: NodeProcess) -> None:
    with pytest.raises(RpcFailure) as failure:
        shared_node.rpc("eth_feeHistory", ["0x1", "0xffffff", []])
    assert failure.value.code == -32000
    assert failure.value.message.startswith("request beyond head block")
