"""The one grammar for 0x-hex that every client-facing parser (JSON-RPC, REST) accepts.

Python's `int(text, 16)` and `bytes.fromhex` are lenient in ways a wire format must not be:
they take signs (`0x-1`), whitespace (`0x 1`), and underscores (`0x1_0`). A lenient parser
turns a client's typo into a different, valid request (index `0x-1` reads the last
transaction), so every parser goes through these two functions, which accept only
`0x`/`0X` followed by hex digits, and raise `ValueError` with a reason the caller turns into
its own protocol's error (-32602, HTTP 400).
"""

from __future__ import annotations

import re

_QUANTITY = re.compile(r"0[xX][0-9a-fA-F]+")
_DATA = re.compile(r"0[xX](?:[0-9a-fA-F]{2})*")


def decode_quantity(text: str) -> int:
    """An unsigned integer written `0x` + at least one hex digit (leading zeros allowed)."""
    if _QUANTITY.fullmatch(text) is None:
        raise ValueError(f"expected 0x-prefixed hex digits, got {text[:80]!r}")
    return int(text[2:], 16)


def decode_data(text: str) -> bytes:
    """Bytes written `0x` + an even number of hex digits (`0x` alone is empty data)."""
    if _DATA.fullmatch(text) is None:
        raise ValueError(f"expected 0x-prefixed hex of even length, got {text[:80]!r}")
    return bytes.fromhex(text[2:])
