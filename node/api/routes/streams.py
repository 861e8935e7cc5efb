"""Event streams: subscribe to the chain's events by contract, event and account, delivered by
signed webhook or WebSocket with acknowledgements (`node.api.streams`).

Enterprises and customers subscribe only to their own accounts (their credential's addresses)
and see only the streams they created; admins and auditors may subscribe chain-wide, and admins
see every stream.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Response, WebSocket
from pydantic import BaseModel, ConfigDict, Field

from node.api import params
from node.api.auth import Caller, Principal, authenticate
from node.api.context import ApiContext, context
from node.api.errors import ApiError, BadRequest, Conflict, Forbidden, NotFound, Unauthenticated
from node.api.roles import ApiRole
from node.api.streams import socket
from node.api.streams.manager import Revoked, StreamManager
from node.api.streams.model import DEAD_LETTER, WEBHOOK, WEBSOCKET, Subscription
from node.api.streams.webhook import TargetRefused, check_url

router = APIRouter(prefix="/streams", tags=["streams"])
socket_router = APIRouter()

Context = Annotated[ApiContext, Depends(context)]
StreamId = Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="The stream's id.")]

MAX_STREAMS_PER_CALLER = 100
MAX_FILTER_ITEMS = 100


class StreamRequest(BaseModel):
    """A new stream: what to deliver (every given list must match; none given: everything
    the caller may see) and how."""

    model_config = ConfigDict(extra="forbid")
    delivery: Literal["webhook", "websocket"]
    url: str | None = Field(None, description="The webhook target (http or https).")
    contracts: list[str] = Field([], max_length=MAX_FILTER_ITEMS)
    events: list[str] = Field(
        [], max_length=MAX_FILTER_ITEMS, description="Event names (Transfer) or 0x topic0s."
    )
    accounts: list[str] = Field(
        [], max_length=MAX_FILTER_ITEMS, description="Indexed-topic addresses or tx senders."
    )
    from_block: int | None = Field(None, ge=0, description="Default: the next block.")
    label: str = Field("", max_length=100)
    batch_size: int = Field(100, ge=1, le=500, description="Events per delivery at most.")
    max_attempts: int = Field(10, ge=1, le=1000, description="Failures before dead letter.")
    max_age: int = Field(
        86_400, ge=1, le=7 * 86_400, description="Seconds of failing before dead letter."
    )


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    from_block: int = Field(ge=0)


def _manager(ctx: ApiContext) -> StreamManager:
    if ctx.streams is None:
        raise ApiError("event streams are not running on this node")
    return ctx.streams


def _view(manager: StreamManager, sub: Subscription) -> dict[str, Any]:
    cursor = manager.store.cursor(sub.id)
    checkpoint = (
        None
        if cursor.last is None
        else {"block_number": cursor.last[0], "log_index": cursor.last[1]}
    )
    return {
        "id": sub.id,
        "label": sub.label,
        "delivery": sub.delivery,
        "url": sub.url,
        "contracts": list(sub.contracts),
        "events": list(sub.events),
        "accounts": list(sub.accounts),
        "from_block": cursor.start,
        "batch_size": sub.batch_size,
        "max_attempts": sub.max_attempts,
        "max_age": sub.max_age,
        "created": sub.created,
        "state": cursor.state,
        "dead_letter_reason": cursor.reason,
        "checkpoint": checkpoint,
        "ws_path": f"/api/v1/streams/{sub.id}/ws" if sub.delivery == WEBSOCKET else None,
    }


def _visible(manager: StreamManager, caller: Principal, stream_id: str) -> Subscription:
    sub = manager.store.get(stream_id)
    if sub is None or not (caller.role is ApiRole.ADMIN or sub.owner == caller.identity):
        raise NotFound("no stream with that id")
    return sub


def _topics(ctx: ApiContext, events: list[str]) -> tuple[str, ...]:
    topics: set[bytes] = set()
    for event in events:
        if event.startswith("0x"):
            topics.add(params.hash32(event, "event topic"))
            continue
        named = ctx.events.topics_named(event)
        if not named:
            raise BadRequest(
                f"unknown event {event!r}: name an event of the bank's contracts "
                "or give its 0x topic0"
            )
        topics |= named
    return tuple(sorted("0x" + t.hex() for t in topics))


def _accounts(caller: Principal, accounts: list[str]) -> tuple[str, ...]:
    parsed = [params.address(a, "account") for a in accounts]
    if not caller.reads_everything:
        if not parsed:
            raise Forbidden(
                f"a {caller.role.value} credential subscribes only to its own accounts: "
                "name them in accounts"
            )
        for address in parsed:
            if address not in caller.addresses:
                raise Forbidden(
                    f"account {params.checksum(address)} is not one of this credential's addresses"
                )
    return tuple(sorted({params.checksum(a) for a in parsed}))


@router.post("", status_code=201, summary="Create a stream (the webhook secret is shown once)")
async def create_stream(body: StreamRequest, caller: Caller, ctx: Context) -> dict:
    manager = _manager(ctx)
    accounts = _accounts(caller, body.accounts)
    contracts = tuple(
        sorted({params.checksum(params.address(c, "contract")) for c in body.contracts})
    )
    topics = _topics(ctx, body.events)
    url, secret = None, None
    if body.delivery == WEBHOOK:
        if body.url is None:
            raise BadRequest("a webhook stream needs url")
        try:
            manager.hosts.check_host(check_url(body.url)[0])
        except TargetRefused as exc:
            raise BadRequest(f"url refused: {exc}") from None
        url, secret = body.url, "whsec_" + secrets.token_urlsafe(32)
    elif body.url is not None:
        raise BadRequest("a websocket stream takes no url")
    owned = sum(1 for s in manager.store.all() if s.owner == caller.identity)
    if owned >= MAX_STREAMS_PER_CALLER:
        raise Conflict(f"this credential already has {MAX_STREAMS_PER_CALLER} streams")
    sub = Subscription(
        id=secrets.token_hex(16),
        owner=caller.identity,
        label=body.label,
        delivery=body.delivery,
        url=url,
        secret=secret,
        contracts=contracts,
        events=tuple(body.events),
        topics=topics,
        accounts=accounts,
        from_block=body.from_block if body.from_block is not None else manager.head() + 1,
        batch_size=body.batch_size,
        max_attempts=body.max_attempts,
        max_age=body.max_age,
        created=int(time.time()),
    )
    manager.create(sub)
    return {**_view(manager, sub), "secret": secret}


@router.get("", summary="The caller's streams (an admin's: every stream)")
async def list_streams(caller: Caller, ctx: Context) -> dict:
    manager = _manager(ctx)
    items = [
        _view(manager, sub)
        for sub in manager.store.all()
        if caller.role is ApiRole.ADMIN or sub.owner == caller.identity
    ]
    return {"items": items, "next_cursor": None}


@router.get("/{stream_id}", summary="A stream, its state and checkpoint")
async def get_stream(stream_id: StreamId, caller: Caller, ctx: Context) -> dict:
    manager = _manager(ctx)
    return _view(manager, _visible(manager, caller, stream_id))


@router.delete("/{stream_id}", status_code=204, summary="Delete a stream")
async def delete_stream(stream_id: StreamId, caller: Caller, ctx: Context) -> Response:
    manager = _manager(ctx)
    await manager.delete(_visible(manager, caller, stream_id).id)
    return Response(status_code=204)


@router.post("/{stream_id}/replay", summary="Deliver again from a block on")
async def replay_stream(
    stream_id: StreamId, body: ReplayRequest, caller: Caller, ctx: Context
) -> dict:
    manager = _manager(ctx)
    sub = _visible(manager, caller, stream_id)
    if body.from_block > manager.head() + 1:
        raise BadRequest(f"from_block is beyond the next block ({manager.head() + 1})")
    await manager.replay(sub, body.from_block)
    return _view(manager, sub)


@router.post("/{stream_id}/resume", summary="Resume a dead-lettered stream from its checkpoint")
async def resume_stream(stream_id: StreamId, caller: Caller, ctx: Context) -> dict:
    manager = _manager(ctx)
    sub = _visible(manager, caller, stream_id)
    if manager.store.cursor(sub.id).state != DEAD_LETTER:
        raise Conflict("the stream is not dead-lettered")
    await manager.resume(sub)
    return _view(manager, sub)


@socket_router.websocket("/api/v1/streams/{stream_id}/ws")
async def stream_socket(websocket: WebSocket, stream_id: str) -> None:
    """A websocket stream's delivery (`node.api.streams.socket`). A refusal is a close right
    after the handshake with code 4000 + the HTTP status and the reason: 4401 no valid
    credential, 4404 no such stream (or not the caller's), 4409 not a websocket stream. A
    session ends with 4409 when the stream is replayed or another connection takes it over,
    and with 4401 (the reason says which key) once the stream's creator's or the connection's
    API key is revoked."""
    ctx: ApiContext = websocket.app.state.context
    try:
        caller = authenticate(websocket)
        if caller is None:
            raise Unauthenticated("a credential is required")
        manager = _manager(ctx)
        if not re.fullmatch("[0-9a-f]{32}", stream_id):
            raise NotFound("no stream with that id")
        sub = _visible(manager, caller, stream_id)
        if sub.delivery != WEBSOCKET:
            raise Conflict("not a websocket stream")
    except ApiError as exc:
        await websocket.accept()
        await websocket.close(code=4000 + exc.status, reason=exc.message[:120])
        return
    await websocket.accept()
    session = asyncio.create_task(
        socket.serve(websocket, manager, sub, lambda: _revoked(manager, sub, caller))
    )
    await manager.attach(sub.id, session)
    try:
        await session
    except Revoked as exc:
        await websocket.close(code=4401, reason=str(exc))
    except asyncio.CancelledError:
        this = asyncio.current_task()
        if this is not None and this.cancelling():
            raise
        await websocket.close(code=4409, reason="replayed, or taken over by a newer connection")
    finally:
        manager.detach(sub.id, session)


def _revoked(manager: StreamManager, sub: Subscription, caller: Principal) -> str | None:
    """Why an open session must end now (a key revoked since it connected), else None."""
    if not manager.owner_active(sub):
        return "the API key that created this stream was revoked"
    if caller.key_id is not None and not manager.key_active(caller.key_id):
        return "this connection's API key was revoked"
    return None
