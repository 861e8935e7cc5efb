"""One established, authenticated link to another node: its send queue, reader and writer.

A peer owns two tasks. The writer drains a bounded queue, so `send` never blocks the caller; a
peer whose queue overflows (it cannot keep up) is dropped rather than allowed to grow memory
without bound. The reader handles one message at a time and awaits its handler before reading
the next frame, so a slow consumer pushes back through TCP onto the sender instead of piling up
messages here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from eth_utils import to_checksum_address

from node.p2p.errors import FrameTooLarge, LinkError
from node.p2p.framing import FrameOpener, FrameSealer, read_frame
from node.p2p.handshake import SessionKeys
from node.p2p.messages import MessageKind

logger = logging.getLogger(__name__)

MessageCallback = Callable[["Peer", int, bytes], Awaitable[None]]
ClosedCallback = Callable[["Peer"], None]


class Direction(StrEnum):
    """Who dialled: the tie-break between duplicate links depends on it."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


@dataclass(frozen=True)
class LinkSettings:
    """Per-link limits; the host passes its configuration down to every peer."""

    max_frame_size: int
    send_queue_messages: int = 4096
    send_queue_bytes: int = 64 * 1024 * 1024
    ping_interval: float = 15.0
    idle_timeout: float = 45.0
    write_timeout: float = 20.0


@dataclass(frozen=True)
class PeerInfo:
    """What `admin_peers` shows about a connected peer."""

    address: bytes
    public_key: bytes
    direction: Direction
    local_address: str
    remote_address: str
    connected_since: float

    def as_json(self) -> dict[str, Any]:
        """geth-like `admin_peers` entry: id is the node public key, as in an enode URL."""
        return {
            "id": self.public_key.hex(),
            "address": to_checksum_address(self.address),
            "direction": self.direction.value,
            "connectedSince": int(self.connected_since),
            "network": {
                "localAddress": self.local_address,
                "remoteAddress": self.remote_address,
                "inbound": self.direction is Direction.INBOUND,
            },
        }


def _format_endpoint(endpoint: object) -> str:
    if isinstance(endpoint, tuple) and len(endpoint) >= 2:
        host, port = endpoint[0], endpoint[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(endpoint)


class Peer:
    """An authenticated, encrypted link to the node `address`."""

    def __init__(
        self,
        session: SessionKeys,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        direction: Direction,
        settings: LinkSettings,
        on_message: MessageCallback,
        on_closed: ClosedCallback,
    ) -> None:
        self.address = session.remote_address
        self.public_key = session.remote_public_key
        self.direction = direction
        self.reader = reader
        self.writer = writer
        self.settings = settings
        self.connected_since = time.time()
        self.connected_monotonic = time.monotonic()
        self.local_address = _format_endpoint(writer.get_extra_info("sockname"))
        self.remote_address = _format_endpoint(writer.get_extra_info("peername"))
        self.close_reason: str | None = None
        self.closed = asyncio.Event()
        self._sealer = FrameSealer(session.send_key, settings.max_frame_size)
        self._opener = FrameOpener(session.recv_key, settings.max_frame_size)
        self._on_message = on_message
        self._on_closed = on_closed
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._queue_ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._shutdown_task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def outbound(self) -> bool:
        return self.direction is Direction.OUTBOUND

    @property
    def is_closing(self) -> bool:
        return self._closing

    def info(self) -> PeerInfo:
        return PeerInfo(
            self.address,
            self.public_key.to_bytes(),
            self.direction,
            self.local_address,
            self.remote_address,
            self.connected_since,
        )

    def start(self) -> None:
        """Start reading and writing; called once the host has accepted the link."""
        if self._closing or self._tasks:
            return
        label = f"0x{self.address.hex()[:8]}"
        self._tasks = [
            asyncio.create_task(self._guard(self._read_loop), name=f"p2p-read-{label}"),
            asyncio.create_task(self._guard(self._write_loop), name=f"p2p-write-{label}"),
        ]

    def send(self, kind: int, payload: bytes) -> bool:
        """Queue a message; False if the link is closing. Never blocks.

        Raises `FrameTooLarge` (a caller bug) for a payload the frame limit cannot carry. A full
        queue drops the peer: a node that cannot keep up must resync rather than stall others.
        """
        if self._closing:
            return False
        plaintext = bytes([kind]) + payload
        if len(plaintext) > self.settings.max_frame_size:
            raise FrameTooLarge(
                f"message of {len(plaintext)} bytes > {self.settings.max_frame_size}"
            )
        if (
            len(self._queue) >= self.settings.send_queue_messages
            or self._queued_bytes + len(plaintext) > self.settings.send_queue_bytes
        ):
            self.close("send queue full: peer cannot keep up")
            return False
        self._queue.append(plaintext)
        self._queued_bytes += len(plaintext)
        self._queue_ready.set()
        return True

    def close(self, reason: str, notify: bool = True) -> None:
        """Close the link now; idempotent. `notify` sends the remote a DISCONNECT with `reason`.

        The host is told synchronously, so the peer table never lists a closing link; the
        transport is torn down in the background and `closed` is set once it is.
        """
        if self._closing:
            return
        self._closing = True
        self.close_reason = reason
        logger.info("p2p: closing link to 0x%s: %s", self.address.hex(), reason)
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        self._shutdown_task = asyncio.create_task(self._shutdown(reason, notify))
        self._on_closed(self)

    async def wait_closed(self) -> None:
        await self.closed.wait()

    async def _shutdown(self, reason: str, notify: bool) -> None:
        current = asyncio.current_task()
        others = [task for task in self._tasks if task is not current]
        await asyncio.gather(*others, return_exceptions=True)
        try:
            if notify and not self.writer.is_closing():
                with contextlib.suppress(LinkError):
                    self.writer.write(
                        self._sealer.seal(bytes([MessageKind.DISCONNECT]) + reason.encode()[:200])
                    )
            self.writer.close()
            async with asyncio.timeout(1.0):
                await self.writer.wait_closed()
        except (OSError, TimeoutError):
            pass
        finally:
            self.closed.set()

    async def _guard(self, loop: Callable[[], Awaitable[None]]) -> None:
        """Run a loop; whatever ends it (EOF, bad frame, timeout, error) closes the link."""
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except asyncio.IncompleteReadError:
            self.close("connection closed by remote", notify=False)
        except TimeoutError:
            self.close("timed out", notify=False)
        except LinkError as error:
            self.close(str(error))
        except OSError as error:
            self.close(f"socket error: {error}", notify=False)
        except Exception as error:  # a bug must not leave a half-dead link behind
            logger.exception("p2p: link to 0x%s failed", self.address.hex())
            self.close(f"internal error: {error}")

    async def _read_loop(self) -> None:
        settings = self.settings
        while not self._closing:
            plaintext = await read_frame(self.reader, self._opener, settings.idle_timeout)
            if not plaintext:
                raise LinkError("empty frame")
            kind, payload = plaintext[0], plaintext[1:]
            if kind == MessageKind.DISCONNECT:
                text = payload[:200].decode(errors="replace")
                self.close(f"remote disconnected: {text}", notify=False)
                return
            if kind == MessageKind.PING:
                continue
            await self._on_message(self, kind, payload)

    async def _write_loop(self) -> None:
        settings = self.settings
        ping = bytes([MessageKind.PING])
        while not self._closing:
            if not self._queue:
                self._queue_ready.clear()
                try:
                    async with asyncio.timeout(settings.ping_interval):
                        await self._queue_ready.wait()
                except TimeoutError:
                    self._queue.append(ping)
                    self._queued_bytes += len(ping)
            plaintext = self._queue.popleft()
            self._queued_bytes -= len(plaintext)
            self.writer.write(self._sealer.seal(plaintext))
            async with asyncio.timeout(settings.write_timeout):
                await self.writer.drain()
