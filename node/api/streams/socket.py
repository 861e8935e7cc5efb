"""A WebSocket stream session: batches out, explicit acknowledgements in.

Protocol (JSON text frames). The node sends `{"type": "hello", "subscription", "checkpoint"}`
once, then `{"type": "events", "events": [...]}` batches; the client answers
`{"type": "ack", "block_number": B, "log_index": I}` naming the last event it processed (any
event of the batch in flight). The next batch goes out once the whole batch is acknowledged,
so at most one batch is in flight. Whatever was not acknowledged when the connection dropped is
sent again on the next connection: at least once, in order. A bad message gets
`{"type": "error", "message"}` and changes nothing.

The credentials are checked again while the session runs (before each batch, before each ack
is saved, and every `IDLE_RECHECK` seconds while waiting): once the stream's creator's key or
the connection's own key is revoked, `serve` raises `Revoked` and saves nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from node.api.streams.manager import IDLE_RECHECK, Revoked, StreamManager, position
from node.api.streams.model import Position, Subscription


async def _read(websocket: WebSocket, inbox: asyncio.Queue[Any]) -> None:
    try:
        while True:
            try:
                await inbox.put(await websocket.receive_json())
            except ValueError:
                await inbox.put("not JSON")
    except (WebSocketDisconnect, RuntimeError):
        await inbox.put(None)


def _ack(message: Any, in_flight: list[dict[str, Any]]) -> Position | str:
    """The acknowledged position, or why the message is not a valid ack."""
    if not isinstance(message, dict) or message.get("type") != "ack":
        return 'expected {"type": "ack", "block_number": ..., "log_index": ...}'
    block, index = message.get("block_number"), message.get("log_index")
    if not isinstance(block, int) or not isinstance(index, int):
        return "block_number and log_index must be integers"
    if (block, index) not in {position(event) for event in in_flight}:
        return f"({block}, {index}) is not an event of the batch in flight"
    return block, index


async def _next_message(inbox: asyncio.Queue[Any], allowed: Callable[[], str | None]) -> Any:
    """The client's next message, re-checking the credentials while it takes its time."""
    while True:
        reason = allowed()
        if reason is not None:
            raise Revoked(reason)
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(inbox.get(), IDLE_RECHECK)


async def serve(
    websocket: WebSocket,
    manager: StreamManager,
    subscription: Subscription,
    allowed: Callable[[], str | None],
) -> None:
    """Deliver to one connected client until it disconnects (or the session is replaced);
    `Revoked` once `allowed` gives a reason to stop."""
    cursor = manager.store.cursor(subscription.id)
    last = (
        None
        if cursor.last is None
        else {"block_number": cursor.last[0], "log_index": cursor.last[1]}
    )
    await websocket.send_json(
        {"type": "hello", "subscription": subscription.id, "checkpoint": last}
    )
    inbox: asyncio.Queue[Any] = asyncio.Queue(maxsize=64)
    reader = asyncio.create_task(_read(websocket, inbox))
    match = subscription.stream_filter()
    after = cursor.after()
    in_flight: list[dict[str, Any]] = []
    try:
        while True:
            if not in_flight:
                fetch = asyncio.create_task(
                    manager.next_events(subscription, match, after, allowed)
                )
                message = asyncio.create_task(_next_message(inbox, allowed))
                done, _ = await asyncio.wait({fetch, message}, return_when=asyncio.FIRST_COMPLETED)
                if fetch in done:
                    message.cancel()
                    if message in done and isinstance(message.exception(), Revoked):
                        message.result()
                    in_flight, _ = fetch.result()
                    after = position(in_flight[-1])
                    await websocket.send_json({"type": "events", "events": in_flight})
                    continue
                fetch.cancel()
                received = message.result()
            else:
                received = await _next_message(inbox, allowed)
            if received is None:
                return
            acked = _ack(received, in_flight)
            if isinstance(acked, str):
                await websocket.send_json({"type": "error", "message": acked})
                continue
            reason = allowed()
            if reason is not None:
                raise Revoked(reason)
            manager.acknowledge(subscription.id, acked)
            in_flight = [event for event in in_flight if position(event) > acked]
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
