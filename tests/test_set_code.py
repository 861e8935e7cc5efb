"""EIP-7702 set-code transactions (type 4) on a real node: sent by the SDK (keys in a real
key store) and by web3.py/eth-account, executed, shown, refused, and re-executed by the
auditor's stock py-evm replay (`tally audit verify --reexecute`); and next to anvil (foundry's
dev node, pinned from npm), where `eth_createAccessList` and a type-4 receipt must agree field
by field.

The delegate is `Probe`: once an account delegates to it, `poke(v)` called on that account
writes the account's own slot 0 and logs from the account's address.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import rlp
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from trie import HexaryTrie
from web3 import Web3
from web3.contract import Contract

from benchmarks.peers import free_port, run_anvil
from client import FileKeyStore
from client.wallet import Wallet
from contracts import load_artifact
from tests.conftest import NodeProcess, RpcFailure, fresh_funded_account, web3_for
from tests.rpc_txs import deploy, send
from tests.test_api_support import Api, admin_key

REPO = Path(__file__).resolve().parent.parent
CHAIN_ID = 1337
GWEI = 10**9


def designator(delegate: str) -> str:
    return "0xef0100" + delegate[2:].lower()


def set_code_tx(
    w3: Web3, sender: LocalAccount, to: str, data: str, authorizations: list, gas: int
) -> dict:
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
def sponsor(w3: Web3, dev_accounts: list[LocalAccount]) -> LocalAccount:
    return fresh_funded_account(w3, dev_accounts[0])


@pytest.fixture(scope="module")
def probe(w3: Web3, sponsor: LocalAccount) -> Contract:
    return deploy(w3, sponsor, "Probe")


def test_sdk_wallet_delegates_itself_and_runs_the_delegates_code(
    w3: Web3, shared_node: NodeProcess, sponsor: LocalAccount, probe: Contract, tmp_path: Path
) -> None:
    store = FileKeyStore(tmp_path / "keys", "pw", scrypt_n=2**12)
    # Key stores list checksummed addresses (typed str).
    address = cast(ChecksumAddress, store.create("eoa").address)
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
    # Typed receipts encode as consensus does: they rebuild the block's receiptsRoot.
    block = w3.eth.get_block(receipt.block_number)
    trie = HexaryTrie({})
    for index, encoded in enumerate(
        shared_node.rpc("debug_getRawReceipts", [hex(block["number"])])
    ):
        trie[rlp.encode(index)] = bytes.fromhex(encoded[2:])
    assert trie.root_hash == block["receiptsRoot"]
    # The REST API (and so the explorer) shows it too.
    auditor = Api(shared_node, admin_key(shared_node)).new_key("auditor")
    shown = Api(shared_node, auditor).ok(f"/transactions/{sent.tx_hash}")
    assert (shown["status"], shown["type"], shown["from"].lower()) == (
        "success",
        4,
        address.lower(),
    )


def test_invalid_authorizations_are_skipped_and_the_transaction_included(
    w3: Web3, shared_node: NodeProcess, sponsor: LocalAccount, probe: Contract
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
    listed = shared_node.rpc("eth_createAccessList", [call])
    # The recipient (here the authority) is listed only for the slot its delegated code writes.
    assert listed["accessList"] == [
        {"address": good.address.lower(), "storageKeys": ["0x" + "00" * 32]}
    ]
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
    w3: Web3, shared_node: NodeProcess, sponsor: LocalAccount, probe: Contract
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
    w3: Web3, shared_node: NodeProcess, dev_accounts: list[LocalAccount], script: str
) -> None:
    """Clients no one here wrote: each signs authorizations its own way and must find the
    delegation, the receipts and the raw reads as geth would show them."""
    assert (REPO / "node_modules" / "viem").is_dir(), "run `npm ci` first"
    account = fresh_funded_account(w3, dev_accounts[1])
    done = subprocess.run(
        ["node", str(REPO / "tests" / "clients" / script)],
        cwd=REPO,
        env={
            **os.environ,
            "RPC_URL": shared_node.url,
            # LocalAccount.key is typed bytes but is HexBytes at run time.
            "PRIVATE_KEY": cast(HexBytes, account.key).to_0x_hex(),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["setCodeTx"].startswith("0x")
    assert shared_node.rpc("eth_getTransactionByHash", [report["setCodeTx"]])["type"] == "0x4"


# --- the same transactions on anvil ------------------------------------------------------------


@pytest.fixture(scope="module")
def anvil() -> Iterator[Web3]:
    with run_anvil(free_port(), block_time=None) as url:
        yield web3_for(url)


def rpc(w3: Web3, method: str, params: list[Any]) -> Any:
    response = w3.provider.make_request(method, params)  # type: ignore[arg-type]
    assert "error" not in response, response
    return response["result"]


def fund(w3: Web3, funder: Any) -> Any:
    """A fresh account with 100 ETH: gas-free on Tally, paying anvil's base fee there."""
    account = Account.create()
    tx = {
        "to": account.address,
        "value": 10**20,
        "gas": 21_000,
        "maxFeePerGas": 10 * GWEI,
        "maxPriorityFeePerGas": GWEI,
        "nonce": w3.eth.get_transaction_count(funder.address, "pending"),
        "chainId": w3.eth.chain_id,
    }
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(funder.sign_transaction(tx).raw_transaction), timeout=30
    )
    return account


def deploy_probe(w3: Web3, owner: Any) -> Any:
    """`Probe`, paying anvil's base fee (Tally's is zero: the same fees work on both)."""
    artifact = load_artifact("Probe")
    fees = {"maxFeePerGas": 10 * GWEI, "maxPriorityFeePerGas": GWEI}
    receipt = send(w3, owner, {"data": artifact["bytecode"], "gas": 3_000_000, **fees})
    assert receipt["status"] == 1
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])


def test_create_access_list_agrees_with_anvil(
    w3: Web3, anvil: Web3, shared_node: NodeProcess, dev_accounts: list[LocalAccount]
) -> None:
    answers = []
    for chain, owner in ((w3, fresh_funded_account(w3, dev_accounts[2])), (anvil, None)):
        owner = owner or fund(anvil, dev_accounts[0])
        probe = deploy_probe(chain, owner)
        call = {"from": owner.address, "to": probe.address, "data": probe.encode_abi("poke", [5])}
        answer = rpc(chain, "eth_createAccessList", [call, "latest"])
        # The probe's address is the one difference between the two chains.
        answer["accessList"] = [
            {**entry, "address": "probe" if entry["address"] == probe.address.lower() else "?"}
            for entry in answer["accessList"]
        ]
        answers.append(answer)
    tally, reference = answers
    assert tally == reference
    assert tally["accessList"] == [{"address": "probe", "storageKeys": ["0x" + "00" * 32]}]


def test_a_set_code_transaction_reads_as_on_anvil(
    w3: Web3, anvil: Web3, dev_accounts: list[LocalAccount]
) -> None:
    seen = []
    for chain, sender in (
        (w3, fresh_funded_account(w3, dev_accounts[3])),
        (anvil, fund(anvil, dev_accounts[0])),
    ):
        probe = deploy_probe(chain, sender)
        # An authority that exists: anvil 1.7.1 refunds the 12,500 gas of EIP-7702 even for
        # an account never seen, where geth and py-evm (the EIP: "if authority exists in the
        # trie") do not; with an existing one all three agree.
        authority = Account.create()
        fees = {"maxFeePerGas": 10 * GWEI, "maxPriorityFeePerGas": GWEI}
        send(chain, sender, {"to": authority.address, "value": 1, "gas": 21_000, **fees})
        auth = authority.sign_authorization(
            {"chainId": chain.eth.chain_id, "address": probe.address, "nonce": 0}
        )
        tx = {
            "type": 4,
            "chainId": chain.eth.chain_id,
            "nonce": chain.eth.get_transaction_count(sender.address, "pending"),
            "maxFeePerGas": 10 * GWEI,
            "maxPriorityFeePerGas": GWEI,
            "gas": 120_000,
            "to": authority.address,
            "value": 0,
            "data": probe.encode_abi("poke", [3]),
            "accessList": [],
            "authorizationList": [auth],
        }
        tx_hash = chain.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
        receipt = rpc(chain, "eth_getTransactionReceipt", [tx_hash.to_0x_hex()])
        if receipt is None:
            chain.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
            receipt = rpc(chain, "eth_getTransactionReceipt", [tx_hash.to_0x_hex()])
        view = rpc(chain, "eth_getTransactionByHash", [tx_hash.to_0x_hex()])
        code = rpc(chain, "eth_getCode", [authority.address, "latest"])
        seen.append(
            {
                "status": receipt["status"],
                "type": receipt["type"],
                "gasUsed": receipt["gasUsed"],
                "to": receipt["to"] == authority.address.lower(),
                "logs": [log["address"] == authority.address.lower() for log in receipt["logs"]],
                "view type": view["type"],
                "authorization keys": sorted(view["authorizationList"][0]),
                "authorization": {
                    k: v for k, v in view["authorizationList"][0].items() if k != "address"
                }
                | {"r": "same" if int(view["authorizationList"][0]["r"], 16) == auth.r else "?"},
                "designator": code == "0xef0100" + probe.address[2:].lower(),
                "authority nonce": chain.eth.get_transaction_count(authority.address),
            }
        )
    tally, reference = seen
    # chain ids differ only if anvil's were changed; r/s/yParity differ with the address.
    for entry in (tally, reference):
        entry["authorization"].pop("s")
        entry["authorization"].pop("yParity")
    assert tally == reference
    assert tally["status"] == "0x1" and tally["type"] == "0x4" and tally["designator"]


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


def test_pool_reserves_authorities_as_geth_does(
    node_factory: Callable[..., NodeProcess], dev_accounts: list[LocalAccount]
) -> None:
    """On a node whose next block is far off, so everything below meets in the pool: an
    account a pooled authorization names may hold one transaction, and a set-code transaction
    cannot name an account that already holds several."""
    node = node_factory(block_period=60)
    w3 = web3_for(node.url)
    sponsor, named, busy = dev_accounts[4], dev_accounts[5], dev_accounts[6]

    def raw(account: Any, nonce: int, **fields: Any) -> str:
        tx = {
            "chainId": CHAIN_ID,
            "nonce": nonce,
            "gas": 100_000,
            "gasPrice": 0,
            "to": account.address,
        }
        return account.sign_transaction({**tx, **fields}).raw_transaction.to_0x_hex()

    def set_code_raw(nonce: int, authority: Any) -> str:
        auth = authority.sign_authorization(
            {"chainId": CHAIN_ID, "address": sponsor.address, "nonce": 9}
        )
        tx = set_code_tx(w3, sponsor, sponsor.address, "0x", [auth], 100_000) | {"nonce": nonce}
        return sponsor.sign_transaction(tx).raw_transaction.to_0x_hex()

    # The first block comes at once; the next one 60 s after it.
    warm_up = node.rpc("eth_sendRawTransaction", [raw(dev_accounts[7], 0)])
    w3.eth.wait_for_transaction_receipt(warm_up, timeout=30)
    height = node.rpc("eth_blockNumber")
    node.rpc("eth_sendRawTransaction", [set_code_raw(0, named)])
    node.rpc("eth_sendRawTransaction", [raw(named, 0)])
    with pytest.raises(RpcFailure) as failure:
        node.rpc("eth_sendRawTransaction", [raw(named, 1)])
    assert (failure.value.code, failure.value.message) == (
        -32000,
        "in-flight transaction limit reached for delegated accounts",
    )
    node.rpc("eth_sendRawTransaction", [raw(busy, 0)])
    node.rpc("eth_sendRawTransaction", [raw(busy, 1)])
    with pytest.raises(RpcFailure) as failure:
        node.rpc("eth_sendRawTransaction", [set_code_raw(1, busy)])
    assert failure.value.message == "authority already reserved"
    assert node.rpc("eth_blockNumber") == height, "a block came: the pool was not shared"
