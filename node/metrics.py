"""Prometheus metrics a validator operator watches: height, round, peers, pool, block timing,
and the REST API's requests (by route template, so paths with addresses do not explode the
label set) and latencies.

Each node owns its registry (tests run several nodes in one process); gauges that mirror
live state (height, pool size, peers) are read at scrape time through callbacks, so the hot
path pays nothing for them.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "NodeMetrics"]


class NodeMetrics:
    def __init__(
        self,
        height: Callable[[], float],
        pool: Callable[[], dict[str, int]],
        peers: Callable[[], float] | None = None,
    ) -> None:
        """`height`, `pool` (its stats) and `peers` are read at scrape time."""
        self.registry = CollectorRegistry()
        self.height = Gauge(
            "tally_chain_height", "Number of the head block", registry=self.registry
        )
        self.round = Gauge("tally_consensus_round", "Current QBFT round", registry=self.registry)
        self.round_changes = Counter(
            "tally_consensus_round_changes", "Round changes started", registry=self.registry
        )
        self.peers = Gauge("tally_p2p_peers", "Connected peers", registry=self.registry)
        self.pool_pending = Gauge(
            "tally_txpool_pending", "Executable transactions waiting", registry=self.registry
        )
        self.pool_queued = Gauge(
            "tally_txpool_queued", "Future-nonce transactions waiting", registry=self.registry
        )
        buckets = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)
        self.block_import = Histogram(
            "tally_block_import_seconds",
            "Verifying, re-executing and committing a block",
            buckets=buckets,
            registry=self.registry,
        )
        self.transactions = Counter(
            "tally_transactions", "Transactions committed in blocks", registry=self.registry
        )
        self.api_requests = Counter(
            "tally_api_requests",
            "REST API requests by route template, method and HTTP status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.api_latency = Histogram(
            "tally_api_request_seconds",
            "REST API request latency by route template (to the end of the body)",
            ["route"],
            buckets=buckets,
            registry=self.registry,
        )
        self.height.set_function(height)
        self.pool_pending.set_function(lambda: pool().get("pending", 0))
        self.pool_queued.set_function(lambda: pool().get("queued", 0))
        if peers is not None:
            self.peers.set_function(peers)

    def render(self) -> bytes:
        return generate_latest(self.registry)
