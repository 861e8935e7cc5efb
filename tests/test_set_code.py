"""EIP-7702 set-code transactions (type 4) on a real node: sent by the SDK (keys in a real
key store) and by web3.py/eth-account, executed, shown, refused, and re-executed by the
auditor's stock py-evm replay (`tally audit verify --reexecute`).

The delegate is `Probe`: once an account delegates to it, `poke(v)` called on that account
writes the account's own slot 0 and logs from the account's address.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from client.keystore import FileKeyStore
from client.wallet import Wallet
from tests.conftest import NodeProcess, RpcFailure, fresh_funded_account
from tests.rpc_txs import deploy

REPO = Path(__file__).resolve().parent.parent
CHAIN_ID = 1337


def designator(delegate: str) -> str:
    return "0xef0100" + delegate[2:].lower()


def set_code_tx(w3: Web3, sender, to: str, data: str, authorizations: list, gas: int) -> dict:
    return {
        "type": 4,
        "chainId": CHAIN_ID,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
        "maxFeePerGas": 0,
        "maxPriorityFeePerGas": 0,
        "gas": gas,
        "to": to,
        "value": 0,
        "data": data,
        "accessList": [],
        "authorizationList": authorizations,
    }


@pytest.fixture(scope="module")
def sponsor(w3: Web3, dev_accounts) -> Account:
    return fresh_funded_account(w3, dev_accounts[0])


@pytest.fixture(scope="module")
def probe(w3: Web3, sponsor):
    return deploy(w3, sponsor, "Probe")


def test_sdk_wallet_delegates_itself_and_runs_the_delegates_code(
    w3: Web3, shared_node: NodeProcess, sponsor, probe, tmp_path: Path
) -> None:
    store = FileKeyStore(tmp_path / "keys", "pw", scrypt_n=2**12)
    address = store.create("eoa").address
    fund = sponsor.sign_transaction(
        {
            "to": address,
            "value": 10**18,
            "gas": 21_000,
            "gasPrice": 0,
            "chainId": CHAIN_ID,
            "nonce": w3.eth.get_transaction_count(sponsor.address, "pending"),
        }
    )
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(fund.raw_transaction))
    wallet = Wallet(store, "eoa", w3)

    authorization = wallet.authorize(probe.address, sends=True)  # its own tx uses nonce 0
    assert authorization["nonce"] == 1
    data = bytes.fromhex(probe.encode_abi("poke", [42])[2:])
    sent = wallet.send(address, data=data, authorizations=[authorization])
    receipt = sent.receipt
    assert receipt is not None and receipt.status == 1

    assert shared_node.rpc("eth_getCode", [address, "latest"]) == designator(probe.address)
    assert w3.eth.get_transaction_count(address) == 2  # its tx, then the authorization
    mined = shared_node.rpc("eth_getTransactionByHash", [sent.tx_hash])
    assert mined["type"] == "0x4"
    assert mined["authorizationList"] == [
        {
            "chainId": hex(CHAIN_ID),
            "address": probe.address.lower(),
            "nonce": "0x1",
            "yParity": hex(authorization["yParity"]),
            "r": hex(authorization["r"]),
            "s": hex(authorization["s"]),
        }
    ]
    raw_receipt = shared_node.rpc("eth_getTransactionReceipt", [sent.tx_hash])
    assert raw_receipt["type"] == "0x4"
    assert [log["address"] for log in raw_receipt["logs"]] == [address.lower()]
    # The account now answers with the delegate's code over its own storage.
    delegated = w3.eth.contract(address=address, abi=probe.abi)
    assert delegated.functions.value().call() == 42
    assert probe.functions.value().call() == 0
    assert shared_node.rpc("eth_getStorageAt", [address, "0x0"]) == "0x" + hex(42)[2:].rjust(
        64, "0"
    )


def test_invalid_authorizations_are_skipped_and_the_transaction_included(
    w3: Web3, shared_node: NodeProcess, sponsor, probe
) -> None:
    good, wrong_chain, wrong_nonce = Account.create(), Account.create(), Account.create()
    authorizations = [
        wrong_chain.sign_authorization(
            {"chainId": CHAIN_ID + 1, "address": probe.address, "nonce": 0}
        ),
        wrong_nonce.sign_authorization({"chainId": CHAIN_ID, "address": probe.address, "nonce": 5}),
        good.sign_authorization({"chainId": 0, "address": probe.address, "nonce": 0}),
    ]
    call = {
        "from": sponsor.address,
        "to": good.address,
        "data": probe.encode_abi("poke", [7]),
        "authorizationList": [
            {
                "chainId": hex(a.chain_id),
                "address": Web3.to_checksum_address(a.address),
                "nonce": hex(a.nonce),
                "yParity": hex(a.y_parity),
                "r": hex(a.r),
                "s": hex(a.s),
            }
            for a in authorizations
        ],
    }
    estimate = int(shared_node.rpc("eth_estimateGas", [call]), 16)
    assert estimate > 21_000 + 3 * 25_000  # each authorization is intrinsic gas
    tx = set_code_tx(w3, sponsor, good.address, call["data"], authorizations, estimate)
    tx_hash = w3.eth.send_raw_transaction(sponsor.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    assert receipt["status"] == 1 and receipt["type"] == 4
    assert receipt["gasUsed"] <= estimate
    assert shared_node.rpc("eth_getCode", [good.address, "latest"]) == designator(probe.address)
    for skipped in (wrong_chain, wrong_nonce):
        assert shared_node.rpc("eth_getCode", [skipped.address, "latest"]) == "0x"
        assert w3.eth.get_transaction_count(skipped.address) == 0
    assert w3.eth.get_transaction_count(good.address) == 1
    assert w3.eth.contract(address=good.address, abi=probe.abi).functions.value().call() == 7

    # Delegating to the zero address clears the designator (EIP-7702).
    clear = good.sign_authorization({"chainId": CHAIN_ID, "address": "0x" + "00" * 20, "nonce": 1})
    tx = set_code_tx(w3, sponsor, sponsor.address, "0x", [clear], 100_000)
    tx_hash = w3.eth.send_raw_transaction(sponsor.sign_transaction(tx).raw_transaction)
    assert w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)["status"] == 1
    assert shared_node.rpc("eth_getCode", [good.address, "latest"]) == "0x"


def test_pool_refusals_carry_geths_messages(
    w3: Web3, shared_node: NodeProcess, sponsor, probe
) -> None:
    authority = Account.create()
    auth = authority.sign_authorization({"chainId": CHAIN_ID, "address": probe.address, "nonce": 0})
    tx = set_code_tx(w3, sponsor, probe.address, "0x", [auth], 30_000)
    raw = sponsor.sign_transaction(tx).raw_transaction
    with pytest.raises(RpcFailure) as failure:
        shared_node.rpc("eth_sendRawTransaction", [raw.to_0x_hex()])
    assert (failure.value.code, failure.value.message) == (
        -32000,
        "intrinsic gas too low: have 30000, want 46000",
    )
    tx = set_code_tx(w3, sponsor, probe.address, "0x", [auth], 60_000) | {"chainId": 99}
    raw = sponsor.sign_transaction(tx).raw_transaction
    with pytest.raises(RpcFailure) as failure:
        shared_node.rpc("eth_sendRawTransaction", [raw.to_0x_hex()])
    assert failure.value.message == "invalid sender: invalid chain id for signer: have 99 want 1337"
    call = {"from": sponsor.address, "authorizationList": [], "data": "0x"}
    with pytest.raises(RpcFailure) as failure:
        shared_node.rpc("eth_call", [{**call, "authorizationList": [{"chainId": "0x1"}]}])
    assert failure.value.code == -32602


@pytest.mark.parametrize("script", ["viem_7702.mjs", "ethers_7702.mjs"])
def test_viem_and_ethers_send_set_code_transactions(
    w3: Web3, shared_node: NodeProcess, dev_accounts, script: str
) -> None:
    """Clients no one here wrote: each signs authorizations its own way and must find the
    delegation, the receipts and the raw reads as geth would show them."""
    assert (REPO / "node_modules" / "viem").is_dir(), "run `npm ci` first"
    account = fresh_funded_account(w3, dev_accounts[1])
    done = subprocess.run(
        ["node", str(REPO / "tests" / "clients" / script)],
        cwd=REPO,
        env={**os.environ, "RPC_URL": shared_node.url, "PRIVATE_KEY": account.key.to_0x_hex()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["setCodeTx"].startswith("0x")
    assert shared_node.rpc("eth_getTransactionByHash", [report["setCodeTx"]])["type"] == "0x4"


def test_the_auditor_re_executes_set_code_blocks(shared_node: NodeProcess) -> None:
    head = int(shared_node.rpc("eth_blockNumber"), 16)
    types = {
        tx["type"]
        for number in range(1, head + 1)
        for tx in shared_node.rpc("eth_getBlockByNumber", [hex(number), True])["transactions"]
    }
    assert "0x4" in types, "runs last: the blocks hold the set-code transactions above"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tally_cli",
            "audit",
            "verify",
            "--rpc",
            shared_node.url,
            "--to",
            str(head),
            "--reexecute",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{head} re-executed" in done.stdout
