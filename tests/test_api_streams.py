"""Event streams on a real node: signed webhooks to a real HTTP receiver, WebSocket sessions
with acknowledgements, checkpoints that survive kill -9 of the node and outages of the
subscriber, dead letter and replay, and the role and input checks. Events come from real
signed WalletToken mints and transfers."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from node.api.credentials import ApiKeyStore
from node.api.streams.manager import StreamManager
from node.api.streams.webhook import TargetRefused, WebhookHosts, check_url
from node.chain.chain import Chain
from node.chain.genesis import dev_genesis
from node.chain.notifications import ChainEvents
from node.domain.event_decoding import EventDecoder
from node.storage.chainstore import ChainStore
from node.storage.store import LevelDBStore
from tests.conftest import NodeProcess, free_port
from tests.test_api_support import (
    TOKEN,
    UNLIMITED,
    Api,
    Sender,
    admin_key,
    mint,
    start_node,
    token_transfer,
)

TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
WEBHOOK_HOSTS = ("--api-webhook-hosts", "127.0.0.1")


class Receiver:
    """A webhook receiver on 127.0.0.1 (http.server in a thread) that records every delivery;
    `status` is what it answers, `stop()`/`start()` take it off the network and back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.status = 200
        self.deliveries: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = self.rfile.read(length)
                if len(body) < length:  # its sender died mid-request: nothing was delivered
                    return
                status = receiver.status
                if status == 200:
                    with receiver.lock:
                        receiver.deliveries.append((self.headers["X-Tally-Signature"], body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

    def batches(self, stream_id: str, secret: str) -> list[list[dict[str, Any]]]:
        """The stream's delivered batches, each signature checked as a receiver would."""
        with self.lock:
            deliveries = list(self.deliveries)
        batches = []
        for header, body in deliveries:
            payload = json.loads(body)
            if payload["subscription"] != stream_id:
                continue
            fields = dict(part.split("=", 1) for part in header.split(","))
            expected = hmac.new(
                secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256
            ).hexdigest()
            assert hmac.compare_digest(expected, fields["v1"]), "bad signature"
            assert abs(time.time() - int(fields["t"])) < 300
            batches.append(payload["events"])
        return batches

    def events(self, stream_id: str, secret: str) -> list[dict[str, Any]]:
        return [event for batch in self.batches(stream_id, secret) for event in batch]


def pos(event: dict[str, Any]) -> tuple[int, int]:
    return event["block_number"], event["log_index"]


def wait_for(condition: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def transfer_logs(node: NodeProcess, account: str, from_block: int) -> list[tuple[int, int]]:
    """Every WalletToken Transfer from or to `account` since `from_block`, by eth_getLogs."""
    padded = "0x" + "00" * 12 + account[2:].lower()
    found = set()
    for topics in ([TRANSFER_TOPIC, padded], [TRANSFER_TOPIC, None, padded]):
        logs = node.rpc(
            "eth_getLogs", [{"fromBlock": hex(from_block), "address": TOKEN, "topics": topics}]
        )
        assert isinstance(logs, list)
        found |= {(int(log["blockNumber"], 16), int(log["logIndex"], 16)) for log in logs}
    return sorted(found)


def head(node: NodeProcess) -> int:
    return int(str(node.rpc("eth_blockNumber")), 16)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    node = start_node(tmp_path_factory.mktemp("streams"), *WEBHOOK_HOSTS)
    yield node
    node.stop()


@pytest.fixture(scope="module")
def admin(node: NodeProcess) -> Api:
    return Api(node, admin_key(node))


def refs() -> Iterator[int]:
    base = secrets.randbelow(2**60)
    while True:
        base += 1
        yield base


REFS = refs()


def fund_tokens(sender: Sender, dev: list, *accounts: Any) -> None:
    sender.run(mint(sender, dev[1], a.address, 10_000_000, next(REFS)) for a in accounts)


def webhook(api: Api, url: str, **fields: Any) -> dict[str, Any]:
    response = api.post("/streams", {"delivery": "webhook", "url": url, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def test_webhook_delivers_every_event_in_order_signed(
    node: NodeProcess, admin: Api, receiver: Receiver, dev_accounts: list
) -> None:
    dev = dev_accounts
    sender = Sender(node)
    fund_tokens(sender, dev, dev[3], dev[7])
    enterprise = admin.as_(admin.new_key("enterprise", [dev[3].address]))
    start = head(node) + 1
    stream = webhook(
        enterprise, receiver.url, accounts=[dev[3].address], events=["Transfer"], batch_size=7
    )
    assert stream["secret"].startswith("whsec_") and stream["state"] == "active"
    assert "secret" not in enterprise.ok(f"/streams/{stream['id']}")
    sender.run(token_transfer(sender, dev[3], dev[4].address, 100 + i) for i in range(20))
    sender.run([token_transfer(sender, dev[7], dev[3].address, 1)])
    expected = transfer_logs(node, dev[3].address, start)
    assert len(expected) >= 21
    got = wait_for(
        lambda: (e := receiver.events(stream["id"], stream["secret"])) and len(e) >= 21 and e,
        what="21 transfers",
    )
    assert [pos(e) for e in got] == expected  # complete, strictly ordered, no duplicate
    assert all(len(batch) <= 7 for batch in receiver.batches(stream["id"], stream["secret"]))
    first = got[0]
    assert first["event"] == "Transfer" and first["contract"] == "WalletToken"
    assert first["args"]["from"] == dev[3].address and first["args"]["value"] == "100"
    assert first["topics"][0] == TRANSFER_TOPIC and first["tx_from"] == dev[3].address
    receipt = node.rpc("eth_getTransactionReceipt", [first["tx_hash"]])
    assert isinstance(receipt, dict) and receipt["blockHash"] == first["block_hash"]
    wait_for(
        lambda: (
            enterprise.ok(f"/streams/{stream['id']}")["checkpoint"]
            == {"block_number": expected[-1][0], "log_index": expected[-1][1]}
        ),
        what="the checkpoint at the last event",
    )

    # the enterprise's key is revoked: its stream stops before the next delivery
    key_id = enterprise.ok("/me")["key_id"]
    assert admin.delete(f"/admin/api-keys/{key_id}").status_code == 204
    sender.run([token_transfer(sender, dev[7], dev[3].address, 2)])
    dead = wait_for(
        lambda: (s := admin.ok(f"/streams/{stream['id']}"))["state"] == "dead_letter" and s,
        what="the revoked key's stream dead-lettered",
    )
    assert "revoked" in dead["dead_letter_reason"]
    assert len(receiver.events(stream["id"], stream["secret"])) == len(expected)


def test_receiver_down_then_up_gets_everything_in_order(
    node: NodeProcess, admin: Api, receiver: Receiver, dev_accounts: list
) -> None:
    dev = dev_accounts
    sender = Sender(node)
    fund_tokens(sender, dev, dev[6])
    start = head(node) + 1
    stream = webhook(admin, receiver.url, accounts=[dev[6].address], events=["Transfer"])
    receiver.stop()
    try:
        sender.run(token_transfer(sender, dev[6], dev[7].address, 5) for _ in range(10))
        time.sleep(2.5)  # several attempts fail with the connection refused
        assert admin.ok(f"/streams/{stream['id']}")["checkpoint"] is None
    finally:
        receiver.start()
    sender.run(token_transfer(sender, dev[6], dev[7].address, 6) for _ in range(5))
    expected = transfer_logs(node, dev[6].address, start)
    got = wait_for(
        lambda: (e := receiver.events(stream["id"], stream["secret"])) and len(e) >= 15 and e,
        what="15 transfers after the outage",
    )
    assert [pos(e) for e in got] == expected


def test_dead_letter_resume_and_replay(
    node: NodeProcess, admin: Api, receiver: Receiver, dev_accounts: list
) -> None:
    dev = dev_accounts
    sender = Sender(node)
    fund_tokens(sender, dev, dev[8])
    start = head(node) + 1
    stream = webhook(
        admin, receiver.url, accounts=[dev[8].address], events=["Transfer"], max_attempts=2
    )
    receiver.status = 500
    try:
        sender.run(token_transfer(sender, dev[8], dev[9].address, 3) for _ in range(4))
        dead = wait_for(
            lambda: (s := admin.ok(f"/streams/{stream['id']}"))["state"] == "dead_letter" and s,
            what="dead letter",
        )
        assert "2 failed attempts" in dead["dead_letter_reason"]
        assert "HTTP 500" in dead["dead_letter_reason"]
    finally:
        receiver.status = 200
    time.sleep(1)
    assert receiver.events(stream["id"], stream["secret"]) == []  # dead: not delivering
    resumed = admin.post(f"/streams/{stream['id']}/resume", {})
    assert resumed.status_code == 200 and resumed.json()["state"] == "active"
    expected = transfer_logs(node, dev[8].address, start)
    wait_for(lambda: len(receiver.events(stream["id"], stream["secret"])) == 4, what="resumed")
    again = admin.post(f"/streams/{stream['id']}/resume", {})
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    replay_from = expected[2][0]
    replay = admin.post(f"/streams/{stream['id']}/replay", {"from_block": replay_from})
    assert replay.status_code == 200, replay.text
    assert replay.json()["checkpoint"] is None and replay.json()["from_block"] == replay_from
    replayed = [p for p in expected if p[0] >= replay_from]
    got = wait_for(
        lambda: (
            (e := receiver.events(stream["id"], stream["secret"]))
            and len(e) == 4 + len(replayed)
            and e
        ),
        what="the replay",
    )
    assert [pos(e) for e in got] == expected + replayed  # duplicates, identified by position


def test_node_kill9_mid_stream_skips_nothing(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver, dev_accounts: list
) -> None:
    dev = dev_accounts
    directory = tmp_path_factory.mktemp("streams-kill")
    node = start_node(directory, *WEBHOOK_HOSTS)
    try:
        admin = Api(node, admin_key(node))
        sender = Sender(node)
        fund_tokens(sender, dev, dev[4])
        start = head(node) + 1
        stream = webhook(
            admin, receiver.url, accounts=[dev[4].address], events=["Transfer"], batch_size=5
        )
        sender.send(token_transfer(sender, dev[4], dev[9].address, 1) for _ in range(150))
        wait_for(lambda: receiver.events(stream["id"], stream["secret"]), what="first batch")
        node.kill9()
        delivered_before = len(receiver.events(stream["id"], stream["secret"]))
        node = NodeProcess(
            node.datadir, node.rpc_port, node.ws_port, extra_args=(*UNLIMITED, *WEBHOOK_HOSTS)
        ).start()
        sender = Sender(node)
        sender.run(token_transfer(sender, dev[4], dev[9].address, 2) for _ in range(10))
        expected = transfer_logs(node, dev[4].address, start)
        assert len(expected) > delivered_before

        def all_seen() -> list[dict[str, Any]] | None:
            events = receiver.events(stream["id"], stream["secret"])
            return events if {pos(e) for e in events} >= set(expected) else None

        got = wait_for(all_seen, timeout=60, what="every event after the restart")
        positions = [pos(e) for e in got]
        assert set(positions) == set(expected)
        first_seen = list(dict.fromkeys(positions))
        assert first_seen == expected  # in order; a repeat only re-sends an unacked batch
        for batch in receiver.batches(stream["id"], stream["secret"]):
            assert [pos(e) for e in batch] == sorted(pos(e) for e in batch)
    finally:
        node.stop()


def ws_connect(node: NodeProcess, stream_id: str, credential: str) -> ClientConnection:
    return connect(
        f"{node.ws_url.replace(str(node.ws_port), str(node.rpc_port))}/api/v1/streams/"
        f"{stream_id}/ws",
        additional_headers={"Authorization": f"Bearer {credential}"},
    )


def ws_next(socket: ClientConnection) -> dict[str, Any]:
    return json.loads(socket.recv(timeout=30))


def test_websocket_acks_and_resumes_after_the_last_ack(
    node: NodeProcess, admin: Api, dev_accounts: list
) -> None:
    dev = dev_accounts
    sender = Sender(node)
    customer_key = admin.new_key("customer", [dev[7].address])
    customer = admin.as_(customer_key)
    fund_tokens(sender, dev, dev[7])
    start = head(node) + 1
    response = customer.post(
        "/streams",
        {
            "delivery": "websocket",
            "accounts": [dev[7].address],
            "contracts": [TOKEN],
            "events": ["Transfer"],
            "from_block": start,
            "batch_size": 4,
        },
    )
    assert response.status_code == 201, response.text
    stream = response.json()
    assert stream["secret"] is None and stream["ws_path"].endswith("/ws")
    sender.run(token_transfer(sender, dev[7], dev[6].address, 9) for _ in range(10))
    expected = transfer_logs(node, dev[7].address, start)
    assert len(expected) == 10

    with ws_connect(node, stream["id"], customer_key) as socket:
        assert ws_next(socket) == {
            "type": "hello",
            "subscription": stream["id"],
            "checkpoint": None,
        }
        batch = ws_next(socket)["events"]
        assert [pos(e) for e in batch] == expected[:4]
        socket.send(json.dumps({"type": "ack", "block_number": 1, "log_index": 99}))
        assert ws_next(socket)["type"] == "error"
        socket.send("not json")
        assert ws_next(socket)["type"] == "error"
        b, i = expected[1]
        socket.send(json.dumps({"type": "ack", "block_number": b, "log_index": i}))
        wait_for(
            lambda: (
                customer.ok(f"/streams/{stream['id']}")["checkpoint"]
                == {"block_number": b, "log_index": i}
            ),
            what="the ack saved",
        )
    # reconnect: the unacknowledged events come again, right after the last ack
    received: list[tuple[int, int]] = []
    with ws_connect(node, stream["id"], customer_key) as socket:
        assert ws_next(socket)["checkpoint"] == {"block_number": b, "log_index": i}
        while len(received) < len(expected) - 2:
            batch = ws_next(socket)["events"]
            received += [pos(e) for e in batch]
            last = batch[-1]
            socket.send(
                json.dumps(
                    {
                        "type": "ack",
                        "block_number": last["block_number"],
                        "log_index": last["log_index"],
                    }
                )
            )
    assert received == expected[2:]

    # a newer connection takes the stream over; the older one is closed with 4409
    with ws_connect(node, stream["id"], customer_key) as older:
        assert ws_next(older)["type"] == "hello"
        with ws_connect(node, stream["id"], customer_key) as newer:
            assert ws_next(newer)["type"] == "hello"
            with pytest.raises(ConnectionClosed) as closed:
                older.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4409

    other = admin.as_(admin.new_key("customer", [dev[9].address]))
    with pytest.raises(ConnectionClosed) as closed, ws_connect(node, stream["id"], "tk_bad") as s:
        s.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    other_key = other.credential or ""
    with pytest.raises(ConnectionClosed) as closed, ws_connect(node, stream["id"], other_key) as s:
        s.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404


def test_websocket_closes_when_a_key_is_revoked(
    node: NodeProcess, admin: Api, dev_accounts: list
) -> None:
    """An open session is re-checked: revoking the connection's key (an idle session) or the
    stream creator's key (a batch in flight, its ack refused) closes it with 4401 and the
    reason, and moves no checkpoint."""
    dev = dev_accounts
    sender = Sender(node)
    fund_tokens(sender, dev, dev[8])
    creator = admin.as_(admin.new_key("customer", [dev[8].address]))
    body = {"delivery": "websocket", "accounts": [dev[8].address], "events": ["Transfer"]}
    stream = creator.post("/streams", {**body, "from_block": head(node) + 1}).json()

    def revoke(api: Api) -> None:
        key_id = api.ok("/me")["key_id"]
        assert admin.delete(f"/admin/api-keys/{key_id}").status_code == 204

    # an admin's own key, revoked while its session waits for events
    watcher = admin.as_(admin.new_key("admin"))
    with ws_connect(node, stream["id"], watcher.credential or "") as socket:
        assert ws_next(socket)["type"] == "hello"
        revoke(watcher)
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=10)
    assert time.monotonic() - started < 5
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert closed.value.rcvd.reason == "this connection's API key was revoked"

    # the creator's key, revoked with a batch in flight: its ack is not saved
    sender.run([token_transfer(sender, dev[8], dev[6].address, 3)])
    with ws_connect(node, stream["id"], creator.credential or "") as socket:
        assert ws_next(socket)["type"] == "hello"
        event = ws_next(socket)["events"][-1]
        revoke(creator)
        ack = {
            "type": "ack",
            "block_number": event["block_number"],
            "log_index": event["log_index"],
        }
        with contextlib.suppress(ConnectionClosed):
            socket.send(json.dumps(ack))
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert closed.value.rcvd.reason == "the API key that created this stream was revoked"
    assert admin.ok(f"/streams/{stream['id']}")["checkpoint"] is None


def test_roles_and_bad_input(node: NodeProcess, admin: Api, dev_accounts: list) -> None:
    dev = dev_accounts
    url = "http://127.0.0.1:9/hook"
    enterprise = admin.as_(admin.new_key("enterprise", [dev[3].address]))
    other = admin.as_(admin.new_key("enterprise", [dev[4].address]))
    auditor = admin.as_(admin.new_key("auditor"))

    def refused(api: Api, body: dict[str, Any], status: int, words: str) -> None:
        response = api.post("/streams", body)
        assert response.status_code == status, response.text
        assert words in response.json()["error"]["message"], response.text

    hook = {"delivery": "webhook", "url": url}
    refused(enterprise, {**hook, "accounts": [dev[4].address]}, 403, "not one of this")
    refused(enterprise, hook, 403, "only to its own accounts")
    refused(enterprise, {**hook, "accounts": ["0x1234"]}, 400, "account")
    refused(admin, {**hook, "url": "ftp://127.0.0.1/x"}, 400, "http:// or https://")
    refused(admin, {**hook, "url": "http://10.0.0.1/x"}, 400, "--api-webhook-hosts")
    refused(admin, {**hook, "url": "http://user:pw@127.0.0.1/x"}, 400, "credentials")
    refused(admin, {"delivery": "webhook"}, 400, "needs url")
    refused(admin, {"delivery": "websocket", "url": url}, 400, "takes no url")
    refused(admin, {**hook, "events": ["NoSuchEvent"]}, 400, "unknown event")
    refused(admin, {**hook, "contracts": ["0xzz"]}, 400, "contract")
    refused(admin, {**hook, "surprise": 1}, 422, "surprise")
    refused(admin, {**hook, "batch_size": 0}, 422, "batch_size")
    refused(admin.as_(None), hook, 401, "credential")

    mine = webhook(enterprise, url, accounts=[dev[3].address])
    chain_wide = webhook(auditor, url)
    assert chain_wide["accounts"] == [] and chain_wide["from_block"] > 0
    assert [s["id"] for s in enterprise.ok("/streams")["items"]] == [mine["id"]]
    assert other.ok("/streams")["items"] == []
    assert other.get(f"/streams/{mine['id']}").status_code == 404
    assert other.delete(f"/streams/{mine['id']}").status_code == 404
    assert other.post(f"/streams/{mine['id']}/replay", {"from_block": 0}).status_code == 404
    ids = {s["id"] for s in admin.ok("/streams")["items"]}
    assert {mine["id"], chain_wide["id"]} <= ids
    assert enterprise.get("/streams/not-an-id").status_code == 422
    beyond = enterprise.post(f"/streams/{mine['id']}/replay", {"from_block": 10**9})
    assert beyond.status_code == 400 and "beyond" in beyond.json()["error"]["message"]
    assert enterprise.delete(f"/streams/{mine['id']}").status_code == 204
    assert enterprise.get(f"/streams/{mine['id']}").status_code == 404
    assert admin.delete(f"/streams/{chain_wide['id']}").status_code == 204


def test_webhook_host_policy() -> None:
    """Without --api-webhook-hosts only public addresses; with it only what it lists."""
    default = WebhookHosts()
    for host in ("127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "192.168.0.1"):
        with pytest.raises(TargetRefused, match="not a public address"):
            default.check_host(host)
    default.check_host("93.184.216.34")
    listed = WebhookHosts(["erp.bank.internal", "10.20.0.0/16"])
    listed.check_host("erp.bank.internal")
    listed.check_host("10.20.3.4")
    for host in ("10.21.0.1", "93.184.216.34"):
        with pytest.raises(TargetRefused, match="not in --api-webhook-hosts"):
            listed.check_host(host)
    with pytest.raises(TargetRefused, match="not in --api-webhook-hosts"):
        WebhookHosts(["erp.bank.internal"]).check_host("other.example")
    assert check_url("https://erp.example/hook") == ("erp.example", 443)


def test_a_takeover_during_a_slow_takeover_stops_the_middle_session(tmp_path: Path) -> None:
    """Connections A, B, C in turn: B's takeover waits while A winds down, and C arrives then.
    C must be the session left, and B stopped (once B registered only after A had ended, so C
    found nothing to stop and B, never stopped, took the stream back)."""
    store = LevelDBStore(tmp_path)
    chain = Chain(ChainStore(store), dev_genesis(b"\x11" * 20))
    manager = StreamManager(
        chain, ChainEvents(), EventDecoder(), WebhookHosts(), ApiKeyStore(store)
    )
    stream_id = "ab" * 16

    async def takeovers() -> None:
        a_winding_down = asyncio.Event()
        a_may_end = asyncio.Event()

        async def session_a() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                a_winding_down.set()
                await a_may_end.wait()
                raise

        async def session() -> None:
            await asyncio.Event().wait()

        a, b, c = (asyncio.create_task(s()) for s in (session_a, session, session))
        await manager.attach(stream_id, a)
        b_takes_over = asyncio.create_task(manager.attach(stream_id, b))
        await a_winding_down.wait()
        await manager.attach(stream_id, c)
        a_may_end.set()
        await b_takes_over
        assert a.cancelled() and b.cancelled() and not c.done()
        await manager.stop(stream_id)
        assert c.cancelled()

    asyncio.run(takeovers())
    store.close()
