"""Message kinds: the first plaintext byte of every frame on an established link."""

from __future__ import annotations

from enum import IntEnum

from eth_hash.auto import keccak


class MessageKind(IntEnum):
    """One byte naming what a frame's payload is.

    0 and 0xF0-0xFF are link control, handled inside the p2p layer and never delivered to
    subscribers; 1-0xEF are for the application (6-0xEF free for future kinds). A receiver
    ignores a kind it does not know, so adding one needs no protocol version bump.
    """

    DISCONNECT = 0x00
    """Control: utf-8 reason; the sender closes the link right after it."""
    TX = 0x01
    """A signed raw transaction (gossiped)."""
    CONSENSUS = 0x02
    """A QBFT message (gossiped)."""
    BLOCK_REQUEST = 0x03
    """Ask one peer for blocks (point to point)."""
    BLOCKS = 0x04
    """Blocks answering a BLOCK_REQUEST (point to point)."""
    STATUS = 0x05
    """A peer's head, sent on connect and on change (point to point)."""
    STATE_DIFF = 0x06
    """A proposer's state diff and receipts, for validators that check it (point to point)."""
    PING = 0xFF
    """Control: keeps an idle link alive so the other side's idle timeout does not fire."""


CONTROL_KINDS = frozenset({MessageKind.DISCONNECT, MessageKind.PING})
GOSSIP_KINDS = frozenset({MessageKind.TX, MessageKind.CONSENSUS})
"""Kinds that are de-duplicated and relayed by default."""


def message_digest(kind: int, payload: bytes) -> bytes:
    """The identity of a gossiped message: the same payload under another kind is another one."""
    return keccak(bytes([kind]) + payload)
