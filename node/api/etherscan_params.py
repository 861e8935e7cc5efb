"""Etherscan's query parameters, read as Etherscan reads them, and the page of a list they
ask for (`startblock`, `endblock`, `page`, `offset`, `sort`). A bad value is an
`EtherscanError`, which the API answers in Etherscan's envelope ("NOTOK" and the reason).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from node.domain.indexes import LogPosition
from node.hexcodec import decode_data

MAX_WINDOW = 10_000
"""Etherscan's cap: page x offset may not pass it."""
_LAST = 2**32 - 1
"""The largest transaction or log index a position key holds."""

T = TypeVar("T")


class EtherscanError(Exception):
    """A refusal, answered as `{"status": "0", "message": "NOTOK", "result": reason}`."""


@dataclass(frozen=True, slots=True)
class Query:
    """The query string, read as Etherscan reads it (names are case-sensitive)."""

    values: dict[str, str]
    loop: asyncio.AbstractEventLoop | None = None
    """The event loop serving the request: handlers run in threads, and the bank reads they
    need run on the node's call pool, which is driven from the loop."""

    def on_loop(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` (a bank read) on the request's loop and wait for it from this thread."""
        assert self.loop is not None, "a query answered in a thread carries its loop"
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        return None if value is None or not value.strip() else value.strip()

    def address(self, name: str, required: bool = True) -> bytes | None:
        value = self.text(name)
        if value is None:
            if required:
                raise EtherscanError(f"Error! Missing or invalid {name}")
            return None
        try:
            raw = decode_data(value)
        except ValueError:
            raw = b""
        if len(raw) != 20:
            raise EtherscanError("Error! Invalid address format")
        return raw

    def hash32(self, name: str) -> bytes:
        value = self.text(name) or ""
        try:
            raw = decode_data(value)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise EtherscanError(f"Error! Invalid {name} format")
        return raw

    def number(self, name: str, default: int, head: int | None = None) -> int:
        """A decimal number (a block: also `latest`); `default` when absent."""
        value = self.text(name)
        if value is None:
            return default
        if head is not None and value.lower() == "latest":
            return head
        if not (value.isascii() and value.isdigit()) or len(value) > 19:
            raise EtherscanError(f"Error! Invalid {name}")
        return int(value)

    def block(self, name: str, default: int, head: int) -> int:
        """A block number (decimal, 0x-hex or `latest`), at most the head."""
        value = self.text(name)
        if value is not None and value.lower().startswith("0x"):
            try:
                number = int(value, 16)
            except ValueError:
                raise EtherscanError(f"Error! Invalid {name}") from None
            return min(number, head)
        return min(self.number(name, default, head), head)

    def choice(self, name: str, options: tuple[str, ...]) -> str:
        value = (self.text(name) or options[0]).lower()
        if value not in options:
            raise EtherscanError(f"Error! Invalid {name} (one of: {', '.join(options)})")
        return value


@dataclass(frozen=True, slots=True)
class Window:
    """Which rows of a list a request wants: blocks, order and Etherscan's page/offset."""

    first: int
    last: int
    descending: bool
    skip: int
    take: int

    @classmethod
    def of(cls, query: Query, head: int, max_take: int = MAX_WINDOW) -> Window:
        first = query.number("startblock", 0, head)
        last = min(query.number("endblock", head, head), head)
        page = max(query.number("page", 1), 1)
        offset = query.number("offset", 0)
        if offset == 0:
            offset = max_take
            page = 1
        if page * offset > MAX_WINDOW:
            raise EtherscanError(
                "Result window is too large, PageNo x Offset size must be less than or "
                f"equal to {MAX_WINDOW}"
            )
        descending = query.choice("sort", ("asc", "desc")) == "desc"
        return cls(first, last, descending, (page - 1) * offset, min(offset, max_take))

    @property
    def empty(self) -> bool:
        return self.first > self.last

    def start(self) -> LogPosition | None:
        """The resume point of an index iteration (strictly after it) for this range."""
        if self.descending:
            return LogPosition(self.last + 1, 0, 0)
        return None if self.first == 0 else LogPosition(self.first - 1, _LAST, _LAST)

    def within(self, positions: Iterable[T], block_of: Callable[[T], int]) -> list[T]:
        """This page of the rows inside the block range (rows come ordered from `start`)."""
        if self.descending:
            inside = itertools.takewhile(lambda row: block_of(row) >= self.first, positions)
        else:
            inside = itertools.takewhile(lambda row: block_of(row) <= self.last, positions)
        return list(itertools.islice(inside, self.skip, self.skip + self.take))
