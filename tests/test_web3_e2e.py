"""web3.py end to end against a real `tally dev` node: pay, deploy, transfer tokens, events.

Everything goes through JSON-RPC as a wallet would: transactions are signed locally with
eth-account and sent raw (the node holds no keys).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3, Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.middleware import ExtraDataToPOAMiddleware
from web3.providers.persistent import WebSocketProvider
from web3.types import TxData, TxParams, TxReceipt

from contracts import load_artifact
from tests.conftest import NodeProcess, fresh_funded_account

INITIAL_SUPPLY = 1_000_000 * 10**18


def send(w3: Web3, account: LocalAccount, tx: dict[str, Any] | TxParams) -> TxReceipt:
    fee = {} if "maxFeePerGas" in tx else {"gasPrice": w3.eth.gas_price}
    tx = {
        "chainId": w3.eth.chain_id,
        **fee,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        **tx,
    }
    if "gas" not in tx:
        tx["gas"] = w3.eth.estimate_gas(
            cast(
                TxParams, {k: v for k, v in tx.items() if k != "nonce"} | {"from": account.address}
            )
        )
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)


def deploy(w3: Web3, account: LocalAccount, name: str, *args: Any) -> Contract:
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = send(
        w3,
        account,
        factory.constructor(*args).build_transaction(
            {
                "from": account.address,
                "gasPrice": 0,
                "nonce": 0,
                "chainId": w3.eth.chain_id,
                "gas": 3_000_000,
            }
        )
        | {"nonce": w3.eth.get_transaction_count(account.address, "pending")},
    )
    assert receipt["status"] == 1
    address = receipt["contractAddress"]
    assert address is not None
    return w3.eth.contract(address=address, abi=artifact["abi"])


def call_params(payer: LocalAccount, nonce: int = 0) -> TxParams:
    """The fields of every contract call here (a cast: web3's TxParams wants its Wei and Nonce
    types for the plain ints)."""
    return cast(
        TxParams,
        {"from": payer.address, "gasPrice": 0, "nonce": nonce, "chainId": 1337, "gas": 100_000},
    )


@pytest.fixture(scope="module")
def payer(w3: Web3, dev_accounts: list[LocalAccount]) -> LocalAccount:
    return fresh_funded_account(w3, dev_accounts[0], 10**21)


def test_chain_identity(w3: Web3) -> None:
    assert w3.eth.chain_id == 1337
    assert w3.eth.get_block("latest")["number"] == w3.eth.block_number
    assert w3.eth.get_block("finalized")["hash"] == w3.eth.get_block("latest")["hash"]


def test_plain_transfer_moves_value_and_is_final(w3: Web3, payer: LocalAccount) -> None:
    recipient = Account.create().address
    before = w3.eth.get_balance(payer.address)
    receipt = send(w3, payer, {"to": recipient, "value": 12345, "gas": 21000})
    assert receipt["status"] == 1 and receipt["gasUsed"] == 21000
    assert w3.eth.get_balance(recipient) == 12345
    assert w3.eth.get_balance(payer.address) == before - 12345  # zero base fee, zero price
    block = w3.eth.get_block(receipt["blockNumber"], full_transactions=True)
    assert block["hash"] == receipt["blockHash"]
    full = cast(Sequence[TxData], block["transactions"])  # full_transactions=True
    assert any(tx["hash"] == receipt["transactionHash"] for tx in full)
    tx = w3.eth.get_transaction(receipt["transactionHash"])
    assert tx["from"] == payer.address and tx["to"] == recipient and tx["value"] == 12345


def test_eip1559_and_eip2930_transactions(w3: Web3, payer: LocalAccount) -> None:
    recipient = Account.create().address
    dynamic = send(
        w3,
        payer,
        {
            "to": recipient,
            "value": 1,
            "gas": 21000,
            "type": 2,
            "maxFeePerGas": 10,
            "maxPriorityFeePerGas": 1,
        },
    )
    assert dynamic["status"] == 1 and dynamic["type"] == 2
    assert dynamic["effectiveGasPrice"] == 1
    access = send(
        w3,
        payer,
        {
            "to": recipient,
            "value": 2,
            "gas": 30000,
            "type": 1,
            "accessList": [{"address": recipient, "storageKeys": []}],
        },
    )
    assert access["status"] == 1 and access["type"] == 1
    assert w3.eth.get_balance(recipient) == 3


def test_erc20_deploy_transfer_balances_and_events(w3: Web3, payer: LocalAccount) -> None:
    token = deploy(w3, payer, "DevToken", INITIAL_SUPPLY)
    assert token.functions.totalSupply().call() == INITIAL_SUPPLY
    assert w3.eth.get_code(token.address) != b""
    holder = Account.create().address
    start = w3.eth.block_number
    tx = token.functions.transfer(holder, 500).build_transaction(call_params(payer))
    receipt = send(
        w3, payer, tx | {"nonce": w3.eth.get_transaction_count(payer.address, "pending")}
    )
    assert receipt["status"] == 1
    assert token.functions.balanceOf(holder).call() == 500
    assert token.functions.balanceOf(payer.address).call() == INITIAL_SUPPLY - 500
    (event,) = token.events.Transfer().process_receipt(receipt)
    assert event["args"]["to"] == holder and event["args"]["value"] == 500
    logs = token.events.Transfer().get_logs(from_block=start, argument_filters={"to": holder})
    assert [log["transactionHash"] for log in logs] == [receipt["transactionHash"]]


def test_revert_reasons_reach_web3(w3: Web3, payer: LocalAccount) -> None:
    probe = deploy(w3, payer, "Probe")
    with pytest.raises(ContractLogicError, match="probe: nope"):
        probe.functions.failRequire().call()
    with pytest.raises(ContractLogicError, match="probe: nope"):
        probe.functions.failRequire().estimate_gas({"from": payer.address})
    with pytest.raises(ContractCustomError):
        probe.functions.failCustom(7).call()


def test_a_reverted_transaction_is_mined_with_status_zero(w3: Web3, payer: LocalAccount) -> None:
    probe = deploy(w3, payer, "Probe")
    tx = probe.functions.failRequire().build_transaction(call_params(payer))
    receipt = send(
        w3, payer, tx | {"nonce": w3.eth.get_transaction_count(payer.address, "pending")}
    )
    assert receipt["status"] == 0 and receipt["gasUsed"] < 100_000


def test_log_filter_sees_new_events(w3: Web3, payer: LocalAccount) -> None:
    probe = deploy(w3, payer, "Probe")
    event_filter = probe.events.Poked.create_filter(from_block="latest")
    tx = probe.functions.poke(42).build_transaction(call_params(payer))
    send(w3, payer, tx | {"nonce": w3.eth.get_transaction_count(payer.address, "pending")})
    changes = event_filter.get_new_entries()
    assert [entry["args"]["value"] for entry in changes] == [42]
    assert event_filter.get_new_entries() == []
    assert probe.functions.value().call() == 42


def test_websocket_subscription_receives_new_heads_and_logs(
    w3: Web3, payer: LocalAccount, shared_node: NodeProcess
) -> None:
    probe = deploy(w3, payer, "Probe")

    async def watch() -> tuple[dict, dict]:
        async with AsyncWeb3(WebSocketProvider(shared_node.ws_url)) as aw3:
            aw3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
            heads = await aw3.eth.subscribe("newHeads")
            logs = await aw3.eth.subscribe("logs", {"address": probe.address})
            tx = probe.functions.poke(7).build_transaction(
                call_params(payer, w3.eth.get_transaction_count(payer.address, "pending"))
            )
            await asyncio.to_thread(send, w3, payer, tx)
            seen: dict[str, dict] = {}

            async def collect() -> None:
                async for message in aw3.socket.process_subscriptions():
                    kind = {heads: "heads", logs: "logs"}[message["subscription"]]
                    seen.setdefault(kind, message["result"])
                    if len(seen) == 2:
                        return

            await asyncio.wait_for(collect(), timeout=20)
            return seen["heads"], seen["logs"]

    head, log = asyncio.run(watch())
    assert head["number"] >= 1
    assert log["address"].lower() == probe.address.lower()
    assert int(log["data"].hex() if isinstance(log["data"], bytes) else log["data"], 16) == 7
