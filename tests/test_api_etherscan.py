"""The Etherscan-compatible API (`/api?module=...`) of a real `tally dev` node, field by field
against what JSON-RPC says about the same transactions: value transfers, ERC-20 transfers of
the genesis WalletToken and of a deployed plain ERC-20 (DevToken), internal transactions made
by hand-assembled contracts that forward value (nested, and into a call that reverts) and
create contracts with CREATE and CREATE2, failed transactions, logs, block by time; then
paging, sorting, block ranges, roles, bad parameters and the rate limit, all in Etherscan's
envelope."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from eth._utils.address import generate_contract_address, generate_safe_contract_address
from eth_abi import decode, encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_canonical_address, to_checksum_address

from contracts import load_artifact
from tests.conftest import NodeProcess
from tests.test_api_support import (
    CHAIN_ID,
    TOKEN,
    Api,
    Sender,
    admin_key,
    call_data,
    mint,
    selector,
    start_node,
    token_transfer,
)

FORWARDER_RUNTIME = bytes.fromhex(
    "6000 6000"  # retSize 0, retOffset 0
    "6020 36 03"  # argsSize = CALLDATASIZE - 32
    "80 6020 6000 37"  # CALLDATACOPY(mem 0, calldata 32, argsSize)
    "6000 34 6000 35 5a"  # argsOffset 0, value CALLVALUE, to CALLDATALOAD(0), GAS
    "f1 50 00"  # CALL, POP, STOP
)
"""Calls the address in calldata word 0 with all its gas, the call's value and calldata[32:]
as input; ignores the outcome (so a reverted inner call leaves the value here)."""
FACTORY_RUNTIME = bytes.fromhex(
    "36 6000 6000 37"  # CALLDATACOPY(mem 0, calldata 0, CALLDATASIZE)
    "36 6000 34 f0 50"  # CREATE(CALLVALUE, mem 0, CALLDATASIZE), POP
    "6007 36 6000 6000 f5 50"  # CREATE2(0, mem 0, CALLDATASIZE, salt 7), POP
    "00"
)
"""CREATE with the call's value and the calldata as init code, then CREATE2 of the same."""


def deployer(runtime: bytes) -> bytes:
    """Init code returning `runtime` (CODECOPY it to memory 0, RETURN it)."""
    size = len(runtime)
    return bytes([0x60, size, 0x60, 12, 0x60, 0, 0x39, 0x60, size, 0x60, 0, 0xF3]) + runtime


FORWARDER = deployer(FORWARDER_RUNTIME)
FACTORY = deployer(FACTORY_RUNTIME)
GAS_PRICE = 7
TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
ENTERPRISE, AUDITOR, CUSTOMER, OTHER_CUSTOMER = 3, 5, 6, 7


def word(address: str) -> bytes:
    return bytes(12) + to_canonical_address(address)


@dataclass
class Chain:
    node: NodeProcess
    api: httpx.Client
    keys: dict[str, str]
    dev: list[LocalAccount]
    alice: LocalAccount
    bob: LocalAccount
    alice_txs: list[str]
    dev_token: str
    forwarder: str
    forwarder2: str
    factory: str
    probe: str
    nested: str
    into_revert: str
    creations: str
    failed: str
    out_of_gas: str
    wallet_transfers: list[str]

    def get(self, key: str | None = "admin", **params: Any) -> dict[str, Any]:
        if key is not None:
            params["apikey"] = self.keys[key]
        response = self.api.get("/api", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def ok(self, key: str = "admin", **params: Any) -> Any:
        body = self.get(key, **params)
        assert body["status"] == "1" and body["message"] == "OK", body
        return body["result"]

    def notok(self, key: str | None = "admin", **params: Any) -> str:
        body = self.get(key, **params)
        assert body["status"] == "0" and body["message"] == "NOTOK", body
        return body["result"]

    def rpc(self, method: str, *params: Any) -> Any:
        return self.node.rpc(method, list(params))


def sign(
    sender: Sender, account: LocalAccount, to: str | None, value: int, data: bytes, gas: int
) -> bytes:
    tx: dict[str, Any] = {
        "chainId": CHAIN_ID,
        "nonce": sender.nonce(account),
        "gasPrice": GAS_PRICE,
        "gas": gas,
        "value": value,
        "data": data,
    }
    if to is not None:
        tx["to"] = to_checksum_address(to)
    return bytes(account.sign_transaction(tx).raw_transaction)


def mined(node: NodeProcess, hashes: list[str]) -> list[dict[str, Any]]:
    """Receipts of `hashes` (failed ones too)."""
    deadline = time.monotonic() + 60
    receipts: dict[str, dict] = {}
    while len(receipts) < len(hashes):
        assert time.monotonic() < deadline, "not mined"
        for h in hashes:
            if h not in receipts:
                found = node.rpc("eth_getTransactionReceipt", [h])
                if found:
                    receipts[h] = found
        time.sleep(0.2)
    return [receipts[h] for h in hashes]


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, dev_accounts: list) -> Iterator[Chain]:
    node = start_node(tmp_path_factory.mktemp("etherscan"))
    try:
        yield _build(node, dev_accounts)
    finally:
        node.stop()


def _build(node: NodeProcess, dev: list) -> Chain:
    admin = Api(node, admin_key(node))
    keys = {
        "admin": admin.credential or "",
        "auditor": admin.new_key("auditor", [], "auditor"),
        "enterprise": admin.new_key("enterprise", [dev[ENTERPRISE].address], "enterprise"),
        "customer": admin.new_key("customer", [dev[CUSTOMER].address], "customer"),
    }
    sender = Sender(node)
    alice, bob = Account.create(), Account.create()
    funder = dev[0]
    # Value transfers to and from alice over several blocks, with a non-zero gas price.
    alice_txs = sender.send([sign(sender, funder, alice.address, 10**18, b"", 21_000)])
    mined(node, alice_txs)
    for round_ in range(3):
        raws = [
            sign(sender, funder, alice.address, 1000 + round_ * 10 + i, b"", 21_000)
            for i in range(2)
        ]
        raws.append(sign(sender, alice, dev[9].address, 5 + round_, b"", 21_000))
        hashes = sender.send(raws)
        mined(node, hashes)
        alice_txs += hashes
    # Contracts: a plain ERC-20 deployed by alice, two forwarders, a factory, a Probe.
    devtoken = load_artifact("DevToken")
    probe = load_artifact("Probe")
    deploys = [
        sign(
            sender,
            alice,
            None,
            0,
            bytes.fromhex(devtoken["bytecode"][2:]) + encode(["uint256"], [10**24]),
            3_000_000,
        ),
        sign(sender, funder, None, 0, FORWARDER, 200_000),
        sign(sender, funder, None, 0, FORWARDER, 200_000),
        sign(sender, funder, None, 0, FACTORY, 200_000),
        sign(sender, funder, None, 0, bytes.fromhex(probe["bytecode"][2:]), 2_000_000),
    ]
    receipts = mined(node, sender.send(deploys))
    alice_txs.append(receipts[0]["transactionHash"])
    dev_token, forwarder, forwarder2, factory, probe_address = (
        r["contractAddress"] for r in receipts
    )
    transfer = call_data("transfer(address,uint256)", ["address", "uint256"], [bob.address, 77])
    calls = [
        sign(sender, alice, dev_token, 0, transfer, 100_000),
        sign(sender, funder, forwarder, 5, word(forwarder2) + word(bob.address), 200_000),
        sign(
            sender, funder, forwarder, 3, word(probe_address) + selector("failRequire()"), 200_000
        ),
        sign(sender, funder, factory, 9, FORWARDER, 500_000),
        sign(sender, funder, probe_address, 0, selector("failRequire()"), 100_000),
        sign(
            sender,
            funder,
            probe_address,
            0,
            selector("spin(uint256)") + encode(["uint256"], [10**6]),
            60_000,
        ),
    ]
    hashes = sender.send(calls)
    receipts = mined(node, hashes)
    assert [r["status"] for r in receipts] == ["0x1"] * 4 + ["0x0"] * 2
    alice_txs.append(hashes[0])
    issuer, customer = dev[1], dev[CUSTOMER]
    sender.run([mint(sender, issuer, customer.address, 50_000, 9001)])
    wallet_transfers = sender.send(
        token_transfer(sender, customer, dev[OTHER_CUSTOMER].address, 100 + n) for n in range(3)
    )
    sender.wait(wallet_transfers)
    return Chain(
        node=node,
        api=httpx.Client(base_url=node.url, timeout=60),
        keys=keys,
        dev=dev,
        alice=alice,
        bob=bob,
        alice_txs=alice_txs,
        dev_token=dev_token,
        forwarder=forwarder,
        forwarder2=forwarder2,
        factory=factory,
        probe=probe_address,
        nested=hashes[1],
        into_revert=hashes[2],
        creations=hashes[3],
        failed=hashes[4],
        out_of_gas=hashes[5],
        wallet_transfers=wallet_transfers,
    )


def _int(value: str) -> int:
    return int(value, 16)


def _timestamp(chain: Chain, number: int) -> int:
    return _int(chain.rpc("eth_getBlockByNumber", hex(number), False)["timestamp"])


def _expected_txlist_row(chain: Chain, tx_hash: str, head: int) -> dict[str, str]:
    tx = chain.rpc("eth_getTransactionByHash", tx_hash)
    receipt = chain.rpc("eth_getTransactionReceipt", tx_hash)
    number = _int(tx["blockNumber"])
    data = tx["input"]
    names = {
        "0xa9059cbb": "transfer(address to, uint256 value)",
    }
    return {
        "blockNumber": str(number),
        "timeStamp": str(_timestamp(chain, number)),
        "hash": tx["hash"],
        "nonce": str(_int(tx["nonce"])),
        "blockHash": tx["blockHash"],
        "transactionIndex": str(_int(tx["transactionIndex"])),
        "from": tx["from"].lower(),
        "to": (tx["to"] or "").lower(),
        "value": str(_int(tx["value"])),
        "gas": str(_int(tx["gas"])),
        "gasPrice": str(_int(tx["gasPrice"])),
        "isError": "0" if receipt["status"] == "0x1" else "1",
        "txreceipt_status": "1" if receipt["status"] == "0x1" else "0",
        "input": data,
        "contractAddress": (receipt["contractAddress"] or "").lower(),
        "cumulativeGasUsed": str(_int(receipt["cumulativeGasUsed"])),
        "gasUsed": str(_int(receipt["gasUsed"])),
        "confirmations": str(head - number + 1),
        "methodId": data[:10],
        "functionName": names.get(data[:10], ""),
    }


def test_txlist_matches_json_rpc_field_by_field(chain: Chain) -> None:
    head = _int(chain.rpc("eth_blockNumber"))
    rows = chain.ok(module="account", action="txlist", address=chain.alice.address)
    assert [row["hash"] for row in rows] == chain.alice_txs  # ascending by default
    for row in rows:
        expected = _expected_txlist_row(chain, row["hash"], head)
        assert list(row) == list(expected)  # Etherscan's field order
        assert row == expected
    creation = rows[-2]
    assert creation["to"] == "" and creation["contractAddress"] == chain.dev_token.lower()
    assert creation["methodId"] == creation["input"][:10] != "0x"
    assert rows[0]["gasPrice"] == str(GAS_PRICE) and rows[0]["methodId"] == "0x"
    assert rows[-1]["functionName"] == "transfer(address to, uint256 value)"


def test_txlist_pages_sorts_and_block_ranges(chain: Chain) -> None:
    everything = chain.ok(module="account", action="txlist", address=chain.alice.address)
    hashes = [row["hash"] for row in everything]
    newest = chain.ok(module="account", action="txlist", address=chain.alice.address, sort="desc")
    assert [row["hash"] for row in newest] == hashes[::-1]
    pages = [
        chain.get(
            module="account",
            action="txlist",
            address=chain.alice.address,
            page=page,
            offset=4,
            sort="desc",
        )
        for page in (1, 2, 3, 4)
    ]
    assert [r["hash"] for p in pages[:3] for r in p["result"]] == hashes[::-1]
    assert pages[3] == {"status": "0", "message": "No transactions found", "result": []}
    blocks = sorted({int(row["blockNumber"]) for row in everything})
    low, high = blocks[1], blocks[-2]
    inside = chain.ok(
        module="account",
        action="txlist",
        address=chain.alice.address,
        startblock=low,
        endblock=high,
    )
    assert [r["hash"] for r in inside] == [
        r["hash"] for r in everything if low <= int(r["blockNumber"]) <= high
    ]
    one = chain.ok(
        module="account",
        action="txlist",
        address=chain.alice.address,
        startblock=low,
        endblock=low,
        sort="desc",
        page=1,
        offset=1,
    )
    assert len(one) == 1 and int(one[0]["blockNumber"]) == low
    nobody = Account.create().address
    assert chain.get(module="account", action="txlist", address=nobody) == {
        "status": "0",
        "message": "No transactions found",
        "result": [],
    }


def _token_call(chain: Chain, token: str, signature: str, types: list[str]) -> Any:
    answer = chain.rpc(
        "eth_call", {"to": token, "data": "0x" + selector(signature).hex()}, "latest"
    )
    return decode(types, bytes.fromhex(answer[2:]))[0]


def test_tokentx_matches_transfer_logs(chain: Chain) -> None:
    head = _int(chain.rpc("eth_blockNumber"))
    for holder, token in (
        (chain.bob.address, chain.dev_token),
        (chain.dev[CUSTOMER].address, TOKEN),
    ):
        rows = chain.ok(module="account", action="tokentx", address=holder)
        logs = chain.rpc(
            "eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest", "topics": [TRANSFER_TOPIC]}
        )
        mine = [log for log in logs if holder.lower()[2:] in (log["topics"][1] + log["topics"][2])]
        assert len(rows) == len(mine) > 0
        for row, log in zip(rows, mine, strict=True):
            tx = chain.rpc("eth_getTransactionByHash", log["transactionHash"])
            receipt = chain.rpc("eth_getTransactionReceipt", log["transactionHash"])
            number = _int(log["blockNumber"])
            expected = {
                "blockNumber": str(number),
                "timeStamp": str(_timestamp(chain, number)),
                "hash": log["transactionHash"],
                "nonce": str(_int(tx["nonce"])),
                "blockHash": log["blockHash"],
                "from": "0x" + log["topics"][1][26:],
                "contractAddress": log["address"].lower(),
                "to": "0x" + log["topics"][2][26:],
                "value": str(_int(log["data"])),
                "tokenName": _token_call(chain, log["address"], "name()", ["string"]),
                "tokenSymbol": _token_call(chain, log["address"], "symbol()", ["string"]),
                "tokenDecimal": str(_token_call(chain, log["address"], "decimals()", ["uint8"])),
                "transactionIndex": str(_int(log["transactionIndex"])),
                "gas": str(_int(tx["gas"])),
                "gasPrice": str(_int(tx["gasPrice"])),
                "gasUsed": str(_int(receipt["gasUsed"])),
                "cumulativeGasUsed": str(_int(receipt["cumulativeGasUsed"])),
                "input": "deprecated",
                "methodId": tx["input"][:10],
                "functionName": row["functionName"],
                "confirmations": str(head - number + 1),
            }
            assert row == expected
            assert row["contractAddress"] == token.lower()
    wallet = chain.ok(
        module="account",
        action="tokentx",
        address=chain.dev[CUSTOMER].address,
        contractaddress=TOKEN,
        sort="desc",
    )
    assert wallet[0]["tokenDecimal"] == "2" and wallet[0]["value"] == "102"
    assert (
        chain.get(
            module="account",
            action="tokentx",
            address=chain.dev[CUSTOMER].address,
            contractaddress=chain.dev_token,
        )["message"]
        == "No transactions found"
    )
    token_wide = chain.ok(module="account", action="tokentx", contractaddress=chain.dev_token)
    assert [(r["from"], r["to"], r["value"]) for r in token_wide] == [
        ("0x" + "00" * 20, chain.alice.address.lower(), str(10**24)),
        (chain.alice.address.lower(), chain.bob.address.lower(), "77"),
    ]


def test_txlistinternal_lists_value_moving_calls_and_creations(chain: Chain) -> None:
    f1, f2, bob = chain.forwarder.lower(), chain.forwarder2.lower(), chain.bob.address.lower()
    rows = chain.ok(module="account", action="txlistinternal", address=chain.forwarder2)
    assert [
        (r["hash"], r["from"], r["to"], r["value"], r["traceId"], r["type"], r["isError"])
        for r in rows
    ] == [
        (chain.nested, f1, f2, "5", "0", "call", "0"),
        (chain.nested, f2, bob, "5", "0_0", "call", "0"),
    ]
    nested = chain.rpc("eth_getTransactionReceipt", chain.nested)
    for row in rows:
        assert row["blockNumber"] == str(_int(nested["blockNumber"]))
        assert row["timeStamp"] == str(_timestamp(chain, int(row["blockNumber"])))
        assert 0 <= int(row["gasUsed"]) <= int(row["gas"])
        assert row["contractAddress"] == row["input"] == row["errCode"] == ""
    assert rows[1]["gasUsed"] == "0"  # a plain account runs no code
    assert _int(chain.rpc("eth_getBalance", chain.bob.address, "latest")) == 5
    assert _int(chain.rpc("eth_getBalance", chain.forwarder2, "latest")) == 0

    into_revert = chain.ok(module="account", action="txlistinternal", address=chain.probe)
    assert [(r["from"], r["value"], r["isError"], r["errCode"]) for r in into_revert] == [
        (f1, "3", "1", "Reverted")
    ]
    assert _int(chain.rpc("eth_getBalance", chain.forwarder, "latest")) == 3  # it stayed

    created = chain.ok(module="account", action="txlistinternal", address=chain.factory)
    factory = to_canonical_address(chain.factory)
    first = "0x" + generate_contract_address(factory, 1).hex()
    second = "0x" + generate_safe_contract_address(factory, 7, FORWARDER).hex()
    assert [
        (r["to"], r["contractAddress"], r["value"], r["type"], r["traceId"]) for r in created
    ] == [("", first, "9", "create", "0"), ("", second, "0", "create", "1")]
    for address, balance in ((first, 9), (second, 0)):
        assert chain.rpc("eth_getCode", address, "latest") == "0x" + FORWARDER_RUNTIME.hex()
        assert _int(chain.rpc("eth_getBalance", address, "latest")) == balance
    assert chain.ok(module="account", action="txlistinternal", address=first) == created[:1]

    by_hash = chain.ok(module="account", action="txlistinternal", txhash=chain.nested)
    assert [{k: v for k, v in r.items() if k not in ("hash", "traceId")} for r in rows] == by_hash
    assert chain.get(module="account", action="txlistinternal", txhash=chain.failed)["result"] == []
    newest = chain.ok(
        module="account",
        action="txlistinternal",
        address=chain.forwarder,
        sort="desc",
        page=1,
        offset=1,
    )
    assert newest == into_revert

    # By block range (no address): every internal transaction of those blocks, in order.
    blocks = [int(r["blockNumber"]) for r in rows + into_revert + created]
    span: dict[str, Any] = {"startblock": min(blocks), "endblock": max(blocks)}
    in_range = chain.ok(module="account", action="txlistinternal", **span)
    assert in_range == rows + into_revert + created
    backwards = chain.ok(
        module="account", action="txlistinternal", sort="desc", page=2, offset=2, **span
    )
    assert backwards == in_range[::-1][2:4]
    assert "Customer" in chain.notok("customer", module="account", action="txlistinternal", **span)


def test_balances_match_json_rpc(chain: Chain) -> None:
    for address in (chain.alice.address, chain.bob.address, chain.forwarder):
        expected = _int(chain.rpc("eth_getBalance", address, "latest"))
        assert chain.ok(module="account", action="balance", address=address, tag="latest") == str(
            expected
        )
    for holder, token in (
        (chain.bob.address, chain.dev_token),
        (chain.dev[OTHER_CUSTOMER].address, TOKEN),
    ):
        data = selector("balanceOf(address)") + word(holder)
        expected = _int(chain.rpc("eth_call", {"to": token, "data": "0x" + data.hex()}, "latest"))
        assert expected > 0
        assert chain.ok(
            module="account", action="tokenbalance", contractaddress=token, address=holder
        ) == str(expected)


def _etherscan_log(log: dict[str, Any], chain: Chain) -> dict[str, Any]:
    receipt = chain.rpc("eth_getTransactionReceipt", log["transactionHash"])
    tx = chain.rpc("eth_getTransactionByHash", log["transactionHash"])

    def short(value: int) -> str:
        return "0x" if value == 0 else hex(value)

    return {
        "address": log["address"],
        "topics": log["topics"],
        "data": log["data"],
        "blockNumber": short(_int(log["blockNumber"])),
        "blockHash": log["blockHash"],
        "timeStamp": short(_timestamp(chain, _int(log["blockNumber"]))),
        "gasPrice": short(_int(tx["gasPrice"])),
        "gasUsed": short(_int(receipt["gasUsed"])),
        "logIndex": short(_int(log["logIndex"])),
        "transactionHash": log["transactionHash"],
        "transactionIndex": short(_int(log["transactionIndex"])),
    }


def test_get_logs_matches_eth_get_logs(chain: Chain) -> None:
    truth = chain.rpc(
        "eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest", "address": chain.dev_token}
    )
    rows = chain.ok(
        module="logs", action="getLogs", fromBlock=0, toBlock="latest", address=chain.dev_token
    )
    assert rows == [_etherscan_log(log, chain) for log in truth] and len(rows) == 2
    mint_topic = "0x" + word("0x" + "00" * 20).hex()
    bob_topic = "0x" + word(chain.bob.address).hex()
    both = chain.ok(
        module="logs",
        action="getLogs",
        topic0=TRANSFER_TOPIC,
        topic1=mint_topic,
        topic0_1_opr="and",
        address=chain.dev_token,
    )
    assert [r["topics"][2] for r in both] == ["0x" + word(chain.alice.address).hex()]
    either = chain.ok(
        module="logs",
        action="getLogs",
        topic1=mint_topic,
        topic2=bob_topic,
        topic1_2_opr="or",
        address=chain.dev_token,
    )
    assert either == rows
    first = chain.ok(module="logs", action="getLogs", address=chain.dev_token, page=2, offset=1)
    assert first == rows[1:]
    last_block = _int(rows[-1]["blockNumber"])
    assert chain.get(
        module="logs", action="getLogs", address=chain.dev_token, fromBlock=last_block + 1
    ) == {"status": "0", "message": "No records found", "result": []}
    assert "offset" in chain.notok(
        module="logs", action="getLogs", address=chain.dev_token, offset=1001
    )
    assert "topic" in chain.notok(module="logs", action="getLogs", fromBlock=0)
    assert "opr" in chain.notok(
        module="logs",
        action="getLogs",
        topic0=TRANSFER_TOPIC,
        topic1=mint_topic,
        topic0_1_opr="xor",
    )


def test_block_number_by_time_before_after_and_edges(chain: Chain) -> None:
    head = _int(chain.rpc("eth_blockNumber"))
    stamps = [_timestamp(chain, n) for n in range(head + 1)]
    probes = {stamps[0] - 1, stamps[0], stamps[-1], stamps[-1] + 1}
    probes |= {stamps[n] + d for n in range(1, head, max(1, head // 5)) for d in (-1, 0, 1)}
    for when in sorted(probes):
        before = [n for n, s in enumerate(stamps) if s <= when]
        after = [n for n, s in enumerate(stamps) if s >= when]
        for closest, expected in (("before", before[-1:]), ("after", after[:1])):
            body = chain.get(
                module="block", action="getblocknobytime", timestamp=when, closest=closest
            )
            if expected:
                assert body == {"status": "1", "message": "OK", "result": str(expected[0])}
            else:
                assert body == {
                    "status": "0",
                    "message": "NOTOK",
                    "result": "Error! No closest block found",
                }
    latest_at_second = max(n for n, s in enumerate(stamps) if s <= stamps[1])
    alias = chain.get(
        module="block", action="getblocknumberbytime", timestamp=stamps[1], closest="before"
    )
    assert alias == {"status": "1", "message": "OK", "result": str(latest_at_second)}
    assert "timestamp" in chain.notok(
        module="block", action="getblocknobytime", timestamp="yesterday", closest="before"
    )
    assert "closest" in chain.notok(
        module="block", action="getblocknobytime", timestamp=stamps[0], closest="nearest"
    )


def test_transaction_status_and_receipt_status(chain: Chain) -> None:
    def status(tx_hash: str) -> Any:
        return chain.ok(module="transaction", action="getstatus", txhash=tx_hash)

    def receipt_status(tx_hash: str) -> Any:
        return chain.ok(module="transaction", action="gettxreceiptstatus", txhash=tx_hash)

    assert status(chain.nested) == {"isError": "0", "errDescription": ""}
    assert status(chain.failed) == {"isError": "1", "errDescription": "Reverted"}
    assert status(chain.out_of_gas) == {"isError": "1", "errDescription": "Out of gas"}
    assert receipt_status(chain.nested) == {"status": "1"}
    assert receipt_status(chain.failed) == {"status": "0"}
    unknown = "0x" + "ab" * 32
    assert receipt_status(unknown) == {"status": ""}  # Etherscan's answer for an unknown hash
    assert status(unknown) == {"isError": "0", "errDescription": ""}


def test_roles_and_credentials(chain: Chain) -> None:
    customer, other = chain.dev[CUSTOMER].address, chain.dev[OTHER_CUSTOMER].address
    own = chain.ok("customer", module="account", action="tokentx", address=customer)
    assert own == chain.ok("auditor", module="account", action="tokentx", address=customer)
    for action in ("txlist", "tokentx", "txlistinternal", "balance"):
        refusal = chain.notok("customer", module="account", action=action, address=other)
        assert refusal == "Error! This API key may not read that address"
        assert chain.notok("enterprise", module="account", action=action, address=other)
    chain.ok("auditor", module="account", action="txlist", address=chain.alice.address)
    chain.ok(
        "enterprise", module="account", action="balance", address=chain.dev[ENTERPRISE].address
    )
    assert "Customer" in chain.notok(
        "customer", module="logs", action="getLogs", address=chain.dev_token
    )
    chain.ok("enterprise", module="logs", action="getLogs", address=chain.dev_token)
    assert "Customer" in chain.notok(
        "customer", module="account", action="tokentx", contractaddress=TOKEN
    )
    # A customer sees the status of its own token payment, not of someone else's transaction.
    mine = chain.wallet_transfers[0]
    assert chain.ok("customer", module="transaction", action="getstatus", txhash=mine)
    assert "transaction" in chain.notok(
        "customer", module="transaction", action="getstatus", txhash=chain.nested
    )
    chain.ok("customer", module="block", action="getblocknobytime", timestamp=0, closest="after")
    assert "transaction" in chain.notok(
        "customer", module="account", action="txlistinternal", txhash=chain.nested
    )
    assert chain.get("customer", module="account", action="txlistinternal", txhash=mine) == {
        "status": "0",
        "message": "No transactions found",
        "result": [],
    }
    # Credentials: apikey, the Authorization header, X-API-Key; missing and invalid ones.
    params = {"module": "account", "action": "balance", "address": customer}
    for headers in (
        {"Authorization": f"Bearer {chain.keys['customer']}"},
        {"X-API-Key": chain.keys["customer"]},
    ):
        body = chain.api.get("/api", params=params, headers=headers).json()
        assert body["status"] == "1", body
    assert chain.notok(None, **params) == "Missing/Invalid API Key"
    assert chain.api.get("/api", params={**params, "apikey": "tk_nope"}).json() == {
        "status": "0",
        "message": "NOTOK",
        "result": "Invalid API Key",
    }


def test_bad_parameters_are_refused_in_the_envelope(chain: Chain) -> None:
    address = chain.alice.address
    cases: list[tuple[dict[str, Any], str]] = [
        ({"module": "account", "action": "txlist", "address": "0x1234"}, "Invalid address"),
        ({"module": "account", "action": "txlist"}, "address"),
        ({"module": "accounts", "action": "txlist", "address": address}, "Module"),
        ({"module": "account", "action": "txlistx", "address": address}, "Action"),
        (
            {
                "module": "account",
                "action": "txlist",
                "address": address,
                "page": 11,
                "offset": 1000,
            },
            "Result window is too large",
        ),
        ({"module": "account", "action": "txlist", "address": address, "sort": "sideways"}, "sort"),
        (
            {"module": "account", "action": "txlist", "address": address, "startblock": "-1"},
            "startblock",
        ),
        ({"module": "account", "action": "txlist", "address": address, "chainid": "1"}, "chainid"),
        ({"module": "transaction", "action": "getstatus", "txhash": "0x12"}, "txhash"),
        (
            {
                "module": "account",
                "action": "tokenbalance",
                "address": address,
                "contractaddress": chain.bob.address,
            },
            "balanceOf",
        ),
        ({"module": "account", "action": "tokentx"}, "address"),
    ]
    for params, words in cases:
        assert words in chain.notok(**params), params
    assert chain.ok(module="account", action="txlist", address=address, chainid=CHAIN_ID)
    before = chain.ok(module="account", action="balance", address=address)
    assert (
        chain.get(module="account", action="txlist", address=address.lower(), startblock=10**6)[
            "result"
        ]
        == []
    )
    assert chain.ok(module="account", action="balance", address=address) == before


def test_rate_limit_answers_in_the_envelope(
    node_factory: Callable[..., NodeProcess], dev_accounts: list[LocalAccount]
) -> None:
    node = node_factory(extra_args=("--api-rate-limit", "3/minute"))
    key = admin_key(node)
    params = {
        "module": "account",
        "action": "balance",
        "address": dev_accounts[0].address,
        "apikey": key,
    }
    answers = [httpx.get(node.url + "/api", params=params, timeout=30) for _ in range(5)]
    assert [a.json()["status"] for a in answers[:3]] == ["1"] * 3
    limited = answers[-1]
    assert limited.status_code == 200
    assert limited.json() == {"status": "0", "message": "NOTOK", "result": "Max rate limit reached"}
    assert int(limited.headers["Retry-After"]) >= 1


@pytest.mark.filterwarnings("ignore:path is deprecated:DeprecationWarning")
def test_a_stock_etherscan_client_reads_the_node(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """etherscan-python (PyPI), written for etherscan.io, pointed at the node: only its base
    URL changes; it sends the key as `apikey` and raises on any status "0"."""
    # etherscan-python ships no type information (and pyproject lists no override for it).
    from etherscan import Etherscan
    from etherscan.enums.fields_enum import FieldsEnum

    monkeypatch.setattr(FieldsEnum, "PREFIX", chain.node.url + "/api?")
    client = Etherscan(chain.keys["auditor"])
    alice, bob = chain.alice.address, chain.bob.address
    balance = _int(chain.rpc("eth_getBalance", alice, "latest"))
    assert client.get_eth_balance(alice) == str(balance)
    txs = client.get_normal_txs_by_address(alice, 0, 99999999, "asc")
    assert [tx["hash"] for tx in txs] == chain.alice_txs
    page = client.get_normal_txs_by_address_paginated(alice, 2, 5, 0, 99999999, "desc")
    assert [tx["hash"] for tx in page] == chain.alice_txs[::-1][5:10]
    transfers = client.get_erc20_token_transfer_events_by_address(bob, 0, 99999999, "asc")
    assert [(t["from"], t["value"], t["tokenSymbol"]) for t in transfers] == [
        (alice.lower(), "77", _token_call(chain, chain.dev_token, "symbol()", ["string"]))
    ]
    assert client.get_acc_balance_by_token_and_contract_address(chain.dev_token, bob) == "77"
    internal = client.get_internal_txs_by_txhash(chain.nested)
    assert [(t["to"], t["value"]) for t in internal] == [
        (chain.forwarder2.lower(), "5"),
        (bob.lower(), "5"),
    ]
    assert client.get_contract_execution_status(chain.failed)["isError"] == "1"
    assert client.get_tx_receipt_status(chain.nested) == {"status": "1"}
    number = _int(chain.rpc("eth_getTransactionReceipt", chain.nested)["blockNumber"])
    when = _timestamp(chain, number)
    assert client.get_block_number_by_timestamp(when, "after") == str(
        min(n for n in range(number + 1) if _timestamp(chain, n) >= when)
    )
    customer = Etherscan(chain.keys["customer"])
    with pytest.raises(AssertionError, match="may not read that address"):
        customer.get_eth_balance(alice)
