"""`eth_subscribe` / `eth_unsubscribe` over a real node's WebSocket, with real transactions.

Notifications on one connection arrive in the order the node queued them, and a block's
notifications are queued together, so "nothing arrived for X before Y" is a deterministic
check: no sleeps stand in for "nothing will arrive".
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
import websockets
from eth_account.signers.local import LocalAccount
from web3 import Web3

from node.rpc.subscriptions import SubscriptionsApi
from tests.conftest import NodeProcess, RpcFailure, fresh_funded_account
from tests.rpc_txs import POKED_TOPIC, address_topic, deploy, poke_tx, send, sign


class WsClient:
    """A raw JSON-RPC WebSocket client that keeps notifications apart from responses."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.ids = itertools.count(1)
        self.notifications: list[dict] = []

    async def call(self, method: str, *params: Any) -> dict:
        request_id = next(self.ids)
        await self.connection.send(
            json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        )
        while True:
            message = json.loads(await asyncio.wait_for(self.connection.recv(), 20))
            if message.get("id") == request_id:
                return message
            self.notifications.append(message)

    async def result(self, method: str, *params: Any) -> Any:
        response = await self.call(method, *params)
        assert "error" not in response, response
        return response["result"]

    async def notification(self) -> tuple[str, Any]:
        """The next notification as (subscription id, result)."""
        if self.notifications:
            message = self.notifications.pop(0)
        else:
            message = json.loads(await asyncio.wait_for(self.connection.recv(), 20))
        assert message["jsonrpc"] == "2.0" and message["method"] == "eth_subscription"
        assert "id" not in message
        return message["params"]["subscription"], message["params"]["result"]


def run_ws(node: NodeProcess, scenario: Any) -> Any:
    async def main() -> Any:
        async with websockets.connect(node.ws_url, open_timeout=10) as connection:
            return await scenario(WsClient(connection))

    return asyncio.run(main())


@pytest.fixture(scope="module")
def actors(w3: Web3, dev_accounts: list[LocalAccount]) -> dict:
    alice = fresh_funded_account(w3, dev_accounts[0])
    bob = fresh_funded_account(w3, dev_accounts[0])
    return {"alice": alice, "bob": bob, "probe": deploy(w3, alice, "Probe")}


def test_new_heads_logs_and_pending_transactions(
    w3: Web3, shared_node: NodeProcess, actors: dict
) -> None:
    alice, probe = actors["alice"], actors["probe"]

    async def scenario(ws: WsClient) -> tuple:
        heads = await ws.result("eth_subscribe", "newHeads")
        logs = await ws.result(
            "eth_subscribe", "logs", {"address": probe.address, "topics": [POKED_TOPIC]}
        )
        pending = await ws.result("eth_subscribe", "newPendingTransactions")
        nonce = w3.eth.get_transaction_count(alice.address, "pending")
        raws = [sign(w3, alice, poke_tx(probe, value), nonce + i) for i, value in enumerate((1, 2))]
        hashes = [
            await asyncio.to_thread(shared_node.rpc, "eth_sendRawTransaction", ["0x" + r.hex()])
            for r in raws
        ]
        receipts = [
            await asyncio.to_thread(w3.eth.wait_for_transaction_receipt, h, timeout=30)
            for h in hashes
        ]
        blocks = {receipt["blockHash"].to_0x_hex() for receipt in receipts}
        got: dict[str, list] = {heads: [], logs: [], pending: []}
        while len(got[heads]) < len(blocks) or len(got[logs]) < 2 or len(got[pending]) < 2:
            subscription, result = await ws.notification()
            got[subscription].append(result)
        return (heads, logs, pending), got, hashes

    (heads, logs, pending), got, hashes = run_ws(shared_node, scenario)
    assert len({heads, logs, pending}) == 3
    assert all(s.startswith("0x") and int(s, 16) > 0 for s in (heads, logs, pending))
    assert got[pending] == hashes
    receipts = [shared_node.rpc("eth_getTransactionReceipt", [h]) for h in hashes]
    assert got[logs] == [log for receipt in receipts for log in receipt["logs"]]
    assert [int(log["data"], 16) for log in got[logs]] == [1, 2]
    for head in got[heads]:
        block = shared_node.rpc("eth_getBlockByHash", [head["hash"], False])
        assert "transactions" not in head and "uncles" not in head
        for field in (
            "number",
            "parentHash",
            "stateRoot",
            "receiptsRoot",
            "transactionsRoot",
            "logsBloom",
            "timestamp",
            "gasUsed",
            "gasLimit",
            "miner",
            "extraData",
            "baseFeePerGas",
            "mixHash",
        ):
            assert head[field] == block[field], field
    mined = sorted({(int(r["blockNumber"], 16), r["blockHash"]) for r in receipts})
    assert [(int(head["number"], 16), head["hash"]) for head in got[heads]] == mined


def test_logs_subscription_filters_by_topic(
    w3: Web3, shared_node: NodeProcess, actors: dict
) -> None:
    alice, bob, probe = actors["alice"], actors["bob"], actors["probe"]

    async def scenario(ws: WsClient) -> list:
        by_bob = await ws.result(
            "eth_subscribe", "logs", {"topics": [POKED_TOPIC, address_topic(bob.address)]}
        )
        await asyncio.to_thread(send, w3, alice, poke_tx(probe, 7))
        await asyncio.to_thread(send, w3, bob, poke_tx(probe, 8))
        # alice's block committed first: had her log matched, it would have come first
        return [await ws.notification(), by_bob]

    (subscription, log), by_bob = run_ws(shared_node, scenario)
    assert subscription == by_bob
    assert int(log["data"], 16) == 8
    assert log["topics"] == [POKED_TOPIC, address_topic(bob.address)]


def test_unsubscribe_stops_notifications(w3: Web3, shared_node: NodeProcess, actors: dict) -> None:
    async def scenario(ws: WsClient) -> tuple:
        dropped = await ws.result("eth_subscribe", "newHeads")
        kept = await ws.result("eth_subscribe", "newHeads")
        assert await ws.result("eth_unsubscribe", dropped) is True
        again = await ws.call("eth_unsubscribe", dropped)
        receipt = await asyncio.to_thread(
            send, w3, actors["alice"], {"to": actors["bob"].address, "value": 1, "gas": 21_000}
        )
        # `dropped` was created first, so it would have been notified before `kept`
        first = await ws.notification()
        return again, first, kept, receipt

    again, (subscription, head), kept, receipt = run_ws(shared_node, scenario)
    assert again["error"] == {"code": -32000, "message": "subscription not found"}
    assert subscription == kept
    assert head["hash"] == receipt["blockHash"].to_0x_hex()


def test_subscriptions_are_per_connection(shared_node: NodeProcess) -> None:
    async def scenario(ws: WsClient) -> dict:
        async with websockets.connect(shared_node.ws_url) as other_connection:
            other = WsClient(other_connection)
            foreign = await other.result("eth_subscribe", "newHeads")
        return await ws.call("eth_unsubscribe", foreign)

    assert run_ws(shared_node, scenario)["error"]["code"] == -32000


def test_subscribe_refused_over_http(shared_node: NodeProcess) -> None:
    for method, params in (("eth_subscribe", ["newHeads"]), ("eth_unsubscribe", ["0x1"])):
        with pytest.raises(RpcFailure) as failure:
            shared_node.rpc(method, params)
        assert (failure.value.code, failure.value.message) == (
            -32601,
            "notifications not supported",
        )


def test_invalid_subscriptions(shared_node: NodeProcess) -> None:
    async def scenario(ws: WsClient) -> list:
        return [
            await ws.call("eth_subscribe", "syncing2"),
            await ws.call("eth_subscribe", "logs", {"address": "0x12"}),
            await ws.call("eth_subscribe", "logs", {"topics": [None] * 5}),
            await ws.call("eth_subscribe"),
        ]

    unknown, bad_address, too_many_topics, no_kind = run_ws(shared_node, scenario)
    assert unknown["error"] == {
        "code": -32601,
        "message": 'no "syncing2" subscription in eth namespace',
    }
    assert bad_address["error"]["code"] == -32602
    assert too_many_topics["error"]["code"] == -32602
    assert no_kind["error"]["code"] == -32602


def test_a_closed_connection_leaves_the_node_serving(
    w3: Web3, shared_node: NodeProcess, actors: dict
) -> None:
    async def subscribe_and_leave(ws: WsClient) -> None:
        await ws.result("eth_subscribe", "newHeads")
        await ws.result("eth_subscribe", "newPendingTransactions")

    run_ws(shared_node, subscribe_and_leave)
    receipt = send(w3, actors["alice"], {"to": actors["bob"].address, "value": 1, "gas": 21_000})
    assert receipt["status"] == 1
    assert "Traceback" not in shared_node.log_text()


# --- the subscription table, without a node ------------------------------------------------------


class FakeConnection:
    def __init__(self) -> None:
        self.subscriptions: dict[str, Any] = {}
        self.closed = False
        self.sent: list[bytes] = []

    def notify(self, payload: bytes) -> None:
        self.sent.append(payload)


def test_disconnect_drops_only_that_connections_subscriptions() -> None:
    from node.chain.notifications import ChainEvents

    events = ChainEvents()
    table = SubscriptionsApi(None, events)  # type: ignore[arg-type]
    leaving, staying = FakeConnection(), FakeConnection()
    table.subscribe(leaving, "newPendingTransactions", None)
    table.subscribe(leaving, "newHeads", None)
    kept = table.subscribe(staying, "newPendingTransactions", None)
    assert len(table) == 3
    table.drop_connection(leaving)
    assert len(table) == 1 and leaving.subscriptions == {}
    events.publish_pending(b"\x01" * 32)
    assert leaving.sent == []
    assert [json.loads(m) for m in staying.sent] == [
        {
            "jsonrpc": "2.0",
            "method": "eth_subscription",
            "params": {"subscription": kept, "result": "0x" + "01" * 32},
        }
    ]
