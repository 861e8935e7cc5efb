"""getLogs for the Etherscan-compatible API: Etherscan's criteria (an address, `topic0..3`
and the `topicX_Y_opr` operators between them) matched against committed blocks, a block
whose logs bloom rules them out costing one header read.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from eth_bloom import BloomFilter

from node.api.context import ApiContext
from node.api.etherscan_params import EtherscanError, Query
from node.storage.records import LogRecord, ReceiptRecord, TransactionRecord

MAX_LOGS = 1_000
"""Logs one getLogs answer carries at most (Etherscan's)."""
MAX_LOG_RANGE = 10_000
"""Blocks one getLogs request may span (the node's default `--max-log-range`)."""
TOPICS = 4


@dataclass(frozen=True, slots=True)
class LogQuery:
    """getLogs criteria: an address, topics by position, and the operators between them."""

    address: bytes | None
    topics: tuple[tuple[int, bytes], ...]
    operators: tuple[str, ...]
    """Between each given topic and the next: "and" or "or" (evaluated left to right)."""

    def matches(self, log: LogRecord) -> bool:
        if self.address is not None and log.address != self.address:
            return False
        result = None
        for number, (position, topic) in enumerate(self.topics):
            hit = len(log.topics) > position and log.topics[position] == topic
            if result is None:
                result = hit
            elif self.operators[number - 1] == "and":
                result = result and hit
            else:
                result = result or hit
        return True if result is None else result

    def bloom_terms(self) -> list[list[bytes]]:
        """Values a block's bloom must hold (each inner list: any of): topics only when
        every operator is "and", since an "or" lets a log miss any one of them."""
        terms = [] if self.address is None else [[self.address]]
        if all(operator == "and" for operator in self.operators):
            terms += [[topic] for _, topic in self.topics]
        else:
            terms.append([topic for _, topic in self.topics])
        return terms


def log_query(query: Query) -> LogQuery:
    topics = []
    for position in range(TOPICS):
        if query.text(f"topic{position}") is not None:
            topics.append((position, query.hash32(f"topic{position}")))
    operators = []
    for (a, _), (b, _) in itertools.pairwise(topics):
        operators.append(query.choice(f"topic{a}_{b}_opr", ("and", "or")))
    address = query.address("address", required=False)
    if address is None and not topics:
        raise EtherscanError("Error! Missing address or topic")
    return LogQuery(address, tuple(topics), tuple(operators))


@dataclass(frozen=True, slots=True)
class FoundLog:
    log: LogRecord
    record: TransactionRecord
    receipt: ReceiptRecord
    tx_hash: bytes
    log_index: int
    timestamp: int


def matching_logs(ctx: ApiContext, criteria: LogQuery, first: int, last: int) -> Iterator[FoundLog]:
    """Matching logs of blocks `first`..`last`, oldest first; a block whose bloom rules them
    out costs one header read. Pauses while a block is being made (as eth_getLogs does)."""
    terms = [
        [int(BloomFilter.from_iterable([value])) for value in any_of]
        for any_of in criteria.bloom_terms()
    ]
    store = ctx.chain.store
    for number in range(first, last + 1):
        ctx.chain.block_work.idle.wait()
        block_hash = store.canonical_hash(number)
        header = None if block_hash is None else store.header(block_hash)
        if block_hash is None or header is None:
            return
        bloom = header.bloom
        if not bloom or not all(any(bloom & m == m for m in any_of) for any_of in terms):
            continue
        for tx_hash in store.block_tx_hashes(block_hash):
            receipt = store.receipt(tx_hash)
            record = None if receipt is None or not receipt.logs else store.transaction(tx_hash)
            if receipt is None or record is None:
                continue
            for offset, log in enumerate(receipt.logs):
                if criteria.matches(log):
                    index = receipt.first_log_index + offset
                    yield FoundLog(log, record, receipt, tx_hash, index, header.timestamp)
