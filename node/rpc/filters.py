"""Polled filters: `eth_newFilter`, `eth_newBlockFilter`, `eth_newPendingTransactionFilter`,
`eth_getFilterChanges`, `eth_getFilterLogs` and `eth_uninstallFilter`.

Filters are fed by `ChainEvents` as blocks commit and transactions enter the pool, and hold
what arrived since their last poll. Two bounds keep forgotten filters from growing without
limit: each buffers at most `max_buffered` items (the oldest are dropped first), and a filter
not polled for `timeout` seconds (five minutes, as geth) is removed. Expiry is checked whenever
filters are touched (an RPC call or an event), so no timer thread is needed and a test can
drive the clock.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from node.chain.events import ChainEvents, CommittedBlock
from node.rpc import params as p
from node.rpc import views
from node.rpc.dispatch import rpc_method
from node.rpc.errors import LimitExceeded, RpcError, ServerError
from node.rpc.logquery import BlockLog, LogFilter, LogSearch, parse_filter, read_block_logs

FilterKind = Literal["block", "pending", "logs"]


@dataclass(slots=True)
class _Filter:
    kind: FilterKind
    items: deque[Any]
    last_poll: float
    log_filter: LogFilter | None = None


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
        timeout: float = 300.0,
        max_buffered: int = 10_000,
        max_filters: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.search = search
        self.timeout = timeout
        self.max_buffered = max_buffered
        self.max_filters = max_filters
        self.clock = clock
        self._filters: dict[str, _Filter] = {}
        events.on_block(self._on_block)
        events.on_pending(self._on_pending)

    def __len__(self) -> int:
        return len(self._filters)

    # installing
    def _install(self, kind: FilterKind, log_filter: LogFilter | None = None) -> str:
        self.expire()
        if len(self._filters) >= self.max_filters:
            raise LimitExceeded(f"too many filters installed (max {self.max_filters})")
        filter_id = new_id()
        while filter_id in self._filters:
            filter_id = new_id()
        items: deque[Any] = deque(maxlen=self.max_buffered)
        self._filters[filter_id] = _Filter(kind, items, self.clock(), log_filter)
        return filter_id

    @rpc_method("eth_newFilter", 1)
    def new_filter(self, filter_object: Any) -> str:
        return self._install("logs", parse_filter(filter_object))

    @rpc_method("eth_newBlockFilter")
    def new_block_filter(self) -> str:
        return self._install("block")

    @rpc_method("eth_newPendingTransactionFilter")
    def new_pending_filter(self) -> str:
        return self._install("pending")

    # polling
    def _find(self, filter_id: Any) -> tuple[str, _Filter]:
        self.expire()
        key = _normalise_id(filter_id)
        found = self._filters.get(key) if key is not None else None
        if found is None:
            raise FilterNotFound()
        return key, found  # type: ignore[return-value]

    @rpc_method("eth_getFilterChanges", 1)
    def get_filter_changes(self, filter_id: Any) -> list[Any]:
        _, found = self._find(filter_id)
        found.last_poll = self.clock()
        changes = list(found.items)
        found.items.clear()
        return changes

    @rpc_method("eth_getFilterLogs", 1)
    async def get_filter_logs(self, filter_id: Any) -> list[dict[str, Any]]:
        _, found = self._find(filter_id)
        if found.log_filter is None:
            raise FilterNotFound()
        found.last_poll = self.clock()
        return await self.search.run_async(found.log_filter)

    @rpc_method("eth_uninstallFilter", 1)
    def uninstall_filter(self, filter_id: Any) -> bool:
        self.expire()
        key = _normalise_id(filter_id)
        return key is not None and self._filters.pop(key, None) is not None

    def expire(self) -> None:
        """Remove filters not polled within `timeout` seconds."""
        deadline = self.clock() - self.timeout
        stale = [key for key, item in self._filters.items() if item.last_poll < deadline]
        for key in stale:
            del self._filters[key]

    # feeding
    def _on_block(self, block: CommittedBlock) -> None:
        self.expire()
        if not self._filters:
            return
        block_hash = views.hexd(block.block_hash)
        logs: list[BlockLog] | None = None
        for found in self._filters.values():
            if found.kind == "block":
                found.items.append(block_hash)
                continue
            spec = found.log_filter
            if spec is None or not spec.covers(block.header.block_number):
                continue
            if not spec.criteria.may_match(block.header.bloom):
                continue
            if logs is None:
                logs = read_block_logs(self.search.store, block.block_hash, block.tx_hashes)
            found.items.extend(item.to_json() for item in logs if spec.criteria.matches(item.log))

    def _on_pending(self, tx_hash: bytes) -> None:
        self.expire()
        encoded: str | None = None
        for found in self._filters.values():
            if found.kind == "pending":
                encoded = encoded or views.hexd(tx_hash)
                found.items.append(encoded)


def new_id() -> str:
    """A random 128-bit id as a hex quantity, as geth's filter and subscription ids are."""
    return hex(secrets.randbits(128))


def _normalise_id(value: Any) -> str | None:
    """The table key for a client-sent id (case and leading zeros do not matter)."""
    try:
        return hex(p.quantity(value, "filter id"))
    except RpcError:
        return None
