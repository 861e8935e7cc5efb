"""A subscription, its filter and its cursor: what a stream delivers and how far it got."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from node.storage.records import LogRecord

Position = tuple[int, int]
"""(block number, log index in the block): the order every stream delivers in."""

WEBHOOK = "webhook"
WEBSOCKET = "websocket"
ACTIVE = "active"
DEAD_LETTER = "dead_letter"


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """Which logs a stream carries: every named dimension must match (None matches any).

    An account matches a log when it is one of the log's indexed topics (an address topic,
    left-padded to 32 bytes) or the sender of the log's transaction."""

    contracts: frozenset[bytes] | None = None
    topics: frozenset[bytes] | None = None
    accounts: frozenset[bytes] | None = None
    _padded: frozenset[bytes] = field(init=False, default=frozenset())

    def __post_init__(self) -> None:
        padded = frozenset(b"\x00" * 12 + a for a in self.accounts or ())
        object.__setattr__(self, "_padded", padded)

    def matches(self, log: LogRecord, sender: bytes) -> bool:
        if self.contracts is not None and log.address not in self.contracts:
            return False
        if self.topics is not None and (not log.topics or log.topics[0] not in self.topics):
            return False
        if self.accounts is None:
            return True
        return sender in self.accounts or any(t in self._padded for t in log.topics[1:])


@dataclass(frozen=True, slots=True)
class Subscription:
    """A stream's definition, fixed at creation (key `S`). `owner` is the creating caller's
    identity (`Principal.identity`); `secret` signs webhook deliveries."""

    id: str
    owner: str
    label: str
    delivery: str
    url: str | None
    secret: str | None
    contracts: tuple[str, ...]
    events: tuple[str, ...]
    topics: tuple[str, ...]
    accounts: tuple[str, ...]
    from_block: int
    batch_size: int
    max_attempts: int
    max_age: int
    created: int

    def stream_filter(self) -> StreamFilter:
        def as_set(values: tuple[str, ...]) -> frozenset[bytes] | None:
            return frozenset(bytes.fromhex(v[2:]) for v in values) if values else None

        return StreamFilter(as_set(self.contracts), as_set(self.topics), as_set(self.accounts))

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Subscription:
        raw: dict[str, Any] = json.loads(data)
        for name in ("contracts", "events", "topics", "accounts"):
            raw[name] = tuple(raw[name])
        return cls(**raw)


@dataclass(frozen=True, slots=True)
class Cursor:
    """How far a stream got (key `C`): the last acknowledged position (None: nothing yet, so
    delivery starts at `start`), its state, and why it was dead-lettered."""

    start: int
    last: Position | None = None
    state: str = ACTIVE
    reason: str | None = None

    def after(self) -> Position:
        """Deliver only positions above this one."""
        return self.last if self.last is not None else (self.start, -1)

    def acknowledged(self, position: Position) -> Cursor:
        return replace(self, last=position)

    def encode(self) -> bytes:
        return json.dumps(
            {"start": self.start, "last": self.last, "state": self.state, "reason": self.reason}
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> Cursor:
        raw = json.loads(data)
        last = raw["last"]
        return cls(
            raw["start"], None if last is None else (last[0], last[1]), raw["state"], raw["reason"]
        )
