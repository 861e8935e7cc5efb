"""Reading a stream's next events from the committed chain, in (block, log index) order.

This is what makes delivery durable: a worker never depends on having heard a block announced;
it reads the stored blocks after its position, so after a restart, an outage or a replay it
finds exactly the events it has not delivered. A scan is bounded (events and blocks), and
runs in a thread: LevelDB reads and log decoding stay off the event loop.
"""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address

from node.api.streams.model import Position, StreamFilter
from node.domain.event_decoding import EventDecoder
from node.storage.chainstore import ChainStore

WHOLE_BLOCK = 2**32
"""A log index above any real one: (n, WHOLE_BLOCK) means "block n fully scanned"."""

MAX_SCAN_BLOCKS = 2_000
"""Blocks one scan reads at most; a sparse stream catches up over several scans."""


def scan(
    chain: ChainStore,
    decoder: EventDecoder,
    match: StreamFilter,
    after: Position,
    head: int,
    max_events: int,
) -> tuple[list[dict[str, Any]], Position]:
    """Up to `max_events` matching events above `after`, up to block `head`, and how far the
    scan got (the last event's position, or the last block read whole)."""
    events: list[dict[str, Any]] = []
    first = max(after[0] + 1 if after[1] >= WHOLE_BLOCK else after[0], 0)
    last = min(head, first + MAX_SCAN_BLOCKS - 1)
    for number in range(first, last + 1):
        block_hash = chain.canonical_hash(number)
        if block_hash is None:
            return events, (number - 1, WHOLE_BLOCK)
        timestamp: int | None = None
        for tx_index, tx_hash in enumerate(chain.block_tx_hashes(block_hash)):
            receipt, tx = chain.receipt(tx_hash), chain.transaction(tx_hash)
            if receipt is None or tx is None:
                continue
            for offset, log in enumerate(receipt.logs):
                log_index = receipt.first_log_index + offset
                if (number, log_index) <= after or not match.matches(log, tx.sender):
                    continue
                if timestamp is None:
                    header = chain.header(block_hash)
                    timestamp = header.timestamp if header is not None else 0
                decoded = decoder.decode(log, log_index)
                events.append(
                    {
                        "block_number": number,
                        "block_hash": "0x" + block_hash.hex(),
                        "log_index": log_index,
                        "tx_hash": "0x" + tx_hash.hex(),
                        "tx_index": tx_index,
                        "tx_from": to_checksum_address(tx.sender),
                        "timestamp": timestamp,
                        "address": decoded["address"],
                        "contract": decoded["contract"],
                        "event": decoded["event"],
                        "args": decoded["args"],
                        "topics": ["0x" + t.hex() for t in log.topics],
                        "data": "0x" + log.data.hex(),
                    }
                )
                if len(events) >= max_events:
                    return events, (number, log_index)
    return events, (last, WHOLE_BLOCK) if last >= first else after
