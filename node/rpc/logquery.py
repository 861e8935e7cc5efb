"""Log queries shared by `eth_getLogs`, log filters and `logs` subscriptions.

A query is criteria (addresses, positional topics) plus where to look (a block range or one
block hash). Every block's header carries a 2048-bit logs bloom, so a block whose bloom cannot
hold the criteria is skipped before any receipt is read: most blocks of a range query cost one
header read. Blooms give false positives only, so a passing block is then matched exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from eth.abc import BlockHeaderAPI
from eth_bloom import BloomFilter

from node.chain.chain import Chain
from node.rpc import params as p
from node.rpc import views
from node.rpc.errors import InvalidParams, LimitExceeded, ServerError
from node.storage.chainstore import ChainStore
from node.storage.records import LogRecord, TransactionRecord

MAX_TOPICS = 4

BlockRef = str | int
"""A block in a range query: a tag ("latest", "earliest", ...) or a number."""


@dataclass(frozen=True, slots=True)
class LogCriteria:
    """Which logs match: `None` is a wildcard; a set is "any of these" (OR)."""

    addresses: frozenset[bytes] | None = None
    topics: tuple[frozenset[bytes] | None, ...] = ()

    def may_match(self, bloom: int) -> bool:
        """False only when the block's logs bloom proves no log of the block can match."""
        if not bloom:
            return False
        if self.addresses is None and not any(self.topics):
            return True
        filter_ = BloomFilter(bloom)
        if self.addresses is not None and not any(a in filter_ for a in self.addresses):
            return False
        return all(
            options is None or any(topic in filter_ for topic in options) for options in self.topics
        )

    def matches(self, log: LogRecord) -> bool:
        if self.addresses is not None and log.address not in self.addresses:
            return False
        if len(self.topics) > len(log.topics):
            return False
        return all(
            options is None or topic in options
            for options, topic in zip(self.topics, log.topics, strict=False)
        )


@dataclass(frozen=True, slots=True)
class LogFilter:
    """A parsed filter object: criteria plus a range (`from_block`..`to_block`) or one block."""

    criteria: LogCriteria
    from_block: BlockRef = "latest"
    to_block: BlockRef = "latest"
    block_hash: bytes | None = None

    def covers(self, number: int) -> bool:
        """Whether a new block at `number` is inside the numeric bounds (tags bound nothing)."""
        if self.block_hash is not None:
            return False
        if isinstance(self.from_block, int) and number < self.from_block:
            return False
        if isinstance(self.to_block, int) and number > self.to_block:
            return False
        return self.to_block != "earliest"


@dataclass(frozen=True, slots=True)
class BlockLog:
    """One log of a committed block with what its JSON form needs."""

    log: LogRecord
    tx: TransactionRecord
    tx_hash: bytes
    log_index: int

    def to_json(self) -> dict[str, Any]:
        return views.log_json(self.log, self.tx, self.tx_hash, self.log_index)


def parse_criteria(value: dict[str, Any]) -> LogCriteria:
    """`address` (one or a list) and `topics` (positional; null = any; a list = any of)."""
    address = value.get("address")
    addresses: frozenset[bytes] | None
    if address is None:
        addresses = None
    elif isinstance(address, str):
        addresses = frozenset((p.address(address),))
    elif isinstance(address, list):
        addresses = frozenset(p.address(item) for item in address) if address else None
    else:
        raise InvalidParams("invalid address: expected an address or a list of addresses")
    topics_param = value.get("topics")
    if topics_param is None:
        topics_param = []
    if not isinstance(topics_param, list):
        raise InvalidParams("invalid topics: expected a list")
    if len(topics_param) > MAX_TOPICS:
        raise InvalidParams("exceed max topics")
    topics = tuple(_topic_position(item) for item in topics_param)
    while topics and topics[-1] is None:
        topics = topics[:-1]
    return LogCriteria(addresses, topics)


def _topic_position(item: Any) -> frozenset[bytes] | None:
    if item is None:
        return None
    if isinstance(item, str):
        return frozenset((p.hash32(item, "topic"),))
    if isinstance(item, list):
        if not item or any(option is None for option in item):
            return None
        return frozenset(p.hash32(option, "topic") for option in item)
    raise InvalidParams("invalid topic: expected a hash, null or a list of hashes")


def parse_filter(value: Any) -> LogFilter:
    """A filter object of `eth_getLogs` / `eth_newFilter`; blockHash excludes from/to (EIP-234)."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise InvalidParams("invalid filter: expected an object")
    criteria = parse_criteria(value)
    if value.get("blockHash") is not None:
        if value.get("fromBlock") is not None or value.get("toBlock") is not None:
            raise InvalidParams(
                "cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other"
            )
        return LogFilter(criteria, block_hash=p.hash32(value["blockHash"], "blockHash"))
    first = _block_ref(value.get("fromBlock"), "fromBlock")
    last = _block_ref(value.get("toBlock"), "toBlock")
    if isinstance(first, int) and isinstance(last, int) and first > last:
        raise InvalidParams("invalid block range params")
    return LogFilter(criteria, first, last)


def _block_ref(value: Any, name: str) -> BlockRef:
    if value is None:
        return "latest"
    if isinstance(value, str) and value in p.BLOCK_TAGS:
        return value
    return p.quantity(value, name)


def read_block_logs(
    store: ChainStore, block_hash: bytes, tx_hashes: Iterable[bytes] | None = None
) -> list[BlockLog]:
    """Every log of a block, in log index order (transaction records read only when needed)."""
    hashes = store.block_tx_hashes(block_hash) if tx_hashes is None else tx_hashes
    logs: list[BlockLog] = []
    for tx_hash in hashes:
        receipt = store.receipt(tx_hash)
        if receipt is None or not receipt.logs:
            continue
        tx = store.transaction(tx_hash)
        if tx is None:
            continue
        logs.extend(
            BlockLog(log, tx, tx_hash, receipt.first_log_index + offset)
            for offset, log in enumerate(receipt.logs)
        )
    return logs


def matching_json(criteria: LogCriteria, logs: Sequence[BlockLog]) -> list[dict[str, Any]]:
    return [item.to_json() for item in logs if criteria.matches(item.log)]


class LogSearch:
    """Runs log queries over committed blocks, within the node's configured caps.

    `max_range` bounds the blocks one query may span (as requested, before clamping to the
    head, so a client learns the cap without the chain having to be that long);
    `max_results` bounds the logs one answer may carry.

    A wide range is thousands of LevelDB reads, so `run_async` scans in worker threads: the
    event loop keeps serving other clients meanwhile. The threads are this search's own, not
    the loop's default executor, which the consensus engine builds and commits blocks on: a
    burst of log queries must never queue block production behind it. Scans read the store
    only (never the chain's header cache), so they share no mutable state with the loop.
    """

    def __init__(
        self,
        chain: Chain,
        max_range: int = 10_000,
        max_results: int = 10_000,
        workers: int = 2,
    ) -> None:
        self.chain = chain
        self.store = chain.store
        self.max_range = max_range
        self.max_results = max_results
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="log-search")

    async def run_async(self, log_filter: LogFilter) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.run, log_filter)

    def resolve(self, ref: BlockRef) -> int:
        if isinstance(ref, int):
            return ref
        return 0 if ref == "earliest" else self.chain.head.block_number

    def run(self, log_filter: LogFilter) -> list[dict[str, Any]]:
        if log_filter.block_hash is not None:
            header = self.store.header(log_filter.block_hash)
            if header is None:
                raise ServerError("unknown block")
            return self._block(log_filter.criteria, log_filter.block_hash, header, [])
        first = self.resolve(log_filter.from_block)
        last = self.resolve(log_filter.to_block)
        if first > last:
            raise InvalidParams("invalid block range params")
        if self.max_range and last - first + 1 > self.max_range:
            raise LimitExceeded(f"query exceeds max block range {self.max_range}")
        return self.range(log_filter.criteria, first, min(last, self.chain.head.block_number))

    def range(self, criteria: LogCriteria, first: int, last: int) -> list[dict[str, Any]]:
        """Matching logs of the canonical blocks `first`..`last` (inclusive), oldest first."""
        found: list[dict[str, Any]] = []
        for number in range(first, last + 1):
            block_hash = self.store.canonical_hash(number)
            if block_hash is None:
                break
            header = self.store.header(block_hash)
            if header is None:
                break
            self._block(criteria, block_hash, header, found)
        return found

    def _block(
        self,
        criteria: LogCriteria,
        block_hash: bytes,
        header: BlockHeaderAPI,
        found: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        if criteria.may_match(header.bloom):
            found.extend(matching_json(criteria, read_block_logs(self.store, block_hash)))
            if self.max_results and len(found) > self.max_results:
                raise LimitExceeded(f"query returned more than {self.max_results} results")
        return found
