"""Parsing JSON-RPC params: hex quantities, data, addresses, hashes and block tags.

Each parser raises `InvalidParams` with a message naming what was wrong, so a client learns
why its request was refused instead of receiving a stack trace.
"""

from __future__ import annotations

from typing import Any

from node.hexcodec import decode_data, decode_quantity
from node.rpc.errors import InvalidParams

BLOCK_TAGS = ("latest", "earliest", "pending", "safe", "finalized")


def quantity(value: Any, name: str = "quantity", bits: int = 256) -> int:
    """A hex-encoded unsigned integer ("0x1a") of at most `bits` bits; plain JSON integers are
    accepted too."""
    if isinstance(value, bool):
        raise InvalidParams(f"invalid {name}: expected hex string")
    if isinstance(value, int):
        if value < 0:
            raise InvalidParams(f"invalid {name}: negative")
        number = value
    elif not isinstance(value, str):
        raise InvalidParams(f"invalid {name}: expected 0x-prefixed hex string")
    else:
        try:
            number = decode_quantity(value)
        except ValueError as exc:
            raise InvalidParams(f"invalid {name}: {exc}") from exc
    if number >= 2**bits:
        raise InvalidParams(f"invalid {name}: exceeds {bits} bits")
    return number


def data(value: Any, name: str = "data") -> bytes:
    """0x-prefixed hex bytes of even length."""
    if not isinstance(value, str):
        raise InvalidParams(f"invalid {name}: expected 0x-prefixed hex string")
    try:
        return decode_data(value)
    except ValueError as exc:
        raise InvalidParams(f"invalid {name}: {exc}") from exc


def fixed(value: Any, length: int, name: str) -> bytes:
    raw = data(value, name)
    if len(raw) != length:
        raise InvalidParams(f"invalid {name}: expected {length} bytes, got {len(raw)}")
    return raw


def address(value: Any, name: str = "address") -> bytes:
    return fixed(value, 20, name)


def hash32(value: Any, name: str = "hash") -> bytes:
    return fixed(value, 32, name)


def boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidParams(f"invalid {name}: expected true or false")
    return value


def block_tag(value: Any) -> str | int | bytes:
    """A block tag, a block number, or (EIP-1898) {"blockHash": ...} / {"blockNumber": ...}."""
    if value is None:
        return "latest"
    if isinstance(value, str) and value in BLOCK_TAGS:
        return value
    if isinstance(value, dict):
        if "blockHash" in value:
            return hash32(value["blockHash"], "blockHash")
        if "blockNumber" in value:
            return block_tag(value["blockNumber"])
        raise InvalidParams("invalid block: expected blockHash or blockNumber")
    return quantity(value, "block number", bits=63)  # geth: int64 block numbers


def block_or_hash(value: Any) -> str | int | bytes:
    """`block_tag`, or a bare 32-byte block hash (geth's BlockNumberOrHash takes both)."""
    if isinstance(value, str) and len(value) == 66 and value[:2] in ("0x", "0X"):
        return hash32(value, "blockHash")
    return block_tag(value)


def arguments(params: Any, minimum: int, maximum: int) -> list[Any]:
    """Positional params padded with None up to `maximum`; wrong arity is InvalidParams."""
    if params is None:
        params = []
    if not isinstance(params, list):
        raise InvalidParams("params must be an array")
    if not minimum <= len(params) <= maximum:
        if minimum == maximum:
            raise InvalidParams(f"expected {minimum} params, got {len(params)}")
        raise InvalidParams(f"expected {minimum} to {maximum} params, got {len(params)}")
    return params + [None] * (maximum - len(params))


def hex_quantity(value: int) -> str:
    return hex(value)


def hex_data(value: bytes) -> str:
    return "0x" + value.hex()
