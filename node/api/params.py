"""Parsing path and query values (400 with a clear message), cursors, and output formatting.

Cursors are opaque to clients: base64url of a short tagged text naming the last row a page
read (`tx:12:3`, `log:12:3:7`, `blk:12`, `set:escrow:4`). The tag stops a cursor of one kind
of list from being replayed against another.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from eth_utils import to_checksum_address

from node.api.errors import BadRequest
from node.storage.indexes import SETTLEMENT_KINDS, LogPosition

MAX_BLOCK_NUMBER = 2**63 - 1


def address(value: str, what: str = "address") -> bytes:
    text = value.strip()
    if len(text) != 42 or not text.startswith(("0x", "0X")):
        raise BadRequest(f"{what} must be a 0x-prefixed 20-byte hex address")
    try:
        return bytes.fromhex(text[2:])
    except ValueError as exc:
        raise BadRequest(f"{what} is not hex") from exc


def hash32(value: str, what: str = "hash") -> bytes:
    text = value.strip()
    if len(text) != 66 or not text.startswith(("0x", "0X")):
        raise BadRequest(f"{what} must be a 0x-prefixed 32-byte hex hash")
    try:
        return bytes.fromhex(text[2:])
    except ValueError as exc:
        raise BadRequest(f"{what} is not hex") from exc


def hex_data(value: str, what: str) -> bytes:
    text = value.strip()
    if not text.startswith(("0x", "0X")):
        raise BadRequest(f"{what} must be 0x-prefixed hex")
    try:
        return bytes.fromhex(text[2:])
    except ValueError as exc:
        raise BadRequest(f"{what} is not valid hex") from exc


def block_number(value: str, head: int, what: str = "block") -> int:
    """`latest` or a decimal (or 0x-hex) block number not above the head."""
    text = value.strip().lower()
    if text in ("latest", "finalized", "safe"):
        return head
    if text == "earliest":
        return 0
    try:
        number = int(text, 16) if text.startswith("0x") else int(text)
    except ValueError as exc:
        raise BadRequest(f"{what} must be 'latest' or a block number") from exc
    if number < 0 or number > MAX_BLOCK_NUMBER:
        raise BadRequest(f"{what} is out of range")
    return number


def checksum(value: bytes) -> str:
    return to_checksum_address(value)


def hexd(value: bytes) -> str:
    return "0x" + value.hex()


def iso_time(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode_cursor(*parts: object) -> str:
    text = ":".join(str(part) for part in parts)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _cursor_fields(cursor: str, tag: str, count: int) -> list[str]:
    if len(cursor) > 200:
        raise BadRequest("invalid cursor")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("invalid cursor") from exc
    fields = text.split(":")
    if len(fields) != count + 1 or fields[0] != tag:
        raise BadRequest("invalid cursor (from another list?)")
    return fields[1:]


def _ints(fields: list[str]) -> list[int]:
    try:
        values = [int(field) for field in fields]
    except ValueError as exc:
        raise BadRequest("invalid cursor") from exc
    if any(value < 0 or value > MAX_BLOCK_NUMBER for value in values):
        raise BadRequest("invalid cursor")
    return values


def tx_cursor(cursor: str) -> tuple[int, int]:
    number, index = _ints(_cursor_fields(cursor, "tx", 2))
    return number, index


def log_cursor(cursor: str) -> LogPosition:
    number, tx_index, log_index = _ints(_cursor_fields(cursor, "log", 3))
    return LogPosition(number, tx_index, log_index)


def block_cursor(cursor: str) -> int:
    (number,) = _ints(_cursor_fields(cursor, "blk", 1))
    return number


def settlement_cursor(cursor: str) -> tuple[str, int]:
    kind, raw_id = _cursor_fields(cursor, "set", 2)
    if kind not in SETTLEMENT_KINDS:
        raise BadRequest("invalid cursor")
    (settlement_id,) = _ints([raw_id])
    return kind, settlement_id
