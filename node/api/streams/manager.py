"""The node's stream service: subscriptions' lifecycle and one bounded worker per webhook.

Each webhook stream has one asyncio task that scans the chain after its cursor (in a thread),
posts one batch at a time (so at most one request in flight per stream, never out of order),
and moves the cursor only when the receiver answered 2xx. A failure is retried with
exponential backoff and full jitter; after `max_attempts` failures, or `max_age` seconds of
failing, the stream is dead-lettered (kept, not delivering) until `resume` or `replay`; so is
a stream whose creator's API key was revoked (noticed within `IDLE_RECHECK` seconds).
Committed blocks only wake the workers: what they deliver always comes from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx

from node.api.credentials import ApiKeyStore
from node.api.streams.model import (
    ACTIVE,
    DEAD_LETTER,
    WEBHOOK,
    Cursor,
    Position,
    StreamFilter,
    Subscription,
)
from node.api.streams.scan import scan
from node.api.streams.store import StreamStore
from node.api.streams.webhook import SIGNATURE_HEADER, TargetRefused, WebhookHosts, check_url, sign
from node.chain.chain import Chain
from node.chain.notifications import ChainEvents, CommittedBlock
from node.domain.event_decoding import EventDecoder
from node.query.reader import ChainReader

log = logging.getLogger(__name__)
logging.getLogger("httpx").setLevel(logging.WARNING)  # not a log line per webhook request

BACKOFF_BASE = 0.5
BACKOFF_CAP = 60.0
"""Seconds: the n-th retry waits a random time up to min(cap, base * 2^(n-1))."""

IDLE_RECHECK = 1.0
"""Seconds an idle worker waits for a block before it looks at the store again anyway."""

WEBHOOK_TIMEOUT = 10.0
MAX_CONNECTIONS = 64
"""Webhook requests in flight on the node, all streams together."""


REVOKED = "the API key that created it was revoked"


class Revoked(Exception):
    """The credential a delivery runs under is no longer valid (the message says why)."""


def backoff(attempt: int) -> float:
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))


def position(event: dict[str, Any]) -> Position:
    return event["block_number"], event["log_index"]


async def _cancel(task: asyncio.Task | None) -> None:
    """Cancel `task` (unless it is the caller) and wait until it has ended."""
    if task is not None and task is not asyncio.current_task():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class StreamManager:
    """Subscriptions, cursors and delivery tasks of one node."""

    def __init__(
        self,
        chain: Chain,
        events: ChainEvents,
        decoder: EventDecoder,
        hosts: WebhookHosts,
        keys: ApiKeyStore,
    ) -> None:
        self.chain = chain
        self.reader = ChainReader(chain)
        self.keys = keys
        self.store = StreamStore(chain.store.store)
        self.decoder = decoder
        self.hosts = hosts
        self._tasks: dict[str, asyncio.Task] = {}
        self._block = asyncio.Event()
        self._http: httpx.AsyncClient | None = None
        events.on_block(self._on_block)

    def _on_block(self, block: CommittedBlock) -> None:
        self._block.set()
        self._block = asyncio.Event()

    def head(self) -> int:
        return self.reader.head().number

    async def run(self) -> None:
        """Start every active webhook stream, then serve until the node stops."""
        self._http = httpx.AsyncClient(
            timeout=WEBHOOK_TIMEOUT,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS),
        )
        try:
            for subscription in self.store.all():
                self._start(subscription)
            await asyncio.Event().wait()
        finally:
            for stream_id in list(self._tasks):
                await self.stop(stream_id)
            await self._http.aclose()

    # lifecycle -----------------------------------------------------------------------------

    def create(self, subscription: Subscription) -> None:
        self.store.create(subscription, Cursor(subscription.from_block))
        self._start(subscription)

    async def delete(self, stream_id: str) -> None:
        await self.stop(stream_id)
        self.store.delete(stream_id)

    async def replay(self, subscription: Subscription, from_block: int) -> None:
        """Deliver again from `from_block` on (active again if it was dead-lettered)."""
        await self.stop(subscription.id)
        self.store.save_cursor(subscription.id, Cursor(from_block))
        self._start(subscription)

    async def resume(self, subscription: Subscription) -> None:
        """Out of dead letter: retry from the cursor, with a fresh attempt budget."""
        await self.stop(subscription.id)
        cursor = self.store.cursor(subscription.id)
        self.store.save_cursor(subscription.id, replace(cursor, state=ACTIVE, reason=None))
        self._start(subscription)

    def _start(self, subscription: Subscription) -> None:
        """Start the stream's worker unless it is a WebSocket stream, dead, or running."""
        if subscription.delivery != WEBHOOK or self.store.cursor(subscription.id).state != ACTIVE:
            return
        if subscription.id in self._tasks:
            return
        self._tasks[subscription.id] = asyncio.create_task(
            self._webhook(subscription), name=f"stream-{subscription.id}"
        )

    async def stop(self, stream_id: str) -> None:
        """Stop the stream's worker or WebSocket session, if one runs."""
        await _cancel(self._tasks.pop(stream_id, None))

    async def attach(self, stream_id: str, session: asyncio.Task) -> None:
        """`session` becomes the stream's WebSocket session, then an older one is stopped.
        It is registered before the wait: a third connection arriving while the older one
        winds down must find, and stop, this one."""
        older = self._tasks.get(stream_id)
        self._tasks[stream_id] = session
        await _cancel(older)

    def detach(self, stream_id: str, session: asyncio.Task) -> None:
        if self._tasks.get(stream_id) is session:
            del self._tasks[stream_id]

    def owner_active(self, subscription: Subscription) -> bool:
        """False once the API key that created the stream is revoked."""
        kind, _, key_id = subscription.owner.partition(":")
        return kind != "key" or self.key_active(key_id)

    def _owner_revoked(self, subscription: Subscription) -> str | None:
        return None if self.owner_active(subscription) else REVOKED

    def key_active(self, key_id: str) -> bool:
        return any(record.id == key_id for record in self.keys.all())

    # reading -------------------------------------------------------------------------------

    async def next_events(
        self,
        subscription: Subscription,
        match: StreamFilter,
        after: Position,
        allowed: Callable[[], str | None] = lambda: None,
    ) -> tuple[list[dict[str, Any]], Position]:
        """The next batch above `after`, waiting for blocks while there is none. `allowed`
        is asked before each scan (so at least every `IDLE_RECHECK` seconds while idle): a
        reason it answers ends the wait with `Revoked`."""
        while True:
            reason = allowed()
            if reason is not None:
                raise Revoked(reason)
            signal, head = self._block, self.head()
            events, reached = await asyncio.to_thread(
                scan,
                self.chain.store,
                self.decoder,
                match,
                after,
                head,
                subscription.batch_size,
            )
            if events:
                return events, reached
            after = reached
            if reached[0] >= head:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(signal.wait(), IDLE_RECHECK)

    def acknowledge(self, stream_id: str, last: Position) -> None:
        """Move the cursor (one synced write): what the subscriber confirmed."""
        self.store.save_cursor(stream_id, self.store.cursor(stream_id).acknowledged(last))

    # webhooks ------------------------------------------------------------------------------

    async def _webhook(self, subscription: Subscription) -> None:
        match = subscription.stream_filter()
        after = self.store.cursor(subscription.id).after()
        try:
            while True:
                events, _ = await self.next_events(
                    subscription, match, after, lambda: self._owner_revoked(subscription)
                )
                if not await self._deliver(subscription, events):
                    return
                after = position(events[-1])
        except asyncio.CancelledError:
            raise
        except Revoked as exc:
            self._dead_letter(subscription, str(exc))
        except Exception:
            log.exception("stream %s stopped", subscription.id)
        finally:
            if self._tasks.get(subscription.id) is asyncio.current_task():
                del self._tasks[subscription.id]

    async def _deliver(self, subscription: Subscription, events: list[dict[str, Any]]) -> bool:
        """Post until a 2xx (cursor moved: True) or dead letter (False)."""
        body = json.dumps(
            {"subscription": subscription.id, "events": events}, separators=(",", ":")
        ).encode()
        attempts, failing_since = 0, time.monotonic()
        while True:
            reason = self._owner_revoked(subscription)
            if reason is not None:
                self._dead_letter(subscription, reason)
                return False
            reason = await self._post(subscription, body)
            if reason is None:
                self.acknowledge(subscription.id, position(events[-1]))
                return True
            attempts += 1
            if attempts >= subscription.max_attempts or (
                time.monotonic() - failing_since >= subscription.max_age
            ):
                self._dead_letter(subscription, f"{attempts} failed attempts, last: {reason}")
                return False
            await asyncio.sleep(backoff(attempts))

    def _dead_letter(self, subscription: Subscription, why: str) -> None:
        cursor = self.store.cursor(subscription.id)
        self.store.save_cursor(subscription.id, replace(cursor, state=DEAD_LETTER, reason=why))
        log.warning("stream %s dead-lettered: %s", subscription.id, why)

    async def _post(self, subscription: Subscription, body: bytes) -> str | None:
        """None when the receiver took the batch, else why not."""
        assert subscription.url is not None and subscription.secret is not None
        assert self._http is not None
        try:
            await self.hosts.check_resolved(*check_url(subscription.url))
        except TargetRefused as exc:
            return str(exc)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(subscription.secret, body),
            "X-Tally-Stream": subscription.id,
        }
        try:
            response = await self._http.post(subscription.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"
