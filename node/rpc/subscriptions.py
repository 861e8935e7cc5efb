"""`eth_subscribe` / `eth_unsubscribe`: pushed `newHeads`, `logs` and `newPendingTransactions`.

Subscriptions live on a WebSocket connection and die with it (`drop_connection` is the
server's `on_disconnect` hook). Over HTTP there is nowhere to push to, so the methods answer as
geth does: code -32601 (method not found), message "notifications not supported"; geth moved
to that code from the legacy -32001 so that clients treat it as an absent feature.

Each committed block is turned into JSON once, however many clients listen: the header for
`newHeads`, and the block's logs (read once if its bloom is not empty and a `logs`
subscription exists), then one `eth_subscription` message per log, in log index order, as geth
sends them. Matching runs on the event loop, so it is kept bounded per block: criteria that
share no address or topic with the block are passed over by a set operation
(`node.rpc.logquery.BlockLogs`), and the node keeps at most `max_subscriptions`, naming at most
`max_criteria` addresses and topics between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from node.chain.notifications import ChainEvents, CommittedBlock
from node.rpc import views
from node.rpc.dispatch import rpc_method
from node.rpc.errors import InvalidParams, LimitExceeded, MethodNotFound, ServerError
from node.rpc.filters import new_id
from node.rpc.logquery import (
    BlockLogs,
    CriteriaBudget,
    LogCriteria,
    parse_criteria,
    read_block_logs,
)
from node.storage.chainstore import ChainStore

KINDS = ("newHeads", "logs", "newPendingTransactions")
_HEADER_ONLY = ("transactions", "uncles", "withdrawals", "size", "totalDifficulty")


class Connection(Protocol):
    """What a subscription needs of a client connection (`node.rpc.server.WsConnection`)."""

    subscriptions: dict[str, Any]
    closed: bool

    def notify(self, payload: bytes) -> None: ...


class NotificationsUnsupported(MethodNotFound):
    def __init__(self) -> None:
        super().__init__("notifications not supported")


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    connection: Connection
    kind: str
    criteria: LogCriteria | None = None


def header_json(block: CommittedBlock) -> dict[str, Any]:
    """A `newHeads` result: the block's JSON without the body fields."""
    result = views.block_json(block.header, block.block_hash, [], 0)
    for key in _HEADER_ONLY:
        result.pop(key, None)
    return result


class SubscriptionsApi:
    """The subscription table, its JSON-RPC methods and the chain-event fan-out."""

    def __init__(
        self,
        store: ChainStore,
        events: ChainEvents,
        *,
        max_per_connection: int = 1_000,
        max_subscriptions: int = 10_000,
        max_criteria: int = 500_000,
    ) -> None:
        self.store = store
        self.max_per_connection = max_per_connection
        self.max_subscriptions = max_subscriptions
        self.criteria = CriteriaBudget(max_criteria, "subscriptions")
        self._subscriptions: dict[str, Subscription] = {}
        events.on_block(self._on_block)
        events.on_pending(self._on_pending)

    def __len__(self) -> int:
        return len(self._subscriptions)

    @rpc_method("eth_subscribe", 1, 2, needs_connection=True)
    def subscribe(self, connection: Connection | None, kind: Any, options: Any) -> str:
        if connection is None:
            raise NotificationsUnsupported()
        if kind not in KINDS:
            raise MethodNotFound(f'no "{kind}" subscription in eth namespace')
        criteria = None
        if kind == "logs":
            if options is not None and not isinstance(options, dict):
                raise InvalidParams("invalid logs subscription: expected an object")
            criteria = parse_criteria(options or {})
        if len(connection.subscriptions) >= self.max_per_connection:
            raise LimitExceeded(
                f"too many subscriptions on this connection (max {self.max_per_connection})"
            )
        if len(self._subscriptions) >= self.max_subscriptions:
            raise LimitExceeded(f"too many subscriptions (max {self.max_subscriptions})")
        if criteria is not None:
            self.criteria.take(criteria)
        subscription_id = new_id()
        while subscription_id in self._subscriptions:
            subscription_id = new_id()
        subscription = Subscription(subscription_id, connection, kind, criteria)
        self._subscriptions[subscription_id] = subscription
        connection.subscriptions[subscription_id] = subscription
        return subscription_id

    @rpc_method("eth_unsubscribe", 1, needs_connection=True)
    def unsubscribe(self, connection: Connection | None, subscription_id: Any) -> bool:
        if connection is None:
            raise NotificationsUnsupported()
        if not isinstance(subscription_id, str) or subscription_id not in connection.subscriptions:
            raise ServerError("subscription not found")
        del connection.subscriptions[subscription_id]
        self._forget(subscription_id)
        return True

    def drop_connection(self, connection: Connection) -> None:
        """Forget every subscription of a closed connection."""
        for subscription_id in list(connection.subscriptions):
            self._forget(subscription_id)
        connection.subscriptions.clear()

    def _forget(self, subscription_id: str) -> None:
        subscription = self._subscriptions.pop(subscription_id, None)
        if subscription is not None and subscription.criteria is not None:
            self.criteria.give_back(subscription.criteria)

    def _on_block(self, block: CommittedBlock) -> None:
        if not self._subscriptions:
            return
        head: dict[str, Any] | None = None
        logs: BlockLogs | None = None
        for subscription in list(self._subscriptions.values()):
            if subscription.kind == "newHeads":
                head = head or header_json(block)
                _send(subscription, head)
            elif subscription.kind == "logs" and subscription.criteria is not None:
                if not block.header.bloom or subscription.connection.closed:
                    continue
                if logs is None:
                    logs = BlockLogs(read_block_logs(self.store, block.block_hash, block.tx_hashes))
                for item in logs.matching(subscription.criteria):
                    _send(subscription, item)

    def _on_pending(self, tx_hash: bytes) -> None:
        encoded: str | None = None
        for subscription in list(self._subscriptions.values()):
            if subscription.kind == "newPendingTransactions":
                encoded = encoded or views.hexd(tx_hash)
                _send(subscription, encoded)


def _send(subscription: Subscription, result: Any) -> None:
    subscription.connection.notify(
        orjson.dumps(
            {
                "jsonrpc": "2.0",
                "method": "eth_subscription",
                "params": {"subscription": subscription.id, "result": result},
            }
        )
    )
