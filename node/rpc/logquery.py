"""Log queries shared by `eth_getLogs`, log filters and `logs` subscriptions.

A query is criteria (addresses, positional topics) plus where to look (a block range or one
block hash). Every block's header carries a 2048-bit logs bloom, so a block whose bloom cannot
hold the criteria is skipped before any receipt is read: most blocks of a range query cost one
header read. Blooms give false positives only, so a passing block is then matched exactly.

Bounds (issue 12: 10 filters of 340,000 addresses cost 404 MB and stalled every block with
logs for 23 s): criteria name at most `MAX_CRITERIA_OPTIONS` addresses, and as many topics per
position (geth's `--rpc.logquerylimit`, with its error text); a scan works out each address's
and topic's bloom bits once (`BloomProbe`), not once per block; and the filters and
subscriptions a node keeps hold at most `CriteriaBudget` addresses and topics between them.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from eth_bloom import BloomFilter

from node.chain.chain import Chain
from node.query.reader import ChainReader
from node.rpc import params as p
from node.rpc import views
from node.rpc.errors import InvalidParams, LimitExceeded, ServerError
from node.storage.chainstore import ChainStore
from node.storage.records import LogRecord, TransactionRecord

MAX_TOPICS = 4
MAX_CRITERIA_OPTIONS = 1_000
"""Addresses, and topics at one position, a query may name (geth's default log query limit)."""

BlockRef = str | int
"""A block in a range query: a tag ("latest", "earliest", ...) or a number."""


@dataclass(frozen=True, slots=True)
class LogCriteria:
    """Which logs match: `None` is a wildcard; a set is "any of these" (OR)."""

    addresses: frozenset[bytes] | None = None
    topics: tuple[frozenset[bytes] | None, ...] = ()

    @property
    def size(self) -> int:
        """How many addresses and topics it names (what a kept filter costs)."""
        addresses = len(self.addresses) if self.addresses is not None else 0
        return addresses + sum(len(options) for options in self.topics if options is not None)

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

    def window(self, after: int, head: int) -> tuple[int, int]:
        """The blocks (first, last; empty when first > last) after block `after`, up to
        `head`, that lie inside the numeric bounds (tags bound nothing; a block-hash filter
        and one ending at "earliest" see no new blocks)."""
        first, last = after + 1, head
        if self.block_hash is not None or self.to_block == "earliest":
            return first, after
        if isinstance(self.from_block, int):
            first = max(first, self.from_block)
        if isinstance(self.to_block, int):
            last = min(last, self.to_block)
        return first, last


class BloomProbe:
    """`criteria`'s addresses and topics as logs-bloom bits, worked out once per query.

    Whether a value is in a bloom takes a keccak of the value; a range scan asks it of every
    block, so the bits are kept instead (three bits each, as an int to AND with a bloom).
    """

    __slots__ = ("addresses", "topics")

    def __init__(self, criteria: LogCriteria) -> None:
        addresses = criteria.addresses
        self.addresses = None if addresses is None else [_bloom_bits(a) for a in addresses]
        self.topics = [
            [_bloom_bits(topic) for topic in options]
            for options in criteria.topics
            if options is not None
        ]

    def may_match(self, bloom: int) -> bool:
        """False only when the bloom proves no log of the block can match."""
        if not bloom:
            return False
        if self.addresses is not None and not any(bloom & m == m for m in self.addresses):
            return False
        return all(any(bloom & m == m for m in options) for options in self.topics)


def _bloom_bits(value: bytes) -> int:
    return int(BloomFilter.from_iterable([value]))


class CriteriaBudget:
    """The addresses and topics that kept filters (or subscriptions) may name between them.

    Each costs memory for as long as its filter lives (about 100 bytes) and a set probe per
    block; per-query caps alone would still let 10,000 filters name 50 million.
    """

    def __init__(self, limit: int, holder: str) -> None:
        self.limit = limit
        self.holder = holder
        self.used = 0

    def take(self, criteria: LogCriteria) -> None:
        if self.used + criteria.size > self.limit:
            raise LimitExceeded(
                f"{self.holder} name too many addresses and topics (max {self.limit} in all)"
            )
        self.used += criteria.size

    def give_back(self, criteria: LogCriteria) -> None:
        self.used -= criteria.size


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
        _check_options(address)
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
        _check_options(item)
        if not item or any(option is None for option in item):
            return None
        return frozenset(p.hash32(option, "topic") for option in item)
    raise InvalidParams("invalid topic: expected a hash, null or a list of hashes")


def _check_options(options: list[Any]) -> None:
    if len(options) > MAX_CRITERIA_OPTIONS:
        raise InvalidParams("exceed max addresses or topics per search position")


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
    return p.quantity(value, name, bits=63)


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


class BlockLogs:
    """A new block's logs, for matching many subscriptions' criteria against them at once.

    The addresses and topics (by position) the block holds are sets, so criteria that share
    nothing with the block are passed over with a set operation (in C, over the smaller
    side) rather than log by log; each log's JSON is made once, whoever it goes to.
    """

    def __init__(self, logs: Sequence[BlockLog]) -> None:
        self.logs = logs
        self.addresses = frozenset(item.log.address for item in logs)
        self.topics = tuple(
            frozenset(item.log.topics[index] for item in logs if len(item.log.topics) > index)
            for index in range(MAX_TOPICS)
        )
        self._json: dict[int, dict[str, Any]] = {}

    def matching(self, criteria: LogCriteria) -> list[dict[str, Any]]:
        """The JSON of the logs `criteria` match, in log index order."""
        if criteria.addresses is not None and criteria.addresses.isdisjoint(self.addresses):
            return []
        for options, present in zip(criteria.topics, self.topics, strict=False):
            if options is not None and options.isdisjoint(present):
                return []
        return [
            self._to_json(index)
            for index, item in enumerate(self.logs)
            if criteria.matches(item.log)
        ]

    def _to_json(self, index: int) -> dict[str, Any]:
        found = self._json.get(index)
        if found is None:
            found = self._json[index] = self.logs[index].to_json()
        return found


class LogSearch:
    """Runs log queries over committed blocks, within the node's configured caps.

    `max_range` bounds the blocks one query may span (as requested, before clamping to the
    head, so a client learns the cap without the chain having to be that long);
    `max_results` bounds the logs one answer may carry.

    A wide range is thousands of LevelDB reads, so `run_async` scans in worker threads: the
    event loop keeps serving other clients meanwhile. The threads are this search's own, not
    the loop's default executor, which the consensus engine builds and commits blocks on: a
    burst of log queries must never queue block production behind it. Scans read the store
    only (never the chain's header cache), so they share no mutable state with the loop, and
    they pause between blocks while the chain builds, re-executes or commits one (as client
    calls do, `node.chain.priority`): CPython shares the GIL evenly among the threads that
    want it, so two scanning threads would otherwise slow block building several times over.
    """

    def __init__(
        self,
        chain: Chain,
        max_range: int = 10_000,
        max_results: int = 10_000,
        workers: int = 2,
    ) -> None:
        self.chain = chain
        self.reader = ChainReader(chain)
        self.store = chain.store
        self.max_range = max_range
        self.max_results = max_results
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="log-search")

    async def run_async(self, log_filter: LogFilter) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.run, log_filter)

    async def changes_async(
        self, criteria: LogCriteria, first: int, last: int
    ) -> tuple[list[dict[str, Any]], int]:
        """A filter's new logs: those of blocks `first`..`last`, and the last block scanned.

        Never an error for size: at most `max_range` blocks are scanned, and the scan stops
        after the block that brings the logs to `max_results`; the filter's next poll goes
        on from there.
        """
        if self.max_range:
            last = min(last, first + self.max_range - 1)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(self._scan, criteria, first, last, partial=True)
        )

    def resolve(self, ref: BlockRef) -> int:
        if isinstance(ref, int):
            return ref
        return 0 if ref == "earliest" else self.reader.head().number

    def run(self, log_filter: LogFilter) -> list[dict[str, Any]]:
        if log_filter.block_hash is not None:
            header = self.store.header(log_filter.block_hash)
            if header is None:
                raise ServerError("unknown block")
            if not BloomProbe(log_filter.criteria).may_match(header.bloom):
                return []
            logs = read_block_logs(self.store, log_filter.block_hash)
            found = matching_json(log_filter.criteria, logs)
            if self.max_results and len(found) > self.max_results:
                raise LimitExceeded(f"query returned more than {self.max_results} results")
            return found
        first = self.resolve(log_filter.from_block)
        last = self.resolve(log_filter.to_block)
        if first > last:
            raise InvalidParams("invalid block range params")
        if self.max_range and last - first + 1 > self.max_range:
            raise LimitExceeded(f"query exceeds max block range {self.max_range}")
        if last > self.reader.head().number:
            # geth's check and wording (execution-apis: filter-error-future-block-range).
            raise InvalidParams("block range extends beyond current head block")
        found, _ = self._scan(log_filter.criteria, first, last, partial=False)
        return found

    def _scan(
        self, criteria: LogCriteria, first: int, last: int, *, partial: bool
    ) -> tuple[list[dict[str, Any]], int]:
        """Matching logs of the canonical blocks `first`..`last` (inclusive), oldest first,
        and the last block scanned. More than `max_results`: an error, or with `partial` the
        whole blocks scanned until then."""
        probe = BloomProbe(criteria)
        found: list[dict[str, Any]] = []
        scanned = first - 1
        block_work = self.chain.block_work
        for number in range(first, last + 1):
            block_work.idle.wait()
            block_hash = self.store.canonical_hash(number)
            if block_hash is None:
                break
            header = self.store.header(block_hash)
            if header is None:
                break
            if probe.may_match(header.bloom):
                found.extend(matching_json(criteria, read_block_logs(self.store, block_hash)))
            scanned = number
            if partial and self.max_results and len(found) >= self.max_results:
                break
            if self.max_results and len(found) > self.max_results:
                raise LimitExceeded(f"query returned more than {self.max_results} results")
        return found, scanned
