"""The risk monitor: follows WalletToken's payments through a WebSocket event stream of the
node (`/api/v1/streams`, created once with the node API key and remembered in `risk_state`),
scores each batch, stores the decisions, and only then acknowledges the batch's last event.

Delivery is at least once and in chain order; a redelivered payment is recognised by its
transaction (one payment per transaction: the first Transfer between two accounts, or its
PaymentHeld; the fee's Transfer that follows is not a payment). Transfers in transactions sent
by compliance itself (a released hold paying out) were judged when the payment was held and are
skipped. A lost connection is retried every second; a stream the node no longer has is made
again from the block after the last one decided.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import httpx
from sqlalchemy import func, select
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.sync.client import connect

from bank.risk.engine import ChainPayment, Engine
from bank.risk.models import Decision, RiskState, Source
from bank.risk.rules import Payment

log = logging.getLogger("bank.risk.monitor")
ZERO = "0x" + "00" * 20
STREAM_STATE = "stream_id"


class StreamGone(Exception):
    """The node has no such stream (deleted, or another node's database)."""


class Monitor:
    def __init__(
        self,
        engine: Engine,
        node_url: str,
        node_api_key: str,
        token: str,
        skip_senders: set[str],
        from_block: int = 0,
        batch_size: int = 200,
    ) -> None:
        self.engine = engine
        self.node_url = node_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {node_api_key}"}
        self.token = token
        self.skip_senders = {s.lower() for s in skip_senders}
        self.from_block = from_block
        self.batch_size = batch_size
        self.connected = threading.Event()

    def stream_id(self) -> str:
        """The stream this monitor follows, made on the node if it has none yet."""
        with self.engine.sessions() as session:
            state = session.get(RiskState, STREAM_STATE)
            stored = state.value if state is not None else None
            last = session.scalar(
                select(func.max(Decision.block_number)).where(Decision.source == Source.MONITOR)
            )
        if stored is not None:
            known = httpx.get(
                f"{self.node_url}/api/v1/streams/{stored}", headers=self.headers, timeout=30
            )
            if known.status_code == 200:
                return stored
            if known.status_code != 404:
                raise RuntimeError(f"node refused the stream: {known.status_code} {known.text}")
            log.warning("the node has no stream %s any more: making a new one", stored)
        response = httpx.post(
            f"{self.node_url}/api/v1/streams",
            headers=self.headers,
            timeout=30,
            json={
                "delivery": "websocket",
                "contracts": [self.token],
                "events": ["Transfer", "PaymentHeld"],
                "from_block": self.from_block if last is None else last + 1,
                "batch_size": self.batch_size,
                "label": "bank-risk-monitor",
            },
        )
        if response.status_code != 201:
            raise RuntimeError(f"node refused the stream: {response.status_code} {response.text}")
        stream = str(response.json()["id"])
        with self.engine.sessions() as session:
            session.merge(RiskState(name=STREAM_STATE, value=stream))
            session.commit()
        return stream

    def forget_stream(self) -> None:
        with self.engine.sessions() as session:
            state = session.get(RiskState, STREAM_STATE)
            if state is not None:
                session.delete(state)
                session.commit()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.follow(stop)
            except StreamGone:
                log.warning("the node has no such stream any more: making a new one")
                self.forget_stream()
            except (OSError, WebSocketException, httpx.HTTPError, RuntimeError) as exc:
                log.warning("monitor: %s; retrying", exc)
            self.connected.clear()
            stop.wait(1.0)

    def follow(self, stop: threading.Event) -> None:
        stream = self.stream_id()
        ws_url = self.node_url.replace("http", "ws", 1) + f"/api/v1/streams/{stream}/ws"
        try:
            socket = connect(ws_url, additional_headers=self.headers, open_timeout=10)
        except InvalidStatus as exc:
            if exc.response.status_code == 404:
                raise StreamGone from None
            raise
        with socket:
            while not stop.is_set():
                try:
                    message = json.loads(socket.recv(timeout=1.0))
                except TimeoutError:
                    continue
                except ConnectionClosed as exc:
                    if exc.rcvd is not None and exc.rcvd.code == 4404:
                        raise StreamGone from None
                    raise
                if message.get("type") == "hello":
                    self.connected.set()
                elif message.get("type") == "events" and message["events"]:
                    events = message["events"]
                    self.engine.record(self.payments(events))
                    last = events[-1]
                    socket.send(json.dumps({"type": "ack", "block_number": last["block_number"],
                                            "log_index": last["log_index"]}))  # fmt: skip
                elif message.get("type") == "error":
                    log.warning("node: %s", message)

    def payments(self, events: list[dict[str, Any]]) -> list[ChainPayment]:
        found: list[ChainPayment] = []
        for event in events:
            if event.get("removed"):
                continue
            args = event["args"]
            if event["event"] == "Transfer":
                payer, payee, amount = args["from"], args["to"], int(args["value"])
                if ZERO in (payer.lower(), payee.lower()):
                    continue  # a mint or a burn
                if event["tx_from"].lower() in self.skip_senders:
                    continue
                hold_id, reasons = None, 0
            elif event["event"] == "PaymentHeld":
                payer, payee, amount = args["from"], args["to"], int(args["amount"])
                hold_id, reasons = int(args["holdId"]), int(args["reasons"])
            else:
                continue
            payment = Payment(payer, payee, amount, float(event["timestamp"]))
            found.append(
                ChainPayment(
                    payment,
                    event["tx_hash"],
                    event["block_number"],
                    event["log_index"],
                    hold_id,
                    reasons,
                )
            )
        return found
