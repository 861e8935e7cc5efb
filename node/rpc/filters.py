"""Polled filters: `eth_newFilter`, `eth_newBlockFilter`, `eth_newPendingTransactionFilter`,
`eth_getFilterChanges`, `eth_getFilterLogs` and `eth_uninstallFilter`.

A filter holds a cursor, not a buffer: where its last poll left off. New block hashes and
pending transaction hashes go into two feeds shared by every filter (the newest `max_buffered`
of each, numbered), and a poll returns what its feed gained since the filter's cursor. A log
filter's cursor is a block number: a poll scans the blocks committed since, on `LogSearch`'s
threads. So a block or a transaction costs the event loop one append however many filters are
installed, and a filter costs the same memory whether it is polled or forgotten. (Buffering
per filter, as before, made every block with logs cost a bloom test per filter and address on
the loop: 23 s a block with 10 filters of 340,000 addresses, issue 12.)

Bounds: at most `max_filters` filters, naming at most `max_criteria` addresses and topics
between them (`CriteriaBudget`), each query at most 1,000 per position (`node.rpc.logquery`);
a filter not polled for `timeout` seconds (five minutes, as geth) is removed. Expiry is swept
when filters are touched (a call, or at most once a second on new blocks and transactions), so
no timer thread is needed and a test can drive the clock. A poll that falls more than
`max_buffered` blocks or transactions behind gets the newest ones; a log filter's poll scans at
most `LogSearch.max_range` blocks and stops past `max_results` logs, the next poll going on
from there.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from node.chain.notifications import ChainEvents, CommittedBlock
from node.rpc import params as p
from node.rpc import views
from node.rpc.dispatch import rpc_method
from node.rpc.errors import LimitExceeded, RpcError, ServerError
from node.rpc.logquery import CriteriaBudget, LogFilter, LogSearch, parse_filter

FilterKind = Literal["block", "pending", "logs"]

DEFAULT_FILTER_TIMEOUT = 300.0
"""Seconds a filter lives without a poll (geth's five minutes)."""
_SWEEP_INTERVAL = 1.0


class _Feed:
    """The newest `size` items of a stream, numbered from 1: filters keep a number, not items."""

    def __init__(self, size: int) -> None:
        self.items: deque[str] = deque(maxlen=size)
        self.last = 0

    def append(self, item: str) -> None:
        self.items.append(item)
        self.last += 1

    def since(self, number: int) -> list[str]:
        """The items after item `number` (as many as are still kept)."""
        count = min(self.last - number, len(self.items))
        return list(itertools.islice(self.items, len(self.items) - count, None))


@dataclass(slots=True)
class _Filter:
    kind: FilterKind
    cursor: int
    """Block and pending filters: the last feed item returned; log filters: the last block."""
    last_poll: float
    log_filter: LogFilter | None = None
    polling: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One poll at a time, so two concurrent polls of a log filter never return the same logs."""


class FilterNotFound(ServerError):
    """Unknown, uninstalled or expired: geth's -32000 "filter not found"."""

    def __init__(self) -> None:
        super().__init__("filter not found")


class FiltersApi:
    """The filter table and its JSON-RPC methods."""

    def __init__(
        self,
        search: LogSearch,
        events: ChainEvents,
        *,
        timeout: float = DEFAULT_FILTER_TIMEOUT,
        max_buffered: int = 10_000,
        max_filters: int = 10_000,
        max_criteria: int = 500_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.search = search
        self.timeout = timeout
        self.max_filters = max_filters
        self.criteria = CriteriaBudget(max_criteria, "installed filters")
        self.clock = clock
        self._filters: dict[str, _Filter] = {}
        self._blocks = _Feed(max_buffered)
        self._pending = _Feed(max_buffered)
        self._swept = clock()
        events.on_block(self._on_block)
        events.on_pending(self._on_pending)

    def __len__(self) -> int:
        return len(self._filters)

    # installing
    def _install(self, kind: FilterKind, cursor: int, log_filter: LogFilter | None = None) -> str:
        self.expire()
        if len(self._filters) >= self.max_filters:
            raise LimitExceeded(f"too many filters installed (max {self.max_filters})")
        if log_filter is not None:
            self.criteria.take(log_filter.criteria)
        filter_id = new_id()
        while filter_id in self._filters:
            filter_id = new_id()
        self._filters[filter_id] = _Filter(kind, cursor, self.clock(), log_filter)
        return filter_id

    @rpc_method("eth_newFilter", 1)
    def new_filter(self, filter_object: Any) -> str:
        head = self.search.chain.head.block_number
        return self._install("logs", head, parse_filter(filter_object))

    @rpc_method("eth_newBlockFilter")
    def new_block_filter(self) -> str:
        return self._install("block", self._blocks.last)

    @rpc_method("eth_newPendingTransactionFilter")
    def new_pending_filter(self) -> str:
        return self._install("pending", self._pending.last)

    # polling
    def _find(self, filter_id: Any) -> _Filter:
        self.expire()
        key = _normalise_id(filter_id)
        found = self._filters.get(key) if key is not None else None
        if found is None:
            raise FilterNotFound()
        return found

    @rpc_method("eth_getFilterChanges", 1)
    async def get_filter_changes(self, filter_id: Any) -> list[Any]:
        found = self._find(filter_id)
        found.last_poll = self.clock()
        if found.log_filter is not None:
            return await self._new_logs(found, found.log_filter)
        feed = self._blocks if found.kind == "block" else self._pending
        changes = feed.since(found.cursor)
        found.cursor = feed.last
        return changes

    async def _new_logs(self, found: _Filter, log_filter: LogFilter) -> list[dict[str, Any]]:
        async with found.polling:
            head = self.search.chain.head.block_number
            first, last = log_filter.window(found.cursor, head)
            if first > last:
                return []
            logs, scanned = await self.search.changes_async(log_filter.criteria, first, last)
            found.cursor = scanned
            return logs

    @rpc_method("eth_getFilterLogs", 1)
    async def get_filter_logs(self, filter_id: Any) -> list[dict[str, Any]]:
        found = self._find(filter_id)
        if found.log_filter is None:
            raise FilterNotFound()
        found.last_poll = self.clock()
        return await self.search.run_async(found.log_filter)

    @rpc_method("eth_uninstallFilter", 1)
    def uninstall_filter(self, filter_id: Any) -> bool:
        self.expire()
        key = _normalise_id(filter_id)
        found = self._filters.pop(key, None) if key is not None else None
        if found is None:
            return False
        self._forget(found)
        return True

    def expire(self) -> None:
        """Remove filters not polled within `timeout` seconds."""
        now = self._swept = self.clock()
        deadline = now - self.timeout
        stale = [key for key, item in self._filters.items() if item.last_poll < deadline]
        for key in stale:
            self._forget(self._filters.pop(key))

    def _forget(self, found: _Filter) -> None:
        if found.log_filter is not None:
            self.criteria.give_back(found.log_filter.criteria)

    # feeding: one append per event, and a sweep at most once a second
    def _sweep_now_and_then(self) -> None:
        if self.clock() - self._swept >= _SWEEP_INTERVAL:
            self.expire()

    # (With no filter installed nothing is kept: a filter's cursor starts at the feed's end.)
    def _on_block(self, block: CommittedBlock) -> None:
        if self._filters:
            self._blocks.append(views.hexd(block.block_hash))
            self._sweep_now_and_then()

    def _on_pending(self, tx_hash: bytes) -> None:
        if self._filters:
            self._pending.append(views.hexd(tx_hash))
            self._sweep_now_and_then()


def new_id() -> str:
    """A random 128-bit id as a hex quantity, as geth's filter and subscription ids are."""
    return hex(secrets.randbits(128))


def _normalise_id(value: Any) -> str | None:
    """The table key for a client-sent id (case and leading zeros do not matter)."""
    try:
        return hex(p.quantity(value, "filter id"))
    except RpcError:
        return None
