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
from node.domain.indexes import SETTLEMENT_KINDS, LogPosition
from node.hexcodec import decode_data, decode_quantity

MAX_BLOCK_NUMBER = 2**63 - 1


def address(value: str, what: str = "address") -> bytes:
    return _fixed(value, 20, f"{what} must be a 0x-prefixed 20-byte hex address")


def hash32(value: str, what: str = "hash") -> bytes:
    return _fixed(value, 32, f"{what} must be a 0x-prefixed 32-byte hex hash")


def _fixed(value: str, length: int, refusal: str) -> bytes:
    try:
        raw = decode_data(value.strip())
    except ValueError as exc:
        raise BadRequest(refusal) from exc
    if len(raw) != length:
        raise BadRequest(refusal)
    return raw


def hex_data(value: str, what: str) -> bytes:
    """0x-prefixed even-length hex; surrounding whitespace (a pasted value) is forgiven."""
    try:
        return decode_data(value.strip())
    except ValueError as exc:
        raise BadRequest(f"{what} must be 0x-prefixed hex: {exc}") from exc


def block_number(value: str, head: int, what: str = "block") -> int:
    """`latest` or a decimal (or 0x-hex) block number not above the head."""
    text = value.strip().lower()
    if text in ("latest", "finalized", "safe"):
        return head
    if text == "earliest":
        return 0
    if text.startswith("0x"):
        try:
            number = decode_quantity(text)
        except ValueError as exc:
            raise BadRequest(f"{what} must be 'latest' or a block number") from exc
    elif _decimal(text):
        number = int(text)
    else:
        raise BadRequest(f"{what} must be 'latest' or a block number")
    if number > MAX_BLOCK_NUMBER:
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


def _decimal(text: str) -> bool:
    """ASCII digits only: `int()` would also take signs, spaces, `_` and non-ASCII digits."""
    return text.isascii() and text.isdigit()


def _ints(fields: list[str]) -> list[int]:
    if not all(_decimal(field) for field in fields):
        raise BadRequest("invalid cursor")
    values = [int(field) for field in fields]
    if any(value > MAX_BLOCK_NUMBER for value in values):
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
