"""Access lists in calls and estimates, `eth_createAccessList`, and the execution-apis methods
around them (`eth_getBlockReceipts`, `eth_getStorageValues`, `eth_blobBaseFee`, the raw
`debug_` reads, `eth_getLogs`/`eth_getStorageAt` refusals), on a real node with web3.py.

The regression this file was written for: `eth_estimateGas` ignored `accessList`, so a wallet
that attached one got an estimate 2,200 gas short (2,400 for the listed address, 1,900 for the
slot, less the 2,100 the warm slot saves) and its transaction ran out of gas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import pytest
import rlp
from eth.vm.forks.prague.blocks import PragueBlock, PragueBlockHeader
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from hexbytes import HexBytes
from trie import HexaryTrie
from web3 import Web3
from web3.contract import Contract

from node.chain.vm import decode_transaction
from tests.conftest import NodeProcess, RpcFailure, fresh_funded_account
from tests.rpc_txs import deploy, poke_tx, send, sign

SLOT0 = "0x" + "00" * 32


@pytest.fixture(scope="module")
def owner(w3: Web3, dev_accounts: list[LocalAccount]) -> LocalAccount:
    return fresh_funded_account(w3, dev_accounts[0])


@pytest.fixture(scope="module")
def probe(w3: Web3, owner: LocalAccount) -> Contract:
    contract = deploy(w3, owner, "Probe")
    assert send(w3, owner, poke_tx(contract, 1))["status"] == 1  # slot 0 non-zero from here
    return contract


def rpc_error(node: NodeProcess, method: str, params: list) -> RpcFailure:
    with pytest.raises(RpcFailure) as caught:
        node.rpc(method, params)
    return caught.value


def test_estimate_with_access_list_is_the_gas_the_transaction_needs(
    w3: Web3, shared_node: NodeProcess, owner: LocalAccount, probe: Contract
) -> None:
    call = {"from": owner.address, "to": probe.address, "data": probe.encode_abi("poke", [7])}
    listed = {**call, "accessList": [{"address": probe.address, "storageKeys": [SLOT0]}]}
    plain = int(shared_node.rpc("eth_estimateGas", [call]), 16)
    with_list = int(shared_node.rpc("eth_estimateGas", [listed]), 16)
    assert with_list == plain + 2_200

    base = {"to": probe.address, "data": call["data"], "accessList": listed["accessList"]}
    nonce = w3.eth.get_transaction_count(owner.address)
    short = sign(w3, owner, {**base, "gas": plain, "type": 1}, nonce)
    exact = sign(w3, owner, {**base, "gas": with_list, "type": 1}, nonce + 1)
    hashes = [w3.eth.send_raw_transaction(raw) for raw in (short, exact)]
    failed, mined = (w3.eth.wait_for_transaction_receipt(h, timeout=30) for h in hashes)
    assert failed["status"] == 0, "the old estimate must run out of gas"
    assert mined["status"] == 1 and mined["gasUsed"] <= with_list


def test_eth_call_sees_the_access_list(
    shared_node: NodeProcess, owner: LocalAccount, probe: Contract
) -> None:
    """A GAS-sensitive outcome: the call is given only the no-list estimate's gas."""
    call = {"from": owner.address, "to": probe.address, "data": probe.encode_abi("poke", [9])}
    plain = int(shared_node.rpc("eth_estimateGas", [call]), 16)
    shared_node.rpc("eth_call", [{**call, "gas": hex(plain)}])
    listed = {**call, "gas": hex(plain), "accessList": [{"address": probe.address}]}
    with pytest.raises(RpcFailure) as caught:
        shared_node.rpc("eth_call", [listed])  # +2,400 intrinsic: no longer fits
    assert "gas" in caught.value.message


def test_create_access_list_matches_geth_and_the_mined_receipt(
    w3: Web3, shared_node: NodeProcess, owner: LocalAccount, probe: Contract
) -> None:
    call = {"from": owner.address, "to": probe.address, "data": probe.encode_abi("poke", [5])}
    answer = shared_node.rpc("eth_createAccessList", [call, "latest"])
    # geth's shape: the recipient is listed because a slot of it is; sender and precompiles
    # never are; no "error" key when the call succeeds.
    assert answer["accessList"] == [{"address": probe.address.lower(), "storageKeys": [SLOT0]}]
    assert set(answer) == {"accessList", "gasUsed"}
    receipt = send(w3, owner, {**poke_tx(probe, 5), "accessList": answer["accessList"], "type": 1})
    assert receipt["status"] == 1
    assert receipt["gasUsed"] == int(answer["gasUsed"], 16)


def test_create_access_list_reports_a_revert_in_error(
    shared_node: NodeProcess, owner: LocalAccount, probe: Contract
) -> None:
    call = {"from": owner.address, "to": probe.address, "data": probe.encode_abi("failRequire")}
    answer = shared_node.rpc("eth_createAccessList", [call])
    assert answer["error"] == "execution reverted"
    assert answer["accessList"] == []
    simple = shared_node.rpc("eth_createAccessList", [{"from": owner.address, "to": owner.address}])
    assert simple == {"accessList": [], "gasUsed": hex(21_000)}
    unfunded = {"from": "0x" + "aa" + "00" * 19, "to": "0x" + "bb" + "00" * 19}  # execution-apis
    assert shared_node.rpc("eth_createAccessList", [unfunded, "latest"]) == simple


def test_get_block_receipts_every_block_id(
    w3: Web3, shared_node: NodeProcess, probe: Contract, owner: LocalAccount
) -> None:
    receipt = send(w3, owner, poke_tx(probe, 2))
    block = w3.eth.get_block(receipt["blockNumber"])
    block_hash = block["hash"].to_0x_hex()
    by_number = shared_node.rpc("eth_getBlockReceipts", [hex(block["number"])])
    by_hash = shared_node.rpc("eth_getBlockReceipts", [block_hash])
    by_object = shared_node.rpc("eth_getBlockReceipts", [{"blockHash": block_hash}])
    assert by_number == by_hash == by_object
    hashes = cast(Sequence[HexBytes], block["transactions"])  # get_block without full txs: hashes
    assert [r["transactionHash"] for r in by_number] == [h.to_0x_hex() for h in hashes]
    assert receipt["transactionHash"].to_0x_hex() in [r["transactionHash"] for r in by_number]
    latest = shared_node.rpc("eth_getBlockReceipts", ["latest"])
    assert all(int(r["blockNumber"], 16) >= block["number"] for r in latest)
    assert shared_node.rpc("eth_getBlockReceipts", [hex(10**9)]) is None
    assert shared_node.rpc("eth_getBlockReceipts", ["0x" + "00" * 28 + "deadbeef"]) is None
    assert shared_node.rpc("eth_getBlockReceipts", ["earliest"]) == []
    assert rpc_error(shared_node, "eth_getBlockReceipts", ["newest"]).code == -32602


def test_storage_values_blob_fee_and_storage_key_errors(
    shared_node: NodeProcess, probe: Contract, owner: LocalAccount
) -> None:
    values = shared_node.rpc(
        "eth_getStorageValues", [{probe.address: ["0x0", SLOT0, "0x1"], owner.address: []}]
    )
    one = shared_node.rpc("eth_getStorageAt", [probe.address, "0x0"])
    assert values == {
        probe.address.lower(): [one, one, "0x" + "00" * 32],
        owner.address.lower(): [],
    }
    empty = rpc_error(shared_node, "eth_getStorageValues", [{}, "latest"])
    assert (empty.code, empty.message) == (-32602, "empty request")
    bad_list = rpc_error(
        shared_node, "eth_createAccessList", [{"to": probe.address, "accessList": "0x"}]
    )
    assert bad_list.code == -32602
    assert int(one, 16) != 0
    assert shared_node.rpc("eth_blobBaseFee") == "0x1"
    too_long = rpc_error(shared_node, "eth_getStorageAt", [probe.address, "0x" + "0" * 65])
    assert (too_long.code, too_long.message) == (
        -32000,
        "unable to decode storage key: hex string too long, want at most 32 bytes",
    )
    bad = rpc_error(shared_node, "eth_getStorageAt", [probe.address, "0xasdf", "latest"])
    assert (bad.code, bad.message) == (-32000, "unable to decode storage key: hex string invalid")
    assert rpc_error(shared_node, "eth_getStorageValues", [[probe.address]]).code == -32602


def test_get_logs_refuses_a_range_past_the_head(shared_node: NodeProcess) -> None:
    head = int(shared_node.rpc("eth_blockNumber"), 16)
    beyond = rpc_error(
        shared_node, "eth_getLogs", [{"fromBlock": hex(head), "toBlock": hex(head + 100)}]
    )
    assert (beyond.code, beyond.message) == (
        -32602,
        "block range extends beyond current head block",
    )
    reversed_ = rpc_error(
        shared_node, "eth_getLogs", [{"fromBlock": hex(head + 50), "toBlock": "latest"}]
    )
    assert (reversed_.code, reversed_.message) == (-32602, "invalid block range params")


def test_raw_reads_decode_to_the_same_block_and_transactions(
    w3: Web3, shared_node: NodeProcess, probe: Contract, owner: LocalAccount
) -> None:
    receipt = send(w3, owner, poke_tx(probe, 3))
    number = hex(receipt["blockNumber"])
    block = w3.eth.get_block(receipt["blockNumber"])
    raw_header = bytes.fromhex(shared_node.rpc("debug_getRawHeader", [number])[2:])
    header = rlp.decode(raw_header, sedes=PragueBlockHeader)
    assert header.state_root == block["stateRoot"]
    assert header.receipt_root == block["receiptsRoot"]
    assert (header.block_number, header.parent_hash) == (block["number"], block["parentHash"])

    raw_block = bytes.fromhex(shared_node.rpc("debug_getRawBlock", [number])[2:])
    decoded = rlp.decode(raw_block, sedes=PragueBlock)
    assert decoded.header == header
    hashes = [
        keccak(tx.encode()) if tx.type_id is not None else tx.hash for tx in decoded.transactions
    ]
    assert hashes == list(block["transactions"])

    raw_tx = shared_node.rpc("debug_getRawTransaction", [receipt["transactionHash"].to_0x_hex()])
    assert keccak(bytes.fromhex(raw_tx[2:])) == receipt["transactionHash"]
    assert decode_transaction(bytes.fromhex(raw_tx[2:])).sender == bytes.fromhex(owner.address[2:])
    assert shared_node.rpc("debug_getRawTransaction", ["0x" + "11" * 32]) is None

    # The receipts, encoded as consensus does, rebuild the header's receiptsRoot.
    raw_receipts = shared_node.rpc("debug_getRawReceipts", [block["hash"].to_0x_hex()])
    trie = HexaryTrie({})
    for index, encoded in enumerate(raw_receipts):
        trie[rlp.encode(index)] = bytes.fromhex(encoded[2:])
    assert trie.root_hash == block["receiptsRoot"]

    missing = rpc_error(shared_node, "debug_getRawBlock", [hex(10**9)])
    assert missing.code == -32000
    bad = rpc_error(shared_node, "debug_getRawBlock", ["2"])
    assert bad.code == -32602
