"""The gateway's feed of withdrawal requests: the node's event stream (`node.api.streams`),
the same durable streams enterprises use, consumed over WebSocket with explicit acks.

At start the gateway makes sure its stream exists: the one named in its database
(`checkpoints.stream_id`), else a new one for WalletToken's `WithdrawalRequested` from the
first block not wholly recorded (a node that lost the stream, or a database from the earlier
`eth_getLogs` follower, resumes there; what is delivered twice is skipped). The node API key
needs a role that may subscribe chain-wide: `auditor` (read-only) is enough.

Each batch is committed to the database (`Withdrawals.record`) before its last event is
acknowledged, so the node's checkpoint never passes an unrecorded request; a crash of the
gateway (or the node) between the two only delivers the batch again. The consumer reconnects
with backoff while the node is away.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from bank.chain import Issuer
from bank.withdrawals import Withdrawals

log = logging.getLogger("bank.stream")
RETRY_BASE = 0.5
RETRY_CAP = 10.0
"""Seconds between reconnections: doubling from the base up to the cap."""
RECV_TIMEOUT = 0.5
"""Seconds a receive waits before the consumer looks at its stop flag again."""
BATCH_SIZE = 100
LABEL = "bank gateway: withdrawal requests"


class StreamRefused(Exception):
    """The node refused the gateway's stream request (the message says why)."""


class WithdrawalStream:
    """The node stream of `WithdrawalRequested`, created on demand and consumed by `run`."""

    def __init__(
        self, api_url: str, api_key: str, issuer: Issuer, withdrawals: Withdrawals
    ) -> None:
        self.api = api_url.rstrip("/") + "/api/v1"
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.issuer = issuer
        self.withdrawals = withdrawals
        self.connected = False

    def ensure(self) -> str:
        """The stream's id: the recorded one if the node still has it, else a new one."""
        stream_id, next_block = self.withdrawals.stream_start()
        with httpx.Client(headers=self.headers, timeout=30) as http:
            if stream_id is not None:
                found = http.get(f"{self.api}/streams/{stream_id}")
                if found.status_code == 200:
                    return stream_id
                if found.status_code != 404:
                    raise StreamRefused(_refusal(found))
                log.warning("stream %s is gone from the node: a new one from block %d",
                            stream_id, next_block)  # fmt: skip
            created = http.post(
                f"{self.api}/streams",
                json={
                    "delivery": "websocket",
                    "contracts": [self.issuer.token.address],
                    "events": [self.issuer.requested_topic],
                    "from_block": next_block,
                    "batch_size": BATCH_SIZE,
                    "label": LABEL,
                },
            )
        if created.status_code != 201:
            raise StreamRefused(_refusal(created))
        stream_id = str(created.json()["id"])
        self.withdrawals.use_stream(stream_id, next_block)
        log.info("withdrawal requests: node stream %s from block %d", stream_id, next_block)
        return stream_id

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop`, reconnecting (with backoff) whenever the session ends."""
        failures = 0
        while not stop.is_set():
            self.connected = False
            try:
                self._session(self.ensure(), stop)
                continue
            except ConnectionClosed as exc:
                closed = exc.rcvd
                why = f"closed {closed.code} {closed.reason}" if closed else "connection lost"
                log.warning("withdrawal stream %s: reconnecting", why)
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI, httpx.HTTPError,
                    StreamRefused) as exc:  # fmt: skip
                log.warning("withdrawal stream: %s: reconnecting", exc or type(exc).__name__)
            except Exception:  # the database away, say: the batch comes again, unacknowledged
                log.exception("withdrawal stream: failed; reconnecting")
            failures = 1 if self.connected else failures + 1
            stop.wait(min(RETRY_CAP, RETRY_BASE * 2 ** (failures - 1)))

    def _session(self, stream_id: str, stop: threading.Event) -> None:
        url = self.api.replace("http", "ws", 1) + f"/streams/{stream_id}/ws"
        with connect(url, additional_headers=self.headers, open_timeout=10) as socket:
            self.connected = True
            while not stop.is_set():
                try:
                    message = json.loads(socket.recv(timeout=RECV_TIMEOUT))
                except TimeoutError:
                    continue
                if message.get("type") == "events":
                    self._deliver(socket, message["events"])
                elif message.get("type") == "error":
                    log.warning("withdrawal stream: the node says %s", message.get("message"))

    def _deliver(self, socket: ClientConnection, events: list[dict[str, Any]]) -> None:
        """Record the batch, then acknowledge its last event."""
        requests = [r for r in map(self.issuer.withdrawal_of, events) if r is not None]
        new = self.withdrawals.record(requests)
        last = events[-1]
        log.info("withdrawal stream: %d events to (%d, %d), %d new", len(events),
                 last["block_number"], last["log_index"], new)  # fmt: skip
        ack = {"type": "ack", "block_number": last["block_number"], "log_index": last["log_index"]}
        socket.send(json.dumps(ack))


def _refusal(response: httpx.Response) -> str:
    try:
        detail = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        detail = response.text
    return f"the node refused the stream: HTTP {response.status_code} {str(detail)[:200]}"
